//! Withdrawing renditions from the CDN.
//!
//! The processed bucket sends an event for every tag change and deletion
//! under `renditions/` to a queue; the edge function (outside the VPC: the
//! CloudFront API has no VPC endpoint) reads it in batches and makes one
//! CreateInvalidation per batch. Driving this from S3's own events means
//! whatever makes a rendition unservable (a settle's tag, retention's
//! deletion, an operator by hand) also clears it from the edge, and a lost
//! API instance cannot lose an invalidation: the event is already queued.
//! A publication's tag change is invalidated too: harmless, and it clears a
//! 403 the edge may have cached while the image was private.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use shared::domain::decode_event_key;

/// Keys under this prefix are served at `/` + key.
pub const RENDITIONS_PREFIX: &str = "renditions/";

/// CloudFront allows 3,000 individual paths in progress per distribution;
/// one batch stays well inside it so two batches can overlap.
pub const MAX_PATHS_PER_INVALIDATION: usize = 1_000;

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an S3 event notification: {0}")]
pub struct NotAnEvent(String);

/// The viewer paths to invalidate for one queue message's body. S3's test
/// event (sent when the notification is configured) has no records: no paths.
pub fn paths_of_message(body: &str) -> Result<Vec<String>, NotAnEvent> {
    let notification: Notification =
        serde_json::from_str(body).map_err(|e| NotAnEvent(e.to_string()))?;
    Ok(notification
        .records
        .into_iter()
        .map(|r| decode_event_key(&r.s3.object.key))
        .filter(|key| key.starts_with(RENDITIONS_PREFIX))
        .map(|key| viewer_path(&key))
        .collect())
}

/// The path a browser requests for a rendition key: the key, percent-encoded
/// as a URL path (our keys are UUIDs and digits, so this is the key itself).
pub fn viewer_path(key: &str) -> String {
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!("/{}", percent_encoding::utf8_percent_encode(key, PATH))
}

/// Sorted, without duplicates, in groups CloudFront accepts.
pub fn plan(paths: impl IntoIterator<Item = String>) -> Vec<Vec<String>> {
    let mut paths: Vec<String> = paths.into_iter().collect();
    paths.sort();
    paths.dedup();
    paths.chunks(MAX_PATHS_PER_INVALIDATION).map(<[String]>::to_vec).collect()
}

/// CloudFront treats a repeated caller reference with the same paths as the
/// same invalidation, so a redelivered batch (the same queue messages) does
/// not invalidate twice, while a later withdrawal of the same paths (new
/// messages) does.
pub fn caller_reference<'a>(
    message_ids: impl IntoIterator<Item = &'a str>,
    paths: &[String],
) -> String {
    let mut ids: Vec<&str> = message_ids.into_iter().collect();
    ids.sort_unstable();
    let mut hash = Sha256::new();
    for p in ids.iter().copied().chain(std::iter::once("")).chain(paths.iter().map(String::as_str))
    {
        hash.update(p.as_bytes());
        hash.update([0]);
    }
    format!("gallery-{}", &hex::encode(hash.finalize())[..32])
}

pub use invalidator::*;

mod invalidator {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

    #[derive(Debug, thiserror::Error)]
    #[error("cloudfront create-invalidation: {message}")]
    pub struct InvalidationError {
        pub message: String,
        /// Throttling, too many invalidations in progress, 5xx, no connection.
        pub retryable: bool,
    }

    /// CreateInvalidation on one distribution.
    #[derive(Clone, Debug)]
    pub struct Invalidator {
        pub cloudfront: aws_sdk_cloudfront::Client,
        pub distribution_id: String,
    }

    impl Invalidator {
        /// Invalidates one planned group; returns the invalidation's id.
        /// `reference` comes from [`caller_reference`].
        pub async fn invalidate(
            &self,
            reference: String,
            paths: &[String],
        ) -> Result<String, InvalidationError> {
            let invalid = |e: aws_sdk_cloudfront::error::BuildError| InvalidationError {
                message: e.to_string(),
                retryable: false,
            };
            let quantity = i32::try_from(paths.len())
                .map_err(|e| InvalidationError { message: e.to_string(), retryable: false })?;
            let batch = InvalidationBatch::builder()
                .caller_reference(reference)
                .paths(
                    Paths::builder()
                        .quantity(quantity)
                        .set_items(Some(paths.to_vec()))
                        .build()
                        .map_err(invalid)?,
                )
                .build()
                .map_err(invalid)?;
            match self
                .cloudfront
                .create_invalidation()
                .distribution_id(&self.distribution_id)
                .invalidation_batch(batch)
                .send()
                .await
            {
                Ok(out) => Ok(out.invalidation().map(|i| i.id().to_owned()).unwrap_or_default()),
                Err(e) => {
                    let retryable = match e.as_service_error() {
                        Some(s) => {
                            s.is_too_many_invalidations_in_progress()
                                || s.meta().code().is_some_and(|c| c.contains("Throttl"))
                                || e.raw_response().is_some_and(|r| r.status().is_server_error())
                        }
                        None => true,
                    };
                    Err(InvalidationError {
                        message: aws_sdk_cloudfront::error::DisplayErrorContext(&e).to_string(),
                        retryable,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(keys: &[&str]) -> String {
        let records: Vec<_> =
            keys.iter().map(|k| serde_json::json!({"eventName": "ObjectTagging:Put", "s3": {"object": {"key": k}}})).collect();
        serde_json::json!({ "Records": records }).to_string()
    }

    #[test]
    fn rendition_events_become_viewer_paths() {
        let a = "renditions/0b6f7a3e-0000-4000-8000-000000000001/5c1d0e9a-0000-4000-8000-000000000002/2048.webp";
        assert_eq!(
            paths_of_message(&event(&[a, "originals/x/y/z.jpg"])).unwrap(),
            vec![format!("/{a}")]
        );
        // S3 URL-encodes event keys (a space is `+`).
        assert_eq!(
            paths_of_message(&event(&["renditions/a+b/%C3%A9.jpg"])).unwrap(),
            vec!["/renditions/a%20b/%C3%A9.jpg"]
        );
        assert_eq!(
            paths_of_message(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap(),
            Vec::<String>::new()
        );
        assert!(paths_of_message("not json").is_err());
    }

    #[test]
    fn plans_are_sorted_deduplicated_and_bounded() {
        let paths = (0..2_500)
            .rev()
            .map(|i| format!("/renditions/{i:05}"))
            .chain(["/renditions/00001".to_owned()]);
        let plan = plan(paths);
        assert_eq!(plan.iter().map(Vec::len).collect::<Vec<_>>(), vec![1_000, 1_000, 500]);
        assert_eq!(plan[0][0], "/renditions/00000");
        assert!(plan.concat().windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn caller_reference_is_stable_per_path_set() {
        let a = vec!["/renditions/a".to_owned(), "/renditions/b".to_owned()];
        let b = vec!["/renditions/ab".to_owned()];
        assert_eq!(
            caller_reference(["m2", "m1"], &a),
            caller_reference(["m1", "m2"], &a),
            "a redelivered batch"
        );
        assert_ne!(
            caller_reference(["m1"], &a),
            caller_reference(["m3"], &a),
            "a later withdrawal of the same paths"
        );
        assert_ne!(
            caller_reference(["m1"], &a),
            caller_reference(["m1"], &b),
            "the separator keeps joins apart"
        );
    }
}
