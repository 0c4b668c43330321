//! The public gallery: no token, published works of artists in good standing,
//! cacheable at the edge.

use axum::extract::State as Shared;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::db::{self, GalleryFilter};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{cursor, page_size, split_page, Result};
use crate::extract::{Path, Query};
use crate::http::PUBLIC_CACHE;
use crate::views::{ArtistProfile, GalleryPage, Media, PublicArtwork};
use crate::{ApiError, SharedState};
use shared::domain::{PageCursor, Sort};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(gallery))
        .routes(routes!(artwork))
        .routes(routes!(artist))
        .routes(routes!(artist_index))
        .routes(routes!(health))
        .routes(routes!(document))
}

/// A permanent redirect the edge may cache, like the page it leads to.
fn moved(location: &str) -> Response {
    let mut response = axum::http::StatusCode::MOVED_PERMANENTLY.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC_CACHE));
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// A JSON answer the edge may cache.
fn public(body: impl serde::Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC_CACHE));
    response
}

#[derive(Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GalleryQuery {
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 100, default 24.
    limit: Option<i64>,
    /// Only this artist's works.
    artist: Option<Uuid>,
    /// Exact medium, case-insensitive.
    medium: Option<String>,
    year_min: Option<i32>,
    year_max: Option<i32>,
    /// Works with an edition on sale priced at least this (minor units of `currency`, which a price filter needs).
    price_min: Option<i64>,
    price_max: Option<i64>,
    /// Prices in this ISO 4217 currency.
    currency: Option<String>,
    /// Only works with prints still for sale.
    available: Option<bool>,
    /// Search title, artist name, medium and description, accents folded: words,
    /// "quoted phrases", `-excluded`, `or`. 1 to 200 characters.
    q: Option<String>,
    /// The order; `relevance` (the default with `q`) needs `q`, the price orders a
    /// `currency`. Default `newest`.
    sort: Option<Sort>,
}

impl GalleryQuery {
    fn filter(&self, artist: Option<Uuid>) -> Result<GalleryFilter> {
        let mut problems = Vec::new();
        if let (Some(a), Some(b)) = (self.year_min, self.year_max) {
            if a > b {
                problems.push(shared::domain::Invalid {
                    field: "year_min",
                    message: "must not be after year_max".into(),
                });
            }
        }
        if let (Some(a), Some(b)) = (self.price_min, self.price_max) {
            if a > b {
                problems.push(shared::domain::Invalid {
                    field: "price_min",
                    message: "must not exceed price_max".into(),
                });
            }
        }
        if (self.price_min.is_some() || self.price_max.is_some()) && self.currency.is_none() {
            // Minor units of different currencies are not comparable (5000 JPY, 5000 EUR).
            problems.push(shared::domain::Invalid {
                field: "currency",
                message: "is required with price_min or price_max".into(),
            });
        }
        for (field, price) in [("price_min", self.price_min), ("price_max", self.price_max)] {
            if price.is_some_and(|p| p < 0) {
                problems.push(shared::domain::Invalid {
                    field,
                    message: "must not be negative".into(),
                });
            }
        }
        let medium = match &self.medium {
            Some(m) => Some(
                shared::domain::text::text("medium", m, 1, 200, shared::domain::text::Lines::One)
                    .map_err(|e| vec![e])?,
            ),
            None => None,
        };
        let search = match &self.q {
            Some(q) => Some(
                shared::domain::text::text("q", q, 1, 200, shared::domain::text::Lines::One)
                    .map_err(|e| vec![e])?,
            ),
            None => None,
        };
        let sort =
            self.sort.unwrap_or(if search.is_some() { Sort::Relevance } else { Sort::Newest });
        if sort == Sort::Relevance && search.is_none() {
            problems.push(shared::domain::Invalid {
                field: "sort",
                message: "relevance needs a search (q)".into(),
            });
        }
        if sort.needs_currency() && self.currency.is_none() {
            problems.push(shared::domain::Invalid {
                field: "currency",
                message: "is required to sort by price".into(),
            });
        }
        if let Some(c) = &self.currency {
            if shared::domain::CURRENCIES.binary_search(&c.as_str()).is_err() {
                problems.push(shared::domain::Invalid {
                    field: "currency",
                    message: "must be an ISO 4217 currency code".into(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::Invalid(problems));
        }
        Ok(GalleryFilter {
            artist: artist.or(self.artist),
            medium,
            year_min: self.year_min,
            year_max: self.year_max,
            price_min: self.price_min,
            price_max: self.price_max,
            currency: self.currency.clone(),
            available: self.available.unwrap_or(false),
            search,
            sort,
        })
    }
}

async fn gallery_page(
    state: &SharedState,
    query: &GalleryQuery,
    artist: Option<Uuid>,
) -> Result<GalleryPage> {
    gallery_page_on(&state.client().await?, state, query, artist).await
}

/// A page of the public list on a connection the caller holds.
async fn gallery_page_on(
    client: &impl deadpool_postgres::GenericClient,
    state: &SharedState,
    query: &GalleryQuery,
    artist: Option<Uuid>,
) -> Result<GalleryPage> {
    let filter = query.filter(artist)?;
    let limit = page_size(query.limit)?;
    let after = match query.cursor.as_deref() {
        Some(c) => Some(PageCursor::decode("cursor", c, filter.sort).map_err(|e| vec![e])?),
        None => None,
    };
    let rows = db::gallery_page(client, &filter, after.as_ref(), limit + 1).await?;
    let (rows, next_cursor) = split_page(rows, limit, |c| {
        PageCursor { sort: filter.sort, key: c.key.clone(), id: c.id }.encode()
    });
    let media = Media(&state.media_base_url);
    Ok(GalleryPage { artworks: rows.into_iter().map(|c| media.card(c)).collect(), next_cursor })
}

/// Published artworks, newest publication first, or searched and sorted.
#[utoipa::path(get, path = "/v1/artworks", tag = "gallery", params(GalleryQuery),
    responses((status = 200, description = "A page of published works", body = GalleryPage)))]
async fn gallery(
    Shared(state): Shared<SharedState>,
    Query(query): Query<GalleryQuery>,
) -> Result<Response> {
    Ok(public(gallery_page(&state, &query, None).await?))
}

/// One published artwork with its editions and images. A slug the work had
/// when it was published before answers 301 to its current one.
#[utoipa::path(get, path = "/v1/artworks/{slug}", tag = "gallery",
    params(("slug" = String, Path, description = "The artwork's slug")),
    responses((status = 200, description = "The artwork", body = PublicArtwork),
        (status = 301, description = "The work's slug changed: `Location` is its current page",
            headers(("Location" = String, description = "The work's current URL")))))]
