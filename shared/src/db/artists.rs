//! Artists: public profiles, their own edits, and the admin's view with email and suspension.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::domain::{Artist, Cursor, ProfileFields};

pub async fn insert_artist(
    db: &impl GenericClient,
    name: &str,
    email: &str,
    bio: Option<&str>,
    website: Option<&str>,
) -> Result<Artist, DbError> {
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO artists (id, name, email, bio, website) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &name, &email, &bio, &website],
    )
    .await?;
    Ok(Artist {
        id,
        name: name.to_owned(),
        bio: bio.map(str::to_owned),
        website: website.map(str::to_owned),
    })
}

/// An artist as admins (and the operator) see them: with the email, the
/// suspension, and how many live tokens they hold.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArtistListing {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub bio: Option<String>,
    pub website: Option<String>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub suspension_reason: Option<String>,
    pub live_tokens: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ArtistListing {
    pub fn profile(&self) -> ProfileFields {
        ProfileFields {
            name: self.name.clone(),
            bio: self.bio.clone(),
            website: self.website.clone(),
        }
    }
}

const LISTING: &str = "SELECT a.id, a.name, a.email, a.bio, a.website, a.suspended_at, a.suspension_reason, a.created_at, a.updated_at, \
       (SELECT count(*) FROM api_tokens t WHERE t.artist_id = a.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS live_tokens \
  FROM artists a";

fn listing(r: &Row) -> Result<ArtistListing, DbError> {
    Ok(ArtistListing {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        bio: r.try_get("bio")?,
        website: r.try_get("website")?,
        suspended_at: r.try_get("suspended_at")?,
        suspension_reason: r.try_get("suspension_reason")?,
        live_tokens: r.try_get("live_tokens")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The newest artists first.
pub async fn list_artists(
    db: &impl GenericClient,
    limit: i64,
) -> Result<Vec<ArtistListing>, DbError> {
    artists_page(db, None, limit).await
}

/// Artists newest first, keyset-paginated on `(created_at, id)`.
pub async fn artists_page(
    db: &impl GenericClient,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<ArtistListing>, DbError> {
    let sql = format!(
        "{LISTING} WHERE ($1::timestamptz IS NULL OR (a.created_at, a.id) < ($1, $2)) ORDER BY a.created_at DESC, a.id DESC LIMIT $3"
    );
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    db.query(&sql, &[&at, &id, &limit]).await?.iter().map(listing).collect()
}

/// One artist with email and suspension; `lock` holds the row until the transaction ends.
pub async fn artist_listing(
    db: &impl GenericClient,
    id: Uuid,
    lock: bool,
) -> Result<Option<ArtistListing>, DbError> {
    let sql = format!("{LISTING} WHERE a.id = $1{}", if lock { " FOR UPDATE OF a" } else { "" });
    db.query_opt(&sql, &[&id]).await?.as_ref().map(listing).transpose()
}

/// A public profile: not for a suspended artist.
pub async fn public_artist(db: &impl GenericClient, id: Uuid) -> Result<Option<Artist>, DbError> {
    let row = db
        .query_opt(
            "SELECT id, name, bio, website FROM artists WHERE id = $1 AND suspended_at IS NULL",
            &[&id],
        )
        .await?;
    row.map(|r| {
        Ok(Artist {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            bio: r.try_get(2)?,
            website: r.try_get(3)?,
        })
    })
    .transpose()
}

/// One artist of the public index: in good standing, with published works.
#[derive(Debug, Clone)]
pub struct IndexedArtist {
    pub artist: Artist,
    pub published_works: i64,
    /// Their newest publication: the index's order and its cursor.
    pub latest_published_at: DateTime<Utc>,
}

/// Artists with published works, the most recently published first,
/// keyset-paginated on `(latest publication, id)`.
pub async fn artist_index(
    db: &impl GenericClient,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<IndexedArtist>, DbError> {
    let sql = format!(
        "SELECT ar.id, ar.name, ar.bio, ar.website, count(*) AS works, max(a.published_at) AS latest \
           FROM artists ar JOIN artworks a ON a.artist_id = ar.id \
          WHERE {} \
          GROUP BY ar.id \
         HAVING ($1::timestamptz IS NULL OR (max(a.published_at), ar.id) < ($1, $2)) \
          ORDER BY latest DESC, ar.id DESC LIMIT $3",
        super::artworks::PUBLIC
    );
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    let rows = db.query(&sql, &[&at, &id, &limit]).await?;
    rows.iter()
        .map(|r| {
            Ok(IndexedArtist {
                artist: Artist {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    bio: r.try_get("bio")?,
                    website: r.try_get("website")?,
                },
                published_works: r.try_get("works")?,
                latest_published_at: r.try_get("latest")?,
            })
        })
        .collect()
}

pub async fn update_profile(
    db: &impl GenericClient,
    id: Uuid,
    p: &ProfileFields,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE artists SET name = $2, bio = $3, website = $4, updated_at = now() WHERE id = $1",
        &[&id, &p.name, &p.bio, &p.website],
    )
    .await?;
    Ok(())
}

/// Whether an artist other than `except` has `email` (compared case-insensitively, as the unique index does).
pub async fn email_taken(
    db: &impl GenericClient,
    email: &str,
    except: Option<Uuid>,
) -> Result<bool, DbError> {
    let sql = "SELECT EXISTS (SELECT 1 FROM artists WHERE lower(email) = lower($1) AND ($2::uuid IS NULL OR id <> $2))";
    Ok(db.query_one(sql, &[&email, &except]).await?.try_get(0)?)
}

/// A changed email collides with another artist's as SQLSTATE 23505.
pub async fn update_email(db: &impl GenericClient, id: Uuid, email: &str) -> Result<(), DbError> {
    db.execute("UPDATE artists SET email = $2, updated_at = now() WHERE id = $1", &[&id, &email])
        .await?;
    Ok(())
}

/// Suspends (with a reason) or reinstates (`None`) an artist.
pub async fn set_suspension(
    db: &impl GenericClient,
    id: Uuid,
    reason: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE artists SET suspended_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END, suspension_reason = $2, \
         updated_at = now() WHERE id = $1",
        &[&id, &reason],
    )
    .await?;
    Ok(())
}
