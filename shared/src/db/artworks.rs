//! Artworks: the public gallery's reads and the catalogue's writes.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::domain::{
    Artwork, ArtworkFields, ArtworkStatus, Cursor, PageCursor, Readiness, RenditionRecord, Sort,
    SortKey,
};

const ARTWORK_COLUMNS: &str = "a.id, a.artist_id, ar.name AS artist_name, a.title, a.slug, a.description, a.medium, \
     a.year, a.width_mm, a.height_mm, a.status, a.published_at, a.deleted_at, a.created_at, a.updated_at";

/// Works the public may see: published, not deleted, by an artist not suspended.
pub(super) const PUBLIC: &str =
    "a.status = 'published' AND a.deleted_at IS NULL AND ar.suspended_at IS NULL";

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
        published_at: row.try_get("published_at")?,
        deleted_at: row.try_get("deleted_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Creates a draft artwork. A slug another live artwork holds surfaces as SQLSTATE 23505.
pub async fn insert_artwork(
    db: &impl GenericClient,
    artist_id: Uuid,
    f: &ArtworkFields,
) -> Result<Artwork, DbError> {
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO artworks (id, artist_id, title, slug, description, medium, year, width_mm, height_mm) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&id, &artist_id, &f.title, &f.slug, &f.description, &f.medium, &f.year, &f.width_mm, &f.height_mm],
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

/// An artwork, deleted or not (until it is purged), optionally locked until
/// the transaction ends: every update reads, checks `If-Match`, and writes under this lock.
pub async fn artwork_with_deleted(
    db: &impl GenericClient,
    id: Uuid,
    lock: bool,
) -> Result<Option<Artwork>, DbError> {
    let sql = format!(
        "SELECT {ARTWORK_COLUMNS} FROM artworks a JOIN artists ar ON ar.id = a.artist_id WHERE a.id = $1{}",
        if lock { " FOR UPDATE OF a" } else { "" }
    );
    db.query_opt(&sql, &[&id]).await?.as_ref().map(artwork_from_row).transpose()
}

pub async fn update_artwork(
    db: &impl GenericClient,
    id: Uuid,
    f: &ArtworkFields,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE artworks SET title = $2, slug = $3, description = $4, medium = $5, year = $6, width_mm = $7, height_mm = $8, \
         updated_at = now() WHERE id = $1",
        &[&id, &f.title, &f.slug, &f.description, &f.medium, &f.year, &f.width_mm, &f.height_mm],
    )
    .await?;
    Ok(())
}

/// Moves an artwork to `status`; publishing stamps the time the public list is ordered by.
pub async fn set_artwork_status(
    db: &impl GenericClient,
    id: Uuid,
    status: ArtworkStatus,
) -> Result<bool, DbError> {
    let n = db
        .execute(
            "UPDATE artworks SET status = $2, published_at = CASE WHEN $2 = 'published' THEN clock_timestamp() END, updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL",
            &[&id, &status.as_str()],
        )
        .await?;
    Ok(n == 1)
}

/// What publishing an artwork needs, counted.
pub async fn readiness(db: &impl GenericClient, id: Uuid) -> Result<Readiness, DbError> {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM images WHERE artwork_id = $1 AND status = 'ready' AND deleted_at IS NULL), \
                    (SELECT count(*) FROM print_editions WHERE artwork_id = $1 AND retired_at IS NULL AND sold_count < edition_size), \
                    (SELECT count(*) FROM images WHERE artwork_id = $1 AND status <> 'failed' AND deleted_at IS NULL AND alt_text IS NULL)",
            &[&id],
        )
        .await?;
    Ok(Readiness {
        ready_images: row.try_get(0)?,
        live_editions: row.try_get(1)?,
        undescribed_images: row.try_get(2)?,
    })
}

/// Soft delete: the row stays for the grace period, hidden from every read.
pub async fn soft_delete_artwork(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    let n = db.execute("UPDATE artworks SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL", &[&id]).await?;
    Ok(n == 1)
}

