//! S3 ObjectCreated on the originals bucket → renditions in the processed bucket.
//!
//! Env: DATABASE_*, GALLERY_*_BUCKET, GALLERY_KMS_KEY_ID, GALLERY_UPLOAD_MAX_BYTES,
//! GALLERY_MAX_PIXELS, GALLERY_MAX_EDGE, RUST_LOG.
//! IAM: s3:GetObject, s3:ListBucketVersions, s3:DeleteObjectVersion on originals;
//! s3:PutObject on processed; kms:Decrypt and kms:GenerateDataKey on the data key.

use lambda_runtime::{service_fn, LambdaEvent};
use shared::config::FromEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = image_processor::ProcessorConfig::from_env()?;
    let processor = image_processor::processor(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::event::s3::S3Event>| {
        let processor = &processor;
        async move {
            image_processor::handle(event.payload, processor)
                .await
                .map(|_| ())
                .map_err(image_processor::diagnostic)
        }
    }))
    .await
}
