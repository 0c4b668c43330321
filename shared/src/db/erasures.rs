//! Artist erasures: the request, the rows' removal (the owner function
//! `erase_artist`, V6) and the record that proves it without personal data.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DbError;
use crate::archive::ledger::ErasureRecord;

/// An erasure as recorded: what was asked, by whom, and what it removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Erasure {
    pub id: Uuid,
    pub artist_id: Uuid,
    pub requested_at: DateTime<Utc>,
    /// `token:<id>` (an admin through the API) or `operator:<IAM ARN>`.
    pub requested_by: String,
    pub request_id: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Rows removed, per table.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub rows_deleted: Option<serde_json::Value>,
    /// Object versions and delete markers removed, per bucket (replicas included).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub objects_deleted: Option<serde_json::Value>,
    /// The backups that still held the artist at completion, with the day the rotation removes each.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub backups_containing: Option<serde_json::Value>,
    pub replayed_at: Option<DateTime<Utc>>,
}

impl From<&Erasure> for ErasureRecord {
    fn from(e: &Erasure) -> Self {
        Self {
            id: e.id,
            artist_id: e.artist_id,
            requested_at: e.requested_at,
            requested_by: e.requested_by.clone(),
            request_id: e.request_id.clone(),
            completed_at: e.completed_at,
            rows_deleted: e.rows_deleted.clone(),
            objects_deleted: e.objects_deleted.clone(),
            backups_containing: e.backups_containing.clone(),
            replayed_at: e.replayed_at,
        }
    }
}

const COLUMNS: &str =
    "id, artist_id, requested_at, requested_by, request_id, completed_at, rows_deleted, objects_deleted, backups_containing, replayed_at";

fn erasure(row: &tokio_postgres::Row) -> Result<Erasure, DbError> {
    Ok(Erasure {
        id: row.try_get(0)?,
        artist_id: row.try_get(1)?,
        requested_at: row.try_get(2)?,
        requested_by: row.try_get(3)?,
        request_id: row.try_get(4)?,
        completed_at: row.try_get(5)?,
        rows_deleted: row.try_get(6)?,
        objects_deleted: row.try_get(7)?,
        backups_containing: row.try_get(8)?,
        replayed_at: row.try_get(9)?,
    })
}

/// Records a request to erase `artist`, or returns the one already open
/// (asking twice is one erasure). `None` when there is no such artist.
pub async fn request_erasure(
    db: &impl GenericClient,
    artist: Uuid,
    requested_by: &str,
    request_id: Option<&str>,
) -> Result<Option<(Erasure, bool)>, DbError> {
    if db.query_opt("SELECT 1 FROM artists WHERE id = $1 FOR UPDATE", &[&artist]).await?.is_none() {
        return Ok(None);
    }
    if let Some(open) = db
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM erasures WHERE artist_id = $1 AND completed_at IS NULL"
            ),
            &[&artist],
        )
        .await?
    {
        return Ok(Some((erasure(&open)?, false)));
    }
    let row = db
        .query_one(
            &format!("INSERT INTO erasures (id, artist_id, requested_by, request_id) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"),
            &[&Uuid::new_v4(), &artist, &requested_by, &request_id],
        )
        .await?;
    db.execute(OUT_OF_GALLERY, &[&artist]).await?;
    Ok(Some((erasure(&row)?, true)))
}

/// Whether an erasure of `artist` is requested and not yet complete. The
/// artist's row is locked (FOR SHARE, which waits for `request_erasure`'s FOR
/// UPDATE), so no request can slip between this answer and the caller's write.
pub async fn erasure_pending(db: &impl GenericClient, artist: Uuid) -> Result<bool, DbError> {
    db.query_opt("SELECT 1 FROM artists WHERE id = $1 FOR SHARE", &[&artist]).await?;
    let open = db
        .query_opt(
            "SELECT 1 FROM erasures WHERE artist_id = $1 AND completed_at IS NULL",
            &[&artist],
        )
        .await?;
    Ok(open.is_some())
}

/// From the request on, the artist is out of the gallery: works hidden, tokens dead.
const OUT_OF_GALLERY: &str = "WITH hidden AS ( \
        UPDATE artists SET suspended_at = coalesce(suspended_at, now()), suspension_reason = 'erasure requested' WHERE id = $1 RETURNING 1) \
    UPDATE api_tokens SET revoked_at = now() WHERE artist_id = $1 AND revoked_at IS NULL";

pub async fn erasure_by_id(db: &impl GenericClient, id: Uuid) -> Result<Option<Erasure>, DbError> {
    db.query_opt(&format!("SELECT {COLUMNS} FROM erasures WHERE id = $1"), &[&id])
        .await?
        .as_ref()
        .map(erasure)
        .transpose()
}

/// Erasures not yet completed, oldest first.
pub async fn open_erasures(db: &impl GenericClient, limit: i64) -> Result<Vec<Erasure>, DbError> {
    db.query(&format!("SELECT {COLUMNS} FROM erasures WHERE completed_at IS NULL ORDER BY requested_at, id LIMIT $1"), &[&limit])
        .await?
        .iter()
        .map(erasure)
        .collect()
}

