//! Tokens as admins manage them: issue (shown once), list without secrets, revoke.

use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::db::{self, TokenFilter, TokenListing};
use shared::domain::fields::{HolderMismatch, TokenHolder, TokenLabel, TokenLifetime};
use shared::domain::Scope;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::extract::{Caller, Idempotency, IfMatch, Json, Path, Query};
use crate::routes::{admin, cursor, page_size, split_page, Result, IF_MATCH};
use crate::write::{Reply, Write};
use crate::{ApiError, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, revoke))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    cursor: Option<String>,
    limit: Option<i64>,
    /// Revoked and expired tokens too.
    include_dead: Option<bool>,
    /// Only this artist's tokens.
    artist: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenListing>,
    pub next_cursor: Option<String>,
}

/// Tokens, newest first; never a secret.
#[utoipa::path(get, path = "/v1/admin/tokens", tag = "admin", security(("gallery_token" = [])), params(TokenQuery),
    responses((status = 200, description = "A page of tokens", body = TokenList)))]
async fn list(
    Caller { state, who, .. }: Caller,
    Query(q): Query<TokenQuery>,
) -> Result<axum::Json<TokenList>> {
    admin(&who)?;
    let limit = page_size(q.limit)?;
    let filter = TokenFilter { include_dead: q.include_dead.unwrap_or(false), artist: q.artist };
    Ok(axum::Json(token_page(&state, &filter, q.cursor.as_deref(), limit).await?))
}

/// A page of tokens under `filter`, newest first (admins' and artists' own lists).
pub(crate) async fn token_page(
    state: &SharedState,
    filter: &TokenFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<TokenList> {
    let rows = db::tokens_page(&state.client().await?, filter, cursor(after)?, limit + 1).await?;
    let (tokens, next_cursor) =
        split_page(rows, limit, |t| shared::domain::Cursor { at: t.created_at, id: t.id }.encode());
    Ok(TokenList { tokens, next_cursor })
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    scope: Scope,
    /// Required for an artist token, absent for an admin token.
    artist_id: Option<Uuid>,
    /// What it is for, e.g. "Ada's phone": 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    label: String,
    /// 1 to 365 days.
    #[schema(minimum = 1, maximum = 365)]
    expires_in_days: i64,
}

/// A new token: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub struct IssuedToken {
    pub token: TokenListing,
    /// Send as `x-gallery-token`. Shown once; not stored.
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues a token with a scope, an expiry and a label; the secret is in this answer only.
#[utoipa::path(post, path = "/v1/admin/tokens", tag = "admin", security(("gallery_token" = [])), request_body = NewToken,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key issues nothing and answers 409 (the secret is never repeated)")),
    responses((status = 201, description = "Issued", body = IssuedToken)))]
async fn create(
    Caller { state, who, request }: Caller,
    idempotency: Idempotency,
    Json(new): Json<NewToken>,
) -> Result<Response> {
    admin(&who)?;
    let mut problems = shared::domain::Problems::default();
    let label = problems.check(TokenLabel::parse(&new.label));
    let lifetime = problems.check(TokenLifetime::parse(new.expires_in_days));
    match TokenHolder::parse(new.scope, new.artist_id) {
        Ok(_) => {}
        Err(HolderMismatch::ArtistTokenWithoutArtist) => {
            problems.push("artist_id", "is required for an artist token")
        }
        Err(HolderMismatch::AdminTokenWithArtist) => {
            problems.push("artist_id", "must be absent for an admin token")
        }
    }
    let (Some(label), Some(lifetime)) = problems.finish(|| (label, lifetime))? else {
        return Err(ApiError::invalid("expires_in_days", "must be 1 to 365"));
    };
    let mut client = state.client().await?;
    let mut w = Write::begin(&mut client, &who, &request).await?;
    if let Some(replay) = w.idempotent(&idempotency).await? {
        return Ok(replay);
    }
    if let Some(artist) = new.artist_id {
        if !db::artist_exists(&w.tx, artist).await? {
            return Err(ApiError::invalid("artist_id", "no such artist"));
        }
        if db::erasure_pending(&w.tx, artist).await? {
            return Err(ApiError::Conflict(
                "the artist's erasure is pending: no new token can be issued".into(),
            ));
        }
    }
    let (secret, digest) = shared::domain::new_token();
    let expires_at = Utc::now() + lifetime.duration();
    let id = db::insert_token(&w.tx, new.artist_id, new.scope, &digest, label.as_str(), expires_at)
        .await?;
    w.audit(
        "token.create",
        format!("token:{id}"),
        json!({ "scope": new.scope, "artist": new.artist_id, "expires_at": expires_at }),
    )
    .await?;
    let token = db::token_by_id(&w.tx, id, false).await?.ok_or(ApiError::NotFound)?;
    w.commit(
        Reply::created(
            format!("/v1/admin/tokens/{id}"),
            &IssuedToken { token, secret, expires_at },
        )?
        .secret(),
    )
    .await
}

/// One token, without its secret.
#[utoipa::path(get, path = "/v1/admin/tokens/{id}", tag = "admin", security(("gallery_token" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, description = "The token", body = TokenListing)))]
async fn show(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TokenListing>> {
    admin(&who)?;
    Ok(axum::Json(
        db::token_by_id(&state.client().await?, id, false).await?.ok_or(ApiError::NotFound)?,
    ))
}

/// Revokes a token; the next request with it is refused. A revoked token stays revoked.
#[utoipa::path(delete, path = "/v1/admin/tokens/{id}", tag = "admin", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 204, description = "Revoked")))]
async fn revoke(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    admin(&who)?;
    revoke_one(&state, &who, &request, id, &if_match, None).await
}

/// Revokes token `id`; with `holder`, only if it is that artist's (another's
/// token is not found: an artist learns nothing of others' tokens).
pub(crate) async fn revoke_one(
    state: &SharedState,
    who: &shared::domain::Principal,
    request: &crate::RequestId,
    id: Uuid,
    if_match: &IfMatch,
    holder: Option<Uuid>,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, who, request).await?;
    let token = db::token_by_id(&w.tx, id, true).await?.ok_or(ApiError::NotFound)?;
    if holder.is_some() && token.artist_id != holder {
        return Err(ApiError::NotFound);
    }
    if_match.check(&token)?;
    if token.revoked_at.is_some() {
        return Err(ApiError::Conflict("the token is already revoked".into()));
    }
    db::revoke_token(&w.tx, id).await?;
    w.audit("token.revoke", format!("token:{id}"), json!({ "scope": token.scope })).await?;
    w.commit(Reply::no_content()).await
}
