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
    pub applied: Visibility,
    pub wanted: Visibility,
}

/// Serialises settles of one artwork until the transaction ends, so two
/// settles cannot apply an older catalogue state last.
pub async fn lock_artwork_media(db: &impl GenericClient, artwork_id: Uuid) -> Result<(), DbError> {
    db.execute("SELECT pg_advisory_xact_lock(hashtextextended('edge-media:' || $1::uuid::text, 0))", &[&artwork_id]).await?;
    Ok(())
}

/// Every image of the artwork that has renditions, removed ones included (their
/// renditions stay until retention purges them and must stop being served).
pub async fn artwork_edge(db: &impl GenericClient, artwork_id: Uuid) -> Result<Vec<ImageEdge>, DbError> {
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
                serde_json::from_value(row.try_get("renditions")?).map_err(|e| DbError::Corrupt(format!("image renditions: {e}")))?;
            let applied: String = row.try_get("edge_visibility")?;
            Ok(ImageEdge {
                image_id: row.try_get("id")?,
                keys: renditions.into_iter().map(|r| r.key).collect(),
                applied: applied.parse().map_err(|e| DbError::Corrupt(format!("edge visibility: {e}")))?,
                wanted: if row.try_get("public")? { Visibility::Public } else { Visibility::Private },
            })
        })
        .collect()
}

pub async fn set_edge_visibility(db: &impl GenericClient, image_id: Uuid, visibility: Visibility) -> Result<(), DbError> {
    db.execute("UPDATE images SET edge_visibility = $2 WHERE id = $1", &[&image_id, &visibility.as_str()]).await?;
    Ok(())
}

/// Artworks whose renditions carry a tag the catalogue no longer wants (a
/// settle that failed after its write committed, or a change made outside the API).
pub async fn artworks_with_edge_drift(db: &impl GenericClient, limit: i64) -> Result<Vec<Uuid>, DbError> {
    let sql = format!(
        "SELECT DISTINCT i.artwork_id FROM images i \
           JOIN artworks a ON a.id = i.artwork_id JOIN artists ar ON ar.id = a.artist_id \
          WHERE jsonb_array_length(i.renditions) > 0 \
            AND i.edge_visibility <> CASE WHEN {PUBLIC} AND i.status = 'ready' AND i.deleted_at IS NULL \
                                          THEN 'public' ELSE 'private' END \
          LIMIT $1"
    );
    Ok(db.query(&sql, &[&limit]).await?.iter().map(|r| r.get(0)).collect())
}

/// The artist's artworks, deleted ones included: a suspension withdraws them all.
pub async fn artworks_of_artist(db: &impl GenericClient, artist_id: Uuid) -> Result<Vec<Uuid>, DbError> {
    Ok(db.query("SELECT id FROM artworks WHERE artist_id = $1 ORDER BY id", &[&artist_id]).await?.iter().map(|r| r.get(0)).collect())
}
