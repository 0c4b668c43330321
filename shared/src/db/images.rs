//! Uploaded images and their renditions.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::domain::{Image, ImageStatus, RenditionRecord, Visibility};

fn image_from_row(row: &Row) -> Result<Image, DbError> {
    let status: String = row.try_get("status")?;
    let renditions: serde_json::Value = row.try_get("renditions")?;
    Ok(Image {
        id: row.try_get("id")?,
        artwork_id: row.try_get("artwork_id")?,
        original_key: row.try_get("original_key")?,
        status: status.parse().map_err(|e| DbError::Corrupt(format!("image status: {e}")))?,
        position: row.try_get("position")?,
        renditions: serde_json::from_value(renditions)
            .map_err(|e| DbError::Corrupt(format!("image renditions: {e}")))?,
        failure_reason: row.try_get("failure_reason")?,
        content_sha256: row.try_get("content_sha256")?,
        alt_text: row.try_get("alt_text")?,
        // Unknown (after a restore, until the next settle) is shown as private:
        // no public URL is handed out for a tag nobody has checked.
        edge_visibility: super::media::visibility(row.try_get("edge_visibility")?)?
            .unwrap_or(Visibility::Private),
        updated_at: row.try_get("updated_at")?,
    })
}

/// A new upload slot, placed after the artwork's other images.
pub async fn insert_image(
    db: &impl GenericClient,
    id: Uuid,
    artwork_id: Uuid,
    original_key: &str,
    alt_text: Option<&str>,
) -> Result<Image, DbError> {
    let row = db
        .query_one(
            "INSERT INTO images (id, artwork_id, original_key, alt_text, position) \
             VALUES ($1, $2, $3, $4, (SELECT COALESCE(max(position) + 1, 0) FROM images WHERE artwork_id = $2 AND deleted_at IS NULL)) \
             RETURNING *",
            &[&id, &artwork_id, &original_key, &alt_text],
        )
        .await?;
    image_from_row(&row)
}

/// Describes an image for visitors who cannot see it.
pub async fn set_alt_text(
    db: &impl GenericClient,
    id: Uuid,
    alt_text: &str,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE images SET alt_text = $2, updated_at = now() WHERE id = $1",
        &[&id, &alt_text],
    )
    .await?;
    Ok(())
}

/// An image not removed by its artist.
pub async fn image_by_id(db: &impl GenericClient, id: Uuid) -> Result<Option<Image>, DbError> {
    db.query_opt("SELECT * FROM images WHERE id = $1 AND deleted_at IS NULL", &[&id])
        .await?
        .as_ref()
        .map(image_from_row)
        .transpose()
}

/// An artwork's images in display order, whatever their processing state.
pub async fn images_of(db: &impl GenericClient, artwork_id: Uuid) -> Result<Vec<Image>, DbError> {
    db.query(
        "SELECT * FROM images WHERE artwork_id = $1 AND deleted_at IS NULL ORDER BY position, id",
        &[&artwork_id],
    )
    .await?
    .iter()
    .map(image_from_row)
    .collect()
}

/// Puts an image at `position` (clamped to the end) and renumbers the
/// others 0, 1, 2… in their order. Callers hold the artwork's lock.
pub async fn move_image(
    db: &impl GenericClient,
    artwork_id: Uuid,
    image_id: Uuid,
    position: i32,
) -> Result<(), DbError> {
    db.execute(
        "WITH others AS ( \
             SELECT id, row_number() OVER (ORDER BY position, id) - 1 AS n FROM images \
              WHERE artwork_id = $1 AND deleted_at IS NULL AND id <> $2), \
         placed AS ( \
             SELECT id, CASE WHEN n >= $3 THEN n + 1 ELSE n END AS n FROM others \
             UNION ALL SELECT $2, LEAST($3, (SELECT count(*) FROM others))) \
         UPDATE images i SET position = placed.n, updated_at = CASE WHEN i.position <> placed.n THEN now() ELSE i.updated_at END \
           FROM placed WHERE i.id = placed.id",
        &[&artwork_id, &image_id, &i64::from(position)],
    )
    .await?;
    Ok(())
}

