//! The queries behind the retention policy: keyset pages of what is due, and
//! the owner functions (V4, V6) that remove only what the policy allows.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::DbError;

/// Where a page of a rule's items ends: the next page starts after it, so a
/// run goes through every due item even when some keep failing.
pub type PageAfter = Option<(DateTime<Utc>, Uuid)>;

/// An item due for purging, with the position that orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    pub id: Uuid,
    /// The artwork whose prefixes hold the item's objects.
    pub artwork_id: Uuid,
    pub at: DateTime<Utc>,
}

fn due(rows: Vec<tokio_postgres::Row>) -> Result<Vec<DueItem>, DbError> {
    rows.iter()
        .map(|r| Ok(DueItem { id: r.try_get(0)?, artwork_id: r.try_get(1)?, at: r.try_get(2)? }))
        .collect()
}

fn after_parts(after: PageAfter) -> (Option<DateTime<Utc>>, Uuid) {
    (after.map(|(at, _)| at), after.map(|(_, id)| id).unwrap_or_default())
}

/// Artworks soft-deleted before `cutoff`, oldest first, after `after`.
pub async fn deleted_artworks_page(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
    after: PageAfter,
    limit: i64,
) -> Result<Vec<DueItem>, DbError> {
    let (at, id) = after_parts(after);
    due(db
        .query(
            "SELECT id, id, deleted_at FROM artworks WHERE deleted_at < $1 AND ($2::timestamptz IS NULL OR (deleted_at, id) > ($2, $3)) \
             ORDER BY deleted_at, id LIMIT $4",
            &[&cutoff, &at, &id, &limit],
        )
        .await?)
}

/// Removes an artwork soft-deleted before `cutoff`; its editions and images go
/// with it (ON DELETE CASCADE). The application role cannot DELETE: the
/// owner's function checks the row is one the policy allows to go.
pub async fn purge_artwork(
    db: &impl GenericClient,
    id: Uuid,
    cutoff: DateTime<Utc>,
) -> Result<bool, DbError> {
    Ok(db.query_one("SELECT purge_deleted_artwork($1, $2)", &[&id, &cutoff]).await?.try_get(0)?)
}

/// Images removed by their artist, failed before `failed_before`, or uploads
/// never made since `pending_before`, oldest first, after `after`.
pub async fn stale_images_page(
    db: &impl GenericClient,
    failed_before: DateTime<Utc>,
    pending_before: DateTime<Utc>,
    after: PageAfter,
    limit: i64,
) -> Result<Vec<DueItem>, DbError> {
    let (at, id) = after_parts(after);
    due(db
        .query(
            "SELECT id, artwork_id, updated_at FROM images \
             WHERE (deleted_at IS NOT NULL OR status <> 'ready') \
               AND (deleted_at IS NOT NULL OR (status = 'failed' AND updated_at < $1) OR (status = 'pending' AND created_at < $2)) \
               AND ($3::timestamptz IS NULL OR (updated_at, id) > ($3, $4)) \
             ORDER BY updated_at, id LIMIT $5",
            &[&failed_before, &pending_before, &at, &id, &limit],
        )
        .await?)
}

/// Removes an image row nobody can see any more (see `purge_image` in V4).
pub async fn delete_image(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    Ok(db.query_one("SELECT purge_image($1)", &[&id]).await?.try_get(0)?)
}

/// Images whose processing started before `before` and never finished (the
/// processor was killed, or its event was lost): recorded as failed, so the
/// artist sees why and the failed-image rule removes them in its time.
pub async fn fail_stuck_images(
    db: &impl GenericClient,
    before: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<Uuid>, DbError> {
    db.query(
        "UPDATE images SET status = 'failed', failure_reason = $2, updated_at = now() \
         WHERE status = 'processing' AND updated_at < $1 AND deleted_at IS NULL RETURNING id",
        &[&before, &reason],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

pub async fn count_stuck_images(
    db: &impl GenericClient,
    before: DateTime<Utc>,
) -> Result<u64, DbError> {
    count(db, "SELECT count(*) FROM images WHERE status = 'processing' AND updated_at < $1 AND deleted_at IS NULL", before).await
}

async fn count(db: &impl GenericClient, sql: &str, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    let n: i64 = db.query_one(sql, &[&cutoff]).await?.try_get(0)?;
    Ok(n.max(0) as u64)
}

/// Deletes tokens that expired or were revoked before `cutoff`.
pub async fn delete_dead_tokens(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbError> {
    count(db, "SELECT purge_dead_tokens($1)", cutoff).await
}

/// How many tokens [`delete_dead_tokens`] would delete (same predicate).
pub async fn count_dead_tokens(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbError> {
    count(db, "SELECT count(*) FROM api_tokens WHERE expires_at < $1 OR revoked_at < $1", cutoff)
        .await
}

pub async fn count_idempotency_keys(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbError> {
    count(db, "SELECT count(*) FROM idempotency_keys WHERE created_at < $1", cutoff).await
}

/// Audit entries older than `cutoff` (erasure entries are kept: see V6).
pub async fn purge_audit(db: &impl GenericClient, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    count(db, "SELECT purge_audit_before($1)", cutoff).await
}

pub async fn count_audit(db: &impl GenericClient, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    count(db, "SELECT count(*) FROM audit_log WHERE at < $1 AND action NOT LIKE '%eras%'", cutoff)
        .await
}

/// Records of expired backups and of drills, older than `cutoff`.
pub async fn purge_backup_records(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbError> {
    count(db, "SELECT purge_backup_records_before($1)", cutoff).await
}

pub async fn count_backup_records(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbError> {
    count(
        db,
        "SELECT (SELECT count(*) FROM restore_drills WHERE finished_at < $1) + (SELECT count(*) FROM backups WHERE expired_at < $1)",
        cutoff,
    )
    .await
}

/// A backup whose objects still exist, as the rotation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupListing {
    pub id: Uuid,
    pub object_key: String,
    pub manifest_key: Option<String>,
    pub started_at: DateTime<Utc>,
    pub succeeded: bool,
    /// A restore drill of this backup succeeded.
    pub drill_succeeded: bool,
}

/// Backups whose objects still exist (not running), newest first.
pub async fn live_backups(db: &impl GenericClient) -> Result<Vec<BackupListing>, DbError> {
    db.query(
        "SELECT b.id, b.object_key, b.manifest_key, b.started_at, b.status, \
                EXISTS (SELECT 1 FROM restore_drills d WHERE d.backup_id = b.id AND d.status = 'succeeded') \
         FROM backups b WHERE b.expired_at IS NULL AND b.status <> 'running' ORDER BY b.started_at DESC, b.id DESC",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        let status: String = r.try_get(4)?;
        Ok(BackupListing {
            id: r.try_get(0)?,
            object_key: r.try_get(1)?,
            manifest_key: r.try_get(2)?,
            started_at: r.try_get(3)?,
            succeeded: status == "succeeded",
            drill_succeeded: r.try_get(5)?,
        })
    })
    .collect()
}

/// Records that a backup's objects are gone; `false` if it already was.
pub async fn mark_backup_expired(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    Ok(db
        .execute(
            "UPDATE backups SET expired_at = now() WHERE id = $1 AND expired_at IS NULL",
            &[&id],
        )
        .await?
        == 1)
}
