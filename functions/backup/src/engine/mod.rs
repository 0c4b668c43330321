//! Daily encrypted backups of the database, their verification and restore,
//! and the drill that proves each restores.
//!
//! A backup is one REPEATABLE READ snapshot of every gallery table, read by a
//! role that can only read ([`Service::snapshot`]), streamed as COPY text
//! through zstd and sealed in 1 MiB chunks ([`format`]) under a fresh KMS
//! data key, into an S3 multipart upload ([`sink`]): memory stays flat at any
//! size. The manifest ([`manifest`]) is written last, so an object without
//! one never looks complete. The data key is wrapped by a multi-Region KMS
//! key, whose replica in the recovery region unwraps it after a region loss.
//!
//! Restores and drills ([`restore`]) read the manifest, unwrap the key, and
//! stream the object back: schema at the backup's version, data with the
//! backup's column lists, then the newer migrations.

pub use shared::archive::format;
pub use shared::archive::frames;
pub use shared::archive::manifest;
pub mod pipeline;
pub mod restore;
pub mod sink;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use futures_util::{pin_mut, TryStreamExt};
use secrecy::SecretString;
use tracing::{info, instrument, warn};
use uuid::Uuid;

pub use format::FormatError;
pub use frames::ArchiveError;
pub use manifest::Manifest;
use pipeline::{Input, Writing, Written};
use shared::aws::keys::{KeyError, Keys, KmsFailure};
use shared::aws::storage::{ObjectStore, StorageError};
use shared::config::DbConfig;
use shared::db::{self, DbError, BACKUP_TABLES};
use sink::{S3Sink, Sink};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("the backup object was refused: {0}")]
    Format(#[from] FormatError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the backup object does not match its manifest: {0}")]
    ObjectMismatch(String),
    #[error("the manifest of backup {0} is not authentic: it was modified, or written with another data key")]
    ManifestForged(Uuid),
    #[error("the manifest is malformed: {0}")]
    ManifestMalformed(String),
    #[error(
        "backup {backup} was sealed with KMS key {sealed_with}; this function uses {configured}"
    )]
    WrongKey { backup: Uuid, sealed_with: String, configured: String },
    #[error("backup schema v{backup} is newer than this code knows (v{known}): restore with the release that took it")]
    NewerSchema { backup: i32, known: i32 },
    #[error("the target database {0:?} is not empty (pass replace to overwrite it)")]
    TargetNotEmpty(String),
    #[error("{0:?} is the gallery's own database: a restore into it replaces production; name it a second time (--confirm-production {0}) and give --reason")]
    ProductionTarget(String),
    #[error(transparent)]
    Ledger(#[from] shared::ledger::LedgerError),
    #[error("not found: {0}")]
    NotFound(String),
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
            Self::Ledger(e) => e.is_retryable(),
            Self::Worker(_) => true,
            _ => false,
        }
    }

    /// Whether the failure says the backup itself is bad (the drill's finding),
    /// rather than that it could not be read right now.
    pub fn is_integrity_failure(&self) -> bool {
        match self {
            Self::Format(_)
            | Self::Archive(_)
            | Self::ObjectMismatch(_)
            | Self::ManifestForged(_)
            | Self::ManifestMalformed(_)
            | Self::Mismatch(_)
            | Self::Ledger(shared::ledger::LedgerError::Record(_)) => true,
            Self::Keys(e) => e.failure() == Some(KmsFailure::WrongKeyOrContext),
            _ => false,
        }
    }
}

/// Credentials for one database role.
#[derive(Clone)]
pub struct Role {
    pub db: DbConfig,
    pub password: SecretString,
}

/// A database role the backup function logs in as outside its pool (the
/// schema owner; the read-only snapshot role), or whose login `migrate` sets.
/// Its password is read from its secret on first use, not at cold start, and
/// read again once when the server refuses it: RDS rotates the owner's every
/// seven days by default, the runbook rotates the others.
pub struct Login {
    pub db: DbConfig,
    pub password: shared::aws::LazyPassword,
}

