//! The erasure ledger on every recovery path: written when an erasure is
//! requested, sealed, proven before a restore writes anything, replayed inside
//! the load's transaction, and on its own (`replay-erasures`) after a restore
//! that is not ours (point-in-time, snapshot, region recovery).

use backup::restore::RestoreRequest;
use backup::{BackupError, BackupService};
use chrono::Utc;
use shared::archive::ledger::{ledger_key, ErasureRecord};
use shared::operator::BackupChoice;
use uuid::Uuid;

use crate::backups::{connect_as_owner, database_name, object, put, service};
use crate::support::TestContext;

fn restore_into(database: &str) -> RestoreRequest {
    RestoreRequest {
        backup: BackupChoice::Latest,
        database: database.to_owned(),
        verify_first: false,
        replace: false,
        confirm_production: None,
        reason: None,
    }
}

async fn count(client: &tokio_postgres::Client, sql: &str, artist: Uuid) -> i64 {
    client.query_one(sql, &[&artist]).await.unwrap().get(0)
}

async fn artists_named(client: &tokio_postgres::Client, artist: Uuid) -> i64 {
    count(client, "SELECT count(*) FROM artists WHERE id = $1", artist).await
}

/// An artist with a work, and a backup that holds them.
async fn backed_up_artist(ctx: &TestContext, name: &str) -> (Uuid, BackupService) {
    let (artist, _) = ctx.artist_with_token(name).await;
    let client = ctx.pool.get().await.unwrap();
    let new = shared::domain::NewArtwork {
        title: format!("{name}'s plate"),
        slug: None,
        description: None,
        medium: None,
        year: None,
        width_mm: None,
        height_mm: None,
    };
    shared::db::insert_artwork(&client, artist, &new.validate().unwrap()).await.unwrap();
    let service = service(ctx).await;
    service.backup().await.expect("a backup that holds the artist");
    (artist, service)
}

