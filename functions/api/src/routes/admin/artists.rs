//! Artists as admins manage them: create, list, update, suspend and reinstate.

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::db::{self, ArtistListing};
use shared::domain::fields::{Bio, Email, NewArtistFields, Website};
use shared::domain::{text, ProfilePatch};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::extract::{Caller, Idempotency, IfMatch, Json, Path, Query};
use crate::routes::{admin, cursor, page_size, split_page, Result, IF_MATCH};
use crate::write::{Reply, Write};
use crate::{ApiError, RequestId, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(suspend, reinstate))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArtistQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ArtistList {
    pub artists: Vec<ArtistListing>,
    pub next_cursor: Option<String>,
}

/// Artists, newest first, with email, suspension and live token count.
#[utoipa::path(get, path = "/v1/admin/artists", tag = "admin", security(("gallery_token" = [])), params(ArtistQuery),
    responses((status = 200, description = "A page of artists", body = ArtistList)))]
async fn list(
    Caller { state, who, request }: Caller,
    Query(q): Query<ArtistQuery>,
) -> Result<axum::Json<ArtistList>> {
    admin(&who)?;
    let limit = page_size(q.limit)?;
    let client = state.client().await?;
    let rows = db::artists_page(&client, cursor(q.cursor.as_deref())?, limit + 1).await?;
    let (artists, next_cursor) =
        split_page(rows, limit, |a| shared::domain::Cursor { at: a.created_at, id: a.id }.encode());
    let read: Vec<Uuid> = artists.iter().map(|a| a.id).collect();
    personal_data_read(&client, &who, &request, "artists".into(), &read).await?;
    Ok(axum::Json(ArtistList { artists, next_cursor }))
}

/// Emails are personal data: every read of them is in the audit log (who,
/// which request, which artists), never the addresses themselves.
async fn personal_data_read(
    db: &impl deadpool_postgres::GenericClient,
    who: &shared::domain::Principal,
    request: &RequestId,
    target: String,
    artists: &[Uuid],
) -> Result<()> {
    if artists.is_empty() {
        return Ok(());
    }
    let entry = db::AuditEntry {
        actor: &who.actor(),
        action: "artist.personal_data_read",
        target: &target,
        request_id: Some(&request.0),
        detail: json!({ "artists": artists }),
    };
    db::append_audit(db, &entry).await?;
    Ok(())
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArtist {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Kept out of logs and audit entries.
    #[schema(min_length = 3, max_length = 320)]
    email: String,
    /// At most 10,000 characters.
    #[schema(max_length = 10000)]
    bio: Option<String>,
    /// An https:// address.
    #[schema(max_length = 2000, pattern = "^https://")]
    website: Option<String>,
}

/// Adds an artist (then give them a token with `POST /v1/admin/tokens`).
#[utoipa::path(post, path = "/v1/admin/artists", tag = "admin", security(("gallery_token" = [])), request_body = NewArtist,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first answer")),
    responses((status = 201, description = "Created", body = ArtistListing)))]
async fn create(
    Caller { state, who, request }: Caller,
    idempotency: Idempotency,
    Json(new): Json<NewArtist>,
) -> Result<Response> {
    admin(&who)?;
    let fields =
        NewArtistFields::parse(&new.name, &new.email, new.bio.as_deref(), new.website.as_deref())?;
    let (name, email) = (fields.name.as_str(), fields.email.as_str());
    let (bio, website) =
        (fields.bio.as_ref().map(Bio::as_str), fields.website.as_ref().map(Website::as_str));
    let mut client = state.client().await?;
    let mut w = Write::begin(&mut client, &who, &request).await?;
    if let Some(replay) = w.idempotent(&idempotency).await? {
        return Ok(replay);
    }
    email_free(&w.tx, email, None).await?;
    let artist = db::insert_artist(&w.tx, name, email, bio, website).await?;
    w.audit("artist.create", format!("artist:{}", artist.id), json!({})).await?;
    let listing = db::artist_listing(&w.tx, artist.id, false).await?.ok_or(ApiError::NotFound)?;
    w.commit(Reply::created(format!("/v1/admin/artists/{}", artist.id), &listing)?).await
}

async fn email_free(
    db: &impl deadpool_postgres::GenericClient,
    email: &str,
    except: Option<Uuid>,
) -> Result<()> {
    if db::email_taken(db, email, except).await? {
        Err(ApiError::Conflict("another artist has this email".into()))
    } else {
        Ok(())
    }
}

