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