impl Login {
    /// Connects to `db` (this role's configuration, another database name allowed).
    pub async fn connect(&self, db: &DbConfig) -> Result<tokio_postgres::Client, BackupError> {
        let password = self.password.get().await.map_err(unreadable)?;
        match db::connect(db, &password).await {
            Err(e) if e.is_auth_failure() => {
                tracing::info!(role = %db.user, "the database refused the password in hand; reading its secret again");
                Ok(db::connect(db, &self.password.refresh().await.map_err(unreadable)?).await?)
            }
            other => Ok(other?),
        }
    }

    /// The credentials, proven on the maintenance database, for tasks that
    /// open several connections (restores, drills).
    pub async fn role(&self) -> Result<Role, BackupError> {
        self.connect(&DbConfig { name: "postgres".into(), ..self.db.clone() }).await?;
        Ok(Role { db: self.db.clone(), password: self.password.get().await.map_err(unreadable)? })
    }
}

fn unreadable(e: shared::aws::SecretError) -> BackupError {
    BackupError::Worker(format!("database credentials: {e}"))
}

pub struct BackupService {
    /// The application role: the catalog rows (backups, drills, audit).
    pub pool: Pool,
    /// The read-only backup role: the snapshot.
    pub snapshot: Login,
    /// The schema owner: migrations, restores, drills.
    pub owner: Login,
    /// Login roles whose passwords their secrets hold; migrating gives each
    /// its login (read from the secret then), so no one types SQL after a
    /// deploy or a rotation.
    pub logins: Vec<Login>,
    /// The backups bucket's store, writing with the backup key.
    pub store: ObjectStore,
    pub keys: Keys,
    pub bucket: String,
    pub backup_key_id: String,
    /// A run still `running` this long after it started was killed.
    pub run_deadline: Duration,
    /// The DR replica the drill verifies (none in the benchmark).
    pub dr: Option<restore::BackupCopy>,
}

impl BackupService {
    /// Longer than any run can last: the function's timeout is 15 minutes.
    pub fn default_run_deadline() -> Duration {
        Duration::minutes(20)
    }

    /// The erasure ledger beside the backups, its seals checked with the
    /// backups key (in a recovery, its replica).
    pub fn ledger(&self) -> shared::ledger::Ledger {
        shared::ledger::Ledger {
            store: self.store.clone(),
            keys: self.keys.clone(),
            bucket: self.bucket.clone(),
            key_id: self.backup_key_id.clone(),
        }
    }
}

/// The data key's encryption context: KMS unwraps it only for this backup.
pub fn key_context(backup_id: Uuid) -> HashMap<String, String> {
    HashMap::from([
        ("purpose".to_owned(), "copper-gallery-backup".to_owned()),
        ("backup_id".to_owned(), backup_id.to_string()),
    ])
}

/// Where backup `id`, started at `at`, is stored.
pub fn object_key(id: Uuid, at: DateTime<Utc>) -> String {
    format!("backups/{}/{id}.cpgbak", at.format("%Y/%m/%d"))
}

/// Streams every table of one snapshot into `sink`. The transaction must be
/// REPEATABLE READ so every table is read at the same instant.
pub async fn write_snapshot<S: Sink>(
    tx: &tokio_postgres::Transaction<'_>,
    header: &format::Header,
    key: &[u8; 32],
    sink: S,
) -> Result<Written, BackupError> {
    let writing = Writing::start(header, key, sink)?;
    let fed = async {
        // A database at an older schema than this code lacks the newer tables:
        // its backup holds the tables it has.
        let present = db::public_tables(tx).await?;
        for (table, order) in BACKUP_TABLES.iter().filter(|(t, _)| present.iter().any(|p| p == t)) {
            let columns = db::table_columns(tx, table).await?;
            writing
                .send(Input::Start(frames::TableStart {
                    name: (*table).to_owned(),
                    columns: columns.clone(),
                }))
                .await?;
            let stream = db::copy_out_stream(tx, table, &columns, order).await?;
            pin_mut!(stream);
            // COPY yields a row at a time; the archive gets them joined.
            let mut rows = bytes::BytesMut::new();
            while let Some(row) = stream.try_next().await.map_err(DbError::from)? {
                rows.extend_from_slice(&row);
                if rows.len() >= pipeline::JOINED {
                    writing.send(Input::Data(rows.split().freeze())).await?;
                }
            }
            if !rows.is_empty() {
                writing.send(Input::Data(rows.freeze())).await?;
            }
            writing.send(Input::End).await?;
        }
        Ok(())
    }
    .await;
    writing.finish(fed).await
}

