//! Daily encrypted backups of the database, and the drill that proves each restores.
//!
//! A backup is a consistent snapshot (one REPEATABLE READ transaction) of every
//! gallery table in COPY format, compressed with zstd and sealed with AES-256-GCM
//! under a fresh KMS data key bound to the backup's id. The drill restores the
//! newest backup into a scratch database, checks every table's row count against
//! the manifest, and drops the scratch database again.

pub mod archive;
pub mod envelope;

use std::collections::HashMap;
use std::io::Read;

use chrono::Utc;
use deadpool_postgres::Pool;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tracing::{info, instrument, warn};
use uuid::Uuid;

use crate::config::DbConfig;
use crate::db::{self, BackupRecord, DbError, BACKUP_TABLES};
use crate::keys::{KeyError, Keys};
use crate::storage::{ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("the backup failed its integrity check (tampered, truncated or the wrong key)")]
    Tampered,
    #[error("the backup is malformed: {0}")]
    Malformed(String),
    #[error("no successful backup exists to restore")]
    NoBackup,
    #[error("restored data does not match the backup: {0}")]
    Mismatch(String),
    #[error("background work stopped: {0}")]
    Worker(String),
}

impl BackupError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
            Self::Keys(e) => e.is_retryable(),
            Self::Worker(_) => true,
            Self::Tampered | Self::Malformed(_) | Self::NoBackup | Self::Mismatch(_) => false,
        }
    }
}

/// What a backup run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub id: Uuid,
    pub object_key: String,
    pub bytes: u64,
    pub row_counts: HashMap<String, u64>,
}

/// How the drill and migrations reach the database as its owner.
pub struct Admin {
    /// The application database, with the owner's user name.
    pub db: DbConfig,
    pub password: SecretString,
    /// The application role and the password its secret holds: migrating
    /// gives the role that login, so no one runs SQL by hand after a deploy.
    pub app_role: String,
    pub app_password: SecretString,
}

pub struct BackupService {
    pub pool: Pool,
    /// The backups bucket's store, writing with the backup key.
    pub store: ObjectStore,
    pub keys: Keys,
    pub bucket: String,
    pub backup_key_id: String,
    pub admin: Admin,
    /// Largest archive a restore will inflate, so a hostile file cannot exhaust memory.
    pub max_archive_bytes: u64,
}

fn key_context(backup_id: Uuid) -> HashMap<String, String> {
    HashMap::from([("purpose".to_owned(), "copper-gallery-backup".to_owned()), ("backup_id".to_owned(), backup_id.to_string())])
}

impl BackupService {
    /// Takes a backup and records it; a failure is recorded too, then returned.
    #[instrument(skip_all)]
    pub async fn backup(&self) -> Result<BackupSummary, BackupError> {
        let id = Uuid::new_v4();
        let now = Utc::now();
        let key = format!("backups/{}/{id}.cpgbak", now.format("%Y/%m/%d"));
        db::start_backup(&self.pool.get().await.map_err(DbError::from)?, id, &key).await?;
        match self.take(id, &key, now).await {
            Ok(summary) => {
                info!(backup_id = %id, key = %key, bytes = summary.bytes, "backup stored");
                crate::telemetry::count("backup", "BackupSucceeded", 1.0);
                Ok(summary)
            }
            Err(e) => {
                warn!(backup_id = %id, error = %e, "backup failed");
                crate::telemetry::count("backup", "BackupFailed", 1.0);
                if let Ok(client) = self.pool.get().await {
                    let _ = db::fail_backup(&client, id, &e.to_string()).await;
                }
                Err(e)
            }
        }
    }

