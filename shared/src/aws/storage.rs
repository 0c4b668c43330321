//! Object storage: the S3 adapter and the presigned-POST policy for uploads.
//!
//! Every write names our KMS key explicitly (SSE-KMS) rather than relying on the
//! bucket default alone, so an object can never land unencrypted or under
//! another key even if a bucket's default were changed.

use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

mod purge;
pub use purge::{transient_code, Deleted, KeyFailure, PurgeTally, Version, MAX_BATCH};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("s3 {operation} {bucket}/{key}: {message}")]
    S3 { operation: &'static str, bucket: String, key: String, message: String, retryable: bool },
    #[error("object {bucket}/{key} is {size} bytes; the limit is {limit}")]
    TooLarge { bucket: String, key: String, size: u64, limit: u64 },
    #[error("no credentials to sign with: {0}")]
    Credentials(String),
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::S3 { retryable, .. } => *retryable,
            Self::TooLarge { .. } => false,
            Self::Credentials(_) => true,
        }
    }
}

fn s3_error<E, R>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<E, R>,
) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_sdk_s3::error::SdkError;
    // Only a definite answer from S3 about the request itself is permanent;
    // timeouts, dispatch failures and 5xx/throttling may succeed on retry.
    let retryable = match &err {
        SdkError::ServiceError(_) => false,
        SdkError::ResponseError(_) | SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            true
        }
        _ => true,
    };
    let message = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
    StorageError::S3 {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message,
        retryable,
    }
}

fn s3_error_text(
    operation: &'static str,
    bucket: &str,
    key: &str,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageError::S3 {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: e.to_string(),
        retryable: false,
    }
}

/// An object as S3 serves it.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bytes: bytes::Bytes,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub etag: Option<String>,
}

/// What S3 stores beside an object's bytes.
pub struct ObjectMeta<'a> {
    pub content_type: &'a str,
    /// Served back as `Cache-Control` (through CloudFront too).
    pub cache_control: Option<&'a str>,
    /// URL-encoded `name=value&…`, as the `x-amz-tagging` header takes them.
    pub tags: Option<&'a str>,
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub version_id: Option<String>,
    pub kms_key_id: Option<String>,
    pub etag: Option<String>,
}

/// How [`ObjectStore::get_ranges`] splits a read.
#[derive(Debug, Clone, Copy)]
pub struct Ranges {
    /// Bytes per GET.
    pub size: u64,
    /// GETs at once (each holds one range in memory until it is taken).
    pub in_flight: usize,
}

/// Reads of one range before its failure ends the whole read.
const RANGE_ATTEMPTS: u32 = 3;

/// S3 with the gallery's data key for server-side encryption.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    s3: aws_sdk_s3::Client,
    /// Signs presigned POSTs; the same credentials the client uses.
    credentials: Option<SharedCredentialsProvider>,
    kms_key_id: String,
    /// Object Lock for every object this store writes (`locking`).
    lock: Option<Lock>,
}

/// S3 Object Lock for what a store writes: COMPLIANCE mode (nobody, the
/// account root included, may delete or shorten it before it lapses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    /// How long each object is kept from the moment it is written.
    pub retain: chrono::Duration,
    /// Write only keys that do not exist yet (`If-None-Match: *`): an
    /// accidental second write under a backup's key fails instead of
    /// becoming the current version.
    pub new_keys_only: bool,
}

impl ObjectStore {
    pub fn new(clients: &crate::aws::Clients, kms_key_id: impl Into<String>) -> Self {
        Self {
            s3: clients.s3.clone(),
            credentials: clients.sdk.credentials_provider(),
            kms_key_id: kms_key_id.into(),
            lock: None,
        }
    }

    /// The same store, locking every object it writes.
    pub fn locking(&self, lock: Lock) -> Self {
        Self { lock: Some(lock), ..self.clone() }
    }

