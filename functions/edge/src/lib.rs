//! Queued S3 events of the processed bucket → batched CloudFront invalidations
//! (`crate::withdrawal`). Runs outside the VPC: the CloudFront API has no VPC
//! endpoint, and this function needs nothing inside it.

pub mod withdrawal;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::config::{AwsConfig, Env, FromEnv};
use tracing::{error, info, warn};
use withdrawal::Invalidator;

#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub aws: AwsConfig,
    /// The distribution that serves `/renditions/*`.
    pub distribution_id: String,
}

impl FromEnv for EdgeConfig {
    fn parse(env: &mut Env) -> Self {
        Self { aws: AwsConfig::read(env), distribution_id: env.required("GALLERY_DISTRIBUTION_ID") }
    }
}

pub async fn invalidator(config: &EdgeConfig) -> Invalidator {
    let clients = shared::aws::Clients::new(&config.aws).await;
    Invalidator {
        cloudfront: aws_sdk_cloudfront::Client::new(&clients.sdk),
        distribution_id: config.distribution_id.clone(),
    }
}

/// What one batch came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub invalidations: Vec<String>,
    pub paths: usize,
    /// Messages that are not S3 events: dropped (retrying cannot help), logged.
    pub unreadable: usize,
}

/// One batch: every message's paths, deduplicated, in as few invalidations
/// as CloudFront takes. A transient failure hands the whole batch back to the
/// queue (partial batch response), which redelivers it after the visibility
/// timeout; the same messages give the same caller reference, so a group that
/// did go through is not invalidated twice.
pub async fn handle(
    event: SqsEvent,
    invalidator: &Invalidator,
) -> (BatchOutcome, SqsBatchResponse) {
    let mut outcome = BatchOutcome::default();
    let mut paths = Vec::new();
    let ids: Vec<&str> = event.records.iter().filter_map(|m| m.message_id.as_deref()).collect();
    for message in &event.records {
        match withdrawal::paths_of_message(message.body.as_deref().unwrap_or_default()) {
            Ok(p) => paths.extend(p),
            Err(e) => {
                warn!(message_id = ?message.message_id, error = %e, "not an S3 event; dropped");
                outcome.unreadable += 1;
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    for group in withdrawal::plan(paths) {
        match invalidator
            .invalidate(withdrawal::caller_reference(ids.iter().copied(), &group), &group)
            .await
        {
            Ok(id) => {
                info!(invalidation = %id, paths = group.len(), "invalidated");
                outcome.paths += group.len();
                outcome.invalidations.push(id);
            }
            Err(e) => {
                error!(error = %e, retryable = e.retryable, "invalidation failed; the batch returns to the queue");
                for id in &ids {
                    response.add_failure(*id);
                }
                break;
            }
        }
    }
    shared::telemetry::count("edge", "PathsInvalidated", outcome.paths as f64);
    (outcome, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_s3_event_sample_parses() {
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/sqs-rendition-withdrawn.json"))
                .unwrap();
        let paths: Vec<String> = event
            .records
            .iter()
            .flat_map(|m| {
                withdrawal::paths_of_message(m.body.as_deref().unwrap_or_default()).unwrap()
            })
            .collect();
        assert_eq!(paths, vec!["/renditions/0b6f7a3e-5d1c-4c86-9a43-3a2b8f0e6d11/5c1d0e9a-7b44-4f0f-8e0e-6f1a2b3c4d5e/2048.webp"]);
    }

    #[test]
    fn configuration_names_the_distribution() {
        let vars = EdgeConfig::variables();
        assert!(vars.required.contains("GALLERY_DISTRIBUTION_ID"));
    }
}