    async fn take(&self, id: Uuid, key: &str, now: chrono::DateTime<Utc>) -> Result<BackupSummary, BackupError> {
        let mut client = self.pool.get().await.map_err(DbError::from)?;
        // One snapshot for every table, so the backup is consistent.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(DbError::from)?;
        let schema_version = db::schema_version(&*tx).await?;
        let mut tables = Vec::with_capacity(BACKUP_TABLES.len());
        for (table, order) in BACKUP_TABLES {
            tables.push((*table, db::copy_out(&tx, table, order).await?));
        }
        tx.commit().await.map_err(DbError::from)?;
        drop(client);

        let (manifest, archive) = archive::pack(schema_version, &now.to_rfc3339(), &tables)?;
        drop(tables);
        let plaintext_sha256 = hex::encode(Sha256::digest(&archive));
        let compressed = tokio::task::spawn_blocking(move || zstd::bulk::compress(&archive, 9))
            .await
            .map_err(|e| BackupError::Worker(e.to_string()))?
            .map_err(|e| BackupError::Malformed(format!("compression: {e}")))?;

        let data_key = self.keys.generate(&self.backup_key_id, &key_context(id)).await?;
        let header = envelope::Header {
            backup_id: id.to_string(),
            created_at: now.to_rfc3339(),
            cipher: String::new(),
            compression: String::new(),
            kms_key_arn: data_key.key_arn.clone(),
            wrapped_key: String::new(),
            nonce: String::new(),
        };
        let file = envelope::seal(&compressed, &data_key.plaintext, rand::random(), header, &data_key.wrapped)?;
        let bytes = file.len() as u64;
        let version = self.store.put(&self.bucket, key, file, "application/octet-stream").await?;

        let row_counts: HashMap<String, u64> = manifest.tables.iter().map(|t| (t.name.clone(), t.rows)).collect();
        let counts_json = serde_json::to_value(&row_counts).map_err(|e| BackupError::Malformed(e.to_string()))?;
        db::finish_backup(
            &self.pool.get().await.map_err(DbError::from)?,
            id,
            version.as_deref(),
            bytes as i64,
            &plaintext_sha256,
            &counts_json,
        )
        .await?;
        Ok(BackupSummary { id, object_key: key.to_owned(), bytes, row_counts })
    }

