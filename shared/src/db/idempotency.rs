//! Idempotency keys of POST requests, claimed in the write's own transaction.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::DbError;

/// What an earlier request with the same key got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutcome {
    pub request_sha256: String,
    pub status: Option<i16>,
    pub location: Option<String>,
    pub body: Option<String>,
}

/// Claims `key` for this token inside the caller's transaction. `None` means
/// the key is new and now ours; a concurrent claim waits on the unique index
/// until ours commits or rolls back, then sees the stored outcome (or none).
pub async fn claim_idempotency_key(
    db: &impl GenericClient,
    token_id: Uuid,
    key: &str,
    request_sha256: &str,
) -> Result<Option<StoredOutcome>, DbError> {
    let inserted = db
        .execute(
            "INSERT INTO idempotency_keys (token_id, key, request_sha256) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&token_id, &key, &request_sha256],
        )
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    let row = db
        .query_one(
            "SELECT request_sha256, status, location, body FROM idempotency_keys WHERE token_id = $1 AND key = $2",
            &[&token_id, &key],
        )
        .await?;
    Ok(Some(StoredOutcome {
        request_sha256: row.try_get(0)?,
        status: row.try_get(1)?,
        location: row.try_get(2)?,
        body: row.try_get(3)?,
    }))
}

/// Records the answer a replay gets; `body` is `None` for answers that must
/// not be stored (a token's secret is shown once).
pub async fn record_idempotent_outcome(
    db: &impl GenericClient,
    token_id: Uuid,
    key: &str,
    status: i16,
    location: Option<&str>,
    body: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE idempotency_keys SET status = $3, location = $4, body = $5 WHERE token_id = $1 AND key = $2",
        &[&token_id, &key, &status, &location, &body],
    )
    .await?;
    Ok(())
}

/// Forgets keys older than `cutoff` (the retention run).
pub async fn purge_idempotency_keys(
    db: &impl GenericClient,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbError> {
    Ok(db.execute("DELETE FROM idempotency_keys WHERE created_at < $1", &[&cutoff]).await?)
}
