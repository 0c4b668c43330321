//! The retention policy and secure deletion.
//!
//! A sweep runs every rule of the [`Policy`] in turn. Each rule pages through
//! its due items (keyset pages, so items that keep failing never stop the
//! rest); for a page it lists every object version and delete marker under
//! the items' prefixes, in the primary bucket *and its DR replica* (S3 does not
//! replicate the deletion of a version), deletes them in `DeleteObjects`
//! batches of at most 1,000, and then, for each item whose objects are all
//! gone, deletes its row and writes its audit entry in one transaction. An
//! item S3 refuses is skipped and reported; the next run tries it again. A
//! run killed at any point leaves rows whose objects are partly or wholly
//! gone, which the next run finishes; a run with nothing due changes nothing.
//!
//! A dry run lists exactly what would go (counts and a sample of keys) and
//! deletes nothing.

pub mod erasure;
pub use shared::retention::policy;
pub use shared::retention::rotation;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use serde::Serialize;
use tracing::{info, instrument, warn};
use uuid::Uuid;

pub use policy::{Policy, Rule};
pub use rotation::Rotation;

pub use erasure::{Containing, ErasureOutcome};
use shared::aws::storage::{ObjectStore, PurgeTally, StorageError, Version};
use shared::db::{self, AuditEntry, DbError, DueItem};
use shared::media::EdgeMedia;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Ledger(#[from] shared::ledger::LedgerError),
    #[error("no artist {0}")]
    NoSuchArtist(Uuid),
}

impl RetentionError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
            Self::Ledger(e) => e.is_retryable(),
            Self::NoSuchArtist(_) => false,
        }
    }
}

/// The buckets a sweep deletes from, replicas included.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub originals: String,
    pub processed: String,
    pub backups: String,
    /// The DR region's copies (`*-dr`), reached with the replica store.
    pub processed_replica: String,
    pub backups_replica: String,
}

/// Where an item's objects live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Originals,
    Processed,
    ProcessedReplica,
    Backups,
    BackupsReplica,
}

/// All of the objects under a prefix, or exactly one key's versions.
#[derive(Debug, Clone)]
enum Scope {
    Prefix(String),
    Key(String),
}

/// An item due for deletion and where its objects are.
struct Doomed {
    target: String,
    scopes: Vec<(Place, Scope)>,
}

/// Renditions live in the processed bucket and its replica; originals only in
/// their own (temporary, never replicated) bucket.
fn media_scopes(prefix_tail: &str) -> Vec<(Place, Scope)> {
    vec![
        (Place::Originals, Scope::Prefix(format!("originals/{prefix_tail}/"))),
        (Place::Processed, Scope::Prefix(format!("renditions/{prefix_tail}/"))),
        (Place::ProcessedReplica, Scope::Prefix(format!("renditions/{prefix_tail}/"))),
    ]
}

/// How a sweep should go.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The cut-offs are taken from this time (the schedule's, so a retried event applies the same).
    pub now: DateTime<Utc>,
    pub dry_run: bool,
    pub request_id: Option<String>,
    /// No new page starts after this (the invocation's deadline less a margin); the next run goes on.
    pub stop_at: Option<DateTime<Utc>>,
}

impl Sweep {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self { now, dry_run: false, request_id: None, stop_at: None }
    }
}

/// One rule's work in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleTally {
    /// Items handled (or, in a dry run, due).
    pub items: u64,
    /// Rows deleted or changed.
    pub rows: u64,
    /// Object versions and delete markers deleted (or, in a dry run, found).
    pub object_versions: u64,
    /// Items due but still under S3 Object Lock: a later run takes them.
    #[serde(skip_serializing_if = "is_zero")]
    pub locked: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An item the run could not finish, and why; it stays for the next run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub rule: &'static str,
    pub target: String,
    pub reason: String,
}

/// Renditions whose edge visibility had drifted and was settled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EdgeTally {
    pub published: u64,
    pub withdrawn: u64,
    pub settle_failures: u64,
}

