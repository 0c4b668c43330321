//! An artist's own profile and artworks: `/v1/me…`. Artist tokens only.

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::db::{self, CatalogFilter};
use shared::domain::{Artwork, ArtworkStatus, NewArtwork, ProfilePatch};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{cursor, page_size, split_page, Result, IF_MATCH};
use crate::extract::{Caller, Idempotency, IfMatch, Json, Query, Require};
use crate::write::{Reply, Write};
use crate::{ApiError, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(profile, update_profile))
        .routes(routes!(my_artworks, create_artwork))
}

/// An artist's profile as they see it.
#[derive(Serialize, ToSchema)]
pub struct MyProfile {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub bio: Option<String>,
    pub website: Option<String>,
}

impl From<db::ArtistListing> for MyProfile {
    fn from(a: db::ArtistListing) -> Self {
        Self { id: a.id, name: a.name, email: a.email, bio: a.bio, website: a.website }
    }
}

/// The calling artist's profile.
#[utoipa::path(get, path = "/v1/me", tag = "artist", security(("gallery_token" = [])),
    responses((status = 200, description = "The profile", body = MyProfile)))]
async fn profile(Caller { state, who, .. }: Caller) -> Result<axum::Json<MyProfile>> {
    let id = who.artist()?;
    let artist =
        db::artist_listing(&state.client().await?, id, false).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(artist.into()))
}

/// Changes the calling artist's name, bio or website.
#[utoipa::path(patch, path = "/v1/me", tag = "artist", security(("gallery_token" = [])), request_body = ProfilePatch,
    params(("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The profile after the change", body = MyProfile)))]
async fn update_profile(
    Caller { state, who, request }: Caller,
    if_match: IfMatch,
    Json(patch): Json<ProfilePatch>,
) -> Result<Response> {
    let id = who.artist()?;
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let current = db::artist_listing(&w.tx, id, true).await?.ok_or(ApiError::NotFound)?;
    let current_view = MyProfile::from(current.clone());
    if_match.check(&current_view)?;
    let fields = patch.apply(&current.profile())?;
    if fields == current.profile() {
        return Ok(Reply::ok(&current_view)?.into_response());
    }
    db::update_profile(&w.tx, id, &fields).await?;
    w.audit(
        "artist.profile",
        format!("artist:{id}"),
        json!({ "fields": changed_profile_fields(&patch) }),
    )
    .await?;
    let after = db::artist_listing(&w.tx, id, false).await?.ok_or(ApiError::NotFound)?;
    w.commit(Reply::ok(&MyProfile::from(after))?).await
}

fn changed_profile_fields(p: &ProfilePatch) -> Vec<&'static str> {
    [("name", p.name.is_some()), ("bio", p.bio.is_some()), ("website", p.website.is_some())]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    pub cursor: Option<String>,
    /// 1 to 100, default 24.
    pub limit: Option<i64>,
    /// Only works in this status.
    pub status: Option<ArtworkStatus>,
    /// Deleted works still within their grace period (restorable) instead of live ones.
    pub deleted: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ArtworkList {
    pub artworks: Vec<Artwork>,
    pub next_cursor: Option<String>,
}

pub(super) async fn catalog(
    state: &SharedState,
    q: &CatalogQuery,
    artist: Option<Uuid>,
) -> Result<ArtworkList> {
    let limit = page_size(q.limit)?;
    let filter = CatalogFilter { artist, status: q.status, deleted: q.deleted.unwrap_or(false) };
    let rows =
        db::catalog_page(&state.client().await?, &filter, cursor(q.cursor.as_deref())?, limit + 1)
            .await?;
    let (artworks, next_cursor) =
        split_page(rows, limit, |a| shared::domain::Cursor { at: a.created_at, id: a.id }.encode());
    Ok(ArtworkList { artworks, next_cursor })
}

/// The calling artist's artworks in every status, newest first.
#[utoipa::path(get, path = "/v1/me/artworks", tag = "artist", security(("gallery_token" = [])), params(CatalogQuery),
    responses((status = 200, description = "A page of artworks", body = ArtworkList)))]
async fn my_artworks(
    Caller { state, who, .. }: Caller,
    Query(q): Query<CatalogQuery>,
) -> Result<axum::Json<ArtworkList>> {
    let artist = who.artist()?;
    Ok(axum::Json(catalog(&state, &q, Some(artist)).await?))
}

/// Creates a draft artwork for the calling artist.
#[utoipa::path(post, path = "/v1/me/artworks", tag = "artist", security(("gallery_token" = [])), request_body = NewArtwork,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first answer")),
    responses((status = 201, description = "Created; `Location` is its management URL", body = Artwork)))]
async fn create_artwork(
    Caller { state, who, request }: Caller,
    idempotency: Idempotency,
    Json(new): Json<NewArtwork>,
) -> Result<Response> {
    let artist = who.artist()?;
    let fields = new.validate()?;
    let mut client = state.client().await?;
    let mut w = Write::begin(&mut client, &who, &request).await?;
    if let Some(replay) = w.idempotent(&idempotency).await? {
        return Ok(replay);
    }
    super::artworks::slug_free(&w.tx, &fields.slug, None).await?;
    let artwork = db::insert_artwork(&w.tx, artist, &fields).await?;
    w.audit("artwork.create", format!("artwork:{}", artwork.id), json!({ "slug": artwork.slug }))
        .await?;
    w.commit(Reply::created(format!("/v1/manage/artworks/{}", artwork.id), &artwork)?).await
}
