//! Print editions and their sales, managed by the artwork's artist (or an admin).

use axum::response::{IntoResponse, Response};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use shared::db;
use shared::domain::{
    EditionPatch, NewEdition, Principal, PrintEdition, Sale, SaleRecord, SaleVoid,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{managed, Deleted, Result, IF_MATCH};
use crate::extract::{Caller, Idempotency, IfMatch, Json, Path};
use crate::write::{Reply, Write};
use crate::{ApiError, SharedState};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(retire))
        .routes(routes!(sales, sell))
        .routes(routes!(void))
}

/// The edition `who` may manage, or 404; `lock` holds it (and so serialises sales).
async fn managed_edition(
    db: &impl GenericClient,
    who: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<PrintEdition> {
    let edition =
        if lock { db::lock_edition(db, id).await? } else { db::edition_by_id(db, id).await? };
    let edition = edition.ok_or(ApiError::NotFound)?;
    managed(db, who, edition.artwork_id, Deleted::No, false).await?;
    Ok(edition)
}

#[derive(Serialize, ToSchema)]
pub struct EditionList {
    pub editions: Vec<PrintEdition>,
}

/// The artwork's editions, retired ones included, oldest first.
#[utoipa::path(get, path = "/v1/manage/artworks/{id}/editions", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The editions", body = EditionList)))]
async fn list(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<EditionList>> {
    let client = state.client().await?;
    let artwork = managed(&client, &who, id, Deleted::No, false).await?;
    Ok(axum::Json(EditionList { editions: db::editions_of(&client, artwork.id).await? }))
}

/// Adds an edition to the artwork.
#[utoipa::path(post, path = "/v1/manage/artworks/{id}/editions", tag = "artist", security(("gallery_token" = [])),
    request_body = NewEdition,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first answer")),
    responses((status = 201, description = "Created", body = PrintEdition)))]
async fn create(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    idempotency: Idempotency,
    Json(new): Json<NewEdition>,
) -> Result<Response> {
    let fields = new.validate()?;
    let mut client = state.client().await?;
    let mut w = Write::begin(&mut client, &who, &request).await?;
    if let Some(replay) = w.idempotent(&idempotency).await? {
        return Ok(replay);
    }
    let artwork = managed(&w.tx, &who, id, Deleted::No, true).await?;
    let edition = db::insert_edition(&w.tx, artwork.id, &fields).await?;
    w.audit(
        "edition.create",
        format!("edition:{}", edition.id),
        json!({ "artwork": artwork.id, "size": edition.edition_size }),
    )
    .await?;
    w.commit(Reply::created(format!("/v1/manage/editions/{}", edition.id), &edition)?).await
}

/// One edition.
#[utoipa::path(get, path = "/v1/manage/editions/{id}", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The edition", body = PrintEdition)))]
async fn show(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PrintEdition>> {
    Ok(axum::Json(managed_edition(&state.client().await?, &who, id, false).await?))
}

/// Changes the edition's size (never below the prints sold), paper or price.
#[utoipa::path(patch, path = "/v1/manage/editions/{id}", tag = "artist", security(("gallery_token" = [])),
    request_body = EditionPatch, params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The edition after the change", body = PrintEdition)))]
async fn update(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(patch): Json<EditionPatch>,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let edition = managed_edition(&w.tx, &who, id, true).await?;
    if_match.check(&edition)?;
    let fields = patch.apply(&edition.fields(), edition.highest_print.max(edition.sold_count))?;
    if fields == edition.fields() {
        return Ok(axum::Json(edition).into_response());
    }
    let after = db::update_edition(&w.tx, id, &fields).await?;
    // Every field before and after, so the log alone tells what changed.
    let detail = json!({
        "size": [edition.edition_size, after.edition_size],
        "paper": [edition.paper, after.paper],
        "price_minor": [edition.price_minor, after.price_minor],
        "currency": [edition.currency, after.currency],
        "correction_reason": patch.correction_reason,
    });
    w.audit("edition.update", format!("edition:{id}"), detail).await?;
    w.commit(Reply::ok(&after)?).await
}

/// Stops selling the edition; its sales stay on record.
#[utoipa::path(post, path = "/v1/manage/editions/{id}/retire", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = IF_MATCH)),
    responses((status = 200, description = "The retired edition", body = PrintEdition)))]