const MAX_REPORTED: usize = 50;
/// Version listings in flight at once.
const LISTINGS_AT_ONCE: usize = 8;
const MAX_SAMPLE: usize = 20;

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Every rule ran to its end (a run stopped by its deadline is not complete).
    pub complete: bool,
    pub rules: BTreeMap<&'static str, RuleTally>,
    /// Per bucket: versions and markers deleted, and the requests it took.
    pub buckets: BTreeMap<String, PurgeTally>,
    pub failures_total: u64,
    /// The first failures (all are logged).
    pub failures: Vec<Failure>,
    /// Some of the keys deleted (or, dry, that would be).
    pub sample_keys: Vec<String>,
    pub edge: EdgeTally,
}

impl Report {
    fn rule(&mut self, rule: &'static str) -> &mut RuleTally {
        self.rules.entry(rule).or_default()
    }

    fn fail(&mut self, rule: &'static str, target: String, reason: String) {
        warn!(rule, %target, %reason, "retention item skipped");
        self.failures_total += 1;
        if self.failures.len() < MAX_REPORTED {
            self.failures.push(Failure { rule, target, reason });
        }
    }

    /// Object versions removed (or found) over every bucket.
    pub fn object_versions(&self) -> u64 {
        self.buckets.values().map(PurgeTally::removed).sum()
    }

    pub fn rows(&self) -> u64 {
        self.rules.values().map(|r| r.rows).sum()
    }

    /// Nothing failed and nothing was left for later.
    pub fn succeeded(&self) -> bool {
        self.complete && self.failures_total == 0
    }

    /// Whether this run found anything at all to do.
    pub fn is_idle(&self) -> bool {
        self.rules.values().all(|r| *r == RuleTally::default())
            && self.object_versions() == 0
            && self.failures_total == 0
    }
}

pub struct Retention {
    pub pool: Pool,
    /// The primary region's buckets, writing with the data key.
    pub store: ObjectStore,
    /// The DR region's buckets (the replicas).
    pub replica_store: ObjectStore,
    /// Erasure records in the backups bucket, sealed with the backups key.
    pub ledger: shared::ledger::Ledger,
    pub buckets: Buckets,
    pub policy: Policy,
    /// Items per page (and per batch of listings before their deletes).
    pub batch: i64,
}

const ACTOR: &str = "system:retention";

impl Retention {
    fn place(&self, place: Place) -> (&ObjectStore, &str) {
        let b = &self.buckets;
        match place {
            Place::Originals => (&self.store, &b.originals),
            Place::Processed => (&self.store, &b.processed),
            Place::ProcessedReplica => (&self.replica_store, &b.processed_replica),
            Place::Backups => (&self.store, &b.backups),
            Place::BackupsReplica => (&self.replica_store, &b.backups_replica),
        }
    }

    /// The whole sweep: every rule, then one summary audit entry and the metrics.
    #[instrument(skip_all, fields(dry_run = sweep.dry_run))]
    pub async fn run(&self, sweep: &Sweep) -> Result<Report, RetentionError> {
        let mut report = Report { dry_run: sweep.dry_run, complete: true, ..Report::default() };
        if !sweep.dry_run {
            // First, so a withdrawal whose settle failed never waits on a
            // purge; and before this run takes its connection, since the
            // settles need one and the function's pool has exactly one.
            self.reconcile_edge(&mut report).await;
        }
        let client = self.pool.get().await.map_err(DbError::from)?;
        self.erasures(&client, sweep, &mut report).await?;
        let p = &self.policy;
        let deleted = ItemRule::DeletedArtworks { cutoff: sweep.now - p.deleted_artwork_grace };
        self.items(&client, sweep, &mut report, deleted).await?;
        let stale = ItemRule::StaleImages {
            failed_before: sweep.now - p.failed_image_age,
            pending_before: sweep.now - p.abandoned_upload_age,
        };
        self.items(&client, sweep, &mut report, stale).await?;
        self.row_rules(&client, sweep, &mut report).await?;
        self.backups(&client, sweep, &mut report).await?;

        let action = if sweep.dry_run { "retention.dry_run" } else { "retention.run" };
        let detail = serde_json::json!({
            "complete": report.complete,
            "rules": report.rules,
            "object_versions": report.object_versions(),
            "failures": report.failures_total,
        });
        audit(&client, action, "retention".into(), sweep.request_id.as_deref(), detail).await?;
        if !sweep.dry_run {
            use shared::telemetry::count;
            count("retention", "ObjectVersionsDeleted", report.object_versions() as f64);
            count("retention", "RowsDeleted", report.rows() as f64);
            count("retention", "RetentionErrors", report.failures_total as f64);
            if report.succeeded() {
                count("retention", "RetentionSucceeded", 1.0);
            }
        }
        info!(?report, "retention run finished");
        Ok(report)
    }

