//! The operator tool. Every command becomes an operator task
//! (`shared::operator::OperatorTask`), signed with an identity proof made from the
//! operator's own AWS credentials, and is either
//!
//! - **invoked** on the deployed function that owns the task (Lambda `Invoke`:
//!   IAM lets only the operator role do it, CloudTrail records it, the function
//!   proves the caller with STS and writes the audit entry), or
//! - run **in-process** against the local stack (`--local`, what
//!   `cargo xtask ops` does), through the very same function code.

pub mod check;
pub mod commands;

use anyhow::{anyhow, bail, Context, Result};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use clap::Parser;
use shared::config::FromEnv;
use shared::operator::{identity, OperatorRequest, TaskOwner};

const ABOUT: &str =
    "Operator tasks of the Copper Print Gallery, run inside its VPC by its functions.

Uses your AWS credentials (environment, profile or SSO): assume the operator role
first (Terraform output `operator_role_arn`). Each task is recorded in CloudTrail
and in the gallery's audit log under your IAM identity.";

#[derive(Debug, Parser)]
#[command(name = "gallery-ops", version, about = ABOUT)]
pub struct Cli {
    /// Run against the local stack in-process instead of invoking the deployed
    /// functions (`cargo xtask ops` sets this and the stack's environment).
    #[arg(long, global = true)]
    pub local: bool,
    /// Prefix of the deployed functions' names (Terraform's `name_prefix`).
    #[arg(long, global = true, default_value = "copper-gallery")]
    pub function_prefix: String,
    #[command(subcommand)]
    pub command: commands::Command,
}

/// Runs one command; the output is what the function answered (for
/// `check`, the hops that passed).
pub async fn run(cli: Cli) -> Result<serde_json::Value> {
    let Cli { local, function_prefix, command } = cli;
    let work = match command {
        commands::Command::Check(args) => Work::Check(args),
        other => {
            let task = other.task().ok_or_else(|| anyhow!("not an operator task"))?;
            // Bad arguments stop here: nothing is signed or sent.
            task.validate()?;
            Work::Task(task)
        }
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(std::time::Duration::from_secs(900))
                .build(),
        )
        .load()
        .await;
    let delivery = Delivery { sdk, local, function_prefix };
    match work {
        Work::Task(task) => delivery.deliver(task).await,
        Work::Check(args) => check::run(&delivery, &args).await,
    }
}

/// What a command asks for: one operator task, or the smoke test's many.
enum Work {
    Task(shared::operator::OperatorTask),
    Check(check::CheckArgs),
}

/// Where tasks go: the deployed functions, or in-process (`--local`).
struct Delivery {
    sdk: SdkConfig,
    local: bool,
    function_prefix: String,
}

impl Delivery {
    async fn deliver(&self, task: shared::operator::OperatorTask) -> Result<serde_json::Value> {
        task.validate()?;
        let request = sign(&self.sdk, task).await?;
        if self.local {
            run_locally(request).await
        } else {
            invoke(&self.sdk, &self.function_prefix, request).await
        }
    }
}

#[async_trait::async_trait]
impl check::Tasks for Delivery {
    async fn run(&self, task: shared::operator::OperatorTask) -> Result<serde_json::Value> {
        self.deliver(task).await
    }
}

/// The task with a proof of who the caller is, bound to that task.
pub async fn sign(
    sdk: &SdkConfig,
    task: shared::operator::OperatorTask,
) -> Result<OperatorRequest> {
    let region = sdk
        .region()
        .map(ToString::to_string)
        .ok_or_else(|| anyhow!("no AWS region: set AWS_REGION or use a profile with a region"))?;
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| anyhow!("no AWS credentials configured"))?
        .provide_credentials()
        .await
        .context("no usable AWS credentials (log in, or assume the operator role)")?;
    let endpoint = identity::sts_endpoint(sdk.endpoint_url(), &region);
    let proof = shared::aws::sts::sign(credentials, &region, &endpoint, &task.canonical_json())?;
    Ok(OperatorRequest { operator_task: task, identity: proof })
}

/// Lambda `Invoke` of the function that owns the task, synchronously.
async fn invoke(
    sdk: &SdkConfig,
    prefix: &str,
    request: OperatorRequest,
) -> Result<serde_json::Value> {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    let function = format!("{prefix}-{}", request.operator_task.owner().function());
    let payload = serde_json::to_vec(&request)?;
    let out = aws_sdk_lambda::Client::new(sdk)
        .invoke()
        .function_name(&function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            match e.code() {
                Some("AccessDeniedException") => anyhow!(
                    "not allowed to invoke {function}: {} (use the operator role's credentials)",
                    e.message().unwrap_or("access denied")
                ),
                Some(code) => {
                    anyhow!("invoking {function} failed ({code}): {}", e.message().unwrap_or(""))
                }
                None => anyhow!("invoking {function} failed: {e}"),
            }
        })?;
    let body: serde_json::Value = out
        .payload()
        .map(|p| serde_json::from_slice(p.as_ref()))
        .transpose()
        .context("the function's answer is not JSON")?
        .unwrap_or(serde_json::Value::Null);
    if out.function_error().is_some() {
        let kind = body["errorType"].as_str().unwrap_or("Unhandled");
        bail!(
            "{function} refused the task ({kind}): {}",
            body["errorMessage"].as_str().unwrap_or("no message")
        );
    }
    Ok(body)
}

/// A task runs as its function's database role, as deployed.
fn login_as(function: &str, common: &mut shared::config::Common) -> Result<()> {
    common.db.log_in_as(shared::config::RoleConfig::local_function(function)?);
    Ok(())
}

/// The same task handlers the functions run, against the local stack whose
/// coordinates are in this process's environment.
async fn run_locally(request: OperatorRequest) -> Result<serde_json::Value> {
    let request_id = format!("local-{}", uuid::Uuid::new_v4());
    // In-process, nothing was invoked: the local stack sets no operator role,
    // so there is no account to bind the proof to (it is still single-use).
    let invocation = shared::operator::Invocation { request_id: &request_id, function_arn: None };
    let response = match request.operator_task.owner() {
        TaskOwner::Api => {
            let mut config = api::ApiConfig::from_env()?;
            login_as("API", &mut config.common)?;
            let state = api::AppState::connect(&config).await?;
            api::lambda::operate(&request, &invocation, &state).await?
        }
        TaskOwner::Backup => {
            let mut config = backup::BackupConfig::from_env()?;
            login_as("BACKUP_RECORDS", &mut config.common)?;
            let deps = backup::deps(&config).await?;
            backup::operate(&request, &invocation, &deps).await?
        }
        TaskOwner::Retention => {
            let mut config = retention::RetentionConfig::from_env()?;
            login_as("RETENTION", &mut config.common)?;
            let deps = retention::deps(&config).await?;
            retention::operate(&request, &invocation, None, &deps).await?
        }
    };
    Ok(serde_json::to_value(response)?)
}
