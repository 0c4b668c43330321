//! The queries behind the retention policy.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::DbError;
use crate::domain::RenditionRecord;

/// An image whose stored objects must go with it.
#[derive(Debug, Clone)]
pub struct ImageObjects {
    pub image_id: Uuid,
    pub original_key: String,
    pub rendition_keys: Vec<String>,
}

fn image_objects(row: &tokio_postgres::Row) -> Result<ImageObjects, DbError> {
    let renditions: Vec<RenditionRecord> =
        serde_json::from_value(row.try_get("renditions")?).map_err(|e| DbError::Corrupt(e.to_string()))?;
    Ok(ImageObjects {
        image_id: row.try_get("id")?,
        original_key: row.try_get("original_key")?,
        rendition_keys: renditions.into_iter().map(|r| r.key).collect(),
    })
}

/// Artworks soft-deleted before `cutoff`, with all their images' objects.
pub async fn artworks_deleted_before(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<ImageObjects>)>, DbError> {
    let ids: Vec<Uuid> = db
        .query("SELECT id FROM artworks WHERE deleted_at < $1 ORDER BY deleted_at LIMIT $2", &[&cutoff, &limit])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let images = db
            .query("SELECT id, original_key, renditions FROM images WHERE artwork_id = $1", &[&id])
            .await?
            .iter()
            .map(image_objects)
            .collect::<Result<_, _>>()?;
        out.push((id, images));
    }
    Ok(out)
}

/// Removes an artwork soft-deleted before `cutoff`; its editions and images go
/// with it (ON DELETE CASCADE). The application role cannot DELETE: the
/// owner's function checks the row is one the policy allows to go.
pub async fn purge_artwork(db: &impl GenericClient, id: Uuid, cutoff: DateTime<Utc>) -> Result<bool, DbError> {
    Ok(db.query_one("SELECT purge_deleted_artwork($1, $2)", &[&id, &cutoff]).await?.try_get(0)?)
}

/// Images removed by their artist, failed images older than `failed_before`,
/// and uploads never completed since `pending_before`.
pub async fn stale_images(
    db: &impl GenericClient,
    failed_before: DateTime<Utc>,
    pending_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ImageObjects>, DbError> {
    db.query(
        "SELECT id, original_key, renditions FROM images \
         WHERE deleted_at IS NOT NULL OR (status = 'failed' AND updated_at < $1) OR (status = 'pending' AND created_at < $2) \
         ORDER BY updated_at LIMIT $3",
        &[&failed_before, &pending_before, &limit],
    )
    .await?
    .iter()
    .map(image_objects)
    .collect()
}

/// Removes an image row nobody can see any more (see `purge_image` in V4).
pub async fn delete_image(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    Ok(db.query_one("SELECT purge_image($1)", &[&id]).await?.try_get(0)?)
}

/// Deletes tokens that expired or were revoked before `cutoff`.
pub async fn delete_dead_tokens(db: &impl GenericClient, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    let n: i64 = db.query_one("SELECT purge_dead_tokens($1)", &[&cutoff]).await?.try_get(0)?;
    Ok(n as u64)
}

/// How many tokens [`delete_dead_tokens`] would delete (same predicate).
pub async fn count_dead_tokens(db: &impl GenericClient, cutoff: DateTime<Utc>) -> Result<i64, DbError> {
    Ok(db.query_one("SELECT count(*) FROM api_tokens WHERE expires_at < $1 OR revoked_at < $1", &[&cutoff]).await?.try_get(0)?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupListing {
    pub id: Uuid,
    pub object_key: String,
    pub started_at: DateTime<Utc>,
    pub succeeded: bool,
}

/// Backups whose objects still exist, newest first.
pub async fn live_backups(db: &impl GenericClient) -> Result<Vec<BackupListing>, DbError> {
    db.query(
        "SELECT id, object_key, started_at, status FROM backups WHERE expired_at IS NULL AND status <> 'running' ORDER BY started_at DESC",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        let status: String = r.try_get(3)?;
        Ok(BackupListing { id: r.try_get(0)?, object_key: r.try_get(1)?, started_at: r.try_get(2)?, succeeded: status == "succeeded" })
    })
    .collect()
}

pub async fn mark_backup_expired(db: &impl GenericClient, id: Uuid) -> Result<(), DbError> {
    db.execute("UPDATE backups SET expired_at = now() WHERE id = $1", &[&id]).await?;
    Ok(())
}