async fn retire(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let edition = managed_edition(&w.tx, &who, id, true).await?;
    if_match.check(&edition)?;
    if edition.retired_at.is_some() {
        return Err(ApiError::Conflict("the edition is already retired".into()));
    }
    let after = db::retire_edition(&w.tx, id).await?;
    w.audit("edition.retire", format!("edition:{id}"), json!({ "sold": after.sold_count })).await?;
    w.commit(Reply::ok(&after)?).await
}

/// The edition after a sale, and the prints the sale recorded.
#[derive(Serialize, ToSchema)]
pub struct SaleReceipt {
    #[serde(flatten)]
    pub edition: PrintEdition,
    /// The prints sold by this request, with their numbers.
    pub sales: Vec<SaleRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct SaleList {
    pub sales: Vec<SaleRecord>,
}

/// Every sale of the edition, voided ones included, by print number.
#[utoipa::path(get, path = "/v1/manage/editions/{id}/sales", tag = "artist", security(("gallery_token" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The sales", body = SaleList)))]
async fn sales(
    Caller { state, who, .. }: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<SaleList>> {
    let client = state.client().await?;
    let edition = managed_edition(&client, &who, id, false).await?;
    Ok(axum::Json(SaleList { sales: db::sales_of(&client, edition.id).await? }))
}

/// Records a sale: each print gets the lowest free number and today's price.
/// Concurrent sales of the last print: exactly one succeeds, the others get
/// 409. Not conditional on `If-Match` (a sale is an event, not an edit); retry
/// safely with `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/manage/editions/{id}/sales", tag = "artist", security(("gallery_token" = [])),
    request_body = Sale,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key record the sale once")),
    responses((status = 200, description = "The edition after the sale, and the prints sold", body = SaleReceipt)))]
async fn sell(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    idempotency: Idempotency,
    Json(sale): Json<Sale>,
) -> Result<Response> {
    let (count, external_ref) = sale.validate()?;
    let mut client = state.client().await?;
    let mut w = Write::begin(&mut client, &who, &request).await?;
    if let Some(replay) = w.idempotent(&idempotency).await? {
        return Ok(replay);
    }
    let edition = managed_edition(&w.tx, &who, id, false).await?;
    let Some((after, sales)) =
        db::record_sale(&w.tx, edition.id, count, external_ref.as_deref()).await?
    else {
        let now = db::edition_by_id(&w.tx, id).await?.ok_or(ApiError::NotFound)?;
        return Err(ApiError::Conflict(match now.retired_at {
            Some(_) => "the edition is retired".into(),
            None => format!("only {} of this edition are left", now.available()),
        }));
    };
    w.audit(
        "edition.sale",
        format!("edition:{id}"),
        // The price the prints sold at, as it was at the sale.
        json!({
            "count": count,
            "sold": after.sold_count,
            "prints": sales.iter().map(|s| s.print_number).collect::<Vec<_>>(),
            "price_minor": after.price_minor,
            "currency": after.currency,
            "external_ref": external_ref,
        }),
    )
    .await?;
    w.commit(Reply::ok(&SaleReceipt { edition: after, sales })?).await
}

/// Voids a sale recorded by mistake (or a returned print): the sale stays on
/// record with the reason, and its print number is for sale again.
#[utoipa::path(post, path = "/v1/manage/sales/{id}/void", tag = "artist", security(("gallery_token" = [])),
    request_body = SaleVoid, params(("id" = Uuid, Path)),
    responses((status = 200, description = "The voided sale", body = SaleRecord)))]
async fn void(
    Caller { state, who, request }: Caller,
    Path(id): Path<Uuid>,
    Json(void): Json<SaleVoid>,
) -> Result<Response> {
    let reason = void.validate()?;
    let mut client = state.client().await?;
    let w = Write::begin(&mut client, &who, &request).await?;
    let sale = db::sale_by_id(&w.tx, id).await?.ok_or(ApiError::NotFound)?;
    // The edition's lock orders a void with the sales it competes with.
    managed_edition(&w.tx, &who, sale.edition_id, true).await?;
    let voided = db::void_sale(&w.tx, id, &reason)
        .await?
        .ok_or_else(|| ApiError::Conflict("the sale is already voided".into()))?;
    w.audit(
        "edition.sale_void",
        format!("edition:{}", sale.edition_id),
        json!({
            "sale": id,
            "print_number": voided.print_number,
            "price_minor": voided.price_minor,
            "currency": voided.currency,
            "reason": reason,
        }),
    )
    .await?;
    w.commit(Reply::ok(&voided)?).await
}
