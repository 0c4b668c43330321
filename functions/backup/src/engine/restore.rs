//! Reading backups back: verify one end to end without writing anything,
//! restore one into a chosen database, and the drill that restores the newest
//! into a scratch database and proves the restored database holds exactly what
//! the snapshot held.
//!
//! Nothing here needs the catalog in the database: after losing it, the
//! bucket's manifests say which backups exist.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use serde::Serialize;
use shared::operator::BackupChoice;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use super::frames::{Record, TableSummary};
use super::manifest::Manifest;
use super::pipeline::{Expected, ReadTotals, Reading};
use super::{catalog_entry, key_context, BackupError, BackupService, Role};
use shared::archive::ledger::ErasureRecord;
use shared::aws::keys::{key_identity, Keys};
use shared::aws::storage::{ObjectStore, Ranges};
use shared::config::DbConfig;
use shared::db::{self, DbError};

/// A manifest whose authenticity is proven, with its data key.
pub struct Opened {
    pub manifest: Manifest,
    pub manifest_key: String,
    /// The data key, wiped from memory when the restore is done.
    key: zeroize::Zeroizing<[u8; 32]>,
}

/// What a verification or restore found, table by table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub backup_id: Uuid,
    pub snapshot_at: String,
    pub schema_version: i32,
    pub object_bytes: u64,
    pub chunks: u32,
    pub tables: BTreeMap<String, TableReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup_id: Uuid,
    pub snapshot_at: String,
    pub database: String,
    /// The backup's schema version, and the one the database has now.
    pub schema_version: i32,
    pub migrated_to: i32,
    pub rows: BTreeMap<String, u64>,
    pub restore_ms: u64,
    /// Erasures made after this backup, applied again to its data (in the
    /// load's transaction: no session ever sees an erased artist).
    pub erasures_replayed: u64,
    /// The ledger's records, every one proven before anything was written.
    pub ledger_records: u64,
    /// Backups in the bucket the restored catalog did not know (taken after
    /// this one), catalogued so the rotation expires them in time.
    pub backups_catalogued: u64,
    /// Why production itself was the target, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub production_reason: Option<String>,
}

/// How a restore should go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RestoreRequest {
    pub backup: BackupChoice,
    pub database: String,
    /// Verify the whole object before writing anything.
    pub verify_first: bool,
    /// Drop what the target holds (its public schema) instead of refusing.
    pub replace: bool,
    /// The gallery's own database is a target only when named here a second
    /// time, with a reason (both audited).
    pub confirm_production: Option<String>,
    pub reason: Option<String>,
}

/// What `replay-erasures` did to a database.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub database: String,
    #[serde(flatten)]
    pub replayed: db::Replayed,
}

/// What a drill proved.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub backup_id: Uuid,
    pub rows: BTreeMap<String, u64>,
    pub restore_ms: u64,
    pub checksums: BTreeMap<String, String>,
    /// Erasures replayed into the scratch database before it was committed.
    pub erasures_replayed: u64,
    /// What the drill proved of the other copies.
    pub copies: Copies,
}

/// The newest DR copy older than this fails the drill's DR check (a day's
/// backup plus two hours of replication and schedule slack).
pub const DR_COPY_MAX_AGE: chrono::Duration = chrono::Duration::hours(26);

/// The copies a drill checks besides the newest backup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Copies {
    /// The newest DR replica, verified through the DR Region (every drill).
    pub dr: Option<CopyCheck>,
    /// The oldest backup the rotation keeps, restored with erasure replay (weekly).
    pub older: Option<CopyCheck>,
}

impl Copies {
    /// One metric per copy, so each has its own alarm.
    fn emit(&self) {
        for (name, check) in [("DrCopy", &self.dr), ("OlderBackupDrill", &self.older)] {
            let Some(check) = check else { continue };
            let metric = if check.verified { "Verified" } else { "Failed" };
            shared::telemetry::count("backup", &format!("{name}{metric}"), 1.0);
            if let Some(hours) = check.age_hours {
                shared::telemetry::measure("backup", &format!("{name}AgeHours"), hours, "Count");
            }
        }
    }
}