    /// Locks one object version until `until` (COMPLIANCE): what a multipart
    /// upload needs after completing (a lock can only be extended).
    pub async fn lock_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
        let retention = ObjectLockRetention::builder()
            .mode(ObjectLockRetentionMode::Compliance)
            .retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp()))
            .build();
        self.s3
            .put_object_retention()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .retention(retention)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| s3_error("lock", bucket, key, e))?;
        Ok(())
    }

    /// The same store through another S3 client: the DR region's, whose
    /// buckets hold the replicas.
    pub fn with_s3(&self, s3: aws_sdk_s3::Client) -> Self {
        Self { s3, ..self.clone() }
    }

    /// The same store signing as another identity (see `Clients::signing_as`).
    pub fn signing_as(&self, access_key_id: &str, secret_access_key: &str) -> Self {
        let provider = crate::aws::static_credentials(access_key_id, secret_access_key);
        let s3 = aws_sdk_s3::Client::from_conf(
            self.s3.config().to_builder().credentials_provider(provider.clone()).build(),
        );
        Self { s3, credentials: Some(provider), ..self.clone() }
    }

    pub fn kms_key_id(&self) -> &str {
        &self.kms_key_id
    }

    /// `None` when the object does not exist.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        self.head_version(bucket, key, None).await
    }

    /// [`ObjectStore::head`] of one version (`None`: the current one).
    pub async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectHead>, StorageError> {
        let request =
            self.s3.head_object().bucket(bucket).key(key).set_version_id(version.map(Into::into));
        match request.send().await {
            Ok(out) => Ok(Some(ObjectHead {
                size: out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                version_id: out.version_id().map(str::to_owned),
                kms_key_id: out.ssekms_key_id().map(str::to_owned),
                etag: out.e_tag().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(s3_error("head", bucket, key, e)),
        }
    }

    /// Reads a whole object, refusing (before buffering) one larger than `limit`.
    pub async fn get(&self, bucket: &str, key: &str, limit: u64) -> Result<Vec<u8>, StorageError> {
        match self.get_object(bucket, key, limit).await? {
            Some(object) => Ok(object.bytes.to_vec()),
            None => Err(StorageError::S3 {
                operation: "get",
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                message: "NoSuchKey: the object does not exist".to_owned(),
                retryable: false,
            }),
        }
    }

    /// [`ObjectStore::get`] with the headers S3 serves the object with; `None` when absent.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        limit: u64,
    ) -> Result<Option<StoredObject>, StorageError> {
        let out = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(s3_error("get", bucket, key, e)),
        };
        let size = out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        if size > limit {
            return Err(StorageError::TooLarge {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                size,
                limit,
            });
        }
        let content_type = out.content_type().map(str::to_owned);
        let cache_control = out.cache_control().map(str::to_owned);
        let etag = out.e_tag().map(str::to_owned);
        let body = out.body.collect().await.map_err(|e| StorageError::S3 {
            operation: "get",
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
            retryable: true,
        })?;
        Ok(Some(StoredObject { bytes: body.into_bytes(), content_type, cache_control, etag }))
    }

    /// Writes an object encrypted with our KMS key; returns its version id.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<Option<String>, StorageError> {
        self.put_with(
            bucket,
            key,
            bytes,
            &ObjectMeta { content_type, cache_control: None, tags: None },
        )
        .await
    }

    /// [`ObjectStore::put`] with the headers S3 serves back and the object's tags.
    pub async fn put_with(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        meta: &ObjectMeta<'_>,
    ) -> Result<Option<String>, StorageError> {
        let out = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(meta.content_type)
            .set_cache_control(meta.cache_control.map(str::to_owned))
            .set_tagging(meta.tags.map(str::to_owned))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .bucket_key_enabled(true)
            .body(ByteStream::from(bytes));
        let out = match self.lock {
            Some(lock) => out
                .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                    (Utc::now() + lock.retain).timestamp(),
                ))
                // S3 requires a checksum on every write that sets a lock.
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
                .set_if_none_match(lock.new_keys_only.then(|| "*".to_owned())),
            None => out,
        };
        let out = out.send().await.map_err(|e| s3_error("put", bucket, key, e))?;
        Ok(out.version_id().map(str::to_owned))
    }

    /// Replaces the current version's tags with one `name=value`. `false` when
    /// the object does not exist (nothing left to tag).
    pub async fn set_tag(
        &self,
        bucket: &str,
        key: &str,
        name: &str,
        value: &str,
    ) -> Result<bool, StorageError> {
        use aws_sdk_s3::types::{Tag, Tagging};
        let tag = Tag::builder()
            .key(name)
            .value(value)
            .build()
            .map_err(|e| s3_error_text("tag", bucket, key, e))?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| s3_error_text("tag", bucket, key, e))?;
        match self.s3.put_object_tagging().bucket(bucket).key(key).tagging(tagging).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(s3_error("tag", bucket, key, e)),
        }
    }

    /// The value of one tag of the current version; `None` when the object or the tag is absent.
    pub async fn tag(
        &self,
        bucket: &str,
        key: &str,
        name: &str,
    ) -> Result<Option<String>, StorageError> {
        match self.s3.get_object_tagging().bucket(bucket).key(key).send().await {
            Ok(out) => {
                Ok(out.tag_set().iter().find(|t| t.key() == name).map(|t| t.value().to_owned()))
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(s3_error("get-tags", bucket, key, e)),
        }
    }

    /// A GET URL that works for `expires_in` (and no longer than the signing
    /// credentials), served with `cache_control` instead of the object's own.
    pub async fn presigned_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
        cache_control: &str,
    ) -> Result<String, StorageError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
            .map_err(|e| s3_error_text("presign", bucket, key, e))?;
        let request = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .response_cache_control(cache_control)
            .presigned(config)
            .await
            .map_err(|e| s3_error("presign", bucket, key, e))?;
        Ok(request.uri().to_owned())
    }

    /// Removes every version and delete marker of one key: on a versioned
    /// bucket a plain DELETE only hides the data, and originals must really go.
    pub async fn delete_all_versions(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<usize, StorageError> {
        let (mut versions, _) = self.versions_under(bucket, key).await?;
        versions.retain(|v| v.key == key);
        let deleted = self.delete_versions(bucket, &versions).await;
        if let Some(f) = deleted.failures.first() {
            let message = format!("{}: {}", f.code, f.message);
            return Err(StorageError::S3 {
                operation: "delete version",
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                message,
                retryable: purge::transient_code(&f.code),
            });
        }
        Ok(deleted.tally.removed() as usize)
    }

    /// Starts a multipart upload encrypted with our KMS key; returns its id.
    pub async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
    ) -> Result<String, StorageError> {
        let out = self
            .s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .bucket_key_enabled(true)
            .send()
            .await
            .map_err(|e| s3_error("create multipart upload", bucket, key, e))?;
        out.upload_id().map(str::to_owned).ok_or_else(|| StorageError::S3 {
            operation: "create multipart upload",
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: "no upload id in the answer".into(),
            retryable: true,
        })
    }

    /// Stores one part; returns its ETag for the completion.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: i32,
        bytes: bytes::Bytes,
    ) -> Result<String, StorageError> {
        let out = self
            .s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("upload part", bucket, key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    /// Makes the uploaded parts the object; returns its version id.
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<Option<String>, StorageError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let parts = parts
            .iter()
            .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
            .collect();
        let out = self
            .s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .set_if_none_match(self.lock.filter(|l| l.new_keys_only).map(|_| "*".to_owned()))
            .send()
            .await
            .map_err(|e| s3_error("complete multipart upload", bucket, key, e))?;
        let version = out.version_id().map(str::to_owned);
        // A multipart upload takes the bucket's default lock (if any) when it
        // completes; this sets the store's own explicitly, as a floor.
        if let Some(lock) = self.lock {
            self.lock_version(bucket, key, version.as_deref(), Utc::now() + lock.retain).await?;
        }
        Ok(version)
    }

    pub async fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        self.s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| s3_error("abort multipart upload", bucket, key, e))?;
        Ok(())
    }

    /// Aborts multipart uploads under `prefix` started before `cutoff`: the
    /// leftovers of runs that were killed. Returns how many.
    pub async fn abort_uploads_before(
        &self,
        bucket: &str,
        prefix: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .s3
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| s3_error("list multipart uploads", bucket, prefix, e))?;
            for upload in page.uploads() {
                let started =
                    upload.initiated().and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), 0));
                if let (Some(key), Some(id), Some(started)) =
                    (upload.key(), upload.upload_id(), started)
                {
                    if started < cutoff {
                        self.abort_multipart(bucket, key, id).await?;
                        aborted += 1;
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(aborted);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
        }
    }

    /// Every key under `prefix`, listing page by page.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut token = None::<String>;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error("list", bucket, prefix, e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    /// An object's bytes in order, read as ranged GETs of [`Ranges::size`]
    /// bytes with [`Ranges::in_flight`] of them at once: more than one
    /// connection's throughput, memory bounded by the ranges in flight, and a
    /// connection dropped mid-body costs one range, read again, rather than
    /// the whole read. Every range is of the one version `head` describes:
    /// pinned by version id, or by ETag when the bucket keeps none.
    pub fn get_ranges(
        &self,
        bucket: &str,
        key: &str,
        head: &ObjectHead,
        ranges: Ranges,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, StorageError>> + Send + 'static {
        use futures_util::StreamExt;
        let this = self.clone();
        let (bucket, key, head) = (bucket.to_owned(), key.to_owned(), head.clone());
        let size = ranges.size.max(1);
        let starts = (0..head.size.div_ceil(size)).map(move |i| i * size);
        futures_util::stream::iter(starts)
            .map(move |start| {
                let (this, bucket, key, head) =
                    (this.clone(), bucket.clone(), key.clone(), head.clone());
                let last = (start + size).min(head.size) - 1;
                async move { this.get_range(&bucket, &key, &head, start, last).await }
            })
            .buffered(ranges.in_flight.max(1))
    }

    /// Bytes `first..=last` of one version, read again when the body breaks
    /// off (the SDK retries a failed request, not a body cut short).
    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        head: &ObjectHead,
        first: u64,
        last: u64,
    ) -> Result<bytes::Bytes, StorageError> {
        let failed = |message: String, retryable: bool| StorageError::S3 {
            operation: "get",
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message,
            retryable,
        };
        let mut attempt = 1;
        loop {
            let out = self
                .s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .range(format!("bytes={first}-{last}"))
                .set_version_id(head.version_id.clone())
                .set_if_match(if head.version_id.is_none() { head.etag.clone() } else { None })
                .send()
                .await
                .map_err(|e| s3_error("get", bucket, key, e))?;
            match out.body.collect().await {
                Ok(body) => {
                    let bytes = body.into_bytes();
                    let want = last - first + 1;
                    if bytes.len() as u64 != want {
                        return Err(failed(
                            format!("range {first}-{last}: {} of {want} bytes", bytes.len()),
                            false,
                        ));
                    }
                    return Ok(bytes);
                }
                Err(e) if attempt < RANGE_ATTEMPTS => {
                    tracing::warn!(bucket, key, first, attempt, error = %e, "range cut short; reading it again");
                    attempt += 1;
                }
                Err(e) => return Err(failed(format!("range {first}-{last}: {e}"), true)),
            }
        }
    }

    /// A presigned POST that lets a browser upload exactly one object to
    /// `bucket/key`, at most `max_bytes`, encrypted with our key.
    pub async fn presigned_post(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        max_bytes: u64,
        expires_in: Duration,
        endpoint: &PostEndpoint,
    ) -> Result<PresignedPost, StorageError> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| StorageError::Credentials("no provider configured".into()))?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| StorageError::Credentials(e.to_string()))?;
        let signer = PostSigner {
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
            region: &endpoint.region,
        };
        let upload =
            PostUpload { bucket, key, content_type, max_bytes, kms_key_id: &self.kms_key_id };
        Ok(signer.sign(&upload, Utc::now(), expires_in, endpoint.url(bucket)))
    }
}

