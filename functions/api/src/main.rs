//! Function URL requests → the gallery API.
//!
//! Env: DATABASE_*, GALLERY_*_BUCKET, GALLERY_KMS_KEY_ID, GALLERY_UPLOAD_MAX_BYTES, RUST_LOG.
//! IAM: secretsmanager:GetSecretValue on the DB secret; s3:PutObject on the originals
//! bucket and kms:GenerateDataKey on the data key (the presigned POST carries them).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = api::Config::from_env()?;
    let state = api::AppState::connect(&config).await?;
    lambda_http::run(api::router(std::sync::Arc::new(state))).await
}