async fn artwork(Shared(state): Shared<SharedState>, Path(slug): Path<String>) -> Result<Response> {
    // A slug that cannot exist is not looked up (NUL would fail in PostgreSQL).
    if !shared::domain::valid_slug(&slug) {
        return Err(ApiError::NotFound);
    }
    let client = state.client().await?;
    let Some(artwork) = db::published_artwork_by_slug(&client, &slug).await? else {
        let current = db::current_slug_of_retired(&client, &slug).await?;
        return current.map(|s| moved(&format!("/v1/artworks/{s}"))).ok_or(ApiError::NotFound);
    };
    let editions = db::editions_of(&client, artwork.id).await?;
    let images = db::ready_images_of(&client, artwork.id).await?;
    Ok(public(Media(&state.media_base_url).artwork(artwork, &editions, &images)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    limit: Option<i64>,
}

/// An artist's public profile and published works.
#[utoipa::path(get, path = "/v1/artists/{id}", tag = "gallery",
    params(("id" = Uuid, Path, description = "The artist's id"), ProfileQuery),
    responses((status = 200, description = "The artist and a page of their works", body = ArtistProfile)))]
async fn artist(
    Shared(state): Shared<SharedState>,
    Path(id): Path<Uuid>,
    Query(q): Query<ProfileQuery>,
) -> Result<Response> {
    let artist = db::public_artist(&state.client().await?, id).await?.ok_or(ApiError::NotFound)?;
    let query = GalleryQuery { cursor: q.cursor, limit: q.limit, ..GalleryQuery::default() };
    let artworks = gallery_page(&state, &query, Some(id)).await?;
    Ok(public(ArtistProfile { artist, artworks }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IndexQuery {
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    /// Artists per page, 1 to 24 (each comes with their newest works).
    limit: Option<i64>,
}

/// An artist of the index with their newest published works.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IndexedArtistView {
    pub artist: shared::domain::Artist,
    pub published_works: i64,
    /// Up to four of their newest published works.
    pub newest: Vec<crate::views::GalleryItem>,
    /// Their profile with every published work.
    pub href: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ArtistIndex {
    pub artists: Vec<IndexedArtistView>,
    pub next_cursor: Option<String>,
}

/// The gallery's artists, the most recently published first, each with their
/// newest works: artists in good standing with at least one published work.
#[utoipa::path(get, path = "/v1/artists", tag = "gallery", params(IndexQuery),
    responses((status = 200, description = "A page of the artist index", body = ArtistIndex)))]
async fn artist_index(
    Shared(state): Shared<SharedState>,
    Query(q): Query<IndexQuery>,
) -> Result<Response> {
    let limit = page_size(q.limit)?;
    if limit > 24 {
        return Err(ApiError::invalid("limit", "must be 1 to 24"));
    }
    let client = state.client().await?;
    let rows = db::artist_index(&client, cursor(q.cursor.as_deref())?, limit + 1).await?;
    let (rows, next_cursor) = split_page(rows, limit, |a| {
        shared::domain::Cursor { at: a.latest_published_at, id: a.artist.id }.encode()
    });
    let newest = GalleryQuery { limit: Some(4), ..GalleryQuery::default() };
    let mut artists = Vec::with_capacity(rows.len());
    for row in rows {
        let works = gallery_page_on(&client, &state, &newest, Some(row.artist.id)).await?;
        artists.push(IndexedArtistView {
            href: format!("/v1/artists/{}", row.artist.id),
            published_works: row.published_works,
            newest: works.artworks,
            artist: row.artist,
        });
    }
    Ok(public(ArtistIndex { artists, next_cursor }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    status: String,
}

/// Whether the API can reach its database.
#[utoipa::path(get, path = "/v1/health", tag = "gallery", responses((status = 200, description = "Healthy", body = Health)))]
async fn health(Shared(state): Shared<SharedState>) -> Result<axum::Json<Health>> {
    db::ping(&state.pool).await.map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok(axum::Json(Health { status: "ok".into() }))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "gallery",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn document() -> Response {
    static JSON: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let bytes = JSON.get_or_init(|| serde_json::to_vec(super::openapi()).unwrap_or_default());
    let mut response =
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes.as_slice())
            .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC_CACHE));
    response
}
