//! Admin routes, `/v1/admin/…`: admin tokens only. One file per resource.

mod artists;
mod audit;
mod erasures;
pub(crate) mod tokens;

use serde::Deserialize;
use shared::domain::ArtworkStatus;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::me::{catalog, ArtworkList, CatalogQuery};
use super::Result;
use crate::extract::{Caller, Query};
use crate::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .merge(artists::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(erasures::routes())
        .routes(routes!(artworks))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminArtworkQuery {
    cursor: Option<String>,
    limit: Option<i64>,
    /// Only this artist's works.
    artist: Option<Uuid>,
    status: Option<ArtworkStatus>,
    /// Deleted works still within their grace period instead of live ones.
    deleted: Option<bool>,
}

/// Every artist's artworks in any status, newest first.
#[utoipa::path(get, path = "/v1/admin/artworks", tag = "admin", security(("gallery_token" = [])), params(AdminArtworkQuery),
    responses((status = 200, description = "A page of artworks", body = ArtworkList)))]
async fn artworks(
    Caller { state, who, .. }: Caller,
    Query(q): Query<AdminArtworkQuery>,
) -> Result<axum::Json<ArtworkList>> {
    super::admin(&who)?;
    let query =
        CatalogQuery { cursor: q.cursor, limit: q.limit, status: q.status, deleted: q.deleted };
    Ok(axum::Json(catalog(&state, &query, q.artist).await?))
}