/// Whether a live artwork other than `except` holds `slug`.
pub async fn slug_taken(
    db: &impl GenericClient,
    slug: &str,
    except: Option<Uuid>,
) -> Result<bool, DbError> {
    // A slug another work retired stays its own: shared links must not change hands.
    let sql = "SELECT EXISTS (SELECT 1 FROM artworks WHERE slug = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR id <> $2)) \
                   OR EXISTS (SELECT 1 FROM artwork_slugs WHERE slug = $1 AND ($2::uuid IS NULL OR artwork_id <> $2))";
    Ok(db.query_one(sql, &[&slug, &except]).await?.try_get(0)?)
}

/// Undoes a soft delete. The slug may have been taken meanwhile (SQLSTATE 23505).
pub async fn restore_artwork(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    let n =
        db.execute("UPDATE artworks SET deleted_at = NULL, updated_at = now() WHERE id = $1 AND deleted_at IS NOT NULL", &[&id]).await?;
    Ok(n == 1)
}

/// Gives an artwork a new slug (a restore whose old one was taken meanwhile).
pub async fn set_artwork_slug(
    db: &impl GenericClient,
    id: Uuid,
    slug: &str,
) -> Result<(), DbError> {
    db.execute("UPDATE artworks SET slug = $2, updated_at = now() WHERE id = $1", &[&id, &slug])
        .await?;
    Ok(())
}

/// Filters of the public list. All optional; `available` keeps only works
/// with an edition that still has prints for sale.
#[derive(Debug, Clone)]
pub struct GalleryFilter {
    pub artist: Option<Uuid>,
    pub medium: Option<String>,
    pub year_min: Option<i32>,
    pub year_max: Option<i32>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub currency: Option<String>,
    pub available: bool,
    /// Words to search for (`websearch_to_tsquery` syntax: "quoted phrases", -not, or).
    pub search: Option<String>,
    pub sort: Sort,
}

impl Default for GalleryFilter {
    fn default() -> Self {
        Self {
            artist: None,
            medium: None,
            year_min: None,
            year_max: None,
            price_min: None,
            price_max: None,
            currency: None,
            available: false,
            search: None,
            sort: Sort::Newest,
        }
    }
}

/// One work in the public list: what a gallery card shows.
#[derive(Debug, Clone)]
pub struct GalleryCard {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    pub artist_id: Uuid,
    pub artist_name: String,
    pub medium: Option<String>,
    pub year: Option<i32>,
    pub published_at: DateTime<Utc>,
    /// The primary image's renditions and alt text, when it is ready.
    pub primary_image: Option<(Uuid, Vec<RenditionRecord>, Option<String>)>,
    /// The cheapest edition still on sale.
    pub price_from: Option<(i64, String)>,
    /// Where the next page starts if this is the page's last card.
    pub key: SortKey,
}

/// The cheapest print on sale of `a`, in `$10`'s currency when given, else in
/// the currency of the work's first edition.
const PRICE: &str = "LEFT JOIN LATERAL (SELECT e.price_minor, e.currency FROM print_editions e \
       WHERE e.artwork_id = a.id AND e.retired_at IS NULL AND e.sold_count < e.edition_size \
         AND ($10::text IS NULL OR e.currency = $10) \
       ORDER BY e.currency = (SELECT f.currency FROM print_editions f WHERE f.artwork_id = a.id \
                               ORDER BY f.created_at, f.id LIMIT 1) DESC, \
                e.price_minor, e.id LIMIT 1) price ON true";

/// The sort key's SQL and its type (the cursor's text is cast to it).
/// Unknown years sort last in both directions.
fn sort_sql(sort: Sort) -> (&'static str, &'static str) {
    match sort {
        Sort::Newest => ("a.published_at", "timestamptz"),
        Sort::PriceAsc | Sort::PriceDesc => ("price.price_minor", "bigint"),
        Sort::YearDesc => ("coalesce(a.year, 0)::bigint", "bigint"),
        Sort::YearAsc => ("coalesce(a.year, 10000)::bigint", "bigint"),
        Sort::Title => ("lower(a.title)", "text"),
        Sort::Relevance => {
            ("ts_rank_cd(a.search, websearch_to_tsquery('gallery_search', $13))::float8", "float8")
        }
    }
}

