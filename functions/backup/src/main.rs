//! EventBridge Scheduler → daily encrypted backup, restore drill, or migrations.
//!
//! Env: DATABASE_* (application role), DATABASE_OWNER_USER and
//! DATABASE_OWNER_SECRET_ARN (drills and migrations), GALLERY_BACKUPS_BUCKET,
//! GALLERY_BACKUP_KMS_KEY_ID, RUST_LOG.
//! IAM: s3:PutObject/GetObject on the backups bucket; kms:GenerateDataKey and
//! kms:Decrypt on the backup key; secretsmanager:GetSecretValue on both secrets.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = backup::Config::from_env()?;
    let service = backup::service(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent<backup::Detail>>| {
        let service = &service;
        async move { backup::handle(event.payload, service).await.map_err(backup::diagnostic) }
    }))
    .await
}
