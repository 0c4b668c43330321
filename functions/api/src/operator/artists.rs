//! Artist tasks: the first artists of a new gallery, before anyone holds a
//! token for the API's admin routes. The email is personal data: it is stored
//! and shown to the operator, never written to the audit log. The fields go
//! through the same domain types as the API's admin routes.

use deadpool_postgres::Transaction;
use shared::db;
use shared::domain::fields::NewArtistFields;
use shared::operator::OperatorTask;
use shared::runner::{Done, OpsError};

/// Runs an artist task inside the task's transaction.
pub(super) async fn apply(tx: &Transaction<'_>, task: &OperatorTask) -> Result<Done, OpsError> {
    Ok(match task {
        OperatorTask::CreateArtist { name, email, bio, website } => {
            let fields = NewArtistFields::parse(name, email, bio.as_deref(), website.as_deref())
                .map_err(|problems| {
                    OpsError::Invalid(
                        problems
                            .iter()
                            .map(|p| format!("{} {}", p.field, p.message))
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })?;
            let bio = fields.bio.as_ref().map(|b| b.as_str());
            let website = fields.website.as_ref().map(|w| w.as_str());
            let artist = match db::insert_artist(
                tx,
                fields.name.as_str(),
                fields.email.as_str(),
                bio,
                website,
            )
            .await
            {
                Err(e) if e.sqlstate() == Some("23505") => {
                    return Err(OpsError::Refused(
                        "an artist with this email already exists".into(),
                    ));
                }
                other => other?,
            };
            Done::new(
                serde_json::json!({ "artist_id": artist.id, "name": artist.name }),
                format!("artist:{}", artist.id),
            )
        }
        OperatorTask::ListArtists { limit } => {
            let artists = db::list_artists(tx, i64::from(*limit)).await?;
            let count = serde_json::json!({ "count": artists.len() });
            Done::new(serde_json::json!({ "artists": artists }), "artists").with_detail(count)
        }
        other => return Err(OpsError::WrongFunction(other.action())),
    })
}
