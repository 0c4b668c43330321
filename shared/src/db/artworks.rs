//! Artists, artworks and print editions.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::domain::{Artist, Artwork, ArtworkStatus, NewArtwork, NewEdition, PrintEdition};

const ARTWORK_COLUMNS: &str = "a.id, a.artist_id, ar.name AS artist_name, a.title, a.slug, a.description, a.medium, \
     a.year, a.width_mm, a.height_mm, a.status, a.created_at, a.updated_at";

fn artwork_from_row(row: &Row) -> Result<Artwork, DbError> {
    let status: String = row.try_get("status")?;
    Ok(Artwork {
        id: row.try_get("id")?,
        artist_id: row.try_get("artist_id")?,
        artist_name: row.try_get("artist_name")?,
        title: row.try_get("title")?,
        slug: row.try_get("slug")?,
        description: row.try_get("description")?,
        medium: row.try_get("medium")?,
        year: row.try_get("year")?,
        width_mm: row.try_get("width_mm")?,
        height_mm: row.try_get("height_mm")?,
        status: status.parse().map_err(|e| DbError::Corrupt(format!("artwork status: {e}")))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert_artist(
    db: &impl GenericClient,
    name: &str,
    email: &str,
    bio: Option<&str>,
    website: Option<&str>,
) -> Result<Artist, DbError> {
    let id = Uuid::new_v4();
    db.execute("INSERT INTO artists (id, name, email, bio, website) VALUES ($1, $2, $3, $4, $5)", &[&id, &name, &email, &bio, &website])
        .await?;
    Ok(Artist { id, name: name.to_owned(), bio: bio.map(str::to_owned), website: website.map(str::to_owned) })
}

/// An artist as the operator sees them: with the email, and how many live tokens they hold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArtistListing {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub live_tokens: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The newest artists first.
pub async fn list_artists(db: &impl GenericClient, limit: i64) -> Result<Vec<ArtistListing>, DbError> {
    let rows = db
        .query(
            "SELECT a.id, a.name, a.email, a.created_at,
                    (SELECT count(*) FROM api_tokens t
                      WHERE t.artist_id = a.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS live_tokens
               FROM artists a ORDER BY a.created_at DESC, a.id LIMIT $1",
            &[&limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ArtistListing {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
                live_tokens: r.try_get("live_tokens")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Creates a draft artwork. A taken slug surfaces as SQLSTATE 23505.
pub async fn insert_artwork(db: &impl GenericClient, artist_id: Uuid, new: &NewArtwork, slug: &str) -> Result<Artwork, DbError> {
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO artworks (id, artist_id, title, slug, description, medium, year, width_mm, height_mm) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&id, &artist_id, &new.title.trim(), &slug, &new.description, &new.medium, &new.year, &new.width_mm, &new.height_mm],
    )
    .await?;
    artwork_by_id(db, id).await?.ok_or_else(|| DbError::Corrupt("inserted artwork vanished".into()))
}

/// Any artwork not deleted, whatever its status (for its owner and admins).
pub async fn artwork_by_id(db: &impl GenericClient, id: Uuid) -> Result<Option<Artwork>, DbError> {
    let sql =
        format!("SELECT {ARTWORK_COLUMNS} FROM artworks a JOIN artists ar ON ar.id = a.artist_id WHERE a.id = $1 AND a.deleted_at IS NULL");
    db.query_opt(&sql, &[&id]).await?.as_ref().map(artwork_from_row).transpose()
}

/// A published artwork as the public sees it.
pub async fn published_artwork_by_slug(db: &impl GenericClient, slug: &str) -> Result<Option<Artwork>, DbError> {
    let sql = format!(
        "SELECT {ARTWORK_COLUMNS} FROM artworks a JOIN artists ar ON ar.id = a.artist_id \
         WHERE a.slug = $1 AND a.status = 'published' AND a.deleted_at IS NULL"
    );
    db.query_opt(&sql, &[&slug]).await?.as_ref().map(artwork_from_row).transpose()
}

/// Published artworks, newest first, keyset-paginated by creation time.
pub async fn published_artworks(
    db: &impl GenericClient,
    before: Option<chrono::DateTime<chrono::Utc>>,
    limit: i64,
) -> Result<Vec<Artwork>, DbError> {
    let sql = format!(
        "SELECT {ARTWORK_COLUMNS} FROM artworks a JOIN artists ar ON ar.id = a.artist_id \
         WHERE a.status = 'published' AND a.deleted_at IS NULL AND ($1::timestamptz IS NULL OR a.created_at < $1) \
         ORDER BY a.created_at DESC LIMIT $2"
    );
    db.query(&sql, &[&before, &limit]).await?.iter().map(artwork_from_row).collect()
}

pub async fn set_artwork_status(db: &impl GenericClient, id: Uuid, status: ArtworkStatus) -> Result<bool, DbError> {
    let n = db
        .execute("UPDATE artworks SET status = $2, updated_at = now() WHERE id = $1 AND deleted_at IS NULL", &[&id, &status.as_str()])
        .await?;
    Ok(n == 1)
}

/// Soft delete: the row stays for the retention period, hidden from every read.
pub async fn soft_delete_artwork(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    let n = db.execute("UPDATE artworks SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL", &[&id]).await?;
    Ok(n == 1)
}

fn edition_from_row(row: &Row) -> Result<PrintEdition, DbError> {
    Ok(PrintEdition {
        id: row.try_get("id")?,
        artwork_id: row.try_get("artwork_id")?,
        edition_size: row.try_get("edition_size")?,
        paper: row.try_get("paper")?,
        price_minor: row.try_get("price_minor")?,
        currency: row.try_get("currency")?,
        sold_count: row.try_get("sold_count")?,
    })
}

pub async fn insert_edition(db: &impl GenericClient, artwork_id: Uuid, new: &NewEdition) -> Result<PrintEdition, DbError> {
    let id = Uuid::new_v4();
    let row = db
        .query_one(
            "INSERT INTO print_editions (id, artwork_id, edition_size, paper, price_minor, currency) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            &[&id, &artwork_id, &new.edition_size, &new.paper.trim(), &new.price_minor, &new.currency],
        )
        .await?;
    edition_from_row(&row)
}

pub async fn editions_of(db: &impl GenericClient, artwork_id: Uuid) -> Result<Vec<PrintEdition>, DbError> {
    db.query("SELECT * FROM print_editions WHERE artwork_id = $1 ORDER BY created_at, id", &[&artwork_id])
        .await?
        .iter()
        .map(edition_from_row)
        .collect()
}

/// Records `count` sales; the schema refuses to sell beyond the edition size
/// (SQLSTATE 23514), which is how overselling is prevented under concurrency.
pub async fn record_sale(db: &impl GenericClient, edition_id: Uuid, count: i32) -> Result<Option<PrintEdition>, DbError> {
    db.query_opt(
        "UPDATE print_editions SET sold_count = sold_count + $2, updated_at = now() WHERE id = $1 RETURNING *",
        &[&edition_id, &count],
    )
    .await?
    .as_ref()
    .map(edition_from_row)
    .transpose()
}
