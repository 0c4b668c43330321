//! S3 ObjectCreated events on the originals bucket → `renditions` (the
//! processor's core), which runs the image pipeline (`imaging`).

pub mod imaging;
pub mod renditions;

use crate::imaging::Limits;
use crate::renditions::{decode_event_key, ProcessError, ProcessOutcome, Processor};
use aws_lambda_events::event::s3::S3Event;
use shared::aws::storage::ObjectStore;
use shared::config::{Common, Env, FromEnv};

#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    pub common: Common,
    pub limits: Limits,
    pub max_bytes: u64,
}

impl FromEnv for ProcessorConfig {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let defaults = Limits::default();
        let max_bytes = env.parse_or("GALLERY_UPLOAD_MAX_BYTES", 100 * 1024 * 1024u64);
        let limits = Limits {
            max_pixels: env.parse_or("GALLERY_MAX_PIXELS", defaults.max_pixels),
            max_edge: env.parse_or("GALLERY_MAX_EDGE", defaults.max_edge),
            max_bytes: Some(max_bytes),
        };
        Self { common, limits, max_bytes }
    }
}

pub async fn processor(config: &ProcessorConfig) -> anyhow::Result<Processor> {
    let (clients, pool) = shared::connect::connect(&config.common).await?;
    Ok(processor_with(config, pool, &clients))
}

pub fn processor_with(
    config: &ProcessorConfig,
    pool: deadpool_postgres::Pool,
    clients: &shared::aws::Clients,
) -> Processor {
    Processor {
        pool,
        store: ObjectStore::new(clients, &config.common.storage.data_key_id),
        originals_bucket: config.common.storage.originals_bucket.clone(),
        processed_bucket: config.common.storage.processed_bucket.clone(),
        limits: config.limits,
        max_bytes: config.max_bytes,
    }
}

/// Processes every record of the batch. Permanent failures are recorded on the
/// image and do not fail the invocation; if any record hit a transient failure
/// the invocation fails so Lambda retries the batch (finished records are no-ops).
pub async fn handle(
    event: S3Event,
    processor: &Processor,
) -> Result<Vec<ProcessOutcome>, ProcessError> {
    let mut outcomes = Vec::with_capacity(event.records.len());
    let mut retry: Option<ProcessError> = None;
    for record in event.records {
        let (Some(bucket), Some(raw_key)) =
            (record.s3.bucket.name.as_deref(), record.s3.object.key.as_deref())
        else {
            tracing::warn!("record without bucket or key; ignored");
            outcomes.push(ProcessOutcome::Ignored);
            continue;
        };
        match processor.process(bucket, &decode_event_key(raw_key)).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                tracing::error!(error = %e, retryable = e.is_retryable(), "record failed");
                retry.get_or_insert(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// How Lambda reports a failed invocation: the error type says whether a
/// retry can help, which is what an operator reading the dead-letter queue needs.
pub fn diagnostic(e: ProcessError) -> lambda_runtime::Diagnostic {
    let class = if e.is_retryable() { "Retryable" } else { "Permanent" };
    lambda_runtime::Diagnostic {
        error_type: format!("{class}ProcessError"),
        error_message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sample_event_with_encoded_keys() {
        let event: S3Event =
            serde_json::from_str(include_str!("../../../events/s3-object-created.json")).unwrap();
        assert_eq!(event.records.len(), 2);
        let keys: Vec<String> = event
            .records
            .iter()
            .map(|r| decode_event_key(r.s3.object.key.as_deref().unwrap()))
            .collect();
        assert!(keys[0].ends_with("/Copper Sunrise 1+1.jpg"), "{}", keys[0]);
        assert!(keys[1].ends_with("/Été à Paris.png"), "{}", keys[1]);
    }
}
