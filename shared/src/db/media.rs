//! The catalogue's side of edge visibility (`crate::media`): which renditions
//! the public may see, and which tag each image's renditions carry now.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::artworks::PUBLIC;
use super::DbError;
use crate::domain::{RenditionRecord, Visibility};

/// One image's renditions: the tag they carry and the tag the catalogue wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEdge {
    pub image_id: Uuid,
    pub keys: Vec<String>,
    /// `None`: unknown (the database was restored), so tag them either way.
    pub applied: Option<Visibility>,
    pub wanted: Visibility,
}

/// The column's value: `None` when unknown.
pub(super) fn visibility(stored: Option<String>) -> Result<Option<Visibility>, DbError> {
    stored
        .map(|v| v.parse().map_err(|e| DbError::Corrupt(format!("edge visibility: {e}"))))
        .transpose()
}

/// Serialises settles of one artwork until the transaction ends, so two
/// settles cannot apply an older catalogue state last.
pub async fn lock_artwork_media(db: &impl GenericClient, artwork_id: Uuid) -> Result<(), DbError> {
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('edge-media:' || $1::uuid::text, 0))",
        &[&artwork_id],
    )
    .await?;
    Ok(())
}

/// Every image of the artwork that has renditions, removed ones included (their
/// renditions stay until retention purges them and must stop being served).
pub async fn artwork_edge(
    db: &impl GenericClient,
    artwork_id: Uuid,
) -> Result<Vec<ImageEdge>, DbError> {
    let sql = format!(
        "SELECT i.id, i.renditions, i.edge_visibility, \
                ({PUBLIC} AND i.status = 'ready' AND i.deleted_at IS NULL) AS public \
           FROM images i JOIN artworks a ON a.id = i.artwork_id JOIN artists ar ON ar.id = a.artist_id \
          WHERE i.artwork_id = $1 AND jsonb_array_length(i.renditions) > 0 \
          ORDER BY i.id"
    );
    db.query(&sql, &[&artwork_id])
        .await?
        .iter()
        .map(|row| {
            let renditions: Vec<RenditionRecord> =
                serde_json::from_value(row.try_get("renditions")?)
                    .map_err(|e| DbError::Corrupt(format!("image renditions: {e}")))?;
            Ok(ImageEdge {
                image_id: row.try_get("id")?,
                keys: renditions.into_iter().map(|r| r.key).collect(),
                applied: visibility(row.try_get("edge_visibility")?)?,
                wanted: if row.try_get("public")? {
                    Visibility::Public
                } else {
                    Visibility::Private
                },
            })
        })
        .collect()
}

pub async fn set_edge_visibility(
    db: &impl GenericClient,
    image_id: Uuid,
    visibility: Visibility,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE images SET edge_visibility = $2 WHERE id = $1",
        &[&image_id, &visibility.as_str()],
    )
    .await?;
    Ok(())
}

/// Artworks whose renditions carry a tag the catalogue no longer wants, or
/// an unknown one (a settle that failed after its write committed, a change
/// made outside the API, a restored database), in id order after `after`.
pub async fn artworks_with_edge_drift(
    db: &impl GenericClient,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, DbError> {
    let sql = format!(
        "SELECT DISTINCT i.artwork_id FROM images i \
           JOIN artworks a ON a.id = i.artwork_id JOIN artists ar ON ar.id = a.artist_id \
          WHERE jsonb_array_length(i.renditions) > 0 \
            AND ($1::uuid IS NULL OR i.artwork_id > $1) \
            AND i.edge_visibility IS DISTINCT FROM \
                CASE WHEN {PUBLIC} AND i.status = 'ready' AND i.deleted_at IS NULL THEN 'public' ELSE 'private' END \
          ORDER BY i.artwork_id \
          LIMIT $2"
    );
    Ok(db.query(&sql, &[&after, &limit]).await?.iter().map(|r| r.get(0)).collect())
}

/// After a restore: the catalogue is older than the bucket, so what the
/// renditions carry is unknown until the next settle (every retention run).
pub async fn forget_edge_visibility(
    db: &impl tokio_postgres::GenericClient,
) -> Result<u64, DbError> {
    Ok(db
        .execute(
            "UPDATE images SET edge_visibility = NULL WHERE jsonb_array_length(renditions) > 0",
            &[],
        )
        .await?)
}

/// The artist's artworks, deleted ones included: a suspension withdraws them all.
pub async fn artworks_of_artist(
    db: &impl GenericClient,
    artist_id: Uuid,
) -> Result<Vec<Uuid>, DbError> {
    Ok(db
        .query("SELECT id FROM artworks WHERE artist_id = $1 ORDER BY id", &[&artist_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
