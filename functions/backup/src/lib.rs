//! Scheduled events → `shared::backup`: the daily backup, the restore drill,
//! and (invoked by a deployment) migrations.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use shared::backup::{Admin, BackupError, BackupService};
use shared::config::{Common, ConfigError, DbConfig, Env, OwnerConfig};
use shared::keys::Keys;
use shared::storage::ObjectStore;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    pub owner: OwnerConfig,
    pub backup_key_id: String,
    pub max_archive_bytes: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Env::from_process())
    }

    pub fn read(mut env: Env) -> Result<Self, ConfigError> {
        let common = Common::read(&mut env);
        let owner = OwnerConfig::read(&mut env);
        let backup_key_id = env.required("GALLERY_BACKUP_KMS_KEY_ID");
        let max_archive_bytes = env.parse_or("GALLERY_BACKUP_MAX_BYTES", 4 * 1024 * 1024 * 1024u64);
        env.finish(Self { common, owner, backup_key_id, max_archive_bytes })
    }
}

pub async fn service(config: &Config) -> anyhow::Result<BackupService> {
    let (clients, pool) = shared::aws::connect(&config.common).await?;
    let owner_password = clients.database_password(&config.owner.password).await?;
    Ok(service_with(config, pool, owner_password, &clients))
}

pub fn service_with(
    config: &Config,
    pool: deadpool_postgres::Pool,
    owner_password: secrecy::SecretString,
    clients: &shared::aws::Clients,
) -> BackupService {
    BackupService {
        pool,
        store: ObjectStore::new(clients, &config.backup_key_id),
        keys: Keys::new(clients.kms.clone()),
        bucket: config.common.storage.backups_bucket.clone(),
        backup_key_id: config.backup_key_id.clone(),
        admin: Admin { db: DbConfig { user: config.owner.user.clone(), ..config.common.db.clone() }, password: owner_password },
        max_archive_bytes: config.max_archive_bytes,
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

/// Runs the task the schedule names. A drill that finds a bad backup has done
/// its job (recorded, alarmed) and succeeds; anything transient fails the
/// invocation so Lambda retries it.
pub async fn handle(event: EventBridgeEvent<Detail>, service: &BackupService) -> Result<serde_json::Value, BackupError> {
    match event.detail.task {
        Task::Backup => {
            let summary = service.backup().await?;
            Ok(
                serde_json::json!({ "backup_id": summary.id, "key": summary.object_key, "bytes": summary.bytes, "rows": summary.row_counts }),
            )
        }
        Task::RestoreDrill => match service.restore_drill().await {
            Ok(counts) => Ok(serde_json::json!({ "restored": counts })),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => Ok(serde_json::json!({ "drill_failed": e.to_string() })),
        },
        Task::Migrate => Ok(serde_json::json!({ "applied": service.migrate().await? })),
    }
}

/// How Lambda reports a failed invocation: the error type says whether a
/// retry can help, which is what an operator reading the dead-letter queue needs.
pub fn diagnostic(e: BackupError) -> lambda_runtime::Diagnostic {
    let class = if e.is_retryable() { "Retryable" } else { "Permanent" };
    lambda_runtime::Diagnostic { error_type: format!("{class}BackupError"), error_message: e.to_string() }
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
