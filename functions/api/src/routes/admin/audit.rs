//! The audit log, read by admins.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::db::{self, AuditFilter, AuditRecord};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{Caller, Query};
use crate::routes::{admin, page_size, split_page, Result};
use crate::ApiError;
use crate::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    limit: Option<i64>,
    /// e.g. `token:…`, `operator:arn:…`, `system:retention`.
    actor: Option<String>,
    /// e.g. `artwork.create`.
    action: Option<String>,
    /// e.g. `artwork:…`.
    target: Option<String>,
    request_id: Option<String>,
    /// Entries at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Entries before this time.
    until: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

fn storable(field: &'static str, t: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
    match t {
        Some(t) if !shared::domain::storable_time(t) => {
            Err(ApiError::invalid(field, "must be a time between the years 1 and 9999"))
        }
        other => Ok(other),
    }
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("gallery_token" = [])), params(AuditQuery),
    responses((status = 200, description = "A page of entries", body = AuditPage)))]
async fn list(
    Caller { state, who, .. }: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>> {
    admin(&who)?;
    let limit = page_size(q.limit)?;
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let bounded = |field: &'static str, v: Option<String>| match v {
        Some(s) if s.len() > 300 || s.chars().any(char::is_control) => {
            Err(ApiError::invalid(field, "must be at most 300 characters, no control characters"))
        }
        other => Ok(other),
    };
    let filter = AuditFilter {
        actor: bounded("actor", q.actor)?,
        action: bounded("action", q.action)?,
        target: bounded("target", q.target)?,
        request_id: bounded("request_id", q.request_id)?,
        since: storable("since", q.since)?,
        until: storable("until", q.until)?,
    };
    let rows = db::audit_page(&mut state.client().await?, &filter, before, limit + 1).await?;
    let (entries, next_cursor) = split_page(rows, limit, |e| e.id.to_string());
    Ok(axum::Json(AuditPage { entries, next_cursor }))
}
