//! The one operator runner every function uses: authorize → validate → run →
//! audit, under one failure policy.
//!
//! - Nothing runs before the caller is proven (STS), is the operator role of
//!   the invoked function's account, the task is this function's and valid,
//!   and the proof was never used before. A refusal there writes nothing to
//!   the audit log (CloudTrail has the invocation).
//! - A short task that changes catalogue rows runs in one transaction with its
//!   audit entry; a long one (a backup, a sweep) runs outside a transaction
//!   and is audited when it ends.
//! - A proven task that fails is audited too, with its error, after its own
//!   transaction has rolled back: the log shows every attempt an operator made.

use async_trait::async_trait;
use deadpool_postgres::{Pool, Transaction};
use tracing::warn;

use crate::config::{AwsConfig, OperatorConfig};
use crate::db::{self, AuditEntry, DbError};
use crate::operator::identity::{self, IdentityError, OperatorRole, ProvenCaller};
use crate::operator::{
    InvalidTask, Invocation, OperatorRequest, OperatorResponse, OperatorTask, TaskOwner,
};

/// Why an operator task did not run (or did not finish).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("invalid task: {0}")]
    Invalid(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("this function does not run {0}")]
    WrongFunction(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Task(String),
}

impl From<InvalidTask> for OpsError {
    fn from(e: InvalidTask) -> Self {
        Self::Invalid(e.0)
    }
}

impl OpsError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_retryable(),
            Self::Db(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The error type an invocation reports, read by the operator tool.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "InvalidTask",
            Self::Identity(
                IdentityError::NotOperator { .. }
                | IdentityError::Refused { .. }
                | IdentityError::Replayed,
            ) => "AccessDenied",
            Self::Identity(_) => "IdentityUnverified",
            Self::Refused(_) => "Refused",
            Self::NotFound(_) => "NotFound",
            Self::WrongFunction(_) => "WrongFunction",
            Self::Db(_) | Self::Task(_) => "TaskFailed",
        }
    }

    /// A task's result that is not JSON (it always is: our own types).
    pub fn json(value: impl serde::Serialize) -> Result<serde_json::Value, Self> {
        serde_json::to_value(value).map_err(|e| Self::Task(e.to_string()))
    }
}

/// Where a function checks operator identities.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub sts_endpoint: String,
    /// Only sessions of this role are accepted (`None` locally, where the
    /// emulator's caller is a plain user).
    pub operator_role: Option<String>,
}

impl Verifier {
    /// The identity check for a function's operator tasks.
    pub fn new(operator: &OperatorConfig, aws: &AwsConfig) -> Self {
        let region = aws.region.as_deref().unwrap_or("us-east-1");
        Self {
            sts_endpoint: identity::sts_endpoint(aws.endpoint_url.as_deref(), region),
            operator_role: operator.role_name.clone(),
        }
    }

    /// Validates the task, proves the caller with STS, checks that the caller
    /// is the operator role of this function's own account, and spends the
    /// proof (each proof runs one task: a captured invocation replayed within
    /// STS's window is refused). Nothing runs before all of that passes.
    pub async fn authorize(
        &self,
        request: &OperatorRequest,
        owner: TaskOwner,
        invocation: &Invocation<'_>,
        pool: &Pool,
    ) -> Result<ProvenCaller, OpsError> {
        if request.operator_task.owner() != owner {
            return Err(OpsError::WrongFunction(request.operator_task.action()));
        }
        request.operator_task.validate()?;
        let role = match (&self.operator_role, invocation.function_arn) {
            (Some(role), Some(arn)) => Some(OperatorRole::of_function(arn, role)?),
            (Some(_), None) => {
                return Err(IdentityError::Unbound("no invoked function ARN".into()).into())
            }
            (None, _) => None,
        };
        let caller = crate::aws::sts::verify(
            &request.identity,
            &self.sts_endpoint,
            &request.operator_task.canonical_json(),
        )
        .await?;
        if let Some(role) = &role {
            role.check(&caller)?;
        }
        let client = pool.get().await.map_err(DbError::from)?;
        if !db::spend_operator_proof(
            &client,
            &identity::proof_digest(&request.identity),
            &caller.arn,
        )
        .await?
        {
            return Err(IdentityError::Replayed.into());
        }
        Ok(caller)
    }
}

/// What a task did: its answer to the operator, and its audit entry.
#[derive(Debug, Clone)]
pub struct Done {
    pub result: serde_json::Value,
    /// What the audit entry is about (`token:<id>`, `backups`, …).
    pub target: String,
    pub detail: serde_json::Value,
}

impl Done {
    pub fn new(result: serde_json::Value, target: impl Into<String>) -> Self {
        Self { result, target: target.into(), detail: serde_json::json!({}) }
    }

    pub fn with_detail(self, detail: serde_json::Value) -> Self {
        Self { detail, ..self }
    }
}

