//! Complete deletion: every version and delete marker under a set of
//! prefixes, removed with batched `DeleteObjects` calls.
//!
//! On a versioned bucket a plain DELETE only adds a delete marker, and a
//! DELETE of a specific version is not replicated (S3 replicates delete
//! markers only), so the caller purges the primary bucket and its replica
//! separately, each with this. Listing is paginated; deletion goes in batches
//! of at most [`MAX_BATCH`] version ids; a key S3 refuses is reported, not
//! fatal, and transient refusals are retried with backoff.

use std::time::Duration;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use serde::Serialize;

use super::{s3_error, s3_error_text, ObjectStore, StorageError};

/// S3's limit of keys per `DeleteObjects` request.
pub const MAX_BATCH: usize = 1000;

/// Attempts for a key S3 refused with a transient code (inside a 200 answer,
/// where the SDK's retry cannot see it).
const ATTEMPTS: u32 = 4;

/// One stored version of a key, or one of its delete markers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub key: String,
    /// `None` only on an unversioned bucket.
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// A version S3 would not delete, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFailure {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub code: String,
    pub message: String,
}

/// What one bucket's purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeTally {
    pub versions: u64,
    pub delete_markers: u64,
    pub list_requests: u64,
    pub delete_requests: u64,
}

impl PurgeTally {
    pub fn add(&mut self, other: &PurgeTally) {
        self.versions += other.versions;
        self.delete_markers += other.delete_markers;
        self.list_requests += other.list_requests;
        self.delete_requests += other.delete_requests;
    }

    /// Object versions and markers removed.
    pub fn removed(&self) -> u64 {
        self.versions + self.delete_markers
    }
}

/// The outcome of deleting a set of versions: what went, what would not.
#[derive(Debug, Default)]
pub struct Deleted {
    pub tally: PurgeTally,
    pub failures: Vec<KeyFailure>,
}

/// Error codes S3 gives per key that may succeed on a later attempt.
pub fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "InternalError"
            | "SlowDown"
            | "ServiceUnavailable"
            | "RequestTimeout"
            | "OperationAborted"
            | "ThrottlingException"
    )
}

/// Exponential backoff with full jitter: 100 ms, 200 ms, 400 ms… each drawn
/// uniformly below its bound, so retries of a throttled bucket spread out.
fn backoff(attempt: u32) -> Duration {
    let bound = 100u64 << attempt.min(6);
    Duration::from_millis(rand::random_range(bound / 2..=bound))
}

impl ObjectStore {
    /// Every version and delete marker whose key starts with `prefix`,
    /// page by page. Returns them with the number of list requests made.
    pub async fn versions_under(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<(Vec<Version>, u64), StorageError> {
        let mut found = Vec::new();
        let mut requests = 0;
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            // Timeouts, 5xx and throttling are retried by the SDK's standard retry.
            let page = self
                .s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| s3_error("list versions", bucket, prefix, e))?;
            requests += 1;
            for v in page.versions() {
                if let Some(key) = v.key() {
                    found.push(Version {
                        key: key.to_owned(),
                        version_id: v.version_id().map(str::to_owned),
                        delete_marker: false,
                    });
                }
            }
            for m in page.delete_markers() {
                if let Some(key) = m.key() {
                    found.push(Version {
                        key: key.to_owned(),
                        version_id: m.version_id().map(str::to_owned),
                        delete_marker: true,
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok((found, requests));
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }

    /// Deletes the given versions permanently, at most [`MAX_BATCH`] per
    /// request. Keys S3 refuses are collected (transient ones retried first);
    /// a request that still fails after the SDK's retries is reported for
    /// each of its keys, and the other batches go on.
    pub async fn delete_versions(&self, bucket: &str, versions: &[Version]) -> Deleted {
        let mut out = Deleted::default();
        for batch in versions.chunks(MAX_BATCH) {
            let mut pending: Vec<&Version> = batch.iter().collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                let (gone, refused) = self.delete_batch(bucket, &pending, &mut out.tally).await;
                for v in gone {
                    if v.delete_marker {
                        out.tally.delete_markers += 1;
                    } else {
                        out.tally.versions += 1;
                    }
                }
                let (retry, fatal): (Vec<_>, Vec<_>) = refused
                    .into_iter()
                    .partition(|(_, f)| transient_code(&f.code) && attempt + 1 < ATTEMPTS);
                out.failures.extend(fatal.into_iter().map(|(_, f)| f));
                pending = retry.into_iter().map(|(v, _)| v).collect();
                if !pending.is_empty() {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
        out
    }

    /// One `DeleteObjects` request: the versions it removed and those it refused.
    async fn delete_batch<'v>(
        &self,
        bucket: &str,
        batch: &[&'v Version],
        tally: &mut PurgeTally,
    ) -> (Vec<&'v Version>, Vec<(&'v Version, KeyFailure)>) {
        let failure = |v: &Version, code: &str, message: String| KeyFailure {
            bucket: bucket.to_owned(),
            key: v.key.clone(),
            version_id: v.version_id.clone(),
            code: code.to_owned(),
            message,
        };
        let objects: Result<Vec<ObjectIdentifier>, _> = batch
            .iter()
            .map(|v| {
                ObjectIdentifier::builder().key(&v.key).set_version_id(v.version_id.clone()).build()
            })
            .collect();
        let delete =
            objects.and_then(|o| Delete::builder().set_objects(Some(o)).quiet(true).build());
        let delete = match delete {
            Ok(d) => d,
            Err(e) => {
                let e = s3_error_text("delete versions", bucket, "", e);
                return (
                    Vec::new(),
                    batch
                        .iter()
                        .map(|v| (*v, failure(v, "InvalidRequest", e.to_string())))
                        .collect(),
                );
            }
        };
        tally.delete_requests += 1;
        match self.s3.delete_objects().bucket(bucket).delete(delete).send().await {
            Ok(answer) => {
                // Quiet mode: the answer lists only the keys that failed.
                // An error that names no version id (some S3-compatible servers
                // answer so) refuses every version of its key in the batch.
                let refused: Vec<(&Version, KeyFailure)> = answer
                    .errors()
                    .iter()
                    .flat_map(|e| {
                        let code = e.code().unwrap_or("Unknown");
                        let message = e.message().unwrap_or_default();
                        batch
                            .iter()
                            .filter(move |v| {
                                Some(v.key.as_str()) == e.key()
                                    && (e.version_id().is_none()
                                        || v.version_id.as_deref() == e.version_id())
                            })
                            .map(move |v| (*v, failure(v, code, message.to_owned())))
                    })
                    .collect();
                let gone = batch
                    .iter()
                    .filter(|v| !refused.iter().any(|(r, _)| std::ptr::eq(*r, **v)))
                    .copied()
                    .collect();
                (gone, refused)
            }
            Err(e) => {
                // The SDK's standard retry has already backed off and retried a
                // throttled or failing request: report its keys, once.
                let e = s3_error("delete versions", bucket, "", e);
                (
                    Vec::new(),
                    batch
                        .iter()
                        .map(|v| (*v, failure(v, "RequestFailed", e.to_string())))
                        .collect(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_retried_and_refusals_are_not() {
        for code in ["InternalError", "SlowDown", "ServiceUnavailable"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["AccessDenied", "InvalidArgument", "NoSuchVersion", "RequestFailed"] {
            assert!(!transient_code(code), "{code}");
        }
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..10 {
            let d = backoff(attempt).as_millis() as u64;
            let bound = 100u64 << attempt.min(6);
            assert!(d >= bound / 2 && d <= bound, "attempt {attempt}: {d} ms");
        }
    }
}