/// What a check of one copy found.
#[derive(Debug, Clone, Serialize)]
pub struct CopyCheck {
    pub verified: bool,
    pub backup_id: Option<Uuid>,
    pub snapshot_at: Option<String>,
    pub age_hours: Option<f64>,
    pub error: Option<String>,
}

impl CopyCheck {
    fn verified(backup_id: Uuid, snapshot_at: String, age_hours: Option<f64>) -> Self {
        Self {
            verified: true,
            backup_id: Some(backup_id),
            snapshot_at: Some(snapshot_at),
            age_hours,
            error: None,
        }
    }

    fn failed(backup_id: Option<Uuid>, e: &BackupError) -> Self {
        Self {
            verified: false,
            backup_id,
            snapshot_at: None,
            age_hours: None,
            error: Some(e.to_string()),
        }
    }
}

/// What one load put in its transaction before committing.
struct Loaded {
    rows: BTreeMap<String, u64>,
    /// Per-table digests read back inside the transaction (drills only).
    checksums: BTreeMap<String, String>,
    replayed: Option<db::Replayed>,
}

/// Database names operators may restore into: created if missing, never the
/// maintenance databases.
pub fn check_database_name(name: &str) -> Result<(), BackupError> {
    shared::operator::restorable_database(name).map_err(BackupError::NotFound)
}

const DRILL_PREFIX: &str = "gallery_drill_";

/// Backups are read 16 MiB at a time (the upper of S3's recommended range
/// sizes), three GETs at once: a restore is never waiting on one connection,
/// and holds at most these ranges plus the decoder's two queued pieces
/// (80 MiB of the function's 1024).
const READ_RANGES: Ranges = Ranges { size: 16 << 20, in_flight: 3 };

