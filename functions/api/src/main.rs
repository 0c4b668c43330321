//! Function URL requests → the gallery API; operator invocations → token tasks.
//!
//! Env: DATABASE_*, GALLERY_*_BUCKET, GALLERY_KMS_KEY_ID, GALLERY_UPLOAD_MAX_BYTES,
//! GALLERY_OPERATOR_ROLE_NAME, RUST_LOG.
//! IAM: secretsmanager:GetSecretValue on the DB secret; s3:PutObject on the originals
//! bucket and kms:GenerateDataKey on the data key (the presigned POST carries them).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use shared::config::FromEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = api::ApiConfig::from_env()?;
    let state = Arc::new(api::AppState::connect(&config).await?);
    let router = api::router(state.clone());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        api::lambda::handle(event, &state, router.clone())
    }))
    .await
}