/// A page of the public list in `filter.sort` order, keyset-paginated on
/// `(sort key, id)`. Callers have checked the filter (a price order has a
/// currency, relevance a search).
pub async fn gallery_page(
    db: &impl GenericClient,
    filter: &GalleryFilter,
    after: Option<&PageCursor>,
    limit: i64,
) -> Result<Vec<GalleryCard>, DbError> {
    let price_filtered =
        filter.price_min.is_some() || filter.price_max.is_some() || filter.currency.is_some();
    let (key, key_type) = sort_sql(filter.sort);
    let (cmp, dir) = if filter.sort.descending() { ("<", "DESC") } else { (">", "ASC") };
    // A price order lists only works with a price in the currency.
    let priced = filter.available || filter.sort.needs_currency();
    // The page is chosen first, with only what filtering and ordering need
    // (the price only for a price order or `available`), so a search that
    // matches thousands ranks them without fetching their images; the cards
    // of the chosen rows are built after. Every parameter stays referenced.
    let (page_price, price_needed) =
        if priced { (PRICE, "price.price_minor IS NOT NULL AND $11") } else { ("", "NOT $11") };
    let search = match filter.search {
        Some(_) => "a.search @@ websearch_to_tsquery('gallery_search', $13)",
        None => "$13::text IS NULL",
    };
    let sql = format!(
        "WITH page AS ( \
           SELECT a.id, {key} AS sort_key \
             FROM artworks a JOIN artists ar ON ar.id = a.artist_id {page_price} \
            WHERE {PUBLIC} AND {search} AND {price_needed} \
              AND ($3::uuid IS NULL OR a.artist_id = $3) \
              AND ($4::text IS NULL OR lower(a.medium) = lower($4)) \
              AND ($5::int IS NULL OR a.year >= $5) AND ($6::int IS NULL OR a.year <= $6) \
              AND (NOT $7 OR EXISTS (SELECT 1 FROM print_editions e WHERE e.artwork_id = a.id AND e.retired_at IS NULL \
                     AND e.sold_count < e.edition_size \
                     AND ($8::bigint IS NULL OR e.price_minor >= $8) AND ($9::bigint IS NULL OR e.price_minor <= $9) \
                     AND ($10::text IS NULL OR e.currency = $10))) \
              AND ($1::text IS NULL OR ({key}, a.id) {cmp} ($1::text::{key_type}, $2)) \
            ORDER BY sort_key {dir}, a.id {dir} LIMIT $12) \
         SELECT a.id, a.slug, a.title, a.artist_id, ar.name AS artist_name, a.medium, a.year, a.published_at, \
                img.id AS image_id, img.renditions, img.alt_text, price.price_minor, price.currency, page.sort_key \
           FROM page JOIN artworks a ON a.id = page.id JOIN artists ar ON ar.id = a.artist_id \
           LEFT JOIN LATERAL (SELECT i.id, i.renditions, i.alt_text FROM images i \
                               WHERE i.artwork_id = a.id AND i.status = 'ready' AND i.deleted_at IS NULL \
                               ORDER BY i.position, i.id LIMIT 1) img ON true \
           {PRICE} \
          ORDER BY page.sort_key {dir}, page.id {dir}"
    );
    let (at, id) = (after.map(|c| c.key.to_sql_text()), after.map(|c| c.id));
    let params: [&(dyn ToSql + Sync); 13] = [
        &at,
        &id,
        &filter.artist,
        &filter.medium,
        &filter.year_min,
        &filter.year_max,
        &price_filtered,
        &filter.price_min,
        &filter.price_max,
        &filter.currency,
        &priced,
        &limit,
        &filter.search,
    ];
    db.query(&sql, &params).await?.iter().map(|r| card_from_row(r, filter.sort)).collect()
}

