//! Scheduled events → `shared::backup`: the daily backup, the restore drill,
//! and (invoked by a deployment) migrations; operator invocations → the
//! backup tasks of `shared::ops` (migrate, run now, drill now, history,
//! verify, restore).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use shared::aws::LazyPassword;
use shared::backup::restore::RestoreRequest;
use shared::backup::{BackupError, BackupService, Login};
use shared::config::{Common, DbConfig, Env, FromEnv, OperatorConfig, RoleConfig};
use shared::db::{self, AuditEntry};
use shared::keys::Keys;
use shared::ops::{Invocation, OperatorRequest, OperatorResponse, OpsError, Owner, Task as OpsTask, Verifier};
use shared::storage::ObjectStore;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// The schema owner: migrations, restores, drills.
    pub owner: RoleConfig,
    /// The read-only role the daily snapshot is taken with.
    pub snapshot: RoleConfig,
    pub operator: OperatorConfig,
    /// The multi-Region backups key (its replica in the recovery region).
    pub backup_key_id: String,
}

impl FromEnv for Config {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let owner = RoleConfig::owner(env);
        let snapshot = RoleConfig::backup(env);
        let operator = OperatorConfig::read(env);
        let backup_key_id = env.required("GALLERY_BACKUP_KMS_KEY_ID");
        Self { common, owner, snapshot, operator, backup_key_id }
    }
}

/// What the function's invocations use, built once at cold start.
pub struct Deps {
    pub service: BackupService,
    pub verifier: Verifier,
}

/// Only the application role's password is read at cold start (the pool);
/// the snapshot role's and the owner's are read when a task needs them, so
/// a new deployment starts (and migrates) before the backup role's secret
/// holds a value.
pub async fn deps(config: &Config) -> anyhow::Result<Deps> {
    let (clients, pool) = shared::aws::connect(&config.common).await?;
    let service = service_with(config, pool, &clients);
    Ok(Deps { service, verifier: config.operator.verifier(&config.common.aws) })
}

