//! The backup catalog (backups, restore drills) and the COPY streams backups
//! are made of.

use chrono::{DateTime, Utc};
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::DbError;

/// Every table a backup holds, in an order that satisfies foreign keys on
/// restore, with the key that orders its rows (so the stream, and its
/// checksum, is the same whenever the same rows are read). A test checks that
/// every table the migrations create is listed.
pub const BACKUP_TABLES: &[(&str, &str)] = &[
    ("artists", "id"),
    ("artworks", "id"),
    ("print_editions", "id"),
    ("print_sales", "id"),
    ("artwork_slugs", "slug"),
    ("images", "id"),
    ("api_tokens", "id"),
    ("audit_log", "id"),
    ("backups", "id"),
    ("restore_drills", "id"),
    ("erasures", "id"),
];

/// Tables the migrations own that are not data: refinery's history,
/// idempotency keys (a day's replay answers; meaningless after a restore) and
/// spent operator proofs (each dead 15 minutes after it was signed).
pub const NOT_BACKED_UP: &[&str] =
    &["refinery_schema_history", "idempotency_keys", "operator_proofs"];

/// The order-by key of a table a backup may hold; `None` for anything else,
/// so a name read from a file is never interpolated unless it is ours.
pub fn backup_table(name: &str) -> Option<(&'static str, &'static str)> {
    BACKUP_TABLES.iter().copied().find(|(t, _)| *t == name)
}

/// Output settings that make COPY text identical on every connection (the
/// backup's and the drill's), whatever the role's or server's defaults.
pub async fn stable_output(db: &impl GenericClient) -> Result<(), DbError> {
    db.batch_execute(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; \
         SET extra_float_digits = 3; SET bytea_output = 'hex'",
    )
    .await?;
    Ok(())
}

/// A session that streams whole tables (a snapshot, a restore, a drill's
/// read-back): the pool's per-statement timeout would cut one COPY of a large
/// table; the function's own timeout bounds the run instead.
pub async fn unbounded_statements(db: &impl GenericClient) -> Result<(), DbError> {
    db.batch_execute("SET statement_timeout = 0").await?;
    Ok(())
}