/// Removes an image from its artwork: hidden at once, its objects and row
/// deleted by the retention run. The others close the gap.
pub async fn remove_image(
    db: &impl GenericClient,
    artwork_id: Uuid,
    image_id: Uuid,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE images SET deleted_at = now(), updated_at = now() WHERE id = $1",
        &[&image_id],
    )
    .await?;
    db.execute(
        "WITH n AS (SELECT id, row_number() OVER (ORDER BY position, id) - 1 AS n FROM images WHERE artwork_id = $1 AND deleted_at IS NULL) \
         UPDATE images i SET position = n.n FROM n WHERE i.id = n.id AND i.position <> n.n",
        &[&artwork_id],
    )
    .await?;
    Ok(())
}

pub async fn image_by_original_key(
    db: &impl GenericClient,
    key: &str,
) -> Result<Option<Image>, DbError> {
    db.query_opt("SELECT * FROM images WHERE original_key = $1", &[&key])
        .await?
        .as_ref()
        .map(image_from_row)
        .transpose()
}

/// Ready images of an artwork in display order: what the public page shows.
pub async fn ready_images_of(
    db: &impl GenericClient,
    artwork_id: Uuid,
) -> Result<Vec<Image>, DbError> {
    db.query("SELECT * FROM images WHERE artwork_id = $1 AND status = 'ready' AND deleted_at IS NULL ORDER BY position, id", &[&artwork_id])
        .await?
        .iter()
        .map(image_from_row)
        .collect()
}

/// What the processor needs to know about an image it may work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageWork {
    pub image_id: Uuid,
    pub artwork_id: Uuid,
    pub artist_name: String,
    pub artwork_title: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Process it: it was pending, or a previous attempt died while processing.
    Proceed(ImageWork),
    /// Already finished (ready or failed): a duplicate event, nothing to do.
    Finished(ImageStatus),
    /// No image row has this key: not an upload the API handed out.
    Unknown,
}

/// Moves an image to `processing` unless it already finished. Duplicate and
/// retried events therefore never redo finished work.
pub async fn claim_image(db: &impl GenericClient, original_key: &str) -> Result<Claim, DbError> {
    let row = db
        .query_opt(
            "UPDATE images i SET status = 'processing', updated_at = now() \
             FROM artworks a JOIN artists ar ON ar.id = a.artist_id \
             WHERE i.original_key = $1 AND a.id = i.artwork_id AND i.status IN ('pending', 'processing') AND i.deleted_at IS NULL \
             RETURNING i.id, i.artwork_id, ar.name AS artist_name, a.title",
            &[&original_key],
        )
        .await?;
    if let Some(row) = row {
        return Ok(Claim::Proceed(ImageWork {
            image_id: row.try_get("id")?,
            artwork_id: row.try_get("artwork_id")?,
            artist_name: row.try_get("artist_name")?,
            artwork_title: row.try_get("title")?,
        }));
    }
    Ok(match image_by_original_key(db, original_key).await? {
        Some(image) => Claim::Finished(image.status),
        None => Claim::Unknown,
    })
}

pub async fn mark_image_ready(
    db: &impl GenericClient,
    image_id: Uuid,
    renditions: &[RenditionRecord],
    content_sha256: &str,
) -> Result<bool, DbError> {
    let json = serde_json::to_value(renditions).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let n = db
        .execute(
            "UPDATE images SET status = 'ready', renditions = $2, content_sha256 = $3, failure_reason = NULL, updated_at = now() \
             WHERE id = $1 AND status = 'processing'",
            &[&image_id, &json, &content_sha256],
        )
        .await?;
    Ok(n == 1)
}

pub async fn mark_image_failed(
    db: &impl GenericClient,
    image_id: Uuid,
    reason: &str,
) -> Result<bool, DbError> {
    let n = db
        .execute(
            "UPDATE images SET status = 'failed', failure_reason = $2, updated_at = now() WHERE id = $1 AND status IN ('pending', 'processing')",
            &[&image_id, &reason],
        )
        .await?;
    Ok(n == 1)
}