/// Opens the snapshot transaction on `client` (stable COPY output, one instant).
pub async fn snapshot_transaction(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, BackupError> {
    db::stable_output(&*client).await?;
    db::unbounded_statements(&*client).await?;
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(DbError::from)?)
}

impl BackupService {
    /// Takes a backup and records it; a failure is recorded too, then returned.
    #[instrument(skip_all, fields(backup_id))]
    pub async fn backup(&self) -> Result<Manifest, BackupError> {
        self.clean_up_interrupted().await;
        match self.pool.get().await.map_err(DbError::from) {
            Ok(client) => {
                if let Err(e) = self.reconcile_catalog(&**client).await {
                    warn!(error = %e, "could not reconcile the catalog with the bucket's manifests");
                }
            }
            Err(e) => {
                warn!(error = %e, "could not reconcile the catalog with the bucket's manifests")
            }
        }
        let id = Uuid::new_v4();
        tracing::Span::current().record("backup_id", tracing::field::display(id));
        let started = Utc::now();
        let clock = std::time::Instant::now();
        let key = object_key(id, started);
        db::start_backup(&**self.pool.get().await.map_err(DbError::from)?, id, &key).await?;
        match self.take(id, &key, started).await {
            Ok(manifest) => {
                info!(key = %key, bytes = manifest.object_bytes, chunks = manifest.chunks, "backup stored");
                shared::telemetry::count("backup", "BackupSucceeded", 1.0);
                shared::telemetry::measure(
                    "backup",
                    "BackupBytes",
                    manifest.object_bytes as f64,
                    "Bytes",
                );
                // Alarmed above half the function's timeout (infra/monitoring.tf).
                shared::telemetry::measure(
                    "backup",
                    "BackupSeconds",
                    clock.elapsed().as_secs_f64(),
                    "Seconds",
                );
                Ok(manifest)
            }
            Err(e) => {
                warn!(error = %e, "backup failed");
                shared::telemetry::count("backup", "BackupFailed", 1.0);
                if let Ok(client) = self.pool.get().await {
                    let _ = db::fail_backup(&**client, id, &e.to_string()).await;
                }
                Err(e)
            }
        }
    }