/// Who runs the task, in which request.
#[derive(Debug, Clone)]
pub struct TaskContext<'a> {
    pub caller: &'a ProvenCaller,
    /// How the audit log names the caller.
    pub actor: String,
    pub request_id: &'a str,
}

/// A function's operator tasks.
#[async_trait]
pub trait OperatorTasks: Sync {
    /// The function these tasks belong to; any other task is refused.
    const FUNCTION: TaskOwner;

    fn pool(&self) -> &Pool;
    fn verifier(&self) -> &Verifier;

    /// Whether `task` runs inside one transaction with its audit entry.
    fn transactional(&self, task: &OperatorTask) -> bool;

    /// Runs a proven, valid task; `tx` is its transaction when it has one.
    async fn run(
        &self,
        task: &OperatorTask,
        ctx: &TaskContext<'_>,
        tx: Option<&Transaction<'_>>,
    ) -> Result<Done, OpsError>;
}

/// Runs an operator invocation through the one policy (see the module doc).
pub async fn operate<T: OperatorTasks>(
    tasks: &T,
    request: &OperatorRequest,
    invocation: &Invocation<'_>,
) -> Result<OperatorResponse, OpsError> {
    let caller = tasks.verifier().authorize(request, T::FUNCTION, invocation, tasks.pool()).await?;
    let task = &request.operator_task;
    let ctx =
        TaskContext { caller: &caller, actor: caller.actor(), request_id: invocation.request_id };
    let outcome = if tasks.transactional(task) {
        async {
            let mut client = tasks.pool().get().await.map_err(DbError::from)?;
            let tx = client.transaction().await.map_err(DbError::from)?;
            let done = tasks.run(task, &ctx, Some(&tx)).await?;
            db::append_audit(&tx, &entry(&ctx, task, &done.target, done.detail.clone())).await?;
            tx.commit().await.map_err(DbError::from)?;
            Ok::<_, OpsError>(done)
        }
        .await
    } else {
        async {
            let done = tasks.run(task, &ctx, None).await?;
            let client = tasks.pool().get().await.map_err(DbError::from)?;
            db::append_audit(&client, &entry(&ctx, task, &done.target, done.detail.clone()))
                .await?;
            Ok(done)
        }
        .await
    };
    match outcome {
        Ok(done) => Ok(OperatorResponse {
            action: task.action().to_owned(),
            caller: caller.arn.clone(),
            result: done.result,
        }),
        Err(e) => {
            let failed = entry(
                &ctx,
                task,
                T::FUNCTION.function(),
                serde_json::json!({ "error": e.to_string() }),
            );
            let audited = match tasks.pool().get().await {
                Ok(client) => db::append_audit(&client, &failed).await,
                Err(pool) => Err(DbError::from(pool)),
            };
            if let Err(audit) = audited {
                warn!(action = task.action(), error = %audit, "the failed task's audit entry was not written");
            }
            Err(e)
        }
    }
}

fn entry<'a>(
    ctx: &'a TaskContext<'_>,
    task: &OperatorTask,
    target: &'a str,
    detail: serde_json::Value,
) -> AuditEntry<'a> {
    AuditEntry {
        actor: &ctx.actor,
        action: task.action(),
        target,
        request_id: Some(ctx.request_id),
        detail,
    }
}

/// A function's own failures, as its invocations report them.
pub trait WorkError: std::error::Error {
    /// What the function does, in the error type (`Backup` → `RetryableBackupError`).
    const WORK: &'static str;
    fn is_retryable(&self) -> bool;
}

/// Why an invocation of a scheduled function failed.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError<E: WorkError> {
    #[error(transparent)]
    Work(E),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("neither a scheduled event nor an operator task: {0}")]
    Event(#[from] serde_json::Error),
}

impl<E: WorkError> InvocationError<E> {
    /// The error type Lambda reports: whether a retry can help, which is what
    /// an operator reading the dead-letter queue needs.
    pub fn error_type(&self) -> String {
        match self {
            Self::Work(e) if e.is_retryable() => format!("Retryable{}Error", E::WORK),
            Self::Work(_) => format!("Permanent{}Error", E::WORK),
            Self::Ops(o) => o.error_type().to_owned(),
            Self::Event(_) => "InvalidEvent".to_owned(),
        }
    }
}

/// Routes an invocation: an operator task through [`operate`], any other
/// event to the function's `scheduled` work.
pub async fn dispatch<T, E, F, Fut>(
    event: serde_json::Value,
    invocation: &Invocation<'_>,
    tasks: &T,
    scheduled: F,
) -> Result<serde_json::Value, InvocationError<E>>
where
    T: OperatorTasks,
    E: WorkError,
    F: FnOnce(serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, InvocationError<E>>>,
{
    if OperatorRequest::is_operator_event(&event) {
        let request: OperatorRequest =
            serde_json::from_value(event).map_err(|e| OpsError::Invalid(e.to_string()))?;
        return Ok(serde_json::to_value(operate(tasks, &request, invocation).await?)?);
    }
    scheduled(event).await
}