/// The table's live columns in their order.
pub async fn table_columns(db: &impl GenericClient, table: &str) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&table],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// The gallery's tables in the public schema (to check none is left out).
pub async fn public_tables(db: &impl GenericClient) -> Result<Vec<String>, DbError> {
    let rows = db
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// COPY, on a connection or inside a transaction (tokio-postgres has no
/// common trait for it).
pub trait Copying: GenericClient + Sync {
    fn copy_out_sql(
        &self,
        sql: &str,
    ) -> impl std::future::Future<
        Output = Result<tokio_postgres::CopyOutStream, tokio_postgres::Error>,
    > + Send;
    fn copy_in_sql(
        &self,
        sql: &str,
    ) -> impl std::future::Future<
        Output = Result<tokio_postgres::CopyInSink<bytes::Bytes>, tokio_postgres::Error>,
    > + Send;
}

impl Copying for tokio_postgres::Client {
    async fn copy_out_sql(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::CopyOutStream, tokio_postgres::Error> {
        self.copy_out(sql).await
    }
    async fn copy_in_sql(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>, tokio_postgres::Error> {
        self.copy_in(sql).await
    }
}

impl Copying for tokio_postgres::Transaction<'_> {
    async fn copy_out_sql(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::CopyOutStream, tokio_postgres::Error> {
        self.copy_out(sql).await
    }
    async fn copy_in_sql(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>, tokio_postgres::Error> {
        self.copy_in(sql).await
    }
}

fn column_list(columns: &[String]) -> String {
    columns.iter().map(|c| format!("\"{}\"", c.replace('"', "\"\""))).collect::<Vec<_>>().join(", ")
}

/// One table's rows as a COPY text stream, with an explicit column list.
pub async fn copy_out_stream(
    db: &impl Copying,
    table: &'static str,
    columns: &[String],
    order_by: &'static str,
) -> Result<tokio_postgres::CopyOutStream, DbError> {
    let sql = format!(
        "COPY (SELECT {} FROM {table} ORDER BY {order_by}) TO STDOUT",
        column_list(columns)
    );
    Ok(db.copy_out_sql(&sql).await?)
}

/// Row count and digest of a table as it is now, read exactly as a backup reads it.
pub async fn table_digest(
    db: &impl Copying,
    table: &'static str,
    columns: &[String],
    order_by: &'static str,
) -> Result<(u64, String), DbError> {
    let stream = copy_out_stream(db, table, columns, order_by).await?;
    pin_mut!(stream);
    let mut digest = crate::archive::frames::CopyDigest::default();
    while let Some(chunk) = stream.try_next().await? {
        digest.update(&chunk);
    }
    let summary = digest.summary(&crate::archive::frames::TableStart {
        name: table.into(),
        columns: columns.to_vec(),
    });
    Ok((summary.rows, summary.sha256))
}

/// A COPY into `table` with the backup's column list.
pub async fn copy_in_sink(
    db: &impl Copying,
    table: &'static str,
    columns: &[String],
) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>, DbError> {
    Ok(db.copy_in_sql(&format!("COPY {table} ({}) FROM STDIN", column_list(columns))).await?)
}

/// What a restore takes off the backed-up tables while it loads them, and
/// puts back once every row is in, as `pg_restore` does: loading into bare
/// heaps and building each index once is several times faster than keeping
/// every index, key and foreign key current row by row. Triggers are off
/// during the load too: the rows are restored exactly as the snapshot held them.
#[derive(Debug, Default)]
pub struct Deferred {
    /// (table, quoted name, definition), in the order they are put back.
    keys: Vec<(String, String, String)>,
    indexes: Vec<(String, String)>,
    foreign_keys: Vec<(String, String, String)>,
    tables: Vec<String>,
}

impl Deferred {
    /// How many indexes, keys and foreign keys are deferred.
    pub fn len(&self) -> usize {
        self.keys.len() + self.indexes.len() + self.foreign_keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Takes the indexes, keys, foreign keys and triggers off the backed-up tables
/// present in the schema; run it in the load's transaction.
pub async fn defer_for_load(db: &impl GenericClient) -> Result<Deferred, DbError> {
    let tables: Vec<String> = BACKUP_TABLES.iter().map(|(t, _)| (*t).to_owned()).collect();
    // Every foreign key of the schema (one from a table not backed up may
    // reference a key taken off); keys of the backed-up tables only.
    let constraints = |kinds: &'static str, scope: &'static str| {
        format!(
            "SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid) \
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             WHERE t.relnamespace = 'public'::regnamespace AND ({scope}) AND c.contype = ANY('{{{kinds}}}'::\"char\"[]) \
             ORDER BY 1, 2"
        )
    };
    let rows3 = |rows: Vec<tokio_postgres::Row>| -> Result<Vec<(String, String, String)>, DbError> {
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    };
    let foreign_keys =
        rows3(db.query(&constraints("f", "$1::text[] IS NOT NULL"), &[&tables]).await?)?;
    let keys = rows3(db.query(&constraints("p,u,x", "t.relname = ANY($1)"), &[&tables]).await?)?;
    let indexes = db
        .query(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class t ON t.oid = i.indrelid \
             WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) \
             ORDER BY 1",
            &[&tables],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<(String, String)>, DbError>>()?;
    let present: Vec<String> = db
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname = ANY($1) ORDER BY 1",
            &[&tables],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut drop = String::new();
    for (table, name, _) in foreign_keys.iter().chain(&keys) {
        drop.push_str(&format!("ALTER TABLE {table} DROP CONSTRAINT {name};"));
    }
    for (name, _) in &indexes {
        drop.push_str(&format!("DROP INDEX {name};"));
    }
    for table in &present {
        drop.push_str(&format!("ALTER TABLE {table} DISABLE TRIGGER USER;"));
    }
    db.batch_execute(&drop).await?;
    Ok(Deferred { keys, indexes, foreign_keys, tables: present })
}

/// Puts back what `defer_for_load` took off: keys, then indexes, then foreign
/// keys (each checked against every loaded row), then the triggers.
pub async fn restore_deferred(db: &impl GenericClient, deferred: &Deferred) -> Result<(), DbError> {
    // Each index is built once, under the server's own maintenance_work_mem
    // and parallel workers, as pg_restore's are: more memory buys a third
    // process, which on a small instance only competes for its cores.
    let mut sql = String::new();
    for (table, name, definition) in &deferred.keys {
        sql.push_str(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition};"));
    }
    for (_, definition) in &deferred.indexes {
        sql.push_str(definition);
        sql.push(';');
    }
    for (table, name, definition) in &deferred.foreign_keys {
        sql.push_str(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition};"));
    }
    for table in &deferred.tables {
        sql.push_str(&format!("ALTER TABLE {table} ENABLE TRIGGER USER;"));
    }
    db.batch_execute(&sql).await?;
    Ok(())
}

/// After a COPY, serial columns continue after the restored rows.
pub async fn reset_sequences(
    db: &impl GenericClient,
    table: &'static str,
    columns: &[String],
) -> Result<(), DbError> {
    for column in columns {
        let sequence: Option<String> =
            db.query_one("SELECT pg_get_serial_sequence($1, $2)", &[&table, column]).await?.get(0);
        if let Some(sequence) = sequence {
            let sql = format!(
                "SELECT setval($1::text::regclass, COALESCE((SELECT max(\"{c}\") FROM {table}), 0) + 1, false)",
                c = column.replace('"', "\"\"")
            );
            db.execute(&sql, &[&sequence]).await?;
        }
    }
    Ok(())
}

pub async fn schema_version(db: &impl GenericClient) -> Result<i32, DbError> {
    Ok(db
        .query_one("SELECT COALESCE(max(version), 0) FROM refinery_schema_history", &[])
        .await?
        .get(0))
}

pub async fn start_backup(
    db: &impl GenericClient,
    id: Uuid,
    object_key: &str,
) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO backups (id, object_key, status) VALUES ($1, $2, 'running')",
        &[&id, &object_key],
    )
    .await?;
    Ok(())
}

/// What the catalog records of a finished backup: the manifest's facts, so a
/// drill can compare what it restores with what was recorded at the time.
pub struct FinishedBackup<'a> {
    pub id: Uuid,
    pub object_version: Option<&'a str>,
    pub bytes: i64,
    pub object_sha256: &'a str,
    pub manifest_key: &'a str,
    pub schema_version: i32,
    pub row_counts: serde_json::Value,
    pub manifest: serde_json::Value,
}

pub async fn finish_backup(
    db: &impl GenericClient,
    done: &FinishedBackup<'_>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE backups SET status = 'succeeded', finished_at = now(), error = NULL, object_version = $2, bytes = $3, \
         object_sha256 = $4, manifest_key = $5, schema_version = $6, row_counts = $7, manifest = $8 WHERE id = $1",
        &[
            &done.id,
            &done.object_version,
            &done.bytes,
            &done.object_sha256,
            &done.manifest_key,
            &done.schema_version,
            &done.row_counts,
            &done.manifest,
        ],
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

/// Runs that started before `cutoff` and never finished (the function was
/// killed): failed now, so nothing stays `running` forever.
pub async fn fail_interrupted(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbError> {
    let message = "interrupted: the run ended without recording an outcome (timeout or crash)";
    let backups = db
        .execute(
            "UPDATE backups SET status = 'failed', finished_at = now(), error = $2 WHERE status = 'running' AND started_at < $1",
            &[&cutoff, &message],
        )
        .await?;
    let drills = db
        .execute(
            "UPDATE restore_drills SET status = 'failed', finished_at = now(), error = $2 WHERE status = 'running' AND started_at < $1",
            &[&cutoff, &message],
        )
        .await?;
    Ok(backups + drills)
}

#[derive(Debug, Clone)]
pub struct BackupRecord {
    pub id: Uuid,
    pub object_key: String,
    pub object_version: Option<String>,
    pub object_sha256: Option<String>,
    pub manifest_key: Option<String>,
    pub started_at: DateTime<Utc>,
    pub row_counts: Option<serde_json::Value>,
}

/// The newest backup that succeeded and is not expired.
pub async fn latest_succeeded_backup(
    db: &impl GenericClient,
) -> Result<Option<BackupRecord>, DbError> {
    succeeded_backup(db, "DESC").await
}

/// The oldest backup the rotation still keeps (a monthly or yearly one):
/// what the weekly drill of an older backup restores.
pub async fn oldest_succeeded_backup(
    db: &impl GenericClient,
) -> Result<Option<BackupRecord>, DbError> {
    succeeded_backup(db, "ASC").await
}

async fn succeeded_backup(
    db: &impl GenericClient,
    order: &'static str,
) -> Result<Option<BackupRecord>, DbError> {
    let row = db
        .query_opt(
            &format!("SELECT id, object_key, object_version, object_sha256, manifest_key, started_at, row_counts FROM backups \
             WHERE status = 'succeeded' AND expired_at IS NULL AND manifest_key IS NOT NULL ORDER BY started_at {order} LIMIT 1"),
            &[],
        )
        .await?;
    row.map(|r| {
        Ok(BackupRecord {
            id: r.try_get(0)?,
            object_key: r.try_get(1)?,
            object_version: r.try_get(2)?,
            object_sha256: r.try_get(3)?,
            manifest_key: r.try_get(4)?,
            started_at: r.try_get(5)?,
            row_counts: r.try_get(6)?,
        })
    })
    .transpose()
}

pub async fn start_drill(
    db: &impl GenericClient,
    id: Uuid,
    backup_id: Option<Uuid>,
) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO restore_drills (id, backup_id, status) VALUES ($1, $2, 'running')",
        &[&id, &backup_id],
    )
    .await?;
    Ok(())
}

/// A drill's outcome: what it restored and how long the restore took.
pub struct DrillOutcome<'a> {
    pub row_counts: Option<serde_json::Value>,
    pub checksums: Option<serde_json::Value>,
    pub restore_ms: Option<i64>,
    pub error: Option<&'a str>,
    /// The other copies the drill proved: the DR replica, an older backup.
    pub copies: Option<serde_json::Value>,
}

pub async fn finish_drill(
    db: &impl GenericClient,
    id: Uuid,
    outcome: &DrillOutcome<'_>,
) -> Result<(), DbError> {
    let status = if outcome.error.is_none() { "succeeded" } else { "failed" };
    db.execute(
        "UPDATE restore_drills SET status = $2, finished_at = now(), row_counts = $3, checksums = $4, restore_ms = $5, error = $6, copies = $7 \
         WHERE id = $1",
        &[&id, &status, &outcome.row_counts, &outcome.checksums, &outcome.restore_ms, &outcome.error, &outcome.copies],
    )
    .await?;
    Ok(())
}

/// After a restore, the restored catalog says what is now known: the backup
/// restored succeeded (its row was `running` when the snapshot was taken), and
/// any other run caught mid-way by the snapshot did not finish here.
pub async fn settle_restored_catalog(
    db: &impl GenericClient,
    done: &FinishedBackup<'_>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE backups SET status = 'failed', finished_at = now(), error = 'in progress when the restored snapshot was taken' \
         WHERE status = 'running' AND id <> $1",
        &[&done.id],
    )
    .await?;
    db.execute(
        "UPDATE restore_drills SET status = 'failed', finished_at = now(), error = 'in progress when the restored snapshot was taken' \
         WHERE status = 'running'",
        &[],
    )
    .await?;
    finish_backup(db, done).await
}

/// Every backup id the catalog knows, expired ones too.
pub async fn catalogued_backups(db: &impl GenericClient) -> Result<Vec<Uuid>, DbError> {
    db.query("SELECT id FROM backups", &[]).await?.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// Records a backup the catalog does not know (its manifest proven by the
/// caller), as succeeded at its snapshot time. `false` if it was known.
pub async fn catalog_found_backup(
    db: &impl GenericClient,
    object_key: &str,
    snapshot_at: DateTime<Utc>,
    found: &FinishedBackup<'_>,
) -> Result<bool, DbError> {
    let inserted = db
        .execute(
            "INSERT INTO backups (id, object_key, status, started_at) VALUES ($1, $2, 'running', $3) ON CONFLICT (id) DO NOTHING",
            &[&found.id, &object_key, &snapshot_at],
        )
        .await?;
    if inserted == 1 {
        finish_backup(db, found).await?;
    }
    Ok(inserted == 1)
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
    /// Drills: how long the restore took (the measured RTO).
    pub restore_ms: Option<i64>,
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
                restore_ms: r.try_get("restore_ms")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}

/// The newest backups, expired ones included (marked by their status).
pub async fn recent_backups(
    db: &impl GenericClient,
    limit: i64,
) -> Result<Vec<HistoryEntry>, DbError> {
    history(
        db.query(
            "SELECT id, CASE WHEN expired_at IS NULL THEN status ELSE status || ' (expired)' END AS status, started_at, finished_at, \
             bytes, NULL::uuid AS backup_id, NULL::bigint AS restore_ms, error FROM backups ORDER BY started_at DESC, id LIMIT $1",
            &[&limit],
        )
        .await?,
    )
}

pub async fn recent_drills(
    db: &impl GenericClient,
    limit: i64,
) -> Result<Vec<HistoryEntry>, DbError> {
    history(
        db.query(
            "SELECT id, status, started_at, finished_at, NULL::bigint AS bytes, backup_id, restore_ms, error \
             FROM restore_drills ORDER BY started_at DESC, id LIMIT $1",
            &[&limit],
        )
        .await?,
    )
}
