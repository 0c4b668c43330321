//! SQS (the processed bucket's tag and delete events) → CloudFront invalidations.
//!
//! Env: GALLERY_DISTRIBUTION_ID, RUST_LOG.
//! IAM: cloudfront:CreateInvalidation on the distribution; sqs:ReceiveMessage,
//! DeleteMessage, GetQueueAttributes on the queue (the event source mapping's).

use lambda_runtime::{service_fn, LambdaEvent};
use shared::config::FromEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = edge::EdgeConfig::from_env()?;
    let invalidator = edge::invalidator(&config).await;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
            let invalidator = &invalidator;
            async move {
                Ok::<_, std::convert::Infallible>(edge::handle(event.payload, invalidator).await.1)
            }
        },
    ))
    .await
}
