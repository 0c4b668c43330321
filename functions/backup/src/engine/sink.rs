//! Where a backup's sealed bytes go: an S3 multipart upload (the functions),
//! or a local file (the benchmark, which times the pipeline without S3).
//! Bytes arrive in parts of [`PART`] (S3's minimum part is 5 MiB, except the
//! last), at most [`PARTS_IN_FLIGHT`] uploading at once, so memory stays
//! flat (bounded by that many parts) while S3's per-request latency overlaps.

use std::future::Future;

use bytes::Bytes;

use super::BackupError;
use shared::aws::storage::{ObjectStore, StorageError};

pub const PART: usize = 8 << 20;

/// Parts uploading at once: 3 × 8 MiB in memory at most.
pub const PARTS_IN_FLIGHT: usize = 3;

pub trait Sink: Send + 'static {
    /// Stores part `number` (1-based, in order).
    fn part(
        &mut self,
        number: i32,
        bytes: Bytes,
    ) -> impl Future<Output = Result<(), BackupError>> + Send;
    /// Makes the object exist; returns its version id.
    fn complete(self) -> impl Future<Output = Result<Option<String>, BackupError>> + Send;
    /// Leaves nothing behind that looks like an object.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// An S3 multipart upload, encrypted with the store's KMS key.
pub struct S3Sink {
    store: ObjectStore,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<(i32, String)>,
    in_flight: tokio::task::JoinSet<Result<(i32, String), StorageError>>,
}

impl S3Sink {
    pub async fn start(store: &ObjectStore, bucket: &str, key: &str) -> Result<Self, StorageError> {
        let upload_id = store.create_multipart(bucket, key, "application/octet-stream").await?;
        Ok(Self {
            store: store.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
            in_flight: tokio::task::JoinSet::new(),
        })
    }

    /// Waits for one upload in flight; its failure is the run's.
    async fn settle_one(&mut self) -> Result<(), BackupError> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(part))) => {
                self.parts.push(part);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e.into()),
            Some(Err(e)) => Err(BackupError::Worker(format!("a part upload stopped: {e}"))),
            None => Ok(()),
        }
    }
}

impl Sink for S3Sink {
    async fn part(&mut self, number: i32, bytes: Bytes) -> Result<(), BackupError> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.settle_one().await?;
        }
        let (store, bucket, key, upload_id) =
            (self.store.clone(), self.bucket.clone(), self.key.clone(), self.upload_id.clone());
        self.in_flight.spawn(async move {
            let etag = store.upload_part(&bucket, &key, &upload_id, number, bytes).await?;
            Ok((number, etag))
        });
        Ok(())
    }

    async fn complete(mut self) -> Result<Option<String>, BackupError> {
        while !self.in_flight.is_empty() {
            if let Err(e) = self.settle_one().await {
                self.abort().await;
                return Err(e);
            }
        }
        // S3 wants the parts in ascending order; they finish in any.
        self.parts.sort_by_key(|(n, _)| *n);
        Ok(self
            .store
            .complete_multipart(&self.bucket, &self.key, &self.upload_id, &self.parts)
            .await?)
    }

    async fn abort(mut self) {
        // Nothing still uploading may land after the abort.
        self.in_flight.shutdown().await;
        if let Err(e) = self.store.abort_multipart(&self.bucket, &self.key, &self.upload_id).await {
            // The next run aborts uploads older than a run can last.
            tracing::warn!(error = %e, key = %self.key, "could not abort the multipart upload");
        }
    }
}

/// A local file: written as parts arrive, removed on abort.
pub struct FileSink {
    path: std::path::PathBuf,
    file: tokio::fs::File,
}

impl FileSink {
    pub async fn create(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self { path: path.to_owned(), file: tokio::fs::File::create(path).await? })
    }
}

impl Sink for FileSink {
    async fn part(&mut self, _number: i32, bytes: Bytes) -> Result<(), BackupError> {
        use tokio::io::AsyncWriteExt;
        self.file
            .write_all(&bytes)
            .await
            .map_err(|e| BackupError::Worker(format!("writing {}: {e}", self.path.display())))
    }

    async fn complete(mut self) -> Result<Option<String>, BackupError> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await.map_err(|e| BackupError::Worker(e.to_string()))?;
        self.file.sync_all().await.map_err(|e| BackupError::Worker(e.to_string()))?;
        Ok(None)
    }

    async fn abort(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}