    async fn reconcile_edge(&self, report: &mut Report) {
        let media = EdgeMedia {
            pool: self.pool.clone(),
            store: self.store.clone(),
            bucket: self.buckets.processed.clone(),
        };
        match media.reconcile(self.batch).await {
            Ok((settled, failed)) => {
                report.edge.published = settled.published.len() as u64;
                report.edge.withdrawn = settled.withdrawn.len() as u64;
                report.edge.settle_failures = failed.len() as u64;
                for (artwork, e) in failed {
                    warn!(%artwork, error = %e, "edge visibility not settled");
                }
            }
            Err(e) => {
                warn!(error = %e, "edge reconcile skipped");
                report.edge.settle_failures += 1;
            }
        }
    }

    fn out_of_time(&self, sweep: &Sweep, report: &mut Report) -> bool {
        let late = sweep.stop_at.is_some_and(|stop| Utc::now() >= stop);
        if late {
            report.complete = false;
        }
        late
    }

    /// Lists (and unless dry, deletes) every version in every scope of every
    /// item. Per item: the versions it had, or why not all of them went.
    async fn purge(
        &self,
        items: &[Doomed],
        dry_run: bool,
        report: &mut Report,
    ) -> Vec<Result<u64, String>> {
        let mut outcome: Vec<Result<u64, String>> = items.iter().map(|_| Ok(0)).collect();
        let mut by_place: BTreeMap<Place, (Vec<Version>, Vec<usize>)> = BTreeMap::new();
        // Listings are independent: a few at a time, so a page of items does
        // not wait on hundreds of round trips one after the other.
        // (Futures built in a plain loop, not a combinator's closure: their
        // borrows keep one concrete lifetime and the sweep stays `Send`.)
        let mut listings = Vec::new();
        for (i, item) in items.iter().enumerate() {
            for (place, scope) in &item.scopes {
                let (store, bucket) = self.place(*place);
                let prefix = match scope {
                    Scope::Prefix(p) | Scope::Key(p) => p,
                };
                let place = *place;
                listings.push(async move {
                    (i, place, scope, store.versions_under(bucket, prefix).await)
                });
            }
        }
        let mut listed = futures_util::stream::iter(listings).buffered(LISTINGS_AT_ONCE);
        while let Some((i, place, scope, result)) = listed.next().await {
            let bucket = self.place(place).1;
            match result {
                Ok((mut versions, lists)) => {
                    if let Scope::Key(key) = scope {
                        versions.retain(|v| &v.key == key);
                    }
                    report.buckets.entry(bucket.to_owned()).or_default().list_requests += lists;
                    let (all, owners) = by_place.entry(place).or_default();
                    owners.extend(std::iter::repeat_n(i, versions.len()));
                    all.extend(versions);
                }
                Err(e) => outcome[i] = Err(e.to_string()),
            }
        }
        for (place, (versions, owners)) in by_place {
            let (store, bucket) = self.place(place);
            // An item that could not be listed everywhere keeps its objects: the next run lists again.
            let (versions, owners): (Vec<Version>, Vec<usize>) = versions
                .into_iter()
                .zip(owners)
                .filter(|(_, owner)| outcome[*owner].is_ok())
                .unzip();
            for v in versions.iter().take(MAX_SAMPLE.saturating_sub(report.sample_keys.len())) {
                report.sample_keys.push(format!("{bucket}/{}", v.key));
            }
            let tally = report.buckets.entry(bucket.to_owned()).or_default();
            if dry_run {
                for (v, owner) in versions.iter().zip(&owners) {
                    if v.delete_marker {
                        tally.delete_markers += 1;
                    } else {
                        tally.versions += 1;
                    }
                    if let Ok(n) = &mut outcome[*owner] {
                        *n += 1;
                    }
                }
                continue;
            }
            let deleted = store.delete_versions(bucket, &versions).await;
            tally.add(&deleted.tally);
            let mut refused = vec![false; versions.len()];
            for f in &deleted.failures {
                let reason = format!(
                    "{bucket}/{} ({}): {} {}",
                    f.key,
                    f.version_id.as_deref().unwrap_or("-"),
                    f.code,
                    f.message
                );
                // Some servers name only the key of a refused version: then every version of it counts as refused.
                for (j, v) in versions.iter().enumerate() {
                    if v.key == f.key && (f.version_id.is_none() || f.version_id == v.version_id) {
                        refused[j] = true;
                        if outcome[owners[j]].is_ok() {
                            outcome[owners[j]] = Err(reason.clone());
                        }
                    }
                }
            }
            for (j, owner) in owners.iter().enumerate() {
                if let (false, Ok(n)) = (refused[j], &mut outcome[*owner]) {
                    *n += 1;
                }
            }
        }
        outcome
    }