async fn databases(ctx: &TestContext, name: &str) -> i64 {
    let owner = connect_as_owner(ctx, "postgres").await;
    owner
        .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_erasure_only_requested_is_sealed_at_once_and_survives_every_restore() {
    let ctx = TestContext::new().await;
    let (artist, service) = backed_up_artist(&ctx, "Requested Only").await;
    // The request alone (what the API's route does before its 202): no sweep has run.
    let client = ctx.pool.get().await.unwrap();
    let (erasure, _) = shared::db::request_erasure(&client, artist, "token:admin", Some("req-1"))
        .await
        .unwrap()
        .unwrap();
    ctx.ledger().write(&ErasureRecord::from(&erasure)).await.unwrap();

    let database = database_name();
    let restored = service.restore(&restore_into(&database)).await.expect("restore");
    assert_eq!((restored.erasures_replayed, restored.ledger_records), (1, 1));
    let target = connect_as_owner(&ctx, &database).await;
    let (out, open): (bool, bool) = {
        let row = target
            .query_one(
                "SELECT a.suspended_at IS NOT NULL, EXISTS (SELECT 1 FROM erasures e WHERE e.id = $2 AND e.completed_at IS NULL) \
                 FROM artists a WHERE a.id = $1",
                &[&artist, &erasure.id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(out && open, "out of the gallery, and the erasure open again for retention");
    let live_tokens = count(
        &target,
        "SELECT count(*) FROM api_tokens WHERE artist_id = $1 AND revoked_at IS NULL",
        artist,
    )
    .await;
    assert_eq!(live_tokens, 0);
}

/// A point-in-time restore brings back a database from before an erasure;
/// `replay-erasures` alone removes the artist again, and says so once.
#[tokio::test]
async fn replay_erasures_alone_removes_the_artist_from_an_older_database_and_is_idempotent() {
    let ctx = TestContext::new().await;
    let (artist, service) = backed_up_artist(&ctx, "Point In Time").await;
    // The older database: restored before the erasure, so it holds the artist.
    let older = database_name();
    service.restore(&restore_into(&older)).await.expect("restore");
    let target = connect_as_owner(&ctx, &older).await;
    assert_eq!(artists_named(&target, artist).await, 1);

    ctx.retention(shared::retention::Policy::default())
        .erase_now(artist, "operator:x", "req-pitr", Utc::now())
        .await
        .expect("erasure");
    let first = service.replay_erasures(Some(&older)).await.expect("replay");
    assert_eq!(
        (first.replayed.records, first.replayed.artists_present, first.replayed.recorded),
        (1, 1, 1)
    );
    assert_eq!(artists_named(&target, artist).await, 0, "the erased artist is gone again");
    assert_eq!(
        count(&target, "SELECT count(*) FROM artworks WHERE artist_id = $1", artist).await,
        0
    );
    let before: Option<chrono::DateTime<Utc>> = target
        .query_one("SELECT replayed_at FROM erasures WHERE artist_id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    assert!(before.is_some());
    let again = service.replay_erasures(Some(&older)).await.expect("replay again");
    assert_eq!((again.replayed.artists_present, again.replayed.recorded), (0, 0), "idempotent");
    let after: Option<chrono::DateTime<Utc>> = target
        .query_one("SELECT replayed_at FROM erasures WHERE artist_id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "a replay that changes nothing records nothing");
    // Production (the default target) already holds the completed erasure:
    // replaying there changes nothing and never re-opens it.
    let live = service.replay_erasures(None).await.expect("replay into the gallery's own");
    assert_eq!((live.replayed.artists_present, live.replayed.recorded), (0, 0));
    let client = ctx.pool.get().await.unwrap();
    let completed: bool = client
        .query_one("SELECT completed_at IS NOT NULL FROM erasures WHERE artist_id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    assert!(completed);
}

/// Every way a record can be wrong stops the restore before it writes
/// anything, and `replay-erasures` before it changes anything; each names the record.
#[tokio::test]
async fn a_tampered_unsealed_malformed_or_misfiled_record_stops_every_recovery_path() {
    let ctx = TestContext::new().await;
    let (artist, service) = backed_up_artist(&ctx, "Sealed Away").await;
    ctx.retention(shared::retention::Policy::default())
        .erase_now(artist, "operator:x", "req-seal", Utc::now())
        .await
        .expect("erasure");
    let records = ctx.ledger().read_all().await.unwrap();
    let genuine_key = ledger_key(records[0].id);
    let genuine = object(&ctx, &genuine_key).await;
    let text = String::from_utf8(genuine.clone()).unwrap();
    // A second, genuine record whose seal the swap case borrows.
    let other =
        ErasureRecord { id: Uuid::new_v4(), artist_id: Uuid::new_v4(), ..records[0].clone() };
    ctx.ledger().write(&other).await.unwrap();
    let other_text = String::from_utf8(object(&ctx, &ledger_key(other.id)).await).unwrap();
    let seal_of = |t: &str| t.rsplit_once("\"seal\":").unwrap().1.to_owned();
    let v1 = serde_json::to_vec(&records[0]).unwrap();
    let misfiled_id = Uuid::new_v4();
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "a changed field",
            genuine_key.clone(),
            text.replace("operator:x", "operator:y").into_bytes(),
            "not authentic",
        ),
        (
            "another record's seal",
            genuine_key.clone(),
            format!(
                "{}\"seal\":{}",
                text.rsplit_once("\"seal\":").unwrap().0,
                seal_of(&other_text)
            )
            .into_bytes(),
            "not authentic",
        ),
        ("a version 1 record", genuine_key.clone(), v1, "unsealed"),
        ("not JSON", genuine_key.clone(), b"{ nope".to_vec(), "malformed"),
        (
            "a record under another id",
            ledger_key(misfiled_id),
            genuine.clone(),
            "records live under their own id",
        ),
    ];
    let client = ctx.pool.get().await.unwrap();
    let audit_before: i64 =
        client.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap().get(0);
    for (what, key, bytes, says) in cases {
        put(&ctx, &key, bytes).await;
        let database = database_name();
        let err = service.restore(&restore_into(&database)).await.expect_err(what);
        let message = err.to_string();
        assert!(matches!(err, BackupError::Ledger(_)), "{what}: {err:?}");
        assert!(message.contains(&key) && message.contains(says), "{what}: {message}");
        assert!(err.is_integrity_failure() && !err.is_retryable(), "{what}");
        assert_eq!(databases(&ctx, &database).await, 0, "{what}: nothing created");
        let err = service.replay_erasures(None).await.expect_err(what).to_string();
        assert!(err.contains(&key), "{what}: {err}");
        // The drill refuses too, and is recorded as failed.
        assert!(service.restore_drill().await.is_err(), "{what}: the drill");
        // Put things back for the next case.
        if key == genuine_key {
            put(&ctx, &key, genuine.clone()).await;
        } else {
            ctx.clients
                .s3
                .delete_object()
                .bucket(&ctx.storage.backups_bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
        }
    }
    let audit_after: i64 =
        client.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap().get(0);
    assert_eq!(audit_before, audit_after, "production unchanged by every refusal");
    // The genuine ledger reads again, and restores.
    let database = database_name();
    let restored = service.restore(&restore_into(&database)).await.expect("restore");
    assert_eq!(restored.ledger_records, 2);
    assert_eq!(artists_named(&connect_as_owner(&ctx, &database).await, artist).await, 0);
}

#[tokio::test]
async fn the_drill_replays_erasures_into_its_scratch_database_before_committing() {
    let ctx = TestContext::new().await;
    let (artist, service) = backed_up_artist(&ctx, "Drilled Away").await;
    ctx.retention(shared::retention::Policy::default())
        .erase_now(artist, "operator:x", "req-drill", Utc::now())
        .await
        .expect("erasure");
    let report = service.restore_drill().await.expect("the drill proves the snapshot as taken");
    assert_eq!(report.erasures_replayed, 1);
    assert!(!report.checksums.is_empty());
}

#[tokio::test]
async fn production_is_a_restore_target_only_when_named_twice_with_a_reason() {
    let ctx = TestContext::new().await;
    let (artist, service) = backed_up_artist(&ctx, "Still Here").await;
    let production = ctx.db.name.clone();
    let client = ctx.pool.get().await.unwrap();
    client
        .execute("UPDATE artists SET bio = 'written after the backup' WHERE id = $1", &[&artist])
        .await
        .unwrap();
    let refused = [
        RestoreRequest { replace: true, ..restore_into(&production) },
        RestoreRequest {
            replace: true,
            confirm_production: Some("other".into()),
            reason: Some("r".into()),
            ..restore_into(&production)
        },
        RestoreRequest {
            replace: true,
            confirm_production: Some(production.clone()),
            reason: None,
            ..restore_into(&production)
        },
        RestoreRequest {
            replace: true,
            confirm_production: Some(production.clone()),
            reason: Some("  ".into()),
            ..restore_into(&production)
        },
    ];
    for request in refused {
        let err = service.restore(&request).await.expect_err("refused");
        assert!(matches!(err, BackupError::ProductionTarget(_)), "{err:?}");
        assert!(err.to_string().contains("--confirm-production"), "{err}");
        let bio: Option<String> = client
            .query_one("SELECT bio FROM artists WHERE id = $1", &[&artist])
            .await
            .unwrap()
            .get(0);
        assert_eq!(bio.as_deref(), Some("written after the backup"), "nothing changed");
    }
    drop(client);
    let request = RestoreRequest {
        replace: true,
        confirm_production: Some(production.clone()),
        reason: Some("corrupted by a bad migration".into()),
        ..restore_into(&production)
    };
    let report = service.restore(&request).await.expect("named twice, with a reason");
    assert_eq!(report.production_reason.as_deref(), Some("corrupted by a bad migration"));
    let client = ctx.pool.get().await.unwrap();
    let bio: Option<String> =
        client.query_one("SELECT bio FROM artists WHERE id = $1", &[&artist]).await.unwrap().get(0);
    assert_ne!(bio.as_deref(), Some("written after the backup"), "the backup's data is back");
}

/// `latest` is the newest *authenticated* snapshot: a manifest under a later
/// date that does not prove itself is never chosen.
#[tokio::test]
async fn latest_is_chosen_among_authenticated_manifests_only() {
    let ctx = TestContext::new().await;
    let (_, service) = backed_up_artist(&ctx, "Genuine").await;
    let genuine = service.verify(&BackupChoice::Latest).await.expect("verify").backup_id;
    let keys = service.store.list_keys(&ctx.storage.backups_bucket, "backups/").await.unwrap();
    let manifest = keys.iter().find(|k| k.ends_with(".manifest.json")).unwrap();
    let mut forged: serde_json::Value =
        serde_json::from_slice(&object(&ctx, manifest).await).unwrap();
    forged["snapshot_at"] = "2099-01-01T00:00:00Z".into();
    let id = Uuid::new_v4();
    forged["backup_id"] = id.to_string().into();
    put(
        &ctx,
        &format!("backups/2099/01/01/{id}.manifest.json"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .await;
    let chosen = service.verify(&BackupChoice::Latest).await.expect("verify");
    assert_eq!(chosen.backup_id, genuine);
    let err = service.verify(&BackupChoice::Id(id)).await.expect_err("the forgery by id");
    assert!(err.is_integrity_failure(), "{err:?}");
}

/// A restore of an older backup (or a point-in-time restore) forgets the
/// backups taken since; the restored catalog, and the next backup run, learn
/// them again from their authenticated manifests, so the rotation expires
/// them in time.
#[tokio::test]
async fn backups_the_catalog_forgot_are_catalogued_again_from_their_manifests() {
    let ctx = TestContext::new().await;
    let (_, service) = backed_up_artist(&ctx, "Catalogued").await;
    let older = service.verify(&BackupChoice::Latest).await.unwrap().backup_id;
    let newer = service.backup().await.unwrap().backup_id;

    let database = database_name();
    let restored = service
        .restore(&RestoreRequest { backup: BackupChoice::Id(older), ..restore_into(&database) })
        .await
        .expect("restore of the older backup");
    assert_eq!(restored.backups_catalogued, 1);
    let target = connect_as_owner(&ctx, &database).await;
    let status: String = target
        .query_one("SELECT status FROM backups WHERE id = $1", &[&newer])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "succeeded");

    // Production loses a row (as a point-in-time restore would); the next run brings it back.
    let owner = ctx.owner_pool().get().await.unwrap();
    owner.execute("DELETE FROM backups WHERE id = $1", &[&newer]).await.unwrap();
    service.backup().await.unwrap();
    let back: (String, Option<String>) = {
        let row = owner
            .query_one("SELECT status, manifest_key FROM backups WHERE id = $1", &[&newer])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(back.0, "succeeded");
    assert!(back.1.unwrap().ends_with(&format!("{newer}.manifest.json")));
}
