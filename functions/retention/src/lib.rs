//! The daily schedule → the sweep (`sweep`, with artist erasure in
//! `sweep::erasure`) under the policy of `shared::retention`; operator
//! invocations → the sweep now or its dry run, the policy, artist erasure
//! (`gallery-ops retention …`, `gallery-ops artists erase`) through
//! `shared::runner`.

pub mod sweep;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use deadpool_postgres::{Pool, Transaction};
use shared::aws::storage::ObjectStore;
use shared::config::{Common, Env, FromEnv, OperatorConfig, ReplicaConfig};
use shared::db;
use shared::operator::{Invocation, OperatorRequest, OperatorResponse, OperatorTask, TaskOwner};
use shared::runner::{
    Done, InvocationError, OperatorTasks, OpsError, TaskContext, Verifier, WorkError,
};
pub use sweep::*;

#[derive(Clone, Debug)]
pub struct RetentionConfig {
    pub common: Common,
    pub policy: Policy,
    pub operator: OperatorConfig,
    /// The DR copies the sweep deletes from as well.
    pub replica: ReplicaConfig,
    /// Erasure records go to the backups bucket under the backups key.
    pub backup_key_id: String,
}

impl FromEnv for RetentionConfig {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let operator = OperatorConfig::read(env);
        let policy = Policy::read(env);
        let replica = ReplicaConfig::read(env);
        let backup_key_id = env.required("GALLERY_BACKUP_KMS_KEY_ID");
        Self { common, policy, operator, replica, backup_key_id }
    }
}

/// What the function's invocations use, built once at cold start.
pub struct RetentionDeps {
    pub retention: Retention,
    pub verifier: Verifier,
}

pub async fn deps(config: &RetentionConfig) -> anyhow::Result<RetentionDeps> {
    let (clients, pool) = shared::connect::connect(&config.common).await?;
    Ok(RetentionDeps {
        retention: retention_with(config, pool, &clients),
        verifier: Verifier::new(&config.operator, &config.common.aws),
    })
}

pub fn retention_with(
    config: &RetentionConfig,
    pool: deadpool_postgres::Pool,
    clients: &shared::aws::Clients,
) -> Retention {
    let storage = &config.common.storage;
    let store = ObjectStore::new(clients, &storage.data_key_id);
    let replica_s3 = clients.s3_in(
        &config.common.aws,
        &config.replica.region,
        config.replica.s3_endpoint.as_deref(),
    );
    Retention {
        pool,
        replica_store: store.with_s3(replica_s3),
        ledger: shared::ledger::Ledger::new(
            clients,
            &storage.backups_bucket,
            &config.backup_key_id,
        ),
        store,
        buckets: Buckets {
            originals: storage.originals_bucket.clone(),
            processed: storage.processed_bucket.clone(),
            backups: storage.backups_bucket.clone(),
            processed_replica: config.replica.processed_bucket.clone(),
            backups_replica: config.replica.backups_bucket.clone(),
        },
        policy: config.policy.clone(),
        batch: 500,
    }
}

impl WorkError for RetentionError {
    const WORK: &'static str = "Retention";
    fn is_retryable(&self) -> bool {
        RetentionError::is_retryable(self)
    }
}

/// What the schedule may ask beyond the sweep itself.
#[derive(Debug, Default, serde::Deserialize)]
struct ScheduledDetail {
    #[serde(default)]
    dry_run: bool,
}

/// Leave this long before Lambda's deadline: the page in hand finishes, no new one starts.
const DEADLINE_MARGIN: chrono::Duration = chrono::Duration::seconds(90);