    /// Purges a page of items' objects, then for each item whose objects all
    /// went runs `finish` (its row and audit entry, in one transaction).
    async fn settle_page<F, Fut>(
        &self,
        rule: &'static str,
        items: Vec<Doomed>,
        dry_run: bool,
        report: &mut Report,
        mut finish: F,
    ) where
        F: FnMut(usize, u64) -> Fut,
        Fut: std::future::Future<Output = Result<u64, RetentionError>>,
    {
        let outcomes = self.purge(&items, dry_run, report).await;
        for (i, (item, outcome)) in items.into_iter().zip(outcomes).enumerate() {
            match outcome {
                Err(reason) => report.fail(rule, item.target, reason),
                Ok(versions) => {
                    let tally = report.rule(rule);
                    tally.items += 1;
                    tally.object_versions += versions;
                    if dry_run {
                        continue;
                    }
                    match finish(i, versions).await {
                        Ok(rows) => report.rule(rule).rows += rows,
                        Err(e) => report.fail(rule, item.target, e.to_string()),
                    }
                }
            }
        }
    }

    /// A rule over items with objects: page by page, every object of the
    /// page's items, then each item's row with its audit entry.
    async fn items(
        &self,
        client: &db::Client,
        sweep: &Sweep,
        report: &mut Report,
        rule: ItemRule,
    ) -> Result<(), RetentionError> {
        let mut after = None;
        while !self.out_of_time(sweep, report) {
            let page = rule.page(client, after, self.batch).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.at, last.id));
            let items = page
                .iter()
                .map(|item| Doomed { target: rule.target(item.id), scopes: rule.scopes(item) })
                .collect();
            self.settle_page(rule.name(), items, sweep.dry_run, report, |i, versions| {
                let id = page[i].id;
                in_transaction(client, move |tx| async move {
                    if !rule.remove(tx, id).await? {
                        return Ok(0);
                    }
                    let detail = serde_json::json!({ "object_versions": versions });
                    audit(tx, rule.action(), rule.target(id), sweep.request_id.as_deref(), detail)
                        .await?;
                    Ok(1)
                })
            })
            .await;
            if (page.len() as i64) < self.batch {
                break;
            }
        }
        Ok(())
    }

    /// The rules that only touch rows: each one statement, with its audit
    /// entry in the same transaction.
    async fn row_rules(
        &self,
        client: &db::Client,
        sweep: &Sweep,
        report: &mut Report,
    ) -> Result<(), RetentionError> {
        for rule in RowRule::ALL {
            let cutoff = sweep.now - rule.age(&self.policy);
            if sweep.dry_run {
                report.rule(rule.name()).items += rule.count(client, cutoff).await?;
                continue;
            }
            let applied = in_transaction(client, |tx| async move {
                let n = rule.apply(tx, cutoff).await?;
                if n > 0 {
                    let detail = serde_json::json!({ "rows": n, "before": cutoff });
                    audit(
                        tx,
                        rule.action(),
                        rule.name().into(),
                        sweep.request_id.as_deref(),
                        detail,
                    )
                    .await?;
                }
                Ok(n)
            })
            .await;
            match applied {
                Ok(n) => {
                    let tally = report.rule(rule.name());
                    tally.items += n;
                    tally.rows += n;
                }
                Err(e) => report.fail(rule.name(), rule.name().to_owned(), e.to_string()),
            }
        }
        Ok(())
    }

    /// The rotation's expired backups: object and manifest, every version, in
    /// the backups bucket and its replica; then the catalogue records it.
    async fn backups(
        &self,
        client: &db::Client,
        sweep: &Sweep,
        report: &mut Report,
    ) -> Result<(), RetentionError> {
        const RULE: &str = "backups";
        if self.out_of_time(sweep, report) {
            return Ok(());
        }
        let live = db::live_backups(client).await?;
        let expired = rotation::to_expire(&facts(&live), sweep.now, &self.policy.rotation);
        let mut due: Vec<&db::BackupListing> = Vec::new();
        for b in live.iter().filter(|b| expired.contains(&b.id)) {
            // S3 Object Lock keeps every backup at least `backup_lock`; one
            // still locked waits for a later run (not a failure). S3 refuses
            // an early delete anyway: that would be reported as a failure.
            let lapses = rotation::lock_lapses(b.started_at, self.policy.backup_lock);
            if lapses > sweep.now {
                info!(backup = %b.id, %lapses, "expired by the rotation, locked until then");
                report.rule(RULE).locked += 1;
            } else {
                due.push(b);
            }
        }
        let items = due
            .iter()
            .map(|b| {
                let manifest = b
                    .manifest_key
                    .clone()
                    .unwrap_or_else(|| shared::archive::manifest::Manifest::key_for(&b.object_key));
                // The manifest first: an object without one is never taken for a backup.
                let scopes = [Place::Backups, Place::BackupsReplica]
                    .into_iter()
                    .flat_map(|p| {
                        [(p, Scope::Key(manifest.clone())), (p, Scope::Key(b.object_key.clone()))]
                    })
                    .collect();
                Doomed { target: format!("backup:{}", b.id), scopes }
            })
            .collect();
        self.settle_page(RULE, items, sweep.dry_run, report, |i, versions| {
            let id = due[i].id;
            in_transaction(client, move |tx| async move {
                if !db::mark_backup_expired(tx, id).await? {
                    return Ok(0);
                }
                let detail = serde_json::json!({ "object_versions": versions });
                audit(
                    tx,
                    "retention.expire_backup",
                    format!("backup:{id}"),
                    sweep.request_id.as_deref(),
                    detail,
                )
                .await?;
                Ok(1)
            })
        })
        .await;
        Ok(())
    }
}

