//! The daily schedule → `shared::retention`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Duration;
use shared::config::{Common, ConfigError, Env};
use shared::retention::{Policy, Report, Retention, RetentionError};
use shared::storage::ObjectStore;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    pub policy: Policy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Env::from_process())
    }

    pub fn read(mut env: Env) -> Result<Self, ConfigError> {
        let common = Common::read(&mut env);
        let d = Policy::default();
        let mut days = |name: &str, default: Duration| Duration::days(env.parse_or(name, default.num_days()));
        let policy = Policy {
            deleted_artwork_grace: days("RETENTION_DELETED_ARTWORK_DAYS", d.deleted_artwork_grace),
            failed_image_age: days("RETENTION_FAILED_IMAGE_DAYS", d.failed_image_age),
            abandoned_upload_age: days("RETENTION_ABANDONED_UPLOAD_DAYS", d.abandoned_upload_age),
            dead_token_age: days("RETENTION_DEAD_TOKEN_DAYS", d.dead_token_age),
            backup_age: days("RETENTION_BACKUP_DAYS", d.backup_age),
            keep_backups: env.parse_or("RETENTION_KEEP_BACKUPS", d.keep_backups),
        };
        if policy.keep_backups == 0 {
            env.problem("RETENTION_KEEP_BACKUPS must be at least 1: the newest good backup is never deleted");
        }
        env.finish(Self { common, policy })
    }
}

pub async fn retention(config: &Config) -> anyhow::Result<Retention> {
    let (clients, pool) = shared::aws::connect(&config.common).await?;
    Ok(retention_with(config, pool, &clients))
}

pub fn retention_with(config: &Config, pool: deadpool_postgres::Pool, clients: &shared::aws::Clients) -> Retention {
    Retention {
        pool,
        store: ObjectStore::new(clients, &config.common.storage.data_key_id),
        originals_bucket: config.common.storage.originals_bucket.clone(),
        processed_bucket: config.common.storage.processed_bucket.clone(),
        backups_bucket: config.common.storage.backups_bucket.clone(),
        policy: config.policy.clone(),
        batch: 500,
    }
}

pub async fn handle(event: EventBridgeEvent<serde_json::Value>, retention: &Retention) -> Result<Report, RetentionError> {
    // The scheduled time, not the clock: a retried event applies the same cut-offs.
    let now = event.time.unwrap_or_else(chrono::Utc::now);
    retention.run(now, event.id.as_deref()).await
}

/// How Lambda reports a failed invocation: the error type says whether a
/// retry can help, which is what an operator reading the dead-letter queue needs.
pub fn diagnostic(e: RetentionError) -> lambda_runtime::Diagnostic {
    let class = if e.is_retryable() { "Retryable" } else { "Permanent" };
    lambda_runtime::Diagnostic { error_type: format!("{class}RetentionError"), error_message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scheduled_sample() {
        let event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(include_str!("../../../events/scheduled-retention.json")).unwrap();
        assert_eq!(event.detail["task"], "retention");
        assert_eq!(event.time.unwrap().to_rfc3339(), "2026-11-24T03:00:00+00:00");
    }
}