    async fn take(
        &self,
        id: Uuid,
        key: &str,
        started: DateTime<Utc>,
    ) -> Result<Manifest, BackupError> {
        // The one KMS call of a backup.
        let data_key = self.keys.generate(&self.backup_key_id, &key_context(id)).await?;
        let mut client = self.snapshot.connect(&self.snapshot.db).await?;
        let tx = snapshot_transaction(&mut client).await?;
        let snapshot_at = Utc::now();
        let schema_version = db::schema_version(&tx).await?;
        let header = format::Header::new(id, started.to_rfc3339(), rand::random());
        let sink = S3Sink::start(&self.store, &self.bucket, key).await?;
        let written = write_snapshot(&tx, &header, &data_key.plaintext, sink).await?;
        tx.commit().await.map_err(DbError::from)?;
        drop(client);

        let mut manifest = Manifest {
            format_version: manifest::FORMAT_VERSION,
            backup_id: id,
            started_at: started.to_rfc3339(),
            snapshot_at: snapshot_at.to_rfc3339(),
            finished_at: Utc::now().to_rfc3339(),
            schema_version,
            tables: written.tables,
            object_key: key.to_owned(),
            object_version: written.version_id,
            object_bytes: written.object_bytes,
            object_sha256: written.object_sha256,
            chunks: written.chunks,
            archive_bytes: written.archive_bytes,
            kms_key_arn: data_key.key_arn.clone(),
            wrapped_key: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &data_key.wrapped,
            ),
            mac: String::new(),
        };
        manifest.sign(&data_key.plaintext);
        let manifest_key = Manifest::key_for(key);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::ManifestMalformed(e.to_string()))?;
        self.store.put(&self.bucket, &manifest_key, json, "application/json").await?;

        let catalog = catalog_entry(&manifest, &manifest_key);
        db::finish_backup(&**self.pool.get().await.map_err(DbError::from)?, &catalog).await?;
        Ok(manifest)
    }

    /// Runs killed by a timeout: their rows are failed, their multipart
    /// uploads aborted. Best effort: a failure here never stops a backup.
    async fn clean_up_interrupted(&self) {
        let cutoff = Utc::now() - self.run_deadline;
        match self.pool.get().await {
            Ok(client) => match db::fail_interrupted(&**client, cutoff).await {
                Ok(0) => {}
                Ok(n) => warn!(runs = n, "marked interrupted runs failed"),
                Err(e) => warn!(error = %e, "could not mark interrupted runs"),
            },
            Err(e) => warn!(error = %e, "could not mark interrupted runs"),
        }
        match self.store.abort_uploads_before(&self.bucket, "backups/", cutoff).await {
            Ok(0) => {}
            Ok(n) => warn!(uploads = n, "aborted multipart uploads of interrupted backups"),
            Err(e) => warn!(error = %e, "could not list interrupted uploads"),
        }
    }

    /// Catalogues every backup in the bucket whose authenticated manifest the
    /// catalog does not know: after a point-in-time restore or a restore of an
    /// older backup, the catalog has forgotten the backups taken since, so the
    /// rotation would never expire them and erasure records would not list
    /// them. A manifest that does not prove itself is left out, with a warning.
    pub async fn reconcile_catalog(
        &self,
        db: &impl tokio_postgres::GenericClient,
    ) -> Result<u64, BackupError> {
        let known = db::catalogued_backups(db).await?;
        let mut found = 0;
        for key in self.store.list_keys(&self.bucket, "backups/").await? {
            let Some(id) = key
                .strip_suffix(".manifest.json")
                .and_then(|k| k.rsplit('/').next())
                .and_then(|id| id.parse::<Uuid>().ok())
            else {
                continue;
            };
            if known.contains(&id) {
                continue;
            }
            let opened = match self.open_manifest(&key).await {
                Ok(opened) if opened.manifest.backup_id == id => opened,
                Ok(_) => {
                    warn!(%key, "a manifest under another backup's name; not catalogued");
                    continue;
                }
                Err(e) if e.is_integrity_failure() => {
                    warn!(%key, error = %e, "a manifest that does not prove itself; not catalogued");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let m = &opened.manifest;
            let at = DateTime::parse_from_rfc3339(&m.snapshot_at)
                .map_err(|e| BackupError::ManifestMalformed(format!("{key}: snapshot_at: {e}")))?
                .to_utc();
            if db::catalog_found_backup(db, &m.object_key, at, &catalog_entry(m, &key)).await? {
                info!(backup_id = %id, "catalogued a backup the catalog had forgotten");
                found += 1;
            }
        }
        Ok(found)
    }

    /// Applies pending migrations as the owner, then (re)sets each login
    /// role's password from its secret; deployments invoke this after each
    /// apply, and again after rotating a password.
    pub async fn migrate(&self) -> Result<Vec<i32>, BackupError> {
        let mut client = self.owner.connect(&self.owner.db).await?;
        let applied = db::migrate(&mut client).await?;
        for login in &self.logins {
            // What the secret holds now: after a rotation, the new password.
            let password = login.password.refresh().await.map_err(unreadable)?;
            db::set_login_password(&client, &login.db.user, &password).await?;
        }
        Ok(applied)
    }
}

/// What the catalog records of a finished backup.
pub fn catalog_entry<'a>(manifest: &'a Manifest, manifest_key: &'a str) -> db::FinishedBackup<'a> {
    db::FinishedBackup {
        id: manifest.backup_id,
        object_version: manifest.object_version.as_deref(),
        bytes: manifest.object_bytes as i64,
        object_sha256: &manifest.object_sha256,
        manifest_key,
        schema_version: manifest.schema_version,
        row_counts: serde_json::to_value(manifest.rows()).unwrap_or_default(),
        manifest: serde_json::to_value(manifest).unwrap_or_default(),
    }
}
