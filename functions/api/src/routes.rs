//! Request handlers: translate HTTP into calls on `shared` and back.

use axum::extract::{Path, Query, State as StateExtractor};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::db::{self, AuditEntry, DbError};
use shared::domain::{self, Artwork, ArtworkStatus, Image, Invalid, NewArtwork, NewEdition, Principal, PrintEdition, Scope};
use uuid::Uuid;

use crate::{ApiError, Authenticated, Json, RequestId, State};

type Result<T> = std::result::Result<T, ApiError>;

async fn client(state: &State) -> Result<db::Client> {
    Ok(state.pool.get().await.map_err(DbError::from)?)
}

fn parse_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

async fn audit(
    client: &db::Client,
    who: &Principal,
    action: &str,
    target: String,
    request: &RequestId,
    detail: serde_json::Value,
) -> Result<()> {
    let entry = AuditEntry { actor: &who.actor(), action, target: &target, request_id: Some(&request.0), detail };
    db::append_audit(client, &entry).await?;
    Ok(())
}

/// An artwork the caller may manage, or 404 (not 403, so ids do not leak).
async fn managed_artwork(client: &db::Client, who: &Principal, id: Uuid) -> Result<Artwork> {
    match db::artwork_by_id(client, id).await? {
        Some(a) if who.may_manage(a.artist_id) => Ok(a),
        _ => Err(ApiError::NotFound),
    }
}

