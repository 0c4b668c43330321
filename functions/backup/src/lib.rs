//! Scheduled events → the backup engine (`engine`): the daily backup, the
//! restore drill, and (invoked by a deployment) migrations; operator
//! invocations → the backup tasks (migrate, run now, drill now, history,
//! verify, restore) through `shared::runner`.

pub mod engine;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use deadpool_postgres::{Pool, Transaction};
pub use engine::*;
use restore::RestoreRequest;
use serde::{Deserialize, Serialize};
use shared::aws::keys::Keys;
use shared::aws::storage::{Lock, ObjectStore};
use shared::aws::LazyPassword;
use shared::config::{Common, DbConfig, Env, FromEnv, FunctionLogins, OperatorConfig, RoleConfig};
use shared::db;
use shared::operator::{Invocation, OperatorRequest, OperatorResponse, OperatorTask, TaskOwner};
use shared::runner::{
    Done, InvocationError, OperatorTasks, OpsError, TaskContext, Verifier, WorkError,
};

#[derive(Clone, Debug)]
pub struct BackupConfig {
    pub common: Common,
    /// The schema owner: migrations, restores, drills.
    pub owner: RoleConfig,
    /// The read-only role the daily snapshot is taken with.
    pub snapshot: RoleConfig,
    /// The other functions' logins, which migrating gives their passwords.
    pub function_logins: FunctionLogins,
    pub operator: OperatorConfig,
    /// The multi-Region backups key (its replica in the recovery region).
    pub backup_key_id: String,
    /// How long each backup object and manifest is locked (S3 Object Lock,
    /// COMPLIANCE): the rotation's shortest keep, so no backup goes early.
    pub backup_lock: chrono::Duration,
    /// The DR replica the drill proves every day.
    pub dr: DrCopyConfig,
}

/// The backups' DR replica, as the drill reads it: the DR Region's S3 and
/// KMS (through cross-Region interface endpoints from the private subnets)
/// and the backups key's replica there.
#[derive(Clone, Debug)]
pub struct DrCopyConfig {
    pub region: String,
    pub bucket: String,
    pub s3_endpoint: Option<String>,
    pub kms_endpoint: Option<String>,
    pub key_id: String,
}

impl DrCopyConfig {
    fn read(env: &mut Env) -> Self {
        Self {
            region: env.required("GALLERY_DR_REGION"),
            bucket: env.required("GALLERY_BACKUPS_REPLICA_BUCKET"),
            s3_endpoint: env.optional("GALLERY_DR_S3_ENDPOINT"),
            kms_endpoint: env.optional("GALLERY_DR_KMS_ENDPOINT"),
            key_id: env.required("GALLERY_BACKUP_REPLICA_KMS_KEY_ID"),
        }
    }
}

impl FromEnv for BackupConfig {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let owner = RoleConfig::owner(env);
        let snapshot = RoleConfig::backup(env);
        let function_logins = FunctionLogins::read(env);
        let operator = OperatorConfig::read(env);
        let backup_key_id = env.required("GALLERY_BACKUP_KMS_KEY_ID");
        let lock_days: i64 = env.parse_or("GALLERY_BACKUP_LOCK_DAYS", 7);
        if lock_days < 1 {
            env.problem(format!("GALLERY_BACKUP_LOCK_DAYS must be at least 1 (got {lock_days})"));
        }
        let backup_lock = chrono::Duration::days(lock_days);
        let dr = DrCopyConfig::read(env);
        Self { common, owner, snapshot, function_logins, operator, backup_key_id, backup_lock, dr }
    }
}

/// What the function's invocations use, built once at cold start.
pub struct BackupDeps {
    pub service: BackupService,
    pub verifier: Verifier,
}

/// Only the function's own role's password is read at cold start (the pool);
/// the snapshot role's and the owner's are read when a task needs them, so
/// a new deployment starts (and migrates) before the backup role's secret
/// holds a value.
pub async fn deps(config: &BackupConfig) -> anyhow::Result<BackupDeps> {
    let (clients, pool) = shared::connect::connect(&config.common).await?;
    let service = service_with(config, pool, &clients);
    Ok(BackupDeps { service, verifier: Verifier::new(&config.operator, &config.common.aws) })
}

