//! EventBridge Scheduler → daily encrypted backup, restore drill, or migrations;
//! operator invocations (`gallery-ops backup …`) → the same, on demand.
//!
//! Env: DATABASE_* (application role), DATABASE_OWNER_USER and
//! DATABASE_OWNER_SECRET_ARN (drills and migrations), GALLERY_BACKUPS_BUCKET,
//! GALLERY_BACKUP_KMS_KEY_ID, GALLERY_OPERATOR_ROLE_NAME, RUST_LOG.
//! IAM: s3:PutObject/GetObject on the backups bucket; kms:GenerateDataKey and
//! kms:Decrypt on the backup key; secretsmanager:GetSecretValue on both secrets.
//! Operator proofs go to STS (no permission needed: STS checks the caller's).

use lambda_runtime::{service_fn, LambdaEvent};
use shared::config::FromEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = backup::BackupConfig::from_env()?;
    let deps = backup::deps(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deps = &deps;
        async move {
            let invocation = shared::operator::Invocation {
                request_id: &event.context.request_id,
                function_arn: Some(&event.context.invoked_function_arn),
            };
            backup::handle(event.payload, &invocation, deps).await.map_err(|e| {
                lambda_runtime::Diagnostic {
                    error_type: e.error_type(),
                    error_message: e.to_string(),
                }
            })
        }
    }))
    .await
}