/// An invocation: the schedule's sweep (`"dry_run": true` in its detail
/// deletes nothing), or an operator's task. `deadline` is the invocation's.
pub async fn handle(
    event: serde_json::Value,
    invocation: &Invocation<'_>,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
    deps: &RetentionDeps,
) -> Result<serde_json::Value, InvocationError<RetentionError>> {
    let tasks = Tasks { deps, deadline };
    shared::runner::dispatch(event, invocation, &tasks, |event| async move {
        let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event)?;
        let detail: ScheduledDetail =
            serde_json::from_value(event.detail.clone()).unwrap_or_default();
        let sweep = Sweep {
            // The scheduled time, not the clock: a retried event applies the same cut-offs.
            now: event.time.unwrap_or_else(chrono::Utc::now),
            dry_run: detail.dry_run,
            request_id: Some(event.id.clone().unwrap_or_else(|| invocation.request_id.to_owned())),
            stop_at: deadline.map(|d| d - DEADLINE_MARGIN),
        };
        Ok(serde_json::to_value(deps.retention.run(&sweep).await.map_err(InvocationError::Work)?)?)
    })
    .await
}

/// A retention task for a proven operator (`shared::runner`); every one is
/// in the audit log under the operator's IAM identity.
pub async fn operate(
    request: &OperatorRequest,
    invocation: &Invocation<'_>,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
    deps: &RetentionDeps,
) -> Result<OperatorResponse, OpsError> {
    shared::runner::operate(&Tasks { deps, deadline }, request, invocation).await
}

/// The retention function's operator tasks, within one invocation's deadline.
struct Tasks<'a> {
    deps: &'a RetentionDeps,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_trait]
impl OperatorTasks for Tasks<'_> {
    const FUNCTION: TaskOwner = TaskOwner::Retention;

    fn pool(&self) -> &Pool {
        &self.deps.retention.pool
    }

    fn verifier(&self) -> &Verifier {
        &self.deps.verifier
    }

    /// Sweeps and erasures delete objects page by page and commit as they go.
    fn transactional(&self, _: &OperatorTask) -> bool {
        false
    }

    async fn run(
        &self,
        task: &OperatorTask,
        ctx: &TaskContext<'_>,
        _: Option<&Transaction<'_>>,
    ) -> Result<Done, OpsError> {
        let retention = &self.deps.retention;
        let failed = |e: RetentionError| match e {
            RetentionError::NoSuchArtist(id) => OpsError::NotFound(format!("artist {id}")),
            other => OpsError::Task(other.to_string()),
        };
        let now = chrono::Utc::now();
        Ok(match task {
            OperatorTask::RunRetention { dry_run } => {
                let stop_at = self.deadline.map(|d| d - DEADLINE_MARGIN);
                let sweep = Sweep {
                    now,
                    dry_run: *dry_run,
                    request_id: Some(ctx.request_id.to_owned()),
                    stop_at,
                };
                let report = retention.run(&sweep).await.map_err(failed)?;
                Done::new(serde_json::json!({ "report": report }), "retention")
            }
            OperatorTask::RetentionPolicy => {
                Done::new(serde_json::json!({ "rules": retention.policy.rules() }), "retention")
            }
            OperatorTask::EraseArtist { artist_id, .. } => {
                let outcome = retention
                    .erase_now(*artist_id, &ctx.actor, ctx.request_id, now)
                    .await
                    .map_err(failed)?;
                Done::new(OpsError::json(outcome)?, format!("artist:{artist_id}"))
            }
            OperatorTask::ListErasures { limit } => {
                let client = retention.pool.get().await.map_err(db::DbError::from)?;
                let erasures = db::list_erasures(&client, i64::from(*limit)).await?;
                Done::new(serde_json::json!({ "erasures": erasures }), "erasures")
            }
            other => return Err(OpsError::WrongFunction(other.action())),
        })
    }
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
        let detail: ScheduledDetail = serde_json::from_value(event.detail).unwrap();
        assert!(!detail.dry_run, "the schedule deletes");
    }

    #[test]
    fn parses_the_dry_run_sample() {
        let event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(include_str!("../../../events/scheduled-retention-dry-run.json"))
                .unwrap();
        let detail: ScheduledDetail = serde_json::from_value(event.detail).unwrap();
        assert!(detail.dry_run);
    }
}
