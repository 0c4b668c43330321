//! The retention policy and secure deletion.
//!
//! Deleting from a versioned bucket with a plain DELETE only adds a delete
//! marker; the data stays. Every deletion here removes *all* versions of an
//! object first, and only then the row that points at it, so a failure part-way
//! leaves the row for the next run to finish.

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tracing::{info, instrument};

use crate::db::{self, AuditEntry, BackupListing, DbError, ImageObjects};
use crate::media::EdgeMedia;
use crate::storage::{ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RetentionError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
        }
    }
}

/// How long each kind of data is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A soft-deleted artwork can be restored by support until this passes.
    pub deleted_artwork_grace: Duration,
    /// A failed upload's reason stays visible to the artist this long.
    pub failed_image_age: Duration,
    /// An upload slot never used is abandoned after this.
    pub abandoned_upload_age: Duration,
    /// Expired or revoked tokens are kept this long for investigations.
    pub dead_token_age: Duration,
    /// Backups older than this are expired...
    pub backup_age: Duration,
    /// ...except the newest successful ones, however old: never delete the last good backup.
    pub keep_backups: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            deleted_artwork_grace: Duration::days(30),
            failed_image_age: Duration::days(30),
            abandoned_upload_age: Duration::days(2),
            dead_token_age: Duration::days(90),
            backup_age: Duration::days(35),
            keep_backups: 7,
        }
    }
}

/// Which backups to expire: older than the policy allows, and not among the
/// newest `keep_backups` successful ones. Pure, so the rule is tested directly.
pub fn backups_to_expire(backups: &[BackupListing], now: DateTime<Utc>, policy: &Policy) -> Vec<BackupListing> {
    let mut newest_first: Vec<&BackupListing> = backups.iter().collect();
    newest_first.sort_by_key(|b| std::cmp::Reverse(b.started_at));
    let protected: Vec<_> = newest_first.iter().filter(|b| b.succeeded).take(policy.keep_backups).map(|b| b.id).collect();
    newest_first.into_iter().filter(|b| now - b.started_at > policy.backup_age && !protected.contains(&b.id)).cloned().collect()
}

/// What a run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub artworks_purged: u64,
    pub images_purged: u64,
    pub objects_deleted: u64,
    pub tokens_deleted: u64,
    pub idempotency_keys_deleted: u64,
    pub backups_expired: u64,
    /// Renditions whose edge visibility had drifted and was settled.
    pub edge_published: u64,
    pub edge_withdrawn: u64,
    /// Artworks whose drift could not be settled this run (logged; next run retries).
    pub edge_settle_failures: u64,
}

/// What a run would remove now, without removing anything (a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub artworks: u64,
    pub images: u64,
    /// Object keys whose every version would be deleted.
    pub object_keys: u64,
    pub tokens: u64,
    pub backups: u64,
    /// Up to ten of those keys, so an operator can check the rule picks what they expect.
    pub sample_keys: Vec<String>,
}

pub struct Retention {
    pub pool: Pool,
    pub store: ObjectStore,
    pub originals_bucket: String,
    pub processed_bucket: String,
    pub backups_bucket: String,
    pub policy: Policy,
    /// Rows handled per query, bounding one run's work.
    pub batch: i64,
}

const ACTOR: &str = "system:retention";

impl Retention {
    #[instrument(skip_all)]
    pub async fn run(&self, now: DateTime<Utc>, request_id: Option<&str>) -> Result<Report, RetentionError> {
        let mut report = Report::default();

        // First, so a withdrawal whose settle failed never waits on a purge;
        // and before this run takes its connection, since the settles need
        // one and the function's pool has exactly one.
        let media = EdgeMedia { pool: self.pool.clone(), store: self.store.clone(), bucket: self.processed_bucket.clone() };
        match media.reconcile(self.batch).await {
            Ok((settled, failed)) => {
                report.edge_published = settled.published.len() as u64;
                report.edge_withdrawn = settled.withdrawn.len() as u64;
                report.edge_settle_failures = failed.len() as u64;
                for (artwork, e) in failed {
                    tracing::warn!(%artwork, error = %e, "edge visibility not settled");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "edge reconcile skipped");
                report.edge_settle_failures += 1;
            }
        }

        let client = self.pool.get().await.map_err(DbError::from)?;
        let grace_cutoff = now - self.policy.deleted_artwork_grace;
        for (artwork_id, images) in db::artworks_deleted_before(&client, grace_cutoff, self.batch).await? {
            for image in &images {
                report.objects_deleted += self.delete_image_objects(image).await?;
            }
            if db::purge_artwork(&client, artwork_id, grace_cutoff).await? {
                report.artworks_purged += 1;
                report.images_purged += images.len() as u64;
                audit(&client, "retention.purge_artwork", format!("artwork:{artwork_id}"), request_id).await?;
            }
        }

        for image in
            db::stale_images(&client, now - self.policy.failed_image_age, now - self.policy.abandoned_upload_age, self.batch).await?
        {
            report.objects_deleted += self.delete_image_objects(&image).await?;
            if db::delete_image(&client, image.image_id).await? {
                report.images_purged += 1;
                audit(&client, "retention.purge_image", format!("image:{}", image.image_id), request_id).await?;
            }
        }

        report.tokens_deleted = db::delete_dead_tokens(&client, now - self.policy.dead_token_age).await?;
        // Replays are for a client retrying a timed-out POST, not for history.
        report.idempotency_keys_deleted = db::purge_idempotency_keys(&client, now - Duration::days(1)).await?;

        for backup in backups_to_expire(&db::live_backups(&client).await?, now, &self.policy) {
            // The manifest first: an object without one is never taken for a backup.
            let manifest = crate::backup::Manifest::key_for(&backup.object_key);
            report.objects_deleted += self.store.delete_all_versions(&self.backups_bucket, &manifest).await? as u64;
            report.objects_deleted += self.store.delete_all_versions(&self.backups_bucket, &backup.object_key).await? as u64;
            db::mark_backup_expired(&client, backup.id).await?;
            report.backups_expired += 1;
            audit(&client, "retention.expire_backup", format!("backup:{}", backup.id), request_id).await?;
        }
        info!(?report, "retention run finished");
        Ok(report)
    }