/// The rules over items whose objects go before their rows.
#[derive(Debug, Clone, Copy)]
enum ItemRule {
    /// Artworks deleted longer ago than the grace period: every object under
    /// their prefixes, then the row (editions and images cascade).
    DeletedArtworks { cutoff: DateTime<Utc> },
    /// Removed images, failed ones past their period, upload slots never used.
    StaleImages { failed_before: DateTime<Utc>, pending_before: DateTime<Utc> },
}

impl ItemRule {
    fn name(self) -> &'static str {
        match self {
            Self::DeletedArtworks { .. } => "deleted-artworks",
            Self::StaleImages { .. } => "stale-images",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Self::DeletedArtworks { .. } => "retention.purge_artwork",
            Self::StaleImages { .. } => "retention.purge_image",
        }
    }

    fn target(self, id: Uuid) -> String {
        match self {
            Self::DeletedArtworks { .. } => format!("artwork:{id}"),
            Self::StaleImages { .. } => format!("image:{id}"),
        }
    }

    fn scopes(self, item: &DueItem) -> Vec<(Place, Scope)> {
        match self {
            Self::DeletedArtworks { .. } => media_scopes(&item.id.to_string()),
            Self::StaleImages { .. } => media_scopes(&format!("{}/{}", item.artwork_id, item.id)),
        }
    }

    async fn page(
        self,
        db: &db::Client,
        after: db::PageAfter,
        limit: i64,
    ) -> Result<Vec<DueItem>, DbError> {
        match self {
            Self::DeletedArtworks { cutoff } => {
                db::deleted_artworks_page(db, cutoff, after, limit).await
            }
            Self::StaleImages { failed_before, pending_before } => {
                db::stale_images_page(db, failed_before, pending_before, after, limit).await
            }
        }
    }

    async fn remove(self, db: &db::Client, id: Uuid) -> Result<bool, DbError> {
        match self {
            Self::DeletedArtworks { cutoff } => db::purge_artwork(db, id, cutoff).await,
            Self::StaleImages { .. } => db::delete_image(db, id).await,
        }
    }
}

