//! One artwork, managed by its artist (or an admin): fields, publication,
//! soft delete and restore. `/v1/manage/artworks/{id}…`

use axum::response::{IntoResponse, Response};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::json;
use shared::db;
use shared::domain::{transition, Artwork, ArtworkPatch, Transition};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{managed, Deleted, Result, IF_MATCH};
use crate::extract::{Caller, IfMatch, Json, OptionalJson, Path};
use crate::write::{Reply, Write};
use crate::{ApiError, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(show, update, delete))
        .routes(routes!(change_status))
        .routes(routes!(restore))
}

/// Refuses a slug another live artwork holds. The message does not say whose
/// or in which status, so no artist learns of another's drafts.
pub(super) async fn slug_free(
    db: &impl GenericClient,
    slug: &str,
    except: Option<Uuid>,
) -> Result<()> {
    if db::slug_taken(db, slug, except).await? {
        Err(ApiError::Conflict(format!("the slug {slug:?} is not available; choose another")))
    } else {
        Ok(())
    }
}

/// The names of the fields a patch sent, for the audit entry (values stay out of it).
fn changed_fields(p: &ArtworkPatch) -> Vec<&'static str> {
    [
        ("title", p.title.is_some()),
        ("slug", p.slug.is_some()),
        ("description", p.description.is_some()),
        ("medium", p.medium.is_some()),
        ("year", p.year.is_some()),
        ("width_mm", p.width_mm.is_some()),
        ("height_mm", p.height_mm.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect()
}

/// One artwork in any status; a deleted one (with `deleted_at`) until it is purged, for restore.
#[utoipa::path(get, path = "/v1/manage/artworks/{id}", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The artwork; its ETag is what updates send in If-Match", body = Artwork)))]
async fn show(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Artwork>> {
    Ok(axum::Json(managed(&state.client().await?, &who, id, Deleted::Included, false).await?))
}

/// Changes any of the artwork's fields; `null` clears an optional one.
#[utoipa::path(patch, path = "/v1/manage/artworks/{id}", tag = "artist", security(("gallery_token" = [])),
    request_body = ArtworkPatch, params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The artwork after the change", body = Artwork)))]
async fn update(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(patch): Json<ArtworkPatch>,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let artwork = managed(&w.tx, &who, id, Deleted::No, true).await?;
    if_match.check(&artwork)?;
    let fields = patch.apply(&artwork.fields())?;
    if fields == artwork.fields() {
        return Ok(axum::Json(artwork).into_response());
    }
    if fields.slug != artwork.slug {
        slug_free(&w.tx, &fields.slug, Some(id)).await?;
    }
    db::update_artwork(&w.tx, id, &fields).await?;
    w.audit("artwork.update", format!("artwork:{id}"), json!({ "fields": changed_fields(&patch) }))
        .await?;
    let after = db::artwork_by_id(&w.tx, id).await?.ok_or(ApiError::NotFound)?;
    w.commit(Reply::ok(&after)?).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `publish` (needs a ready image and an edition on sale), `unpublish`, or `archive`.
    action: Transition,
}

/// Publishes, unpublishes or archives the artwork.
#[utoipa::path(post, path = "/v1/manage/artworks/{id}/status", tag = "artist", security(("gallery_token" = [])),
    request_body = StatusChange, params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The artwork in its new status", body = Artwork)))]
async fn change_status(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(change): Json<StatusChange>,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let artwork = managed(&w.tx, &who, id, Deleted::No, true).await?;
    if_match.check(&artwork)?;
    let readiness = db::readiness(&w.tx, id).await?;
    let to = transition(artwork.status, change.action, readiness).map_err(ApiError::Conflict)?;
    db::set_artwork_status(&w.tx, id, to).await?;
    w.audit("artwork.status", format!("artwork:{id}"), json!({ "from": artwork.status, "to": to }))
        .await?;
    let after = db::artwork_by_id(&w.tx, id).await?.ok_or(ApiError::NotFound)?;
    let response = w.commit(Reply::ok(&after)?).await?;
    state.settle_artwork(id).await;
    Ok(response)
}

/// Deletes the artwork: hidden from the public at once; its owner still reads it
/// (with `deleted_at`) and may restore it until the grace period ends, then it is purged.
#[utoipa::path(delete, path = "/v1/manage/artworks/{id}", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let artwork = managed(&w.tx, &who, id, Deleted::No, true).await?;
    if_match.check(&artwork)?;
    db::soft_delete_artwork(&w.tx, id).await?;
    let purge_after = chrono::Utc::now() + state.deleted_artwork_grace;
    w.audit("artwork.delete", format!("artwork:{id}"), json!({ "restorable_until": purge_after }))
        .await?;
    let response = w.commit(Reply::no_content()).await?;
    state.settle_artwork(id).await;
    Ok(response)
}

/// Undoes a delete within the grace period. `If-Match` is the deleted
/// artwork's ETag, from its GET. If another work took its slug meanwhile, the
/// body names a new one (`{"slug": "…"}`); otherwise it may be empty.
#[utoipa::path(post, path = "/v1/manage/artworks/{id}/restore", tag = "artist", security(("gallery_token" = [])),
    request_body(content = Option<RestoreOptions>, description = "Optional: a new slug, when the old one was taken"),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "Restored", body = Artwork)))]
async fn restore(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    OptionalJson(options): OptionalJson<RestoreOptions>,
) -> Result<Response> {
    let new_slug = match options.and_then(|o| o.slug) {
        Some(slug) if !shared::domain::valid_slug(&slug) => {
            return Err(ApiError::invalid(
                "slug",
                "must be lowercase letters and digits in words joined by single hyphens, at most 120 characters",
            ));
        }
        other => other,
    };
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let artwork = managed(&w.tx, &who, id, Deleted::Included, true).await?;
    if_match.check(&artwork)?;
    let Some(deleted_at) = artwork.deleted_at else {
        return Err(ApiError::Conflict("the artwork is not deleted".into()));
    };
    if deleted_at + state.deleted_artwork_grace < chrono::Utc::now() {
        return Err(ApiError::NotFound);
    }
    let slug = new_slug.as_deref().unwrap_or(&artwork.slug);
    if db::slug_taken(&w.tx, slug, Some(id)).await? {
        return Err(ApiError::Conflict(format!(
            "the slug {slug:?} is taken; restore the artwork with a new one in the body, {{\"slug\": \"…\"}}"
        )));
    }
    if slug != artwork.slug {
        db::set_artwork_slug(&w.tx, id, slug).await?;
    }
    db::restore_artwork(&w.tx, id).await?;
    let detail = json!({ "slug": [&artwork.slug, slug] });
    w.audit("artwork.restore", format!("artwork:{id}"), detail).await?;
    let after = db::artwork_by_id(&w.tx, id).await?.ok_or(ApiError::NotFound)?;
    let response = w.commit(Reply::ok(&after)?).await?;
    state.settle_artwork(id).await;
    Ok(response)
}

/// What a restore may change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreOptions {
    /// A new slug, when the old one was taken while the artwork was deleted.
    slug: Option<String>,
}
