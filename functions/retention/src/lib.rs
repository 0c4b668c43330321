//! The daily schedule → `shared::retention`; operator invocations → a dry
//! run of the same sweep (`gallery-ops retention preview`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Duration;
use shared::config::{Common, Env, FromEnv, OperatorConfig};
use shared::db::{self, AuditEntry};
use shared::ops::{OperatorRequest, OperatorResponse, OpsError, Owner, Task, Verifier};
use shared::retention::{Policy, Retention, RetentionError};
use shared::storage::ObjectStore;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    pub policy: Policy,
    pub operator: OperatorConfig,
}

impl FromEnv for Config {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let operator = OperatorConfig::read(env);
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
        Self { common, policy, operator }
    }
}

/// What the function's invocations use, built once at cold start.
pub struct Deps {
    pub retention: Retention,
    pub verifier: Verifier,
}

pub async fn deps(config: &Config) -> anyhow::Result<Deps> {
    let (clients, pool) = shared::aws::connect(&config.common).await?;
    Ok(Deps { retention: retention_with(config, pool, &clients), verifier: config.operator.verifier(&config.common.aws) })
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

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("not a scheduled sweep or an operator task: {0}")]
    Event(#[from] serde_json::Error),
}

/// An invocation: the schedule's sweep, or an operator's preview.
pub async fn handle(event: serde_json::Value, request_id: &str, deps: &Deps) -> Result<serde_json::Value, Error> {
    if OperatorRequest::is_operator_event(&event) {
        let request: OperatorRequest = serde_json::from_value(event).map_err(|e| OpsError::Invalid(e.to_string()))?;
        return Ok(serde_json::to_value(operate(&request, request_id, deps).await?)?);
    }
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event)?;
    // The scheduled time, not the clock: a retried event applies the same cut-offs.
    let now = event.time.unwrap_or_else(chrono::Utc::now);
    let report = deps.retention.run(now, event.id.as_deref().or(Some(request_id))).await?;
    Ok(serde_json::to_value(report)?)
}

/// A dry run for a proven operator: counts and sample keys, nothing deleted.
pub async fn operate(request: &OperatorRequest, request_id: &str, deps: &Deps) -> Result<OperatorResponse, OpsError> {
    let caller = deps.verifier.authorize(request, Owner::Retention).await?;
    let task = &request.operator_task;
    if !matches!(task, Task::PreviewRetention) {
        return Err(OpsError::WrongFunction(task.action()));
    }
    let preview = deps.retention.preview(chrono::Utc::now()).await.map_err(|e| OpsError::Task(e.to_string()))?;
    let result = serde_json::json!({ "would_delete": preview, "policy": format!("{:?}", deps.retention.policy) });
    let client = deps.retention.pool.get().await.map_err(db::DbError::from)?;
    let actor = caller.actor();
    let detail = serde_json::json!({ "object_keys": preview.object_keys });
    db::append_audit(
        &client,
        &AuditEntry { actor: &actor, action: task.action(), target: "retention", request_id: Some(request_id), detail },
    )
    .await?;
    Ok(OperatorResponse { action: task.action().to_owned(), caller: caller.arn, result })
}

/// How Lambda reports a failed invocation: the error type says whether a
/// retry can help, which is what an operator reading the dead-letter queue needs.
pub fn diagnostic(e: Error) -> lambda_runtime::Diagnostic {
    let error_type = match &e {
        Error::Retention(r) if r.is_retryable() => "RetryableRetentionError".to_owned(),
        Error::Retention(_) => "PermanentRetentionError".to_owned(),
        Error::Ops(o) => o.error_type().to_owned(),
        Error::Event(_) => "InvalidEvent".to_owned(),
    };
    lambda_runtime::Diagnostic { error_type, error_message: e.to_string() }
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
