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

/// Ids come from a sequence when a row is inserted, but transactions commit
/// in their own order: a reader paging by id could pass an id whose
/// transaction commits a moment later, and never see it. So every writer
/// holds this lock (shared) from its insert to its commit, and a reader takes
/// it exclusively before it reads: by then every entry below the highest id
/// it can see is committed or rolled back.
const AUDIT_ORDER_LOCK: i64 = 0x6761_6c6c_6175_6469;

pub async fn append_audit(db: &impl GenericClient, entry: &AuditEntry<'_>) -> Result<(), DbError> {
    // One statement, so that outside a transaction the lock and the insert
    // share the statement's own transaction.
    db.execute(
        "WITH ordered AS (SELECT pg_advisory_xact_lock_shared($6)) \
         INSERT INTO audit_log (actor, action, target, request_id, detail) \
         SELECT $1, $2, $3, $4, $5 FROM ordered",
        &[
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.request_id,
            &entry.detail,
            &AUDIT_ORDER_LOCK,
        ],
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
/// A page of the log, newest first, that never skips an entry committed
/// later: it waits for every writer in flight (`AUDIT_ORDER_LOCK`), then reads
/// with a snapshot taken after they finished.
pub async fn audit_page(
    db: &mut deadpool_postgres::Client,
    filter: &AuditFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRecord>, DbError> {
    let tx = db.transaction().await?;
    // Writers commit in milliseconds; one stuck longer makes this a retryable
    // refusal (55P03) rather than a hung request.
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_ORDER_LOCK]).await?;
    let rows = tx
        .query(
            "SELECT id, actor, action, target, request_id, detail, at FROM audit_log \
              WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3) \
                AND ($4::text IS NULL OR request_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6) \
                AND ($7::bigint IS NULL OR id < $7) \
              ORDER BY id DESC LIMIT $8",
            &[&filter.actor, &filter.action, &filter.target, &filter.request_id, &filter.since, &filter.until, &before_id, &limit],
        )
        .await?;
    tx.commit().await?;
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
