//! An artist's own tokens, `/v1/me/tokens`: list them and revoke one, so a
//! lost phone is signed out at once rather than when an admin answers.

use axum::response::Response;
use serde::Deserialize;
use shared::db::TokenFilter;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::admin::tokens::{revoke_one, token_page, TokenList};
use super::{page_size, Result, IF_MATCH};
use crate::extract::{Caller, IfMatch, Path, Query, Require};
use crate::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(revoke))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyTokenQuery {
    cursor: Option<String>,
    limit: Option<i64>,
    /// Revoked and expired tokens too.
    include_dead: Option<bool>,
}

/// The caller's own tokens, newest first; never a secret.
#[utoipa::path(get, path = "/v1/me/tokens", tag = "artist", security(("gallery_token" = [])), params(MyTokenQuery),
    responses((status = 200, description = "A page of the caller's tokens", body = TokenList)))]
async fn list(
    Caller { state, who, .. }: Caller,
    Query(q): Query<MyTokenQuery>,
) -> Result<axum::Json<TokenList>> {
    let artist = who.artist()?;
    let limit = page_size(q.limit)?;
    let filter =
        TokenFilter { include_dead: q.include_dead.unwrap_or(false), artist: Some(artist) };
    Ok(axum::Json(token_page(&state, &filter, q.cursor.as_deref(), limit).await?))
}

/// Revokes one of the caller's tokens (the one in use too: that signs this
/// device out). Another artist's token is not found.
#[utoipa::path(delete, path = "/v1/me/tokens/{id}", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 204, description = "Revoked")))]
async fn revoke(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    let artist = who.artist()?;
    revoke_one(&state, &who, &request, id, &if_match, Some(artist)).await
}
