//! Backup and restore-drill records, and the COPY statements that move table data.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::{pin_mut, SinkExt, TryStreamExt};
use uuid::Uuid;

use super::DbError;

/// Tables in a backup, parents before children so a restore satisfies every
/// foreign key, each with the order that makes dumps deterministic.
pub const BACKUP_TABLES: &[(&str, &str)] =
    &[("artists", "id"), ("artworks", "id"), ("print_editions", "id"), ("images", "id"), ("api_tokens", "id"), ("audit_log", "id")];

/// One table's rows in COPY text format.
pub async fn copy_out(db: &tokio_postgres::Transaction<'_>, table: &str, order_by: &str) -> Result<Vec<u8>, DbError> {
    let stream = db.copy_out(&format!("COPY (SELECT * FROM {table} ORDER BY {order_by}) TO STDOUT")).await?;
    pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Loads COPY text rows into a table (restores only, into an empty schema).
pub async fn copy_in(db: &tokio_postgres::Transaction<'_>, table: &str, data: &[u8]) -> Result<u64, DbError> {
    let sink = db.copy_in(&format!("COPY {table} FROM STDIN")).await?;
    pin_mut!(sink);
    sink.send(bytes::Bytes::copy_from_slice(data)).await?;
    Ok(sink.finish().await?)
}

/// The newest applied migration version.
pub async fn schema_version(db: &impl tokio_postgres::GenericClient) -> Result<i32, DbError> {
    Ok(db.query_one("SELECT COALESCE(max(version), 0) FROM refinery_schema_history", &[]).await?.get(0))
}

pub async fn row_count(db: &impl tokio_postgres::GenericClient, table: &str) -> Result<i64, DbError> {
    Ok(db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?.get(0))
}

pub async fn start_backup(db: &impl GenericClient, id: Uuid, object_key: &str) -> Result<(), DbError> {
    db.execute("INSERT INTO backups (id, object_key, status) VALUES ($1, $2, 'running')", &[&id, &object_key]).await?;
    Ok(())
}

pub async fn finish_backup(
    db: &impl GenericClient,
    id: Uuid,
    version: Option<&str>,
    bytes: i64,
    sha256: &str,
    row_counts: &serde_json::Value,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE backups SET status = 'succeeded', finished_at = now(), object_version = $2, bytes = $3, plaintext_sha256 = $4, row_counts = $5 WHERE id = $1",
        &[&id, &version, &bytes, &sha256, row_counts],
    )
    .await?;
    Ok(())
}

pub async fn fail_backup(db: &impl GenericClient, id: Uuid, error: &str) -> Result<(), DbError> {
    db.execute(
        "UPDATE backups SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1 AND status = 'running'",
        &[&id, &error],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct BackupRecord {
    pub id: Uuid,
    pub object_key: String,
    pub object_version: Option<String>,
    pub started_at: DateTime<Utc>,
    pub row_counts: Option<serde_json::Value>,
}

pub async fn latest_succeeded_backup(db: &impl GenericClient) -> Result<Option<BackupRecord>, DbError> {
    let row = db
        .query_opt("SELECT id, object_key, object_version, started_at, row_counts FROM backups WHERE status = 'succeeded' AND expired_at IS NULL ORDER BY started_at DESC LIMIT 1", &[])
        .await?;
    row.map(|r| {
        Ok(BackupRecord {
            id: r.try_get(0)?,
            object_key: r.try_get(1)?,
            object_version: r.try_get(2)?,
            started_at: r.try_get(3)?,
            row_counts: r.try_get(4)?,
        })
    })
    .transpose()
}

pub async fn start_drill(db: &impl GenericClient, id: Uuid, backup_id: Option<Uuid>) -> Result<(), DbError> {
    db.execute("INSERT INTO restore_drills (id, backup_id, status) VALUES ($1, $2, 'running')", &[&id, &backup_id]).await?;
    Ok(())
}

pub async fn finish_drill(db: &impl GenericClient, id: Uuid, result: Result<&serde_json::Value, &str>) -> Result<(), DbError> {
    match result {
        Ok(counts) => {
            db.execute("UPDATE restore_drills SET status = 'succeeded', finished_at = now(), row_counts = $2 WHERE id = $1", &[&id, counts])
                .await?
        }
        Err(error) => {
            db.execute("UPDATE restore_drills SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1", &[&id, &error]).await?
        }
    };
    Ok(())
}

/// One line of the backup and drill history operators read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub id: Uuid,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Backups: stored bytes. Drills: the backup they restored.
    pub bytes: Option<i64>,
    pub backup_id: Option<Uuid>,
    pub error: Option<String>,
}

fn history(rows: Vec<tokio_postgres::Row>) -> Result<Vec<HistoryEntry>, DbError> {
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                id: r.try_get("id")?,
                status: r.try_get("status")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                bytes: r.try_get("bytes")?,
                backup_id: r.try_get("backup_id")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}

/// The newest backups, expired ones included (marked by their status).
pub async fn recent_backups(db: &impl GenericClient, limit: i64) -> Result<Vec<HistoryEntry>, DbError> {
    history(
        db.query(
            "SELECT id, CASE WHEN expired_at IS NULL THEN status ELSE status || ' (expired)' END AS status, started_at, finished_at, \
             bytes, NULL::uuid AS backup_id, error FROM backups ORDER BY started_at DESC, id LIMIT $1",
            &[&limit],
        )
        .await?,
    )
}

pub async fn recent_drills(db: &impl GenericClient, limit: i64) -> Result<Vec<HistoryEntry>, DbError> {
    history(
        db.query(
            "SELECT id, status, started_at, finished_at, NULL::bigint AS bytes, backup_id, error \
             FROM restore_drills ORDER BY started_at DESC, id LIMIT $1",
            &[&limit],
        )
        .await?,
    )
}