pub fn service_with(
    config: &BackupConfig,
    pool: deadpool_postgres::Pool,
    clients: &shared::aws::Clients,
) -> BackupService {
    let login = |user: &str, password: &shared::config::PasswordSource| Login {
        db: DbConfig { user: user.to_owned(), ..config.common.db.clone() },
        password: LazyPassword::new(clients.clone(), password.clone()),
    };
    BackupService {
        pool,
        snapshot: login(&config.snapshot.user, &config.snapshot.password),
        owner: login(&config.owner.user, &config.owner.password),
        logins: [
            login(&config.common.db.user, &config.common.db.password),
            login(&config.snapshot.user, &config.snapshot.password),
        ]
        .into_iter()
        .chain(config.function_logins.all().map(|r| login(&r.user, &r.password)))
        .collect(),
        // Every object and manifest locked, and only ever written under a new key.
        store: ObjectStore::new(clients, &config.backup_key_id)
            .locking(Lock { retain: config.backup_lock, new_keys_only: true }),
        keys: Keys::new(clients.kms.clone()),
        bucket: config.common.storage.backups_bucket.clone(),
        backup_key_id: config.backup_key_id.clone(),
        dr: Some(restore::BackupCopy {
            store: ObjectStore::new(clients, &config.dr.key_id).with_s3(clients.s3_in(
                &config.common.aws,
                &config.dr.region,
                config.dr.s3_endpoint.as_deref(),
            )),
            keys: Keys::new(clients.kms_in(
                &config.common.aws,
                &config.dr.region,
                config.dr.kms_endpoint.as_deref(),
            )),
            bucket: config.dr.bucket.clone(),
            key_id: config.dr.key_id.clone(),
        }),
        run_deadline: BackupService::default_run_deadline(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduledTask {
    Backup,
    RestoreDrill,
    Migrate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detail {
    pub task: ScheduledTask,
}

impl WorkError for BackupError {
    const WORK: &'static str = "Backup";
    fn is_retryable(&self) -> bool {
        BackupError::is_retryable(self)
    }
}

/// An invocation: the schedule's, or an operator's.
pub async fn handle(
    event: serde_json::Value,
    invocation: &Invocation<'_>,
    deps: &BackupDeps,
) -> Result<serde_json::Value, InvocationError<BackupError>> {
    shared::runner::dispatch(event, invocation, deps, |event| async move {
        let event: EventBridgeEvent<Detail> = serde_json::from_value(event)?;
        scheduled(event.detail.task, &deps.service).await.map_err(InvocationError::Work)
    })
    .await
}

/// Runs the task the schedule names. A drill that finds a bad backup has done
/// its job (recorded, alarmed) and succeeds; anything transient fails the
/// invocation so Lambda retries it.
pub async fn scheduled(
    task: ScheduledTask,
    service: &BackupService,
) -> Result<serde_json::Value, BackupError> {
    match task {
        ScheduledTask::Backup => {
            let m = service.backup().await?;
            Ok(serde_json::json!({
                "backup_id": m.backup_id,
                "key": m.object_key,
                "bytes": m.object_bytes,
                "chunks": m.chunks,
                "snapshot_at": m.snapshot_at,
                "rows": m.rows(),
            }))
        }
        ScheduledTask::RestoreDrill => drilled(service.restore_drill().await),
        ScheduledTask::Migrate => Ok(
            serde_json::json!({ "applied": service.migrate().await?, "logins": service.logins.iter().map(|l| &l.db.user).collect::<Vec<_>>() }),
        ),
    }
}

/// A drill's outcome: a failed drill is a result (recorded, alarmed), not an
/// error, unless it may pass when retried.
fn drilled(
    outcome: Result<engine::restore::DrillReport, BackupError>,
) -> Result<serde_json::Value, BackupError> {
    match outcome {
        Ok(report) => Ok(serde_json::json!({
            "backup_id": report.backup_id,
            "restored": report.rows,
            "restore_ms": report.restore_ms,
            "checksums": report.checksums,
            "erasures_replayed": report.erasures_replayed,
            "copies": report.copies,
        })),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => Ok(serde_json::json!({ "drill_failed": e.to_string() })),
    }
}

/// A backup failure as an operator sees it: transient ones may be retried,
/// the rest are refusals with their reason.
fn task_error(e: BackupError) -> OpsError {
    if e.is_retryable() {
        OpsError::Task(e.to_string())
    } else {
        OpsError::Refused(e.to_string())
    }
}

/// An operator's task, once the caller is proven (`shared::runner`).
pub async fn operate(
    request: &OperatorRequest,
    invocation: &Invocation<'_>,
    deps: &BackupDeps,
) -> Result<OperatorResponse, OpsError> {
    shared::runner::operate(deps, request, invocation).await
}

#[async_trait]
impl OperatorTasks for BackupDeps {
    const FUNCTION: TaskOwner = TaskOwner::Backup;

    fn pool(&self) -> &Pool {
        &self.service.pool
    }

    fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Backups, drills and restores run for minutes: never inside a transaction.
    fn transactional(&self, _: &OperatorTask) -> bool {
        false
    }

    async fn run(
        &self,
        task: &OperatorTask,
        _: &TaskContext<'_>,
        _: Option<&Transaction<'_>>,
    ) -> Result<Done, OpsError> {
        let service = &self.service;
        let ran =
            |result: serde_json::Value| Done::new(result.clone(), "backups").with_detail(result);
        Ok(match task {
            OperatorTask::MigrateDatabase => {
                ran(scheduled(ScheduledTask::Migrate, service).await.map_err(task_error)?)
            }
            OperatorTask::RunBackup => {
                ran(scheduled(ScheduledTask::Backup, service).await.map_err(task_error)?)
            }
            OperatorTask::RunRestoreDrill => {
                ran(scheduled(ScheduledTask::RestoreDrill, service).await.map_err(task_error)?)
            }
            OperatorTask::RunOlderBackupDrill => {
                ran(drilled(service.restore_drill_with(true).await).map_err(task_error)?)
            }
            OperatorTask::BackupHistory { limit } => {
                let result = history(service, i64::from(*limit)).await?;
                let listed =
                    serde_json::json!({ "listed": result["backups"].as_array().map(Vec::len) });
                Done::new(result, "backups").with_detail(listed)
            }
            OperatorTask::VerifyBackup { backup } => {
                ran(OpsError::json(service.verify(backup).await.map_err(task_error)?)?)
            }
            OperatorTask::RestoreBackup {
                backup,
                database,
                verify_first,
                replace,
                confirm_production,
                reason,
            } => {
                let request = RestoreRequest {
                    backup: backup.clone(),
                    database: database.clone(),
                    verify_first: *verify_first,
                    replace: *replace,
                    confirm_production: confirm_production.clone(),
                    reason: reason.clone(),
                };
                ran(OpsError::json(service.restore(&request).await.map_err(task_error)?)?)
            }
            OperatorTask::ReplayErasures { database } => ran(OpsError::json(
                service.replay_erasures(database.as_deref()).await.map_err(task_error)?,
            )?),
            other => return Err(OpsError::WrongFunction(other.action())),
        })
    }
}

async fn history(service: &BackupService, limit: i64) -> Result<serde_json::Value, OpsError> {
    let client = service.pool.get().await.map_err(db::DbError::from)?;
    let backups = db::recent_backups(&**client, limit).await?;
    let drills = db::recent_drills(&**client, limit).await?;
    Ok(serde_json::json!({ "backups": backups, "drills": drills }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scheduled_samples() {
        let backup: EventBridgeEvent<Detail> =
            serde_json::from_str(include_str!("../../../events/scheduled-backup.json")).unwrap();
        assert_eq!(backup.detail.task, ScheduledTask::Backup);
        let drill: EventBridgeEvent<Detail> =
            serde_json::from_str(include_str!("../../../events/scheduled-restore-drill.json"))
                .unwrap();
        assert_eq!(drill.detail.task, ScheduledTask::RestoreDrill);
        let other = r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.scheduler","account":"1","time":"2026-01-01T00:00:00Z","region":"eu-west-1","resources":[],"detail":{"task":"drop-everything"}}"#;
        assert!(
            serde_json::from_str::<EventBridgeEvent<Detail>>(other).is_err(),
            "unknown tasks are refused"
        );
    }
}