    /// Downloads, authenticates, decrypts and unpacks a recorded backup.
    pub async fn open(&self, record: &BackupRecord) -> Result<(archive::Manifest, Vec<u8>), BackupError> {
        let file = self.store.get(&self.bucket, &record.object_key, self.max_archive_bytes).await?;
        let (header, body_start) = envelope::parse(&file)?;
        // A valid file of another backup put in this one's place is refused too.
        if header.backup_id != record.id.to_string() {
            return Err(BackupError::Tampered);
        }
        let key = self.keys.unwrap(&header.wrapped_key_bytes()?, &key_context(record.id)).await.map_err(|e| {
            if e.is_retryable() {
                BackupError::Keys(e)
            } else {
                BackupError::Tampered
            }
        })?;
        let compressed = envelope::open(&file, body_start, &header, &key)?;
        drop(file);
        let limit = self.max_archive_bytes;
        let archive = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            zstd::stream::Decoder::new(&compressed[..])?.take(limit + 1).read_to_end(&mut out)?;
            Ok::<_, std::io::Error>(out)
        })
        .await
        .map_err(|e| BackupError::Worker(e.to_string()))?
        .map_err(|e| BackupError::Malformed(format!("decompression: {e}")))?;
        if archive.len() as u64 > limit {
            return Err(BackupError::Malformed(format!("archive exceeds {limit} bytes")));
        }
        let (manifest, _) = archive::unpack(&archive)?;
        Ok((manifest, archive))
    }

    /// Restores an opened archive into an empty, migrated database.
    pub async fn restore_into(&self, target: &mut tokio_postgres::Client, archive: &[u8]) -> Result<HashMap<String, u64>, BackupError> {
        let (manifest, tables) = archive::unpack(archive)?;
        let current = db::schema_version(&*target).await?;
        if manifest.schema_version > current {
            return Err(BackupError::Mismatch(format!("backup schema v{} is newer than the target's v{current}", manifest.schema_version)));
        }
        let tx = target.transaction().await.map_err(DbError::from)?;
        let mut counts = HashMap::new();
        for (entry, data) in tables {
            // Table names come from the file; only our own are ever interpolated.
            if !BACKUP_TABLES.iter().any(|(t, _)| *t == entry.name) {
                return Err(BackupError::Malformed(format!("unknown table {:?}", entry.name)));
            }
            let loaded = db::copy_in(&tx, &entry.name, data).await?;
            counts.insert(entry.name.clone(), loaded);
        }
        tx.batch_execute(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), COALESCE((SELECT max(id) FROM audit_log), 0) + 1, false)",
        )
        .await
        .map_err(DbError::from)?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(counts)
    }

    /// Restores the newest backup into a scratch database and compares it with
    /// the manifest. The outcome is recorded and reported as a metric.
    #[instrument(skip_all, fields(drill_id))]
    pub async fn restore_drill(&self) -> Result<HashMap<String, u64>, BackupError> {
        let drill_id = Uuid::new_v4();
        tracing::Span::current().record("drill_id", tracing::field::display(drill_id));
        let latest = db::latest_succeeded_backup(&self.pool.get().await.map_err(DbError::from)?).await?;
        db::start_drill(&self.pool.get().await.map_err(DbError::from)?, drill_id, latest.as_ref().map(|b| b.id)).await?;
        let result = match &latest {
            Some(record) => self.drill(drill_id, record).await,
            None => Err(BackupError::NoBackup),
        };
        let client = self.pool.get().await.map_err(DbError::from)?;
        match &result {
            Ok(counts) => {
                let json = serde_json::to_value(counts).unwrap_or_default();
                db::finish_drill(&client, drill_id, Ok(&json)).await?;
                info!(?counts, "restore drill succeeded");
                crate::telemetry::count("backup", "RestoreDrillSucceeded", 1.0);
            }
            Err(e) => {
                db::finish_drill(&client, drill_id, Err(&e.to_string())).await?;
                warn!(error = %e, "restore drill failed");
                crate::telemetry::count("backup", "RestoreDrillFailed", 1.0);
            }
        }
        result
    }

    async fn drill(&self, drill_id: Uuid, record: &BackupRecord) -> Result<HashMap<String, u64>, BackupError> {
        let (manifest, archive) = self.open(record).await?;
        let scratch = format!("restore_drill_{}", drill_id.simple());
        let maintenance = DbConfig { name: "postgres".into(), ..self.admin.db.clone() };
        let admin = db::connect(&maintenance, &self.admin.password).await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{scratch}\"")).await.map_err(DbError::from)?;
        let outcome = async {
            let mut target = db::connect(&DbConfig { name: scratch.clone(), ..self.admin.db.clone() }, &self.admin.password).await?;
            db::migrate(&mut target).await?;
            let loaded = self.restore_into(&mut target, &archive).await?;
            let mut counts = HashMap::new();
            for entry in &manifest.tables {
                let found = db::row_count(&target, &entry.name).await? as u64;
                if found != entry.rows || loaded.get(&entry.name) != Some(&entry.rows) {
                    return Err(BackupError::Mismatch(format!("{}: backup has {} rows, restored {found}", entry.name, entry.rows)));
                }
                counts.insert(entry.name.clone(), found);
            }
            Ok(counts)
        }
        .await;
        // The scratch copy holds real data: it goes whatever happened.
        if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)")).await {
            warn!(error = %e, database = %scratch, "could not drop the scratch database");
        }
        outcome
    }

    /// Applies pending migrations as the owner, then (re)sets the application
    /// role's login from its secret; deployments invoke this after each apply,
    /// and again after rotating the application password.
    pub async fn migrate(&self) -> Result<Vec<i32>, BackupError> {
        let mut client = db::connect(&self.admin.db, &self.admin.password).await?;
        let applied = db::migrate(&mut client).await?;
        db::set_login_password(&client, &self.admin.app_role, &self.admin.app_password).await?;
        Ok(applied)
    }
}
