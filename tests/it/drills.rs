//! The drill's other copies: the DR replica proven every day through the DR
//! Region (its S3 and the backups key's replica), and once a week an older
//! backup restored with erasure replay. Each is recorded and has its metric.

use backup::{BackupService, Manifest};
use chrono::Utc;
use shared::operator::BackupChoice;

use crate::backups::{gallery_data, object};
use crate::support::TestContext;

/// The backup service with its DR copy read through the DR Region's S3.
/// The emulator cannot open a multi-Region key's ciphertext at all (moto
/// 5.2.1 refuses every Decrypt of an `mrk-` key's, in either Region), so the
/// copy is opened with the same key in the primary Region here; that the
/// backup role may Decrypt with the replica in the DR Region, through the DR
/// KMS endpoint, is evaluated offline against the plan (`cargo xtask infra`),
/// and `the_replica_key_is_accepted_and_another_key_refused` proves a replica
/// ARN names the same key.
async fn with_dr_copy(ctx: &TestContext) -> BackupService {
    let service = crate::backups::service(ctx).await;
    let dr = backup::restore::BackupCopy {
        store: service.store.with_s3(ctx.replica_s3()),
        keys: service.keys.clone(),
        bucket: ctx.replica.backups_bucket.clone(),
        key_id: ctx.backup_key.clone(),
    };
    BackupService { dr: Some(dr), ..service }
}

/// What S3 replication does to a backup, which the emulator cannot: the
/// object in the DR bucket, and its manifest naming that copy's version
/// (replication keeps version ids; the emulator gives new ones, so the
/// manifest is signed anew with the backup's data key, as `damage` does).
/// `edit` changes the copy's manifest before it is signed.
async fn replicate(
    ctx: &TestContext,
    service: &BackupService,
    manifest: &Manifest,
    bytes: Vec<u8>,
    edit: impl FnOnce(&mut Manifest),
) {
    let s3 = ctx.replica_s3();
    crate::backups::store_version(&s3, &ctx.replica.backups_bucket, service, manifest, bytes, edit)
        .await;
}

async fn recorded_copies(ctx: &TestContext) -> serde_json::Value {
    ctx.owner_pool()
        .get()
        .await
        .unwrap()
        .query_one("SELECT copies FROM restore_drills ORDER BY started_at DESC LIMIT 1", &[])
        .await
        .unwrap()
        .get::<_, Option<serde_json::Value>>(0)
        .unwrap()
}

#[tokio::test]
async fn the_drill_proves_the_dr_copy_through_the_dr_region_and_records_each_failure() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let service = with_dr_copy(&ctx).await;
    let manifest = service.backup().await.unwrap();
    let bytes = object(&ctx, &manifest.object_key).await;

    // Missing: nothing replicated yet.
    let report = service.restore_drill().await.expect("the primary drill still succeeds");
    let dr = report.copies.dr.expect("checked");
    assert!(!dr.verified && dr.error.as_deref().unwrap().contains("manifest"), "{dr:?}");
    assert_eq!(recorded_copies(&ctx).await["dr"]["verified"], false);

    // Replicated: proven end to end with the replica key, in the DR Region.
    replicate(&ctx, &service, &manifest, bytes.clone(), |_| {}).await;
    let dr = service.restore_drill().await.unwrap().copies.dr.unwrap();
    assert!(dr.verified, "{dr:?}");
    assert_eq!(dr.backup_id, Some(manifest.backup_id));
    assert!(dr.age_hours.unwrap() < 1.0);
    let recorded = recorded_copies(&ctx).await;
    assert_eq!(recorded["dr"]["verified"], true, "{recorded}");
    assert_eq!(recorded["dr"]["backup_id"], manifest.backup_id.to_string());
    // The DR copy verifies through the DR clients alone.
    let through_dr = service.dr.as_ref().unwrap();
    let opened = through_dr.open_choice(&BackupChoice::Latest).await.unwrap();
    assert_eq!(opened.manifest.backup_id, manifest.backup_id);

    // A damaged copy: every chunk is read, so one flipped byte fails it.
    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x01;
    replicate(&ctx, &service, &manifest, damaged, |_| {}).await;
    let dr = service.restore_drill().await.unwrap().copies.dr.unwrap();
    assert!(!dr.verified, "{dr:?}");
    assert!(dr.error.as_deref().unwrap().contains("refused"), "{dr:?}");

    // Stale: replication stopped more than 26 hours ago.
    replicate(&ctx, &service, &manifest, bytes, |m| {
        m.snapshot_at = (Utc::now() - chrono::Duration::hours(27)).to_rfc3339();
    })
    .await;
    let dr = service.restore_drill().await.unwrap().copies.dr.unwrap();
    assert!(!dr.verified, "{dr:?}");
    assert!(dr.error.as_deref().unwrap().contains("26 h"), "{dr:?}");
}

/// Once a week the drill also restores the oldest backup the rotation keeps,
/// with every erasure since replayed into it.
#[tokio::test]
async fn the_weekly_drill_restores_an_older_backup_with_erasures_replayed() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let (artist, _) = ctx.artist_with_token("Older Ghost").await;
    let service = crate::backups::service(&ctx).await;
    let older = service.backup().await.unwrap();
    ctx.retention(shared::retention::Policy::default())
        .erase_now(artist, "operator:x", "req-older", Utc::now())
        .await
        .expect("erasure");
    service.backup().await.unwrap();

    let report = service.restore_drill_with(true).await.expect("drill");
    let checked = report.copies.older.expect("the older backup was drilled");
    assert!(checked.verified, "{checked:?}");
    assert_eq!(checked.backup_id, Some(older.backup_id));
    assert_eq!(recorded_copies(&ctx).await["older"]["verified"], true);
    // Not on other days.
    assert!(service.restore_drill_with(false).await.unwrap().copies.older.is_none());
}
