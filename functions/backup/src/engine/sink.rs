//! Where a backup's sealed bytes go: an S3 multipart upload (the functions),
//! or a local file (the benchmark, which times the pipeline without S3).
//! Bytes arrive in parts of [`PART`] (S3's minimum part is 5 MiB, except the
//! last), one part in flight at a time, so memory stays flat.

use std::future::Future;

use bytes::Bytes;

use super::BackupError;
use shared::aws::storage::{ObjectStore, StorageError};

pub const PART: usize = 8 << 20;

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
        })
    }
}

impl Sink for S3Sink {
    async fn part(&mut self, number: i32, bytes: Bytes) -> Result<(), BackupError> {
        let etag =
            self.store.upload_part(&self.bucket, &self.key, &self.upload_id, number, bytes).await?;
        self.parts.push((number, etag));
        Ok(())
    }

    async fn complete(self) -> Result<Option<String>, BackupError> {
        Ok(self
            .store
            .complete_multipart(&self.bucket, &self.key, &self.upload_id, &self.parts)
            .await?)
    }

    async fn abort(self) {
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