/// One artist.
#[utoipa::path(get, path = "/v1/admin/artists/{id}", tag = "admin", security(("gallery_token" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, description = "The artist", body = ArtistListing)))]
async fn show(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ArtistListing>> {
    admin(&who)?;
    let client = state.client().await?;
    let artist = db::artist_listing(&client, id, false).await?.ok_or(ApiError::NotFound)?;
    personal_data_read(&client, &who, &request, format!("artist:{id}"), &[id]).await?;
    Ok(axum::Json(artist))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtistPatch {
    #[serde(flatten)]
    profile: ProfilePatch,
    email: Option<String>,
}

/// Changes an artist's name, email, bio or website.
#[utoipa::path(patch, path = "/v1/admin/artists/{id}", tag = "admin", security(("gallery_token" = [])), request_body = ArtistPatch,
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The artist after the change", body = ArtistListing)))]
async fn update(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(patch): Json<ArtistPatch>,
) -> Result<Response> {
    admin(&who)?;
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let current = db::artist_listing(&w.tx, id, true).await?.ok_or(ApiError::NotFound)?;
    if_match.check(&current)?;
    let profile = patch.profile.apply(&current.profile());
    let email = patch.email.as_deref().map(|e| Email::parse(e).map(Email::into_string)).transpose();
    let (profile, email) = match (profile, email) {
        (Ok(p), Ok(e)) => (p, e),
        (p, e) => {
            return Err(ApiError::Invalid(
                p.err().unwrap_or_default().into_iter().chain(e.err()).collect(),
            ))
        }
    };
    let email_changed = email.as_deref().is_some_and(|e| e != current.email);
    if profile == current.profile() && !email_changed {
        return Ok(axum::Json(current).into_response());
    }
    if let Some(email) = email.as_deref().filter(|_| email_changed) {
        email_free(&w.tx, email, Some(id)).await?;
        db::update_email(&w.tx, id, email).await?;
    }
    db::update_profile(&w.tx, id, &profile).await?;
    w.audit("artist.update", format!("artist:{id}"), json!({ "email_changed": email_changed }))
        .await?;
    let after = db::artist_listing(&w.tx, id, false).await?.ok_or(ApiError::NotFound)?;
    w.commit(Reply::ok(&after)?).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    /// Why, for the record: 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Suspends an artist: their works leave the public gallery and their tokens stop working at once.
#[utoipa::path(post, path = "/v1/admin/artists/{id}/suspension", tag = "admin", security(("gallery_token" = [])), request_body = Suspension,
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The suspended artist", body = ArtistListing)))]
async fn suspend(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(s): Json<Suspension>,
) -> Result<Response> {
    admin(&who)?;
    let reason = text::text("reason", &s.reason, 1, 500, text::Lines::One).map_err(|e| vec![e])?;
    set_suspension(&state, &who, &request, id, &if_match, Some(&reason)).await
}

/// Reinstates a suspended artist.
#[utoipa::path(delete, path = "/v1/admin/artists/{id}/suspension", tag = "admin", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The reinstated artist", body = ArtistListing)))]
async fn reinstate(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    admin(&who)?;
    set_suspension(&state, &who, &request, id, &if_match, None).await
}

async fn set_suspension(
    state: &SharedState,
    who: &shared::domain::Principal,
    request: &RequestId,
    id: Uuid,
    if_match: &IfMatch,
    reason: Option<&str>,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, who, request).await?;
    let current = db::artist_listing(&w.tx, id, true).await?.ok_or(ApiError::NotFound)?;
    if_match.check(&current)?;
    if reason.is_none() && db::erasure_pending(&w.tx, id).await? {
        return Err(ApiError::Conflict(
            "the artist's erasure is pending: an artist being erased cannot be reinstated".into(),
        ));
    }
    match (current.suspended_at.is_some(), reason.is_some()) {
        (true, true) => return Err(ApiError::Conflict("the artist is already suspended".into())),
        (false, false) => return Err(ApiError::Conflict("the artist is not suspended".into())),
        _ => {}
    }
    db::set_suspension(&w.tx, id, reason).await?;
    let action = if reason.is_some() { "artist.suspend" } else { "artist.reinstate" };
    w.audit(action, format!("artist:{id}"), json!({ "reason": reason })).await?;
    let after = db::artist_listing(&w.tx, id, false).await?.ok_or(ApiError::NotFound)?;
    let response = w.commit(Reply::ok(&after)?).await?;
    state.settle_artist(id).await;
    Ok(response)
}