fn card_from_row(row: &Row, sort: Sort) -> Result<GalleryCard, DbError> {
    let image: Option<Uuid> = row.try_get("image_id")?;
    let primary_image = match image {
        Some(id) => Some((id, renditions(row.try_get("renditions")?)?, row.try_get("alt_text")?)),
        None => None,
    };
    let price: Option<i64> = row.try_get("price_minor")?;
    let currency: Option<String> = row.try_get("currency")?;
    let key = match sort {
        Sort::Newest => SortKey::Time(row.try_get("sort_key")?),
        Sort::Title => SortKey::Text(row.try_get("sort_key")?),
        Sort::Relevance => SortKey::Rank(row.try_get("sort_key")?),
        _ => SortKey::Number(row.try_get("sort_key")?),
    };
    Ok(GalleryCard {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        artist_id: row.try_get("artist_id")?,
        artist_name: row.try_get("artist_name")?,
        medium: row.try_get("medium")?,
        year: row.try_get("year")?,
        published_at: row.try_get("published_at")?,
        primary_image,
        price_from: price.zip(currency),
        key,
    })
}

pub(super) fn renditions(value: serde_json::Value) -> Result<Vec<RenditionRecord>, DbError> {
    serde_json::from_value(value).map_err(|e| DbError::Corrupt(format!("image renditions: {e}")))
}

/// The current slug of the public work that had `slug` when it was published
/// (a retired slug), unless a live work holds `slug` now.
pub async fn current_slug_of_retired(
    db: &impl GenericClient,
    slug: &str,
) -> Result<Option<String>, DbError> {
    let sql = format!(
        "SELECT a.slug FROM artwork_slugs s JOIN artworks a ON a.id = s.artwork_id JOIN artists ar ON ar.id = a.artist_id \
          WHERE s.slug = $1 AND {PUBLIC}"
    );
    Ok(db.query_opt(&sql, &[&slug]).await?.map(|r| r.try_get(0)).transpose()?)
}

/// A published artwork as the public sees it.
pub async fn published_artwork_by_slug(
    db: &impl GenericClient,
    slug: &str,
) -> Result<Option<Artwork>, DbError> {
    let sql = format!("SELECT {ARTWORK_COLUMNS} FROM artworks a JOIN artists ar ON ar.id = a.artist_id WHERE a.slug = $1 AND {PUBLIC}");
    db.query_opt(&sql, &[&slug]).await?.as_ref().map(artwork_from_row).transpose()
}

/// Which artworks a catalogue list shows.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter {
    /// One artist's works (an artist's own list), or everyone's (admins).
    pub artist: Option<Uuid>,
    pub status: Option<ArtworkStatus>,
    /// Soft-deleted works (still within their grace period) instead of live ones.
    pub deleted: bool,
}

/// Artworks in any status, newest first, keyset-paginated on `(created_at, id)`.
pub async fn catalog_page(
    db: &impl GenericClient,
    filter: &CatalogFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Artwork>, DbError> {
    let sql = format!(
        "SELECT {ARTWORK_COLUMNS} FROM artworks a JOIN artists ar ON ar.id = a.artist_id \
          WHERE ($1::uuid IS NULL OR a.artist_id = $1) AND ($2::text IS NULL OR a.status = $2) \
            AND (a.deleted_at IS NOT NULL) = $3 \
            AND ($4::timestamptz IS NULL OR (a.created_at, a.id) < ($4, $5)) \
          ORDER BY a.created_at DESC, a.id DESC LIMIT $6"
    );
    let status = filter.status.map(ArtworkStatus::as_str);
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    db.query(&sql, &[&filter.artist, &status, &filter.deleted, &at, &id, &limit])
        .await?
        .iter()
        .map(artwork_from_row)
        .collect()
}
