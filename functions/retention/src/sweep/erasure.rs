//! Artist erasure: the artist's personal data and works removed, their
//! objects deleted everywhere (primary and DR buckets), and a record that
//! proves it without keeping any of it.
//!
//! A request (the API's admin route, or the operator tool) takes the artist
//! out of the gallery at once: works hidden, tokens revoked, and its sealed
//! record in the backups bucket's erasure ledger (`erasures/<id>.json`,
//! replicated to the DR region, never pruned) before the request is answered.
//! Retention then completes it: the record again (a request that predates
//! request-time records gets one here), every object under the artist's
//! artworks, then the rows and the record's completion commit together, and
//! the completed record. Every recovery path replays the ledger
//! (`backup::restore`, `gallery-ops database replay-erasures` after a
//! point-in-time restore), so nobody erased comes back.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::warn;
use uuid::Uuid;

use super::{
    audit, facts, in_transaction, media_scopes, rotation, Doomed, Report, Retention,
    RetentionError, Sweep,
};
use shared::archive::ledger::ErasureRecord;
use shared::db::{self, DbError, Erasure};
use shared::ledger::LedgerError;

const RULE: &str = "artist-erasure";

/// A backup that still held the artist when the erasure completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Containing {
    pub backup_id: Uuid,
    pub started_at: DateTime<Utc>,
    /// The day the rotation removes it (and its replica), if daily backups go on;
    /// `None` when the rotation keeps it beyond any date it can name.
    pub removed_by: Option<DateTime<Utc>>,
}

/// What an erasure run gives back.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureOutcome {
    pub erasure: Erasure,
    pub report: Report,
}

impl Retention {
    /// Records a request to erase `artist` (or finds the open one) and
    /// completes it now: what the operator tool runs.
    pub async fn erase_now(
        &self,
        artist: Uuid,
        requested_by: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ErasureOutcome, RetentionError> {
        let client = self.pool.get().await.map_err(DbError::from)?;
        let erasure = in_transaction(&client, |tx| async move {
            let (erasure, new) = db::request_erasure(tx, artist, requested_by, Some(request_id))
                .await?
                .ok_or(RetentionError::NoSuchArtist(artist))?;
            if new {
                // Durable outside the database before the request is answered:
                // a restore from here on replays it.
                self.ledger.write(&ErasureRecord::from(&erasure)).await?;
                let detail = serde_json::json!({ "erasure": erasure.id });
                let entry = db::AuditEntry {
                    actor: requested_by,
                    action: "artist.erasure_requested",
                    target: &format!("artist:{artist}"),
                    request_id: Some(request_id),
                    detail,
                };
                db::append_audit(tx, &entry).await?;
            }
            Ok(erasure)
        })
        .await?;
        let sweep = Sweep { request_id: Some(request_id.to_owned()), ..Sweep::at(now) };
        let mut report = Report { complete: true, ..Report::default() };
        self.erase(&client, &erasure, &sweep, &mut report).await?;
        let erasure = db::erasure_by_id(&client, erasure.id).await?.unwrap_or(erasure);
        Ok(ErasureOutcome { erasure, report })
    }

    /// The rule: every open erasure, oldest first.
    pub(super) async fn erasures(
        &self,
        client: &db::Client,
        sweep: &Sweep,
        report: &mut Report,
    ) -> Result<(), RetentionError> {
        for erasure in db::open_erasures(client, self.batch).await? {
            if self.out_of_time(sweep, report) {
                break;
            }
            self.erase(client, &erasure, sweep, report).await?;
        }
        Ok(())
    }

    async fn erase(
        &self,
        client: &db::Client,
        erasure: &Erasure,
        sweep: &Sweep,
        report: &mut Report,
    ) -> Result<(), RetentionError> {
        let target = format!("erasure:{}", erasure.id);
        if !sweep.dry_run {
            // The ledger first: from here on a restore cannot bring the artist back.
            if let Err(e) = self.write_ledger(erasure).await {
                report.fail(RULE, target, format!("the erasure record could not be written: {e}"));
                return Ok(());
            }
        }
        let artist = erasure.artist_id;
        let artworks = db::all_artworks_of(client, artist).await?;
        let joined_at = db::artist_joined_at(client, artist).await?;
        let scopes = artworks.iter().flat_map(|a| media_scopes(&a.to_string())).collect();
        let items = vec![Doomed { target, scopes }];
        // Worked out before the rows' transaction, so it holds no locks while
        // the rotation is simulated.
        let containing = if sweep.dry_run {
            serde_json::Value::Null
        } else {
            self.containing(client, joined_at, sweep.now).await?
        };
        let containing = &containing;
        self.settle_page(RULE, items, sweep.dry_run, report, |_, versions| {
            in_transaction(client, move |tx| async move {
                let rows = db::erase_artist_rows(tx, artist).await?;
                let b = &self.buckets;
                let objects = serde_json::json!({
                    "object_versions": versions,
                    "buckets": [&b.originals, &b.processed, &b.processed_replica],
                });
                let done = db::Completion { rows_deleted: &rows, objects_deleted: &objects, backups_containing: containing };
                db::complete_erasure(tx, erasure.id, &done).await?;
                let detail = serde_json::json!({ "erasure": erasure.id, "rows": rows, "object_versions": versions });
                audit(tx, "retention.erase_artist", format!("artist:{artist}"), sweep.request_id.as_deref(), detail).await?;
                Ok(rows.as_object().map(|m| m.values().filter_map(|v| v.as_u64()).sum()).unwrap_or(0))
            })
        })
        .await;
        // The completed record replaces the requested one in the ledger; if
        // this fails the requested one stands, which a restore replays just as well.
        if let Some(record) = db::erasure_by_id(client, erasure.id)
            .await?
            .filter(|e| e.completed_at.is_some() && !sweep.dry_run)
        {
            if let Err(e) = self.write_ledger(&record).await {
                warn!(erasure = %record.id, error = %e, "the completed erasure record was not written to the ledger");
            }
        }
        Ok(())
    }

    async fn write_ledger(&self, erasure: &Erasure) -> Result<(), LedgerError> {
        self.ledger.write(&ErasureRecord::from(erasure)).await
    }

    /// The gallery's backups taken since the artist joined (they hold the
    /// artist), each with the day the rotation removes it; and until when the
    /// database's own snapshots hold them.
    async fn containing(
        &self,
        db: &db::Client,
        joined_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, DbError> {
        let live = db::live_backups(db).await?;
        let all = facts(&live);
        let rotation = &self.policy.rotation;
        let backups: Vec<Containing> = live
            .iter()
            .filter(|b| {
                b.succeeded && joined_at.is_none_or(|j| b.started_at >= j - Duration::minutes(1))
            })
            .map(|b| Containing {
                backup_id: b.id,
                started_at: b.started_at,
                removed_by: rotation::removal_date(&all, b.id, now, rotation),
            })
            .collect();
        Ok(serde_json::json!({
            "backups": backups,
            "buckets": [&self.buckets.backups, &self.buckets.backups_replica],
            "database_snapshots_until": now + self.policy.database_snapshot_age,
        }))
    }
}