pub async fn health(StateExtractor(state): StateExtractor<State>) -> Result<impl IntoResponse> {
    db::ping(&state.pool).await.map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok(axum::Json(json!({ "status": "ok" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    before: Option<DateTime<Utc>>,
    limit: Option<i64>,
}

#[derive(Serialize)]
struct ArtworkPage {
    artworks: Vec<Artwork>,
    /// Pass as `before` to get the next page; absent on the last page.
    next_before: Option<DateTime<Utc>>,
}

pub async fn list_artworks(
    StateExtractor(state): StateExtractor<State>,
    query: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse> {
    let Query(query) = query.map_err(|e| ApiError::Invalid(vec![Invalid { field: "query", message: e.body_text() }]))?;
    let limit = query.limit.unwrap_or(24);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Invalid(vec![Invalid { field: "limit", message: "must be between 1 and 100".into() }]));
    }
    let artworks = db::published_artworks(&client(&state).await?, query.before, limit).await?;
    let next_before = (artworks.len() as i64 == limit).then(|| artworks.last().map(|a| a.created_at)).flatten();
    Ok(axum::Json(ArtworkPage { artworks, next_before }))
}

#[derive(Serialize)]
struct ArtworkDetail {
    #[serde(flatten)]
    artwork: Artwork,
    editions: Vec<PrintEdition>,
    images: Vec<PublicImage>,
}

#[derive(Serialize)]
struct PublicImage {
    id: Uuid,
    renditions: Vec<domain::RenditionRecord>,
}

pub async fn show_artwork(StateExtractor(state): StateExtractor<State>, Path(slug): Path<String>) -> Result<impl IntoResponse> {
    let client = client(&state).await?;
    let artwork = db::published_artwork_by_slug(&client, &slug).await?.ok_or(ApiError::NotFound)?;
    let editions = db::editions_of(&client, artwork.id).await?;
    let images =
        db::ready_images_of(&client, artwork.id).await?.into_iter().map(|i| PublicImage { id: i.id, renditions: i.renditions }).collect();
    Ok(axum::Json(ArtworkDetail { artwork, editions, images }))
}

pub async fn create_artwork(
    StateExtractor(state): StateExtractor<State>,
    Extension(request): Extension<RequestId>,
    Authenticated(who): Authenticated,
    Json(new): Json<NewArtwork>,
) -> Result<impl IntoResponse> {
    // Artworks belong to an artist; an admin token has no artist to create for.
    let artist_id = match (who.scope, who.artist_id) {
        (Scope::Artist, Some(id)) => id,
        _ => return Err(ApiError::Forbidden),
    };
    let slug = new.validate()?;
    let mut client = client(&state).await?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    let artwork = db::insert_artwork(&tx, artist_id, &new, &slug).await.map_err(|e| match e.sqlstate() {
        Some("23505") => ApiError::Conflict(format!("the slug {slug:?} is taken; choose another")),
        _ => e.into(),
    })?;
    let entry = AuditEntry {
        actor: &who.actor(),
        action: "artwork.create",
        target: &format!("artwork:{}", artwork.id),
        request_id: Some(&request.0),
        detail: json!({ "slug": slug }),
    };
    db::append_audit(&tx, &entry).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok((StatusCode::CREATED, axum::Json(artwork)))
}

pub async fn manage_artwork(
    StateExtractor(state): StateExtractor<State>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let client = client(&state).await?;
    let artwork = managed_artwork(&client, &who, parse_id(&id)?).await?;
    let editions = db::editions_of(&client, artwork.id).await?;
    Ok(axum::Json(json!({ "artwork": artwork, "editions": editions })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtworkUpdate {
    status: ArtworkStatus,
}

pub async fn update_artwork(
    StateExtractor(state): StateExtractor<State>,
    Extension(request): Extension<RequestId>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    Json(update): Json<ArtworkUpdate>,
) -> Result<impl IntoResponse> {
    let client = client(&state).await?;
    let artwork = managed_artwork(&client, &who, parse_id(&id)?).await?;
    db::set_artwork_status(&client, artwork.id, update.status).await?;
    audit(
        &client,
        &who,
        "artwork.status",
        format!("artwork:{}", artwork.id),
        &request,
        json!({ "from": artwork.status, "to": update.status }),
    )
    .await?;
    let artwork = db::artwork_by_id(&client, artwork.id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(artwork))
}

pub async fn delete_artwork(
    StateExtractor(state): StateExtractor<State>,
    Extension(request): Extension<RequestId>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let client = client(&state).await?;
    let artwork = managed_artwork(&client, &who, parse_id(&id)?).await?;
    db::soft_delete_artwork(&client, artwork.id).await?;
    audit(&client, &who, "artwork.delete", format!("artwork:{}", artwork.id), &request, json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_edition(
    StateExtractor(state): StateExtractor<State>,
    Extension(request): Extension<RequestId>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    Json(new): Json<NewEdition>,
) -> Result<impl IntoResponse> {
    new.validate()?;
    let client = client(&state).await?;
    let artwork = managed_artwork(&client, &who, parse_id(&id)?).await?;
    let edition = db::insert_edition(&client, artwork.id, &new).await?;
    audit(&client, &who, "edition.create", format!("edition:{}", edition.id), &request, json!({ "artwork": artwork.id })).await?;
    Ok((StatusCode::CREATED, axum::Json(edition)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    file_name: String,
}

pub async fn create_upload(
    StateExtractor(state): StateExtractor<State>,
    Extension(request): Extension<RequestId>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    Json(upload): Json<UploadRequest>,
) -> Result<impl IntoResponse> {
    let client = client(&state).await?;
    let artwork = managed_artwork(&client, &who, parse_id(&id)?).await?;
    let image_id = Uuid::new_v4();
    let key = domain::original_key(artwork.id, image_id, &domain::clean_file_name(&upload.file_name));
    let post = state
        .store
        .presigned_post(&state.originals_bucket, &key, state.upload_max_bytes, state.upload_url_ttl, &state.post_endpoint)
        .await?;
    let image = db::insert_image(&client, image_id, artwork.id, &key).await?;
    audit(&client, &who, "image.upload", format!("image:{image_id}"), &request, json!({ "artwork": artwork.id })).await?;
    let fields: serde_json::Map<String, serde_json::Value> = post.fields.into_iter().map(|(k, v)| (k, v.into())).collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "image": image,
            "upload": { "method": "POST", "url": post.url, "fields": fields, "expires_at": post.expires_at, "max_bytes": state.upload_max_bytes },
        })),
    ))
}

pub async fn show_image(
    StateExtractor(state): StateExtractor<State>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<Image>> {
    let client = client(&state).await?;
    let image = db::image_by_id(&client, parse_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    managed_artwork(&client, &who, image.artwork_id).await?;
    Ok(axum::Json(image))
}