/// Where browsers send presigned POSTs.
#[derive(Clone, Debug)]
pub struct PostEndpoint {
    pub region: String,
    /// Path-style base URL of an emulator; `None` for AWS's virtual-host URLs.
    pub override_url: Option<String>,
}

impl PostEndpoint {
    fn url(&self, bucket: &str) -> String {
        match &self.override_url {
            Some(base) => format!("{}/{bucket}", base.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/", self.region),
        }
    }
}

/// The upload a POST policy allows.
pub struct PostUpload<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// The form must send exactly this `Content-Type` (S3 stores and serves it).
    pub content_type: &'a str,
    pub max_bytes: u64,
    pub kms_key_id: &'a str,
}

/// Credentials and scope for SigV4 POST signing.
pub struct PostSigner<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
}

/// The URL and form fields a browser posts (fields first, then `file`).
#[derive(Debug, Clone, Serialize)]
pub struct PresignedPost {
    pub url: String,
    pub fields: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

impl PresignedPost {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl PostSigner<'_> {
    /// Builds and signs the POST policy (AWS Signature Version 4). S3 enforces its
    /// conditions — exact key, content type, size range, KMS encryption — on upload.
    pub fn sign(
        &self,
        upload: &PostUpload<'_>,
        now: DateTime<Utc>,
        expires_in: Duration,
        url: String,
    ) -> PresignedPost {
        let date = now.format("%Y%m%d").to_string();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let credential = format!("{}/{date}/{}/s3/aws4_request", self.access_key_id, self.region);
        let expires_at = now
            + chrono::Duration::from_std(expires_in)
                .unwrap_or_else(|_| chrono::Duration::minutes(15));

        let mut fields = vec![
            ("key".to_owned(), upload.key.to_owned()),
            ("Content-Type".to_owned(), upload.content_type.to_owned()),
            // 201 with an XML body rather than an empty 204: a browser form
            // posted into a frame sees a page load, a script sees the ETag.
            ("success_action_status".to_owned(), "201".to_owned()),
            ("x-amz-server-side-encryption".to_owned(), "aws:kms".to_owned()),
            (
                "x-amz-server-side-encryption-aws-kms-key-id".to_owned(),
                upload.kms_key_id.to_owned(),
            ),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential".to_owned(), credential),
            ("x-amz-date".to_owned(), amz_date),
        ];
        if let Some(token) = self.session_token {
            fields.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let mut conditions = vec![serde_json::json!({ "bucket": upload.bucket })];
        conditions.extend(fields.iter().map(|(k, v)| serde_json::json!({ k.as_str(): v })));
        conditions.push(serde_json::json!(["content-length-range", 1, upload.max_bytes]));
        let policy = serde_json::json!({
            "expiration": expires_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "conditions": conditions,
        });
        let policy_b64 = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signature = hex::encode(hmac(&self.signing_key(&date), policy_b64.as_bytes()));
        fields.push(("policy".to_owned(), policy_b64));
        fields.push(("x-amz-signature".to_owned(), signature));
        PresignedPost { url, fields, expires_at }
    }

    fn signing_key(&self, date: &str) -> Vec<u8> {
        let k_date = hmac(format!("AWS4{}", self.secret_access_key).as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        hmac(&k_service, b"aws4_request")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // AWS's worked example "Example: Browser-Based Upload using HTTP POST (Using
    // AWS Signature Version 4)" signs this policy with these credentials.
    #[test]
    fn signing_key_matches_aws_example() {
        let signer = PostSigner {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            session_token: None,
            region: "us-east-1",
        };
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let sig = hex::encode(hmac(&signer.signing_key("20151229"), policy.as_bytes()));
        assert_eq!(sig, "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e");
    }

    // The emulator does not enforce POST policies, so the conditions S3 will
    // enforce are checked here, on the document we sign.
    #[test]
    fn policy_pins_key_type_size_and_encryption() {
        let signer = PostSigner {
            access_key_id: "AKID",
            secret_access_key: "secret",
            session_token: Some("tok"),
            region: "eu-west-1",
        };
        let upload = PostUpload {
            bucket: "gallery-originals",
            key: "originals/a/b/c.jpg",
            content_type: "image/jpeg",
            max_bytes: 50_000_000,
            kms_key_id: "arn:aws:kms:eu-west-1:1:key/k",
        };
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let post = signer.sign(&upload, now, Duration::from_secs(900), "https://example/".into());
        let policy = base64::engine::general_purpose::STANDARD
            .decode(post.field("policy").unwrap())
            .unwrap();
        let policy: serde_json::Value = serde_json::from_slice(&policy).unwrap();
        assert_eq!(policy["expiration"], "2026-01-02T03:19:05.000Z");
        let conditions = policy["conditions"].as_array().unwrap();
        let has = |c: serde_json::Value| conditions.contains(&c);
        assert!(has(serde_json::json!({"bucket": "gallery-originals"})));
        assert!(
            has(serde_json::json!({"key": "originals/a/b/c.jpg"})),
            "exact key, not starts-with"
        );
        assert!(has(serde_json::json!({"Content-Type": "image/jpeg"})), "exact content type");
        assert!(has(serde_json::json!(["content-length-range", 1, 50_000_000])));
        assert!(has(serde_json::json!({"x-amz-server-side-encryption": "aws:kms"})));
        assert!(has(
            serde_json::json!({"x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:eu-west-1:1:key/k"})
        ));
        assert!(has(serde_json::json!({"x-amz-security-token": "tok"})));
        assert_eq!(post.field("x-amz-credential"), Some("AKID/20260102/eu-west-1/s3/aws4_request"));
        // Every form field except the policy and signature is bound by a condition.
        for (name, value) in &post.fields {
            if name != "policy" && name != "x-amz-signature" {
                assert!(has(serde_json::json!({ name.as_str(): value })), "{name} unbound");
            }
        }
        assert_eq!(post.field("x-amz-signature").unwrap().len(), 64);
    }
}