    /// The same selections as [`Retention::run`] (bounded by the same batch),
    /// counted instead of deleted.
    pub async fn preview(&self, now: DateTime<Utc>) -> Result<Preview, RetentionError> {
        let client = self.pool.get().await.map_err(DbError::from)?;
        let mut preview = Preview::default();
        let mut keys: Vec<String> = Vec::new();
        fn image_keys(image: &ImageObjects) -> impl Iterator<Item = String> + '_ {
            std::iter::once(image.original_key.clone()).chain(image.rendition_keys.iter().cloned())
        }
        for (_, images) in db::artworks_deleted_before(&client, now - self.policy.deleted_artwork_grace, self.batch).await? {
            preview.artworks += 1;
            preview.images += images.len() as u64;
            keys.extend(images.iter().flat_map(image_keys));
        }
        for image in
            db::stale_images(&client, now - self.policy.failed_image_age, now - self.policy.abandoned_upload_age, self.batch).await?
        {
            preview.images += 1;
            keys.extend(image_keys(&image));
        }
        preview.tokens = db::count_dead_tokens(&client, now - self.policy.dead_token_age).await?.max(0) as u64;
        for backup in backups_to_expire(&db::live_backups(&client).await?, now, &self.policy) {
            preview.backups += 1;
            keys.push(crate::backup::Manifest::key_for(&backup.object_key));
            keys.push(backup.object_key);
        }
        preview.object_keys = keys.len() as u64;
        keys.truncate(10);
        preview.sample_keys = keys;
        Ok(preview)
    }

    async fn delete_image_objects(&self, image: &ImageObjects) -> Result<u64, RetentionError> {
        let mut removed = self.store.delete_all_versions(&self.originals_bucket, &image.original_key).await? as u64;
        for key in &image.rendition_keys {
            removed += self.store.delete_all_versions(&self.processed_bucket, key).await? as u64;
        }
        Ok(removed)
    }
}

async fn audit(client: &db::Client, action: &str, target: String, request_id: Option<&str>) -> Result<(), DbError> {
    db::append_audit(client, &AuditEntry { actor: ACTOR, action, target: &target, request_id, detail: serde_json::json!({}) }).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn backup(days_ago: i64, succeeded: bool, now: DateTime<Utc>) -> BackupListing {
        BackupListing { id: Uuid::new_v4(), object_key: format!("b{days_ago}"), started_at: now - Duration::days(days_ago), succeeded }
    }

    #[test]
    fn old_backups_expire_but_the_newest_good_ones_stay() {
        let now = Utc::now();
        let policy = Policy { keep_backups: 2, ..Policy::default() };
        let all = vec![backup(1, true, now), backup(40, true, now), backup(50, false, now), backup(60, true, now), backup(70, true, now)];
        let expired: Vec<String> = backups_to_expire(&all, now, &policy).into_iter().map(|b| b.object_key).collect();
        // b1 and b40 are the two newest good backups; b40 stays despite its age.
        assert_eq!(expired, ["b50", "b60", "b70"]);
    }

    #[test]
    fn the_last_good_backup_is_never_expired() {
        let now = Utc::now();
        let all = vec![backup(400, true, now), backup(10, false, now)];
        let policy = Policy { keep_backups: 1, ..Policy::default() };
        assert!(backups_to_expire(&all, now, &policy).is_empty());
    }

    #[test]
    fn nothing_young_expires() {
        let now = Utc::now();
        let all: Vec<_> = (0..20).map(|d| backup(d, true, now)).collect();
        assert!(backups_to_expire(&all, now, &Policy { keep_backups: 0, ..Policy::default() }).is_empty());
    }
}
