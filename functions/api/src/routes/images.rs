//! An artwork's images: upload slots (presigned POST straight to S3), their
//! processing status, order, and removal.

use axum::response::{IntoResponse, Response};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::db;
use shared::domain::{self, Image, Principal};
use shared::media::{PREVIEW_CACHE_CONTROL, PREVIEW_TTL};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{managed, Deleted, Result, IF_MATCH};
use crate::extract::{Caller, Idempotency, IfMatch, Json, Path};
use crate::views::{ManagedImage, Media, Preview, PublicRendition};
use crate::write::{Reply, Write};
use crate::{ApiError, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, request_upload))
        .routes(routes!(show, update, remove))
        .routes(routes!(preview))
}

/// The image `who` may manage, or 404.
async fn managed_image(
    db: &impl GenericClient,
    who: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<Image> {
    let image = db::image_by_id(db, id).await?.ok_or(ApiError::NotFound)?;
    // The artwork's lock covers its images: reorders and removals serialise on it.
    managed(db, who, image.artwork_id, Deleted::No, lock).await?;
    if !lock {
        return Ok(image);
    }
    // Read again under the lock: the ETag a write checks must be the state it
    // changes, or two writes holding one ETag would both win.
    db::image_by_id(db, id).await?.ok_or(ApiError::NotFound)
}

#[derive(Serialize, ToSchema)]
pub struct ImageList {
    /// In display order; the first is the primary image.
    pub images: Vec<ManagedImage>,
}

/// The artwork's images with their processing status.
#[utoipa::path(get, path = "/v1/manage/artworks/{id}/images", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The images", body = ImageList)))]
async fn list(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ImageList>> {
    let client = state.client().await?;
    let artwork = managed(&client, &who, id, Deleted::No, false).await?;
    let media = Media(&state.media_base_url);
    Ok(axum::Json(ImageList {
        images: db::images_of(&client, artwork.id)
            .await?
            .into_iter()
            .map(|i| media.managed(i))
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The file's name on the artist's device (kept only so operators recognise it).
    #[schema(min_length = 1, max_length = 1000)]
    file_name: String,
    /// The file's type (`image/jpeg`, `image/png`, `image/webp`, `image/tiff`
    /// or `image/gif`); told from the file name when absent. The form pins it.
    content_type: Option<String>,
    /// What the image shows, for visitors who cannot see it (1 to 1000
    /// characters, one line). Required to add an image to a published work;
    /// every image needs one before its work is published.
    #[schema(min_length = 1, max_length = 1000)]
    alt_text: Option<String>,
}

/// Alt text: one line of 1 to 1000 characters.
fn alt_text(raw: &str) -> std::result::Result<String, domain::Invalid> {
    domain::text::text("alt_text", raw, 1, 1000, domain::text::Lines::One)
}

/// Where and how to POST the file: a form to send as multipart/form-data, fields first, the file last.
#[derive(Serialize, ToSchema)]
pub struct UploadForm {
    pub method: String,
    pub url: String,
    /// The form's fields, each a string, in this order.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub max_bytes: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Upload {
    pub image: ManagedImage,
    pub upload: UploadForm,
}

/// Opens an upload slot: the image (pending until processed) and a presigned POST for the original.
#[utoipa::path(post, path = "/v1/manage/artworks/{id}/images", tag = "artist", security(("gallery_token" = [])),
    request_body = UploadRequest,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the same slot")),
    responses((status = 201, description = "The slot and its form", body = Upload)))]
async fn request_upload(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    idempotency: Idempotency,
    Json(upload): Json<UploadRequest>,
) -> Result<Response> {
    let name =
        domain::text::text("file_name", &upload.file_name, 1, 1000, domain::text::Lines::One)
            .map_err(|e| vec![e])?;
    let content_type =
        domain::upload_content_type(&name, upload.content_type.as_deref()).map_err(|e| vec![e])?;
    let alt = upload.alt_text.as_deref().map(alt_text).transpose().map_err(|e| vec![e])?;
    let mut client = state.client().await?;
    let mut w = Write::begin(&mut client, &who, &request).await?;
    if let Some(replay) = w.idempotent(&idempotency).await? {
        return Ok(replay);
    }
    let artwork = managed(&w.tx, &who, id, Deleted::No, true).await?;
    // A published work never shows an image nobody described.
    if artwork.status == domain::ArtworkStatus::Published && alt.is_none() {
        return Err(ApiError::invalid(
            "alt_text",
            "is required to add an image to a published work",
        ));
    }
    let image_id = Uuid::new_v4();
    let key = domain::original_key(artwork.id, image_id, &domain::clean_file_name(&name));
    let post = state
        .store
        .presigned_post(
            &state.originals_bucket,
            &key,
            content_type,
            state.upload_max_bytes,
            state.upload_url_ttl,
            &state.post_endpoint,
        )
        .await?;
    let image = db::insert_image(&w.tx, image_id, artwork.id, &key, alt.as_deref()).await?;
    w.audit("image.upload", format!("image:{image_id}"), json!({ "artwork": artwork.id })).await?;
    let fields = post.fields.into_iter().map(|(k, v)| (k, v.into())).collect();
    let body = Upload {
        image: Media(&state.media_base_url).managed(image),
        upload: UploadForm {
            method: "POST".into(),
            url: post.url,
            fields,
            expires_at: post.expires_at,
            max_bytes: state.upload_max_bytes,
        },
    };
    w.commit(Reply::created(format!("/v1/manage/images/{image_id}"), &body)?).await
}

/// One image: processing status, failure reason, renditions.
#[utoipa::path(get, path = "/v1/manage/images/{id}", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The image", body = ManagedImage)))]
async fn show(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ManagedImage>> {
    Ok(axum::Json(
        Media(&state.media_base_url)
            .managed(managed_image(&state.client().await?, &who, id, false).await?),
    ))
}

/// Presigned URLs of the image's renditions, so the artist sees a draft before
/// it is public. They work for a few minutes; never cached.
#[utoipa::path(get, path = "/v1/manage/images/{id}/preview", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "Short-lived URLs", body = Preview)))]
async fn preview(Caller { state, who, .. }: Caller, Path(id): Path<Uuid>) -> Result<Response> {
    let image = managed_image(&state.client().await?, &who, id, false).await?;
    let expires_at =
        chrono::Utc::now() + chrono::Duration::from_std(PREVIEW_TTL).unwrap_or_default();
    let mut renditions = Vec::with_capacity(image.renditions.len());
    for r in &image.renditions {
        let url = state
            .media
            .store
            .presigned_get(&state.media.bucket, &r.key, PREVIEW_TTL, PREVIEW_CACHE_CONTROL)
            .await?;
        renditions.push(PublicRendition::at(r, url));
    }
    let mut response = axum::Json(Preview { expires_at, renditions }).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagePatch {
    /// 0 makes it the primary image; past the end puts it last.
    #[schema(minimum = 0, maximum = 1000)]
    position: Option<i32>,
    /// What the image shows (1 to 1000 characters, one line); it can be
    /// changed, not removed (`null` is refused).
    #[serde(default, deserialize_with = "domain::nullable")]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 1000)]
    alt_text: Option<Option<String>>,
}

/// Moves the image (0 makes it the primary image) or changes its alt text.
#[utoipa::path(patch, path = "/v1/manage/images/{id}", tag = "artist", security(("gallery_token" = [])),
    request_body = ImagePatch, params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The image after the change", body = ManagedImage)))]
async fn update(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(patch): Json<ImagePatch>,
) -> Result<Response> {
    let mut problems = Vec::new();
    if patch.position.is_some_and(|p| !(0..=1000).contains(&p)) {
        problems.push(domain::Invalid { field: "position", message: "must be 0 to 1000".into() });
    }
    let alt = match &patch.alt_text {
        Some(Some(raw)) => alt_text(raw).map_err(|e| problems.push(e)).ok(),
        Some(None) => {
            problems.push(domain::Invalid {
                field: "alt_text",
                message: "cannot be removed; describe the image instead".into(),
            });
            None
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let media = Media(&state.media_base_url);
    let image = media.managed(managed_image(&w.tx, &who, id, true).await?);
    if_match.check(&image)?;
    if let Some(position) = patch.position {
        db::move_image(&w.tx, image.artwork_id, id, position).await?;
    }
    if let Some(alt) = alt.as_deref().filter(|a| image.alt_text.as_deref() != Some(*a)) {
        db::set_alt_text(&w.tx, id, alt).await?;
    }
    let after = media.managed(db::image_by_id(&w.tx, id).await?.ok_or(ApiError::NotFound)?);
    if after.position == image.position && after.alt_text == image.alt_text {
        return Ok(axum::Json(image).into_response());
    }
    w.audit(
        "image.update",
        format!("image:{id}"),
        json!({
            "position": [image.position, after.position],
            "alt_text": [image.alt_text, after.alt_text],
        }),
    )
    .await?;
    w.commit(Reply::ok(&after)?).await
}

/// Removes the image: gone from the artwork at once; its files are deleted by the next retention run.
#[utoipa::path(delete, path = "/v1/manage/images/{id}", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 204, description = "Removed")))]
async fn remove(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let image = managed_image(&w.tx, &who, id, true).await?;
    if_match.check(&Media(&state.media_base_url).managed(image.clone()))?;
    let artwork = db::artwork_with_deleted(&w.tx, image.artwork_id, false)
        .await?
        .ok_or(ApiError::NotFound)?;
    if artwork.status == shared::domain::ArtworkStatus::Published
        && image.status == shared::domain::ImageStatus::Ready
        && db::readiness(&w.tx, artwork.id).await?.ready_images <= 1
    {
        return Err(ApiError::Conflict(
            "this is the published artwork's only image; add another or unpublish first".into(),
        ));
    }
    db::remove_image(&w.tx, image.artwork_id, id).await?;
    w.audit("image.remove", format!("image:{id}"), json!({ "artwork": image.artwork_id })).await?;
    let response = w.commit(Reply::no_content()).await?;
    state.settle_artwork(image.artwork_id).await;
    Ok(response)
}
