//! EventBridge Scheduler → the retention policy and secure deletion;
//! operator invocations (`gallery-ops retention preview`) → a dry run.
//!
//! Env: DATABASE_*, GALLERY_*_BUCKET, GALLERY_KMS_KEY_ID, RETENTION_* (days),
//! GALLERY_OPERATOR_ROLE_NAME, RUST_LOG.
//! IAM: s3:ListBucketVersions and s3:DeleteObjectVersion on the three buckets.

use lambda_runtime::{service_fn, LambdaEvent};
use shared::config::FromEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = retention::Config::from_env()?;
    let deps = retention::deps(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deps = &deps;
        async move { retention::handle(event.payload, &event.context.request_id, deps).await.map_err(retention::diagnostic) }
    }))
    .await
}
