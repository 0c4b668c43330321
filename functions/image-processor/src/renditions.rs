//! From an uploaded original to stored renditions: the image processor's core.
//!
//! Order matters for safety: renditions are written to deterministic keys,
//! then recorded on the image row, and only after that commit is the original
//! deleted. A crash anywhere leaves a state that a retry completes; a duplicate
//! event for a finished image does nothing.

use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};
use tracing::{info, instrument, warn};

use crate::imaging::{self, ImagingError, Limits, Rights};
use shared::aws::storage::{ObjectMeta, ObjectStore, StorageError};
use shared::db::{self, Claim, DbError, ImageWork};
pub use shared::domain::decode_event_key;
use shared::domain::{rendition_key, RenditionRecord};
use shared::media::{self, EdgeMedia, RENDITION_CACHE_CONTROL};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("image worker stopped: {0}")]
    Worker(String),
    #[error("imaging failed: {0}")]
    Imaging(ImagingError),
    #[error("the uploaded original was not found")]
    OriginalMissing,
}

impl ProcessError {
    /// Transient failures return an error to Lambda, which retries the event.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
            Self::Worker(_) => true,
            Self::Imaging(e) => !e.is_permanent(),
            Self::OriginalMissing => false,
        }
    }
}

/// What became of one uploaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    Ready {
        renditions: usize,
    },
    /// The upload was refused for good; the reason is on the image row.
    Failed {
        reason: String,
    },
    /// A duplicate or late event for an image that already finished.
    AlreadyFinished,
    /// Not an upload the API handed out; left for the bucket's lifecycle rule.
    Ignored,
}

/// Everything the processor needs, built once per cold start.
pub struct Processor {
    pub pool: Pool,
    pub store: ObjectStore,
    pub originals_bucket: String,
    pub processed_bucket: String,
    pub limits: Limits,
    pub max_bytes: u64,
}

impl Processor {
    #[instrument(skip_all, fields(bucket = %bucket, key = %key, image_id))]
    pub async fn process(&self, bucket: &str, key: &str) -> Result<ProcessOutcome, ProcessError> {
        if bucket != self.originals_bucket {
            warn!("event for a bucket that is not the originals bucket; ignored");
            return Ok(ProcessOutcome::Ignored);
        }
        let work =
            match db::claim_image(&self.pool.get().await.map_err(DbError::from)?, key).await? {
                Claim::Proceed(work) => work,
                Claim::Finished(status) => {
                    info!(status = status.as_str(), "image already finished; nothing to do");
                    return Ok(ProcessOutcome::AlreadyFinished);
                }
                Claim::Unknown => {
                    warn!("no image row for this key; ignored");
                    return Ok(ProcessOutcome::Ignored);
                }
            };
        tracing::Span::current().record("image_id", tracing::field::display(work.image_id));
        match self.render_and_store(key, &work).await {
            Ok(renditions) => Ok(ProcessOutcome::Ready { renditions }),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                let reason = artist_reason(&e);
                let marked = db::mark_image_failed(
                    &self.pool.get().await.map_err(DbError::from)?,
                    work.image_id,
                    &reason,
                )
                .await?;
                if !marked {
                    // A duplicate event raced one that finished the image and
                    // deleted its original: the image is ready, not refused.
                    info!(reason = %reason, "image finished by another invocation");
                    return Ok(ProcessOutcome::AlreadyFinished);
                }
                warn!(reason = %reason, "image refused");
                shared::telemetry::count("image-processor", "ImageFailed", 1.0);
                Ok(ProcessOutcome::Failed { reason })
            }
        }
    }

    async fn render_and_store(&self, key: &str, work: &ImageWork) -> Result<usize, ProcessError> {
        // HEAD first: an oversized upload is refused without downloading it.
        let head = self
            .store
            .head(&self.originals_bucket, key)
            .await?
            .ok_or(ProcessError::OriginalMissing)?;
        if head.size > self.max_bytes {
            return Err(ProcessError::Imaging(ImagingError::TooManyBytes {
                bytes: head.size,
                limit: self.max_bytes,
            }));
        }
        let original = self.store.get(&self.originals_bucket, key, self.max_bytes).await.map_err(
            |e| match e {
                StorageError::TooLarge { size, limit, .. } => {
                    ProcessError::Imaging(ImagingError::TooManyBytes { bytes: size, limit })
                }
                other => other.into(),
            },
        )?;
        let content_sha256 = hex::encode(Sha256::digest(&original));
        let rights = Rights { artist: work.artist_name.clone(), title: work.artwork_title.clone() };
        let limits = self.limits;
        // Decoding and encoding are CPU-bound; keep them off the async workers.
        let renditions =
            tokio::task::spawn_blocking(move || imaging::render(&original, &limits, &rights))
                .await
                .map_err(|e| ProcessError::Worker(e.to_string()))?
                .map_err(ProcessError::Imaging)?;

        // Written private; the settle below publishes them if the artwork is public.
        let tagging = media::initial_tagging();
        let mut records = Vec::with_capacity(renditions.len());
        for r in renditions {
            let out_key =
                rendition_key(work.artwork_id, work.image_id, r.long_edge, r.format.extension());
            let bytes = r.bytes.len() as u64;
            let meta = ObjectMeta {
                content_type: r.format.content_type(),
                cache_control: Some(RENDITION_CACHE_CONTROL),
                tags: Some(&tagging),
            };
            self.store.put_with(&self.processed_bucket, &out_key, r.bytes, &meta).await?;
            info!(key = %out_key, bytes, width = r.width, height = r.height, "rendition written");
            records.push(RenditionRecord {
                format: r.format.extension().to_owned(),
                long_edge: r.long_edge,
                width: r.width,
                height: r.height,
                bytes,
                sha256: r.sha256,
                key: out_key,
            });
        }
        // The connection goes back before the settle takes one: the function's
        // pool has exactly one (DATABASE_POOL_SIZE).
        if !db::mark_image_ready(
            &self.pool.get().await.map_err(DbError::from)?,
            work.image_id,
            &records,
            &content_sha256,
        )
        .await?
        {
            // Another invocation finished it first; its renditions are identical.
            info!("image was finished concurrently");
        }
        let media = EdgeMedia {
            pool: self.pool.clone(),
            store: self.store.clone(),
            bucket: self.processed_bucket.clone(),
        };
        // A new image of a published artwork goes public now; if this fails the
        // retry finds the image finished, so the reconcile sweep publishes it.
        match media.settle_rewritten(work.artwork_id, work.image_id).await {
            Ok(settled) => info!(published = settled.published.len(), "edge visibility settled"),
            Err(e) => warn!(error = %e, "edge visibility not settled; the reconcile sweep will"),
        }
        let removed = self.store.delete_all_versions(&self.originals_bucket, key).await?;
        info!(versions = removed, "original deleted");
        Ok(records.len())
    }
}

/// The reason shown to the artist: the imaging error's own words, or a
/// generic line for the few storage errors that are permanent.
fn artist_reason(e: &ProcessError) -> String {
    match e {
        ProcessError::Imaging(i) => i.to_string(),
        ProcessError::OriginalMissing => {
            "the upload was not found; please upload it again".to_owned()
        }
        _ => "the upload could not be read; please upload it again".to_owned(),
    }
}
