//! API tokens, stored as SHA-256 digests of their secrets.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::DbError;
use crate::domain::{Principal, Scope};

pub async fn insert_token(
    db: &impl GenericClient,
    artist_id: Option<Uuid>,
    scope: Scope,
    digest_hex: &str,
    label: &str,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO api_tokens (id, artist_id, token_sha256, scope, label, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&id, &artist_id, &digest_hex, &scope.as_str(), &label, &expires_at],
    )
    .await?;
    Ok(id)
}

/// The principal behind a token digest if the token is live (not expired, not
/// revoked, its artist not suspended). Marks it used at most once a minute, so
/// operators can spot dormant tokens without every request writing a row.
pub async fn principal_for_token(
    db: &impl GenericClient,
    digest_hex: &str,
) -> Result<Option<Principal>, DbError> {
    let row = db
        .query_opt(
            "WITH live AS ( \
                 SELECT t.id, t.scope, t.artist_id, t.last_used_at FROM api_tokens t \
                  WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > now() \
                    AND NOT EXISTS (SELECT 1 FROM artists a WHERE a.id = t.artist_id AND a.suspended_at IS NOT NULL)), \
             touched AS ( \
                 UPDATE api_tokens t SET last_used_at = now() FROM live \
                  WHERE t.id = live.id AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '1 minute')) \
             SELECT id, scope, artist_id FROM live",
            &[&digest_hex],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let scope: String = row.try_get("scope")?;
    Ok(Some(Principal {
        token_id: row.try_get("id")?,
        scope: scope.parse().map_err(|e| DbError::Corrupt(format!("token scope: {e}")))?,
        artist_id: row.try_get("artist_id")?,
    }))
}

pub async fn revoke_token(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    Ok(db
        .execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .await?
        == 1)
}

/// Whether any admin token is live: the operator bootstrap is refused then.
pub async fn live_admin_token_exists(db: &impl GenericClient) -> Result<bool, DbError> {
    let row = db
        .query_one("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE scope = 'admin' AND revoked_at IS NULL AND expires_at > now())", &[])
        .await?;
    Ok(row.try_get(0)?)
}

/// A token as operators see it: never its secret, never even its digest.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenListing {
    pub id: Uuid,
    pub scope: Scope,
    pub artist_id: Option<Uuid>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: &str =
    "id, scope, artist_id, label, created_at, expires_at, revoked_at, last_used_at";

fn token_listing(r: &tokio_postgres::Row) -> Result<TokenListing, DbError> {
    Ok(TokenListing {
        id: r.try_get("id")?,
        scope: r
            .try_get::<_, String>("scope")?
            .parse()
            .map_err(|e| DbError::Corrupt(format!("token scope: {e:?}")))?,
        artist_id: r.try_get("artist_id")?,
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

pub async fn list_tokens(
    db: &impl GenericClient,
    include_dead: bool,
) -> Result<Vec<TokenListing>, DbError> {
    tokens_page(db, &TokenFilter { include_dead, artist: None }, None, 1000).await
}

#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    /// Revoked and expired tokens too.
    pub include_dead: bool,
    pub artist: Option<Uuid>,
}

/// Tokens newest first, keyset-paginated on `(created_at, id)`.
pub async fn tokens_page(
    db: &impl GenericClient,
    filter: &TokenFilter,
    after: Option<crate::domain::Cursor>,
    limit: i64,
) -> Result<Vec<TokenListing>, DbError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens \
          WHERE ($1 OR (revoked_at IS NULL AND expires_at > now())) AND ($2::uuid IS NULL OR artist_id = $2) \
            AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
          ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    db.query(&sql, &[&filter.include_dead, &filter.artist, &at, &id, &limit])
        .await?
        .iter()
        .map(token_listing)
        .collect()
}

/// One token; `lock` holds the row until the transaction ends.
pub async fn token_by_id(
    db: &impl GenericClient,
    id: Uuid,
    lock: bool,
) -> Result<Option<TokenListing>, DbError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    db.query_opt(&sql, &[&id]).await?.as_ref().map(token_listing).transpose()
}

pub async fn artist_exists(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    Ok(db
        .query_one("SELECT EXISTS (SELECT 1 FROM artists WHERE id = $1)", &[&id])
        .await?
        .try_get(0)?)
}