/// The table being loaded: its name, the backup's columns, its COPY.
type OpenTable = (&'static str, Vec<String>, std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>);

impl BackupService {
    /// The primary copy: this function's bucket and key.
    pub fn primary(&self) -> BackupCopy {
        BackupCopy {
            store: self.store.clone(),
            keys: self.keys.clone(),
            bucket: self.bucket.clone(),
            key_id: self.backup_key_id.clone(),
        }
    }

    /// See [`BackupCopy::open_choice`], on the primary copy.
    pub async fn open_choice(&self, which: &BackupChoice) -> Result<Opened, BackupError> {
        self.primary().open_choice(which).await
    }

    /// See [`BackupCopy::open_manifest`], on the primary copy.
    pub async fn open_manifest(&self, manifest_key: &str) -> Result<Opened, BackupError> {
        self.primary().open_manifest(manifest_key).await
    }

    /// Checks a backup end to end without writing anything.
    #[instrument(skip(self))]
    pub async fn verify(&self, which: &BackupChoice) -> Result<VerifyReport, BackupError> {
        let opened = self.open_choice(which).await?;
        self.primary().verify_opened(&opened).await
    }

    /// Loads the object's rows (`reading`, started early so the first ranges
    /// arrive while the schema is built) into `target`, whose schema is at
    /// the backup's version, in one transaction: a refused object leaves the
    /// tables empty.
    /// Before it commits, a drill reads every table's digest back, and the
    /// ledger's erasures are replayed (`erasures`), so no other session ever
    /// sees an erased artist in the restored data.
    async fn load(
        &self,
        target: &mut tokio_postgres::Client,
        opened: &Opened,
        mut reading: Reading,
        erasures: Option<&[ErasureRecord]>,
        digests: bool,
    ) -> Result<Loaded, BackupError> {
        let m = &opened.manifest;
        let tx = target.transaction().await.map_err(DbError::from)?;
        // Bare tables while the rows go in; indexes, keys and foreign keys are
        // built once at the end (as pg_restore does), in this same transaction.
        let deferred = db::defer_for_load(&tx).await?;
        let mut loaded = BTreeMap::new();
        let mut summaries = Vec::new();
        let outcome: Result<(), BackupError> = async {
            let mut current: Option<OpenTable> = None;
            while let Some(record) = reading.records.recv().await {
                match record {
                    Record::Start(start) => {
                        let (table, _) = db::backup_table(&start.name).ok_or_else(|| {
                            BackupError::ObjectMismatch(format!("unknown table {:?}", start.name))
                        })?;
                        if m.table(table).map(|t| &t.columns) != Some(&start.columns) {
                            return Err(BackupError::ObjectMismatch(format!(
                                "{table}'s columns differ from the manifest's"
                            )));
                        }
                        info!(table, rows = m.table(table).map(|t| t.rows), "restoring table");
                        let sink = db::copy_in_sink(&tx, table, &start.columns).await?;
                        current = Some((table, start.columns, Box::pin(sink)));
                    }
                    Record::Data(data) => {
                        let (_, _, sink) = current.as_mut().ok_or_else(|| {
                            BackupError::ObjectMismatch("data outside a table".into())
                        })?;
                        // Fed, not sent: `send` would flush one network write per row.
                        sink.feed(data).await.map_err(DbError::from)?;
                    }
                    Record::End(summary) => {
                        let (table, columns, mut sink) = current.take().ok_or_else(|| {
                            BackupError::ObjectMismatch("a table end outside a table".into())
                        })?;
                        let rows = sink.as_mut().finish().await.map_err(DbError::from)?;
                        if rows != summary.rows {
                            return Err(BackupError::Mismatch(format!(
                                "{table}: the backup has {} rows, COPY loaded {rows}",
                                summary.rows
                            )));
                        }
                        db::reset_sequences(&tx, table, &columns).await?;
                        loaded.insert(table.to_owned(), rows);
                        summaries.push(summary);
                    }
                    Record::Finished { .. } => {}
                }
            }
            Ok(())
        }
        .await;
        // Stop the reader before asking why it stopped.
        let totals = reading.finish().await;
        outcome?;
        check_totals(opened, &totals?, &summaries)?;
        info!(deferred = deferred.len(), "building indexes, keys and foreign keys");
        db::restore_deferred(&tx, &deferred).await?;
        let checksums = if digests { check_digests(&tx, m).await? } else { BTreeMap::new() };
        let replayed = match erasures {
            Some(records) => Some(db::replay_erasures(&tx, records).await?),
            None => None,
        };
        tx.commit().await.map_err(DbError::from)?;
        Ok(Loaded { rows: loaded, checksums, replayed })
    }

    /// Restores a chosen backup into a chosen database: created if missing,
    /// refused if not empty (unless `replace`); schema at the backup's version,
    /// the data, then the newer migrations.
    #[instrument(skip(self), fields(database = %request.database))]
    pub async fn restore(&self, request: &RestoreRequest) -> Result<RestoreReport, BackupError> {
        check_database_name(&request.database)?;
        let production_reason = self.production_target(request)?;
        let opened = self.open_choice(&request.backup).await?;
        let known = db::latest_known_version();
        if opened.manifest.schema_version > known {
            return Err(BackupError::NewerSchema { backup: opened.manifest.schema_version, known });
        }
        if request.verify_first {
            self.primary().verify_opened(&opened).await?;
        }
        // Every record proven before anything is written: a ledger that cannot
        // be read, or one tampered record, stops the restore here.
        let ledger = self.ledger().read_all().await?;
        // Reading is not writing: the object streams in while the target is prepared.
        let reading = self.primary().read(&opened).await?;
        let owner = self.owner.role().await?;
        ensure_database(&owner, &request.database).await?;
        let target_db = DbConfig { name: request.database.clone(), ..owner.db.clone() };
        let mut target = db::connect(&target_db, &owner.password).await?;
        db::unbounded_statements(&target).await?;
        if !db::public_tables(&target).await?.is_empty() {
            if !request.replace {
                return Err(BackupError::TargetNotEmpty(request.database.clone()));
            }
            warn!(database = %request.database, "replacing the target's public schema");
            clear(&target).await?;
        }
        let started = Instant::now();
        let m = &opened.manifest;
        db::migrate_to(&mut target, m.schema_version).await?;
        let in_load = m.schema_version >= db::ERASURES_SINCE;
        let loaded =
            self.load(&mut target, &opened, reading, in_load.then_some(&ledger[..]), false).await?;
        db::migrate(&mut target).await?;
        let replayed = match loaded.replayed {
            Some(replayed) => replayed,
            // A backup older than erasures themselves: replayed once the
            // schema has them, and if that fails the restored data goes.
            None => match db::replay_erasures(&target, &ledger).await {
                Ok(replayed) => replayed,
                Err(e) => {
                    clear(&target).await?;
                    return Err(e.into());
                }
            },
        };
        // The restored catalog says what is known now (at the newest schema).
        db::settle_restored_catalog(&target, &catalog_entry(m, &opened.manifest_key)).await?;
        // Backups taken after this one are in the bucket, not in its catalog.
        let catalogued = self.reconcile_catalog(&target).await?;
        // The bucket moved on since the snapshot (and a recovery copies it from
        // the replica): which renditions carry the public tag is unknown until
        // the next retention run settles them from this catalogue.
        db::forget_edge_visibility(&target).await?;
        let restore_ms = started.elapsed().as_millis() as u64;
        let migrated_to = db::schema_version(&target).await?;
        info!(backup_id = %m.backup_id, restore_ms, erasures = replayed.artists_present, "restore finished");
        Ok(RestoreReport {
            backup_id: m.backup_id,
            snapshot_at: m.snapshot_at.clone(),
            database: request.database.clone(),
            schema_version: m.schema_version,
            migrated_to,
            rows: loaded.rows,
            restore_ms,
            erasures_replayed: replayed.artists_present,
            ledger_records: replayed.records,
            backups_catalogued: catalogued,
            production_reason,
        })
    }

    /// Production as a restore target: only named twice, with a reason.
    fn production_target(&self, request: &RestoreRequest) -> Result<Option<String>, BackupError> {
        if request.database != self.owner.db.name {
            return Ok(None);
        }
        let named_twice = request.confirm_production.as_deref() == Some(request.database.as_str());
        match request.reason.as_deref().map(str::trim) {
            Some(reason) if named_twice && !reason.is_empty() => {
                warn!(database = %request.database, reason, "restoring into the gallery's own database");
                Ok(Some(reason.to_owned()))
            }
            _ => Err(BackupError::ProductionTarget(request.database.clone())),
        }
    }

    /// `gallery-ops database replay-erasures`: every erasure in the ledger
    /// applied to a database that may predate some (after a point-in-time or
    /// snapshot restore, a region recovery), in one transaction. Idempotent:
    /// a second run changes nothing. `database` defaults to the gallery's own.
    pub async fn replay_erasures(
        &self,
        database: Option<&str>,
    ) -> Result<ReplayReport, BackupError> {
        let name = database.unwrap_or(&self.owner.db.name).to_owned();
        check_database_name(&name)?;
        let records = self.ledger().read_all().await?;
        let owner = self.owner.role().await?;
        let mut target =
            db::connect(&DbConfig { name: name.clone(), ..owner.db.clone() }, &owner.password)
                .await?;
        let version = db::schema_version(&target).await?;
        if version < db::ERASURES_SINCE {
            return Err(BackupError::NotFound(format!(
                "the erasures table in {name:?} (schema v{version}): run `gallery-ops database migrate` first"
            )));
        }
        let tx = target.transaction().await.map_err(DbError::from)?;
        let replayed = db::replay_erasures(&tx, &records).await?;
        tx.commit().await.map_err(DbError::from)?;
        info!(database = %name, records = replayed.records, present = replayed.artists_present, "erasures replayed");
        Ok(ReplayReport { database: name, replayed })
    }

    /// Restores the newest recorded backup into a scratch database and proves
    /// it: row counts and checksums computed from the restored database equal
    /// what the backup recorded at snapshot time, and the catalog's record of
    /// the object matches the manifest. The outcome, with the restore time,
    /// is recorded and emitted as metrics; the scratch database always goes.
    #[instrument(skip_all, fields(drill_id))]
    pub async fn restore_drill(&self) -> Result<DrillReport, BackupError> {
        // Once a week, an older backup too (the schedule runs daily).
        let weekly = chrono::Datelike::weekday(&chrono::Utc::now()) == chrono::Weekday::Sun;
        self.restore_drill_with(weekly).await
    }

    /// The drill, and with `older` also the oldest backup the rotation keeps.
    pub async fn restore_drill_with(&self, older: bool) -> Result<DrillReport, BackupError> {
        let drill_id = Uuid::new_v4();
        tracing::Span::current().record("drill_id", tracing::field::display(drill_id));
        let client = self.pool.get().await.map_err(DbError::from)?;
        db::fail_interrupted(&**client, chrono::Utc::now() - self.run_deadline).await?;
        let latest = db::latest_succeeded_backup(&**client).await?;
        let oldest = match older {
            true => db::oldest_succeeded_backup(&**client).await?,
            false => None,
        };
        db::start_drill(&**client, drill_id, latest.as_ref().map(|b| b.id)).await?;
        drop(client);
        let mut result = match &latest {
            Some(record) => self.drill(drill_id, record).await,
            None => Err(BackupError::NotFound("a successful backup to drill".into())),
        };
        let mut copies = Copies { dr: self.check_dr_copy(chrono::Utc::now()).await, older: None };
        if let Some(record) = oldest.filter(|o| latest.as_ref().is_some_and(|l| l.id != o.id)) {
            copies.older = Some(self.drill(Uuid::new_v4(), &record).await.map_or_else(
                |e| CopyCheck::failed(Some(record.id), &e),
                |r| CopyCheck::verified(r.backup_id, record.started_at.to_rfc3339(), None),
            ));
        }
        let client = self.pool.get().await.map_err(DbError::from)?;
        let message = result.as_ref().err().map(ToString::to_string);
        let report = result.as_ref().ok();
        let outcome = db::DrillOutcome {
            row_counts: report.and_then(|r| serde_json::to_value(&r.rows).ok()),
            checksums: report.and_then(|r| serde_json::to_value(&r.checksums).ok()),
            restore_ms: report.map(|r| r.restore_ms as i64),
            error: message.as_deref(),
            copies: serde_json::to_value(&copies).ok(),
        };
        db::finish_drill(&**client, drill_id, &outcome).await?;
        match &result {
            Ok(report) => {
                info!(restore_ms = report.restore_ms, "restore drill succeeded");
                shared::telemetry::count("backup", "RestoreDrillSucceeded", 1.0);
                shared::telemetry::measure(
                    "backup",
                    "RestoreSeconds",
                    report.restore_ms as f64 / 1000.0,
                    "Seconds",
                );
            }
            Err(e) => {
                warn!(error = %e, "restore drill failed");
                shared::telemetry::count("backup", "RestoreDrillFailed", 1.0);
            }
        }
        copies.emit();
        if let Ok(report) = &mut result {
            report.copies = copies;
        }
        result
    }

    /// The newest DR copy, end to end through the DR Region: its manifest
    /// proven with the replica key, every chunk decrypted, every table's
    /// checksum against the manifest; refused when older than [`DR_COPY_MAX_AGE`].
    async fn check_dr_copy(&self, now: chrono::DateTime<chrono::Utc>) -> Option<CopyCheck> {
        let dr = self.dr.as_ref()?;
        let checked = async {
            let opened = dr.open_choice(&BackupChoice::Latest).await?;
            let m = &opened.manifest;
            let age = chrono::DateTime::parse_from_rfc3339(&m.snapshot_at)
                .map(|at| now - at.to_utc())
                .map_err(|e| BackupError::ManifestMalformed(format!("snapshot_at: {e}")))?;
            if age > DR_COPY_MAX_AGE {
                return Err(BackupError::NotFound(format!(
                    "a DR copy newer than {} h in {} (the newest, backup {}, is {} h old: replication is late or failing)",
                    DR_COPY_MAX_AGE.num_hours(),
                    dr.bucket,
                    m.backup_id,
                    age.num_hours()
                )));
            }
            dr.verify_opened(&opened).await?;
            Ok::<_, BackupError>(CopyCheck::verified(
                m.backup_id,
                m.snapshot_at.clone(),
                Some(age.num_minutes() as f64 / 60.0),
            ))
        }
        .await;
        Some(checked.unwrap_or_else(|e| {
            warn!(error = %e, bucket = %dr.bucket, "the DR copy is not proven");
            CopyCheck::failed(None, &e)
        }))
    }

    async fn drill(
        &self,
        drill_id: Uuid,
        record: &db::BackupRecord,
    ) -> Result<DrillReport, BackupError> {
        let owner = self.owner.role().await?;
        let maintenance = DbConfig { name: "postgres".into(), ..owner.db.clone() };
        let admin = db::connect(&maintenance, &owner.password).await?;
        let now = chrono::Utc::now();
        drop_leftover_scratch(&admin, now - self.run_deadline).await;
        // Named with its creation time, so another drill running beside this
        // one (an operator's, the weekly one) never takes it for a leftover.
        let scratch = format!("{DRILL_PREFIX}{}_{}", now.timestamp(), drill_id.simple());
        // The scratch copy holds the same personal data as production, on the
        // same encrypted instance; only the owner may connect to it.
        admin
            .batch_execute(&format!("CREATE DATABASE \"{scratch}\""))
            .await
            .map_err(DbError::from)?;
        admin
            .batch_execute(&format!("REVOKE ALL ON DATABASE \"{scratch}\" FROM PUBLIC"))
            .await
            .map_err(DbError::from)?;
        let outcome = self.drill_into(&owner, &scratch, record).await;
        if let Err(e) = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"))
            .await
        {
            warn!(error = %e, database = %scratch, "could not drop the scratch database; the next drill removes it");
        }
        outcome
    }

    async fn drill_into(
        &self,
        owner: &Role,
        scratch: &str,
        record: &db::BackupRecord,
    ) -> Result<DrillReport, BackupError> {
        let manifest_key = record.manifest_key.clone().ok_or_else(|| {
            BackupError::NotFound(format!("the manifest of backup {}", record.id))
        })?;
        let opened = self.open_manifest(&manifest_key).await?;
        let m = &opened.manifest;
        // What the catalog recorded when the backup finished must be what the bucket holds now.
        if m.backup_id != record.id
            || record.object_sha256.as_deref() != Some(m.object_sha256.as_str())
            || record.object_version != m.object_version
            || record.row_counts != serde_json::to_value(m.rows()).ok()
        {
            return Err(BackupError::ObjectMismatch(format!(
                "backup {} differs from what the catalog recorded",
                record.id
            )));
        }
        // Proven before the scratch database holds anything.
        let ledger = self.ledger().read_all().await?;
        let reading = self.primary().read(&opened).await?;
        let mut target = db::connect(
            &DbConfig { name: scratch.to_owned(), ..owner.db.clone() },
            &owner.password,
        )
        .await?;
        db::unbounded_statements(&target).await?;
        let started = Instant::now();
        db::migrate_to(&mut target, m.schema_version).await?;
        // The digests are read inside the load's transaction, before the
        // erasures are replayed in it: the snapshot is proven as taken, and
        // an artist erased since is never visible in the scratch database.
        let in_load = m.schema_version >= db::ERASURES_SINCE;
        let loaded =
            self.load(&mut target, &opened, reading, in_load.then_some(&ledger[..]), true).await?;
        let restore_ms = started.elapsed().as_millis() as u64;
        // The newer migrations apply to the restored data too.
        db::migrate(&mut target).await?;
        let replayed = match loaded.replayed {
            Some(replayed) => replayed,
            None => db::replay_erasures(&target, &ledger).await?,
        };
        Ok(DrillReport {
            backup_id: m.backup_id,
            rows: loaded.rows,
            restore_ms,
            checksums: loaded.checksums,
            erasures_replayed: replayed.artists_present,
            copies: Copies::default(),
        })
    }
}

/// One copy of the backups and the key that opens it: the primary bucket, or
/// the DR replica read through the DR Region's endpoints with the replica key.
#[derive(Clone, Debug)]
pub struct BackupCopy {
    pub store: ObjectStore,
    pub keys: Keys,
    pub bucket: String,
    pub key_id: String,
}

impl BackupCopy {
    /// The newest backup in the bucket, or the one with `id`, opened (its
    /// manifest proven): found by manifests, so this works with the catalog
    /// lost too. The newest is the greatest *authenticated* snapshot time:
    /// key names are not signed, so every manifest is opened, and one that
    /// does not prove itself is passed over with a warning, never chosen.
    pub async fn open_choice(&self, which: &BackupChoice) -> Result<Opened, BackupError> {
        let mut keys = self.store.list_keys(&self.bucket, "backups/").await?;
        keys.retain(|k| k.ends_with(".manifest.json"));
        match which {
            BackupChoice::Id(id) => {
                let suffix = format!("/{id}.manifest.json");
                let key = keys
                    .into_iter()
                    .find(|k| k.ends_with(&suffix))
                    .ok_or_else(|| BackupError::NotFound(format!("a manifest for backup {id}")))?;
                self.open_manifest(&key).await
            }
            BackupChoice::Latest => {
                let mut best: Option<Opened> = None;
                let mut refused = None;
                for key in &keys {
                    match self.open_manifest(key).await {
                        Ok(opened) => {
                            if best.as_ref().is_none_or(|b| {
                                opened.manifest.snapshot_at > b.manifest.snapshot_at
                            }) {
                                best = Some(opened);
                            }
                        }
                        Err(e)
                            if e.is_integrity_failure()
                                || matches!(e, BackupError::WrongKey { .. }) =>
                        {
                            warn!(%key, error = %e, "a manifest that does not prove itself is not a candidate for latest");
                            refused.get_or_insert(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                // None proves itself: the first refusal says why.
                best.ok_or_else(|| {
                    refused.unwrap_or_else(|| BackupError::NotFound("any backup manifest".into()))
                })
            }
        }
    }

    pub async fn read_manifest(&self, key: &str) -> Result<Manifest, BackupError> {
        let bytes = self.store.get(&self.bucket, key, 1 << 20).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| BackupError::ManifestMalformed(format!("{key}: {e}")))
    }

    /// Reads a manifest and proves it: the key is ours (or its replica), KMS
    /// unwraps the data key for this backup's context, the MAC holds.
    pub async fn open_manifest(&self, manifest_key: &str) -> Result<Opened, BackupError> {
        let manifest = self.read_manifest(manifest_key).await?;
        let configured = self.keys.arn_of(&self.key_id).await?;
        if key_identity(&manifest.kms_key_arn) != key_identity(&configured) {
            return Err(BackupError::WrongKey {
                backup: manifest.backup_id,
                sealed_with: manifest.kms_key_arn.clone(),
                configured,
            });
        }
        let wrapped = manifest.wrapped_key_bytes().ok_or_else(|| {
            BackupError::ManifestMalformed("the wrapped key is not base64".into())
        })?;
        let key =
            self.keys.unwrap(&wrapped, &key_context(manifest.backup_id), Some(&configured)).await?;
        if !manifest.verify(&key) {
            return Err(BackupError::ManifestForged(manifest.backup_id));
        }
        Ok(Opened { manifest, manifest_key: manifest_key.to_owned(), key })
    }

    /// Streams the object of an opened manifest; the caller takes the records.
    /// The version the manifest signed, not whatever the key holds now: a
    /// later write to the key cannot make a good backup unrestorable.
    /// (Replication keeps version ids, so the DR copy has the same one.)
    pub async fn read(&self, opened: &Opened) -> Result<Reading, BackupError> {
        let m = &opened.manifest;
        let version = m.object_version.as_deref();
        let head = self
            .store
            .head_version(&self.bucket, &m.object_key, version)
            .await?
            .ok_or_else(|| match version {
                Some(v) => BackupError::NotFound(format!(
                    "{} version {v} (the one its manifest signed; a copy made into another bucket has new version ids)",
                    m.object_key
                )),
                None => BackupError::NotFound(m.object_key.clone()),
            })?;
        let body = futures_util::TryStreamExt::map_err(
            self.store.get_ranges(&self.bucket, &m.object_key, &head, READ_RANGES),
            BackupError::from,
        );
        let expected = Expected {
            backup_id: m.backup_id,
            object_bytes: m.object_bytes,
            actual_bytes: head.size,
        };
        Ok(Reading::start(Box::pin(body), &opened.key, Some(expected)))
    }

    pub async fn verify_opened(&self, opened: &Opened) -> Result<VerifyReport, BackupError> {
        let mut reading = self.read(opened).await?;
        let mut tables = Vec::new();
        while let Some(record) = reading.records.recv().await {
            if let Record::End(summary) = record {
                tables.push(summary);
            }
        }
        let totals = reading.finish().await?;
        check_totals(opened, &totals, &tables)?;
        let m = &opened.manifest;
        info!(backup_id = %m.backup_id, bytes = m.object_bytes, "backup verified");
        Ok(VerifyReport {
            backup_id: m.backup_id,
            snapshot_at: m.snapshot_at.clone(),
            schema_version: m.schema_version,
            object_bytes: m.object_bytes,
            chunks: m.chunks,
            tables: tables
                .into_iter()
                .map(|t| (t.name, TableReport { rows: t.rows, sha256: t.sha256 }))
                .collect(),
        })
    }
}

/// The stream ended: it must be exactly the object the manifest describes.
fn check_totals(
    opened: &Opened,
    totals: &ReadTotals,
    tables: &[TableSummary],
) -> Result<(), BackupError> {
    let m = &opened.manifest;
    if totals.object_sha256 != m.object_sha256
        || totals.chunks != m.chunks
        || totals.object_bytes != m.object_bytes
    {
        return Err(BackupError::ObjectMismatch(format!(
            "read {} bytes in {} chunks with sha256 {}, the manifest records {} bytes, {} chunks, {}",
            totals.object_bytes, totals.chunks, totals.object_sha256, m.object_bytes, m.chunks, m.object_sha256
        )));
    }
    if tables != m.tables.as_slice() {
        return Err(BackupError::ObjectMismatch("its tables differ from the manifest's".into()));
    }
    Ok(())
}

/// Every table's row count and digest, read back exactly as the backup read
/// production (at the backup's schema version), against the manifest.
async fn check_digests(
    tx: &tokio_postgres::Transaction<'_>,
    m: &Manifest,
) -> Result<BTreeMap<String, String>, BackupError> {
    db::stable_output(tx).await?;
    let mut checksums = BTreeMap::new();
    for table in &m.tables {
        let (name, order) = db::backup_table(&table.name).ok_or_else(|| {
            BackupError::ObjectMismatch(format!("unknown table {:?}", table.name))
        })?;
        let (found_rows, sha256) = db::table_digest(tx, name, &table.columns, order).await?;
        if found_rows != table.rows || sha256 != table.sha256 {
            return Err(BackupError::Mismatch(format!(
                "{name}: the snapshot had {} rows ({}), the restored database has {found_rows} ({sha256})",
                table.rows, table.sha256
            )));
        }
        checksums.insert(name.to_owned(), sha256);
    }
    Ok(checksums)
}

/// Drops everything a restore wrote (the target's public schema).
async fn clear(target: &tokio_postgres::Client) -> Result<(), BackupError> {
    target
        .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .await
        .map_err(DbError::from)?;
    Ok(())
}

/// Creates the target database if it does not exist.
async fn ensure_database(owner: &Role, name: &str) -> Result<(), BackupError> {
    let maintenance = DbConfig { name: "postgres".into(), ..owner.db.clone() };
    let admin = db::connect(&maintenance, &owner.password).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(DbError::from)?
        .is_some();
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.map_err(DbError::from)?;
    }
    Ok(())
}

/// Scratch databases of drills that were killed: they hold personal data.
/// Only those created before `before` (longer ago than any drill runs), so a
/// drill running beside this one keeps its database; without FORCE, in case
/// one still has a session.
async fn drop_leftover_scratch(
    admin: &tokio_postgres::Client,
    before: chrono::DateTime<chrono::Utc>,
) {
    let Ok(rows) = admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'gallery\\_drill\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        if !is_leftover(&name, before) {
            continue;
        }
        match admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\"")).await {
            Ok(()) => {
                warn!(database = %name, "dropped the scratch database of an interrupted drill")
            }
            Err(e) => {
                warn!(error = %e, database = %name, "could not drop a leftover scratch database")
            }
        }
    }
}

/// Whether a scratch database was created before `before`: its name carries
/// its creation time (`gallery_drill_<unix seconds>_<id>`); one without (an
/// earlier release's) is a leftover.
fn is_leftover(name: &str, before: chrono::DateTime<chrono::Utc>) -> bool {
    let created = name
        .strip_prefix(DRILL_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(secs, _)| secs.parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    created.is_none_or(|at| at < before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scratch_databases_older_than_any_drill_are_leftovers() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let before = now - chrono::Duration::minutes(20);
        let name = |at: chrono::DateTime<chrono::Utc>| {
            format!("{DRILL_PREFIX}{}_{}", at.timestamp(), Uuid::nil().simple())
        };
        assert!(name(now).len() <= 63, "a PostgreSQL identifier");
        assert!(!is_leftover(&name(now), before), "a drill running beside this one");
        assert!(is_leftover(&name(now - chrono::Duration::hours(1)), before));
        assert!(is_leftover(&format!("{DRILL_PREFIX}{}", Uuid::nil().simple()), before));
    }
}
