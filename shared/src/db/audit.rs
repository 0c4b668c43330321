//! The append-only audit log. The application role may only INSERT and SELECT.

use deadpool_postgres::GenericClient;

use super::DbError;

/// One audit entry: who did what to which target, under which request.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub request_id: Option<&'a str>,
    pub detail: serde_json::Value,
}

pub async fn append_audit(db: &impl GenericClient, entry: &AuditEntry<'_>) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO audit_log (actor, action, target, request_id, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&entry.actor, &entry.action, &entry.target, &entry.request_id, &entry.detail],
    )
    .await?;
    Ok(())
}

/// One entry of the audit log as admins read it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Filters of the audit log; every one optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The newest entries first, keyset-paginated on the entry id (which only grows).
pub async fn audit_page(
    db: &impl GenericClient,
    filter: &AuditFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRecord>, DbError> {
    let rows = db
        .query(
            "SELECT id, actor, action, target, request_id, detail, at FROM audit_log \
              WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3) \
                AND ($4::text IS NULL OR request_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6) \
                AND ($7::bigint IS NULL OR id < $7) \
              ORDER BY id DESC LIMIT $8",
            &[&filter.actor, &filter.action, &filter.target, &filter.request_id, &filter.since, &filter.until, &before_id, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRecord {
                id: r.try_get("id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                request_id: r.try_get("request_id")?,
                detail: r.try_get("detail")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}