/// The rules that remove (or, for stuck images, change) rows only.
#[derive(Debug, Clone, Copy)]
enum RowRule {
    StuckProcessing,
    DeadTokens,
    IdempotencyKeys,
    AuditLog,
    BackupRecords,
}

impl RowRule {
    const ALL: [Self; 5] = [
        Self::StuckProcessing,
        Self::DeadTokens,
        Self::IdempotencyKeys,
        Self::AuditLog,
        Self::BackupRecords,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::StuckProcessing => "stuck-processing",
            Self::DeadTokens => "dead-tokens",
            Self::IdempotencyKeys => "idempotency-keys",
            Self::AuditLog => "audit-log",
            Self::BackupRecords => "backup-records",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Self::StuckProcessing => "retention.fail_stuck_images",
            Self::DeadTokens => "retention.purge_tokens",
            Self::IdempotencyKeys => "retention.purge_idempotency_keys",
            Self::AuditLog => "retention.purge_audit",
            Self::BackupRecords => "retention.purge_backup_records",
        }
    }

    fn age(self, p: &Policy) -> chrono::Duration {
        match self {
            Self::StuckProcessing => p.stuck_processing_age,
            Self::DeadTokens => p.dead_token_age,
            Self::IdempotencyKeys => p.idempotency_key_age,
            Self::AuditLog => p.audit_age,
            Self::BackupRecords => p.backup_record_age,
        }
    }

    async fn count(self, db: &db::Client, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
        match self {
            Self::StuckProcessing => db::count_stuck_images(db, cutoff).await,
            Self::DeadTokens => db::count_dead_tokens(db, cutoff).await,
            Self::IdempotencyKeys => db::count_idempotency_keys(db, cutoff).await,
            Self::AuditLog => db::count_audit(db, cutoff).await,
            Self::BackupRecords => db::count_backup_records(db, cutoff).await,
        }
    }

    async fn apply(self, db: &db::Client, cutoff: DateTime<Utc>) -> Result<u64, RetentionError> {
        Ok(match self {
            Self::StuckProcessing => db::fail_stuck_images(
                db,
                cutoff,
                "processing did not finish; upload the image again",
            )
            .await?
            .len() as u64,
            Self::DeadTokens => db::delete_dead_tokens(db, cutoff).await?,
            Self::IdempotencyKeys => db::purge_idempotency_keys(db, cutoff).await?,
            Self::AuditLog => db::purge_audit(db, cutoff).await?,
            Self::BackupRecords => db::purge_backup_records(db, cutoff).await?,
        })
    }
}

/// The rotation's view of the catalogue.
pub fn facts(live: &[db::BackupListing]) -> Vec<rotation::BackupFacts> {
    live.iter()
        .map(|b| rotation::BackupFacts {
            id: b.id,
            started_at: b.started_at,
            succeeded: b.succeeded,
            drill_succeeded: b.drill_succeeded,
        })
        .collect()
}

/// Runs `f` inside one transaction on the run's connection: a row's deletion
/// and its audit entry commit together or not at all.
async fn in_transaction<'c, T, F, Fut>(client: &'c db::Client, f: F) -> Result<T, RetentionError>
where
    F: FnOnce(&'c db::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, RetentionError>>,
{
    db::begin(client).await?;
    match f(client).await {
        Ok(n) => {
            db::commit(client).await?;
            Ok(n)
        }
        Err(e) => {
            db::rollback(client).await;
            Err(e)
        }
    }
}

async fn audit(
    client: &impl deadpool_postgres::GenericClient,
    action: &str,
    target: String,
    request_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), DbError> {
    db::append_audit(
        client,
        &AuditEntry { actor: ACTOR, action, target: &target, request_id, detail },
    )
    .await
}
