//! Artist erasure, as admins ask for it: the request takes the artist out of
//! the gallery at once (works hidden at the edge, tokens revoked) and is
//! sealed into the erasure ledger before it is answered; the
//! retention function completes it (objects everywhere, then rows) on its
//! next run, or at once through `gallery-ops artists erase`.

use axum::response::Response;
use serde_json::json;
use shared::archive::ledger::ErasureRecord;
use shared::db::{self, Erasure};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::extract::{Caller, IfMatch, Path};
use crate::routes::{admin, Result, IF_MATCH};
use crate::write::{Reply, Write};
use crate::{ApiError, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(request)).routes(routes!(show))
}

/// Asks for an artist's erasure: their name, email, profile, works, images
/// (every stored version, DR copies included) and tokens are removed; a record
/// that proves it, without personal data, is kept. Asking again returns the
/// open request.
#[utoipa::path(post, path = "/v1/admin/artists/{id}/erasure", tag = "admin", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 202, description = "Requested: the artist is out of the gallery; retention completes the erasure", body = Erasure)))]
async fn request(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    admin(&who)?;
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let current = db::artist_listing(&w.tx, id, true).await?.ok_or(ApiError::NotFound)?;
    if_match.check(&current)?;
    let (erasure, new) = db::request_erasure(&w.tx, id, &who.actor(), Some(request.0.as_str()))
        .await?
        .ok_or(ApiError::NotFound)?;
    if new {
        // Durable outside the database before the 202: a restore or a
        // point-in-time recovery from here on replays it. If the commit then
        // fails, the record stands for an erasure the admin asked for.
        state.ledger.write(&ErasureRecord::from(&erasure)).await?;
        w.audit(
            "artist.erasure_requested",
            format!("artist:{id}"),
            json!({ "erasure": erasure.id }),
        )
        .await?;
    }
    let response =
        w.commit(Reply::accepted(format!("/v1/admin/erasures/{}", erasure.id), &erasure)?).await?;
    state.settle_artist(id).await;
    Ok(response)
}

/// An erasure: requested, or completed with what it removed and the backups
/// that still hold the artist until the rotation removes them.
#[utoipa::path(get, path = "/v1/admin/erasures/{id}", tag = "admin", security(("gallery_token" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, description = "The erasure record", body = Erasure)))]
async fn show(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Erasure>> {
    admin(&who)?;
    Ok(axum::Json(db::erasure_by_id(&state.client().await?, id).await?.ok_or(ApiError::NotFound)?))
}