pub fn service_with(config: &Config, pool: deadpool_postgres::Pool, clients: &shared::aws::Clients) -> BackupService {
    let login = |user: &str, password: &shared::config::PasswordSource| Login {
        db: DbConfig { user: user.to_owned(), ..config.common.db.clone() },
        password: LazyPassword::new(clients.clone(), password.clone()),
    };
    BackupService {
        pool,
        snapshot: login(&config.snapshot.user, &config.snapshot.password),
        owner: login(&config.owner.user, &config.owner.password),
        logins: vec![login(&config.common.db.user, &config.common.db.password), login(&config.snapshot.user, &config.snapshot.password)],
        store: ObjectStore::new(clients, &config.backup_key_id),
        keys: Keys::new(clients.kms.clone()),
        bucket: config.common.storage.backups_bucket.clone(),
        backup_key_id: config.backup_key_id.clone(),
        run_deadline: BackupService::default_run_deadline(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Backup,
    RestoreDrill,
    Migrate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detail {
    pub task: Task,
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("not a scheduled task or an operator task: {0}")]
    Event(#[from] serde_json::Error),
}

/// An invocation: the schedule's, or an operator's.
pub async fn handle(event: serde_json::Value, invocation: &Invocation<'_>, deps: &Deps) -> Result<serde_json::Value, Error> {
    if OperatorRequest::is_operator_event(&event) {
        let request: OperatorRequest = serde_json::from_value(event).map_err(|e| OpsError::Invalid(e.to_string()))?;
        return Ok(serde_json::to_value(operate(&request, invocation, deps).await?)?);
    }
    let event: EventBridgeEvent<Detail> = serde_json::from_value(event)?;
    Ok(scheduled(event.detail.task, &deps.service).await?)
}

/// Runs the task the schedule names. A drill that finds a bad backup has done
/// its job (recorded, alarmed) and succeeds; anything transient fails the
/// invocation so Lambda retries it.
pub async fn scheduled(task: Task, service: &BackupService) -> Result<serde_json::Value, BackupError> {
    match task {
        Task::Backup => {
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
        Task::RestoreDrill => match service.restore_drill().await {
            Ok(report) => Ok(serde_json::json!({
                "backup_id": report.backup_id,
                "restored": report.rows,
                "restore_ms": report.restore_ms,
                "checksums": report.checksums,
            })),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => Ok(serde_json::json!({ "drill_failed": e.to_string() })),
        },
        Task::Migrate => Ok(
            serde_json::json!({ "applied": service.migrate().await?, "logins": service.logins.iter().map(|l| &l.db.user).collect::<Vec<_>>() }),
        ),
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

fn json(value: impl Serialize) -> Result<serde_json::Value, OpsError> {
    serde_json::to_value(value).map_err(|e| OpsError::Task(e.to_string()))
}

/// An operator's task, once the caller is proven. The audit entry names the
/// caller's IAM identity; a task that fails is audited with its error.
pub async fn operate(request: &OperatorRequest, invocation: &Invocation<'_>, deps: &Deps) -> Result<OperatorResponse, OpsError> {
    let caller = deps.verifier.authorize(request, Owner::Backup, invocation, &deps.service.pool).await?;
    let request_id = invocation.request_id;
    let task = &request.operator_task;
    let service = &deps.service;
    let outcome = match task {
        OpsTask::MigrateDatabase => scheduled(Task::Migrate, service).await.map_err(task_error),
        OpsTask::RunBackup => scheduled(Task::Backup, service).await.map_err(task_error),
        OpsTask::RunRestoreDrill => scheduled(Task::RestoreDrill, service).await.map_err(task_error),
        OpsTask::BackupHistory { limit } => history(service, i64::from(*limit)).await,
        OpsTask::VerifyBackup { backup } => service.verify(backup).await.map_err(task_error).and_then(json),
        OpsTask::RestoreBackup { backup, database, verify_first, replace } => {
            let request =
                RestoreRequest { backup: backup.clone(), database: database.clone(), verify_first: *verify_first, replace: *replace };
            service.restore(&request).await.map_err(task_error).and_then(json)
        }
        other => Err(OpsError::WrongFunction(other.action())),
    };
    let detail = match &outcome {
        Ok(result) if matches!(task, OpsTask::BackupHistory { .. }) => {
            serde_json::json!({ "listed": result["backups"].as_array().map(Vec::len) })
        }
        Ok(result) => result.clone(),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    let client = service.pool.get().await.map_err(db::DbError::from)?;
    let actor = caller.actor();
    let entry = AuditEntry { actor: &actor, action: task.action(), target: "backups", request_id: Some(request_id), detail };
    db::append_audit(&client, &entry).await?;
    Ok(OperatorResponse { action: task.action().to_owned(), caller: caller.arn, result: outcome? })
}

async fn history(service: &BackupService, limit: i64) -> Result<serde_json::Value, OpsError> {
    let client = service.pool.get().await.map_err(db::DbError::from)?;
    let backups = db::recent_backups(&**client, limit).await?;
    let drills = db::recent_drills(&**client, limit).await?;
    Ok(serde_json::json!({ "backups": backups, "drills": drills }))
}

/// How Lambda reports a failed invocation: the error type says whether a
/// retry can help, which is what an operator reading the dead-letter queue needs.
pub fn diagnostic(e: Error) -> lambda_runtime::Diagnostic {
    let error_type = match &e {
        Error::Backup(b) if b.is_retryable() => "RetryableBackupError".to_owned(),
        Error::Backup(_) => "PermanentBackupError".to_owned(),
        Error::Ops(o) => o.error_type().to_owned(),
        Error::Event(_) => "InvalidEvent".to_owned(),
    };
    lambda_runtime::Diagnostic { error_type, error_message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scheduled_samples() {
        let backup: EventBridgeEvent<Detail> = serde_json::from_str(include_str!("../../../events/scheduled-backup.json")).unwrap();
        assert_eq!(backup.detail.task, Task::Backup);
        let drill: EventBridgeEvent<Detail> = serde_json::from_str(include_str!("../../../events/scheduled-restore-drill.json")).unwrap();
        assert_eq!(drill.detail.task, Task::RestoreDrill);
        let other = r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.scheduler","account":"1","time":"2026-01-01T00:00:00Z","region":"eu-west-1","resources":[],"detail":{"task":"drop-everything"}}"#;
        assert!(serde_json::from_str::<EventBridgeEvent<Detail>>(other).is_err(), "unknown tasks are refused");
    }
}
