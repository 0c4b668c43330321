//! Token tasks: the first admin, then tokens for people and scripts. Each
//! change and its audit entry commit together; a refused task changes nothing
//! (the runner audits the refusal once the transaction has rolled back).

use chrono::Utc;
use deadpool_postgres::Transaction;
use shared::db::{self, DbError};
use shared::domain::fields::{TokenLabel, TokenLifetime};
use shared::domain::{self, Scope};
use shared::operator::OperatorTask;
use shared::runner::{Done, OpsError};
use uuid::Uuid;

/// Serialises concurrent bootstraps, so two of them cannot both find no admin.
const BOOTSTRAP_LOCK: i64 = 0x6761_6c6c_6572_7901;

/// Runs a token task inside the task's transaction.
pub(super) async fn apply(tx: &Transaction<'_>, task: &OperatorTask) -> Result<Done, OpsError> {
    Ok(match task {
        OperatorTask::BootstrapAdmin { label, expires_in_days, force, reason } => {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BOOTSTRAP_LOCK])
                .await
                .map_err(DbError::from)?;
            if db::live_admin_token_exists(tx).await? && !force {
                return Err(OpsError::Refused(
                    "a live admin token exists; create tokens through the API, or pass --force with --reason".into(),
                ));
            }
            let (id, secret, expires_at) =
                issue(tx, Scope::Admin, None, label, *expires_in_days).await?;
            let detail = serde_json::json!({ "label": label, "forced": force, "reason": reason, "expires_at": expires_at });
            let result = serde_json::json!({ "token_id": id, "token": secret, "scope": "admin", "expires_at": expires_at });
            Done::new(result, format!("token:{id}")).with_detail(detail)
        }
        OperatorTask::CreateToken { scope, artist_id, label, expires_in_days } => {
            if let Some(artist) = artist_id {
                if !db::artist_exists(tx, *artist).await? {
                    return Err(OpsError::NotFound(format!("artist {artist}")));
                }
                if db::erasure_pending(tx, *artist).await? {
                    return Err(OpsError::Refused(
                        "the artist's erasure is pending: no new token can be issued".into(),
                    ));
                }
            }
            let (id, secret, expires_at) =
                issue(tx, *scope, *artist_id, label, *expires_in_days).await?;
            let detail = serde_json::json!({ "scope": scope, "artist_id": artist_id, "label": label, "expires_at": expires_at });
            let result = serde_json::json!({ "token_id": id, "token": secret, "scope": scope, "artist_id": artist_id, "expires_at": expires_at });
            Done::new(result, format!("token:{id}")).with_detail(detail)
        }
        OperatorTask::ListTokens { include_dead } => {
            let tokens = db::list_tokens(tx, *include_dead).await?;
            let count = serde_json::json!({ "count": tokens.len() });
            Done::new(serde_json::json!({ "tokens": tokens }), "tokens").with_detail(count)
        }
        OperatorTask::RevokeToken { token_id, reason } => {
            if !db::revoke_token(tx, *token_id).await? {
                return Err(OpsError::NotFound(format!("live token {token_id}")));
            }
            Done::new(serde_json::json!({ "revoked": token_id }), format!("token:{token_id}"))
                .with_detail(serde_json::json!({ "reason": reason }))
        }
        other => return Err(OpsError::WrongFunction(other.action())),
    })
}

/// A new token: the secret is returned once, only its digest is stored.
async fn issue(
    db: &impl deadpool_postgres::GenericClient,
    scope: Scope,
    artist_id: Option<Uuid>,
    label: &str,
    days: u32,
) -> Result<(Uuid, String, chrono::DateTime<Utc>), OpsError> {
    // Validated before the task ran; parsed again for the cleaned values.
    let invalid = |p: domain::Invalid| OpsError::Invalid(format!("{} {}", p.field, p.message));
    let label = TokenLabel::parse(label).map_err(invalid)?;
    let lifetime = TokenLifetime::parse(i64::from(days)).map_err(invalid)?;
    let (secret, digest) = domain::new_token();
    let expires_at = Utc::now() + lifetime.duration();
    let id = db::insert_token(db, artist_id, scope, &digest, label.as_str(), expires_at).await?;
    Ok((id, secret, expires_at))
}