/// Newest first.
pub async fn list_erasures(db: &impl GenericClient, limit: i64) -> Result<Vec<Erasure>, DbError> {
    db.query(
        &format!("SELECT {COLUMNS} FROM erasures ORDER BY requested_at DESC, id DESC LIMIT $1"),
        &[&limit],
    )
    .await?
    .iter()
    .map(erasure)
    .collect()
}

/// Every artwork of the artist, deleted ones too: their prefixes hold the objects.
pub async fn all_artworks_of(db: &impl GenericClient, artist: Uuid) -> Result<Vec<Uuid>, DbError> {
    db.query("SELECT id FROM artworks WHERE artist_id = $1 ORDER BY id", &[&artist])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}

/// When the artist joined: backups taken since then hold them.
pub async fn artist_joined_at(
    db: &impl GenericClient,
    artist: Uuid,
) -> Result<Option<DateTime<Utc>>, DbError> {
    db.query_opt("SELECT created_at FROM artists WHERE id = $1", &[&artist])
        .await?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(DbError::from)
}

/// Removes the artist's rows (see `erase_artist` in V6); what it removed, per table.
pub async fn erase_artist_rows(
    db: &impl GenericClient,
    artist: Uuid,
) -> Result<serde_json::Value, DbError> {
    Ok(db.query_one("SELECT erase_artist($1)", &[&artist]).await?.try_get(0)?)
}

/// What a completed erasure removed, recorded with it.
pub struct Completion<'a> {
    pub rows_deleted: &'a serde_json::Value,
    pub objects_deleted: &'a serde_json::Value,
    pub backups_containing: &'a serde_json::Value,
}

pub async fn complete_erasure(
    db: &impl GenericClient,
    id: Uuid,
    done: &Completion<'_>,
) -> Result<Erasure, DbError> {
    let row = db
        .query_one(
            &format!(
                "UPDATE erasures SET completed_at = now(), rows_deleted = $2, objects_deleted = $3, backups_containing = $4 \
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, done.rows_deleted, done.objects_deleted, done.backups_containing],
        )
        .await?;
    erasure(&row)
}

/// The schema version that introduced erasures (`V6`): a database at an
/// older version has nowhere to replay them until it is migrated.
pub const ERASURES_SINCE: i32 = 6;

/// What a replay of the ledger did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// Records in the ledger.
    pub records: u64,
    /// Artists the database still held (removed again, or taken out of the gallery).
    pub artists_present: u64,
    /// Erasures the database did not know of, now recorded.
    pub recorded: u64,
}

/// Replays every record (oldest first) into `db`; run it in one transaction,
/// so the database holds all of them or none.
pub async fn replay_erasures(
    db: &impl tokio_postgres::GenericClient,
    records: &[ErasureRecord],
) -> Result<Replayed, DbError> {
    let mut replayed = Replayed { records: records.len() as u64, ..Replayed::default() };
    for record in records {
        let (present, recorded) = replay_erasure(db, record).await?;
        replayed.artists_present += u64::from(present);
        replayed.recorded += u64::from(recorded);
    }
    Ok(replayed)
}

/// Re-applies an erasure to a database that may predate it (a restored
/// backup, a point-in-time restore), and records it there. A completed
/// erasure removes the artist's rows again; one only requested re-opens,
/// with the artist out of the gallery, so retention removes the objects
/// first, as always. Idempotent: what the database already records is kept
/// (a completion is never undone), and `replayed_at` is set only when the
/// replay changed something. Returns (artist was present, record was new).
pub async fn replay_erasure(
    db: &impl tokio_postgres::GenericClient,
    record: &ErasureRecord,
) -> Result<(bool, bool), DbError> {
    let present =
        db.query_opt("SELECT 1 FROM artists WHERE id = $1", &[&record.artist_id]).await?.is_some();
    match (present, record.completed_at) {
        (true, Some(_)) => {
            db.query_one("SELECT erase_artist($1)", &[&record.artist_id]).await?;
        }
        (true, None) => {
            db.execute(OUT_OF_GALLERY, &[&record.artist_id]).await?;
        }
        (false, _) => {}
    }
    let new: bool = db
        .query_one(
            "INSERT INTO erasures (id, artist_id, requested_at, requested_by, request_id, completed_at, rows_deleted, objects_deleted, backups_containing, replayed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
             ON CONFLICT (id) DO UPDATE SET completed_at = coalesce(erasures.completed_at, EXCLUDED.completed_at), \
                 rows_deleted = coalesce(erasures.rows_deleted, EXCLUDED.rows_deleted), \
                 objects_deleted = coalesce(erasures.objects_deleted, EXCLUDED.objects_deleted), \
                 backups_containing = coalesce(erasures.backups_containing, EXCLUDED.backups_containing), \
                 replayed_at = CASE WHEN $10 THEN now() ELSE erasures.replayed_at END \
             RETURNING (xmax = 0)",
            &[
                &record.id,
                &record.artist_id,
                &record.requested_at,
                &record.requested_by,
                &record.request_id,
                &record.completed_at,
                &record.rows_deleted,
                &record.objects_deleted,
                &record.backups_containing,
                &present,
            ],
        )
        .await?
        .try_get(0)?;
    Ok((present, new))
}
