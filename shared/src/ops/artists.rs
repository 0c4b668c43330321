//! Artist tasks: the first artists of a new gallery, before anyone holds a
//! token for the API's admin routes. The email is personal data: it is stored
//! and shown to the operator, never written to the audit log.

use deadpool_postgres::Transaction;

use super::{Audit, OpsError, Task};
use crate::db;

/// The same rules the database's CHECK constraints hold, as clear messages.
pub fn validate(name: &str, email: &str, bio: Option<&str>, website: Option<&str>) -> Result<(), OpsError> {
    let invalid = |m: &str| Err(OpsError::Invalid(m.to_owned()));
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return invalid("--name must be 1 to 200 printable characters");
    }
    let shaped = email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if !shaped || email.len() > 320 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("--email must be an email address");
    }
    if bio.is_some_and(|b| b.chars().count() > 10_000 || b.contains('\0')) {
        return invalid("--bio must be at most 10,000 characters");
    }
    if website.is_some_and(|w| !w.starts_with("https://") || w.len() > 2000 || w.chars().any(char::is_control)) {
        return invalid("--website must be an https:// address");
    }
    Ok(())
}

/// Runs an artist task inside the task's transaction.
pub(super) async fn apply(tx: &Transaction<'_>, task: &Task, audit: &Audit<'_>) -> Result<serde_json::Value, OpsError> {
    Ok(match task {
        Task::CreateArtist { name, email, bio, website } => {
            let artist = match db::insert_artist(tx, name.trim(), email.trim(), bio.as_deref(), website.as_deref()).await {
                Err(e) if e.sqlstate() == Some("23505") => {
                    return Err(OpsError::Refused("an artist with this email already exists".into()));
                }
                other => other?,
            };
            audit.record(tx, format!("artist:{}", artist.id), serde_json::json!({})).await?;
            serde_json::json!({ "artist_id": artist.id, "name": artist.name })
        }
        Task::ListArtists { limit } => {
            let artists = db::list_artists(tx, i64::from(*limit)).await?;
            audit.record(tx, "artists".into(), serde_json::json!({ "count": artists.len() })).await?;
            serde_json::json!({ "artists": artists })
        }
        other => return Err(OpsError::WrongFunction(other.action())),
    })
}
