//! EventBridge Scheduler → the retention policy and secure deletion.
//!
//! Env: DATABASE_*, GALLERY_*_BUCKET, GALLERY_KMS_KEY_ID, RETENTION_* (days), RUST_LOG.
//! IAM: s3:ListBucketVersions and s3:DeleteObjectVersion on the three buckets.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = retention::Config::from_env()?;
    let retention = retention::retention(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
        let retention = &retention;
        async move { retention::handle(event.payload, retention).await.map_err(retention::diagnostic) }
    }))
    .await
}
