//! EventBridge Scheduler → the retention policy and secure deletion;
//! operator invocations → the sweep or its dry run, the policy, erasures.
//!
//! Env: DATABASE_*, GALLERY_*_BUCKET, GALLERY_*_REPLICA_BUCKET, GALLERY_DR_*,
//! GALLERY_KMS_KEY_ID, GALLERY_BACKUP_KMS_KEY_ID, RETENTION_*,
//! GALLERY_OPERATOR_ROLE_NAME, RUST_LOG.
//! IAM: s3:ListBucketVersions, s3:DeleteObject(Version) on the three buckets
//! and the two DR replicas; s3:PutObject on the backups bucket's erasures/.

use lambda_runtime::{service_fn, LambdaEvent};
use shared::config::FromEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = retention::RetentionConfig::from_env()?;
    let deps = retention::deps(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deps = &deps;
        let deadline = chrono::DateTime::from_timestamp_millis(event.context.deadline as i64);
        async move {
            let invocation = shared::operator::Invocation {
                request_id: &event.context.request_id,
                function_arn: Some(&event.context.invoked_function_arn),
            };
            retention::handle(event.payload, &invocation, deadline, deps).await.map_err(|e| {
                lambda_runtime::Diagnostic {
                    error_type: e.error_type(),
                    error_message: e.to_string(),
                }
            })
        }
    }))
    .await
}
