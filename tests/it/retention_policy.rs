//! Retention and secure deletion against the real database and the emulator's
//! versioned buckets, DR replicas included. The emulator does not replicate,
//! so each test puts the replica's copies where replication would.

use chrono::{Duration, Utc};
use futures_util::StreamExt;
use retention::{Report, Sweep};
use shared::aws::storage::ObjectStore;
use shared::db::AuditEntry;
use shared::retention::{Policy, Rotation};
use uuid::Uuid;

use crate::support::{strings, TestContext};

/// Every version and delete marker under `prefix`.
pub(crate) async fn versions_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> usize {
    let mut n = 0;
    let (mut key, mut version) = (None::<String>, None::<String>);
    loop {
        let out = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key.take())
            .set_version_id_marker(version.take())
            .send()
            .await
            .unwrap();
        n += out.versions().len() + out.delete_markers().len();
        if out.is_truncated() != Some(true) {
            return n;
        }
        key = out.next_key_marker().map(str::to_owned);
        version = out.next_version_id_marker().map(str::to_owned);
    }
}

pub(crate) fn policy() -> Policy {
    Policy {
        rotation: Rotation {
            keep_last: 1,
            daily: 0,
            weekly: 0,
            monthly: 0,
            yearly: 0,
            ..Rotation::default()
        },
        // Backups the tests write by hand are unlocked; a day keeps the
        // rotation's clock honest for the rows they back-date.
        backup_lock: Duration::days(1),
        ..Policy::default()
    }
}

/// An artwork of `artist` with one ready image: its original (two versions
/// and a delete marker) and a rendition (two versions) in the primary
/// buckets, and the rendition's replica copies.
pub(crate) struct Work {
    pub(crate) id: Uuid,
    image: Uuid,
}

pub(crate) async fn work(ctx: &TestContext, artist: Uuid, slug: &str) -> Work {
    let client = ctx.pool.get().await.unwrap();
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let replica = store.with_s3(ctx.replica_s3());
    let a = shared::db::insert_artwork(
        &client,
        artist,
        &shared::domain::NewArtwork::titled(slug).validate().unwrap(),
    )
    .await
    .unwrap();
    let image = Uuid::new_v4();
    let original = shared::domain::original_key(a.id, image, "plate.tif");
    shared::db::insert_image(&client, image, a.id, &original, None).await.unwrap();
    for v in 0..2u8 {
        store
            .put(&ctx.storage.originals_bucket, &original, vec![v; 8], "image/tiff")
            .await
            .unwrap();
    }
    ctx.clients
        .s3
        .delete_object()
        .bucket(&ctx.storage.originals_bucket)
        .key(&original)
        .send()
        .await
        .unwrap();
    let rendition = shared::domain::rendition_key(a.id, image, 400, "jpg");
    for v in 0..2u8 {
        store
            .put(&ctx.storage.processed_bucket, &rendition, vec![v; 8], "image/jpeg")
            .await
            .unwrap();
        replica
            .put(&ctx.replica.processed_bucket, &rendition, vec![v; 8], "image/jpeg")
            .await
            .unwrap();
    }
    client
        .execute("UPDATE images SET status = 'processing' WHERE id = $1", &[&image])
        .await
        .unwrap();
    let record = shared::domain::RenditionRecord {
        format: "jpg".into(),
        long_edge: 400,
        width: 400,
        height: 300,
        bytes: 8,
        sha256: "0".repeat(64),
        key: rendition,
    };
    shared::db::mark_image_ready(&client, image, &[record], &"1".repeat(64)).await.unwrap();
    Work { id: a.id, image }
}

pub(crate) async fn delete_days_ago(ctx: &TestContext, artwork: Uuid, days: i32) {
    let client = ctx.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE artworks SET deleted_at = now() - make_interval(days => $2) WHERE id = $1",
            &[&artwork, &days],
        )
        .await
        .unwrap();
}

/// Versions left under an artwork's prefixes in the primary buckets and the replica.
pub(crate) async fn left(ctx: &TestContext, artwork: Uuid) -> [usize; 3] {
    [
        versions_under(
            &ctx.clients.s3,
            &ctx.storage.originals_bucket,
            &format!("originals/{artwork}/"),
        )
        .await,
        versions_under(
            &ctx.clients.s3,
            &ctx.storage.processed_bucket,
            &format!("renditions/{artwork}/"),
        )
        .await,
        versions_under(
            &ctx.replica_s3(),
            &ctx.replica.processed_bucket,
            &format!("renditions/{artwork}/"),
        )
        .await,
    ]
}

pub(crate) async fn run(ctx: &TestContext, policy: Policy) -> Report {
    let sweep =
        Sweep { request_id: Some(format!("test-{}", Uuid::new_v4())), ..Sweep::at(Utc::now()) };
    ctx.retention(policy).run(&sweep).await.expect("retention run")
}

#[tokio::test]
async fn a_purge_leaves_no_version_or_marker_in_the_primary_or_the_replica_and_a_second_run_finds_nothing(
) {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Leaving Artist").await;
    let old = work(&ctx, artist, "old-deleted").await;
    let recent = work(&ctx, artist, "recently-deleted").await;
    delete_days_ago(&ctx, old.id, 40).await;
    delete_days_ago(&ctx, recent.id, 5).await;
    assert_eq!(left(&ctx, old.id).await, [3, 2, 2]);
    let client = ctx.pool.get().await.unwrap();
    // An upload slot abandoned a week ago, whose original did arrive.
    let abandoned = Uuid::new_v4();
    let abandoned_key = shared::domain::original_key(recent.id, abandoned, "late.jpg");
    shared::db::insert_image(&client, abandoned, recent.id, &abandoned_key, None).await.unwrap();
    client
        .execute(
            "UPDATE images SET created_at = now() - interval '7 days' WHERE id = $1",
            &[&abandoned],
        )
        .await
        .unwrap();
    ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id)
        .put(&ctx.storage.originals_bucket, &abandoned_key, vec![1; 8], "image/jpeg")
        .await
        .unwrap();
    // A token revoked long ago, and a live one.
    client
        .execute("UPDATE api_tokens SET revoked_at = now() - interval '100 days'", &[])
        .await
        .unwrap();
    ctx.artist_with_token("Staying Artist").await;
    // An image whose processing died two days ago.
    let stuck = Uuid::new_v4();
    shared::db::insert_image(
        &client,
        stuck,
        recent.id,
        &shared::domain::original_key(recent.id, stuck, "lost.jpg"),
        None,
    )
    .await
    .unwrap();
    client
        .execute("UPDATE images SET status = 'processing', updated_at = now() - interval '2 days' WHERE id = $1", &[&stuck])
        .await
        .unwrap();

    let report = run(&ctx, policy()).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(report.rules["deleted-artworks"].rows, 1);
    assert_eq!(
        report.rules["deleted-artworks"].object_versions, 7,
        "3 in originals, 2 + 2 renditions"
    );
    assert_eq!(report.rules["stale-images"].rows, 1);
    assert_eq!(report.rules["dead-tokens"].rows, 1);
    assert_eq!(report.rules["stuck-processing"].rows, 1);

    assert_eq!(left(&ctx, old.id).await, [0, 0, 0], "no version and no delete marker anywhere");
    assert_eq!(
        left(&ctx, recent.id).await,
        [3, 2, 2],
        "the recently deleted artwork is still restorable"
    );
    assert!(shared::db::artwork_by_id(&client, old.id).await.unwrap().is_none());
    let image_rows: i64 = client
        .query_one("SELECT count(*) FROM images WHERE id = $1", &[&old.image])
        .await
        .unwrap()
        .get(0);
    assert_eq!(image_rows, 0);
    let stuck_status: String = client
        .query_one("SELECT status FROM images WHERE id = $1", &[&stuck])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stuck_status, "failed", "a lost processing run is recorded as failed");
    let audit = strings(
        &client,
        "SELECT action FROM audit_log WHERE actor = 'system:retention' ORDER BY id",
    )
    .await;
    assert_eq!(
        audit,
        [
            "retention.purge_artwork",
            "retention.purge_image",
            "retention.fail_stuck_images",
            "retention.purge_tokens",
            "retention.run"
        ]
    );
    let target: String = client
        .query_one("SELECT target FROM audit_log WHERE action = 'retention.purge_artwork'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(target, format!("artwork:{}", old.id));

    // A second run finds nothing more to do.
    let again = run(&ctx, policy()).await;
    assert!(again.is_idle(), "{again:#?}");
}

#[tokio::test]
async fn a_dry_run_reports_exactly_what_would_go_and_changes_nothing() {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Dry Artist").await;
    let old = work(&ctx, artist, "dry-old").await;
    delete_days_ago(&ctx, old.id, 40).await;
    let client = ctx.pool.get().await.unwrap();
    let audit_before: i64 =
        client.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap().get(0);

    let sweep = Sweep { dry_run: true, ..Sweep::at(Utc::now()) };
    let report = ctx.retention(policy()).run(&sweep).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.rules["deleted-artworks"].items, 1);
    assert_eq!(report.rules["deleted-artworks"].rows, 0);
    assert_eq!(report.object_versions(), 7, "{report:#?}");
    assert_eq!(
        report.buckets[&ctx.replica.processed_bucket].versions, 2,
        "the replica's copies are counted"
    );
    assert!(report.sample_keys.iter().any(|k| k.contains(&format!("renditions/{}/", old.id))));
    assert_eq!(
        report.buckets.values().map(|b| b.delete_requests).sum::<u64>(),
        0,
        "nothing was deleted"
    );

    assert_eq!(left(&ctx, old.id).await, [3, 2, 2]);
    assert!(client
        .query_opt("SELECT 1 FROM artworks WHERE id = $1", &[&old.id])
        .await
        .unwrap()
        .is_some());
    let audit_after: Vec<String> =
        strings(&client, "SELECT action FROM audit_log ORDER BY id").await;
    assert_eq!(audit_after.len() as i64, audit_before + 1, "only the dry run's own summary");
    assert_eq!(audit_after.last().map(String::as_str), Some("retention.dry_run"));
}

#[tokio::test]
async fn one_locked_version_is_reported_and_everything_else_is_deleted() {
    let ctx = TestContext::new().await;
    // Object lock can only be switched on while the bucket is empty.
    use aws_sdk_s3::types::{
        ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
    };
    let s3 = &ctx.clients.s3;
    s3.put_object_lock_configuration()
        .bucket(&ctx.storage.processed_bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("object lock on the empty bucket");
    let (artist, _) = ctx.artist_with_token("Locked Artist").await;
    let locked = work(&ctx, artist, "locked").await;
    let free = work(&ctx, artist, "free").await;
    delete_days_ago(&ctx, locked.id, 40).await;
    delete_days_ago(&ctx, free.id, 41).await;
    // A legal hold on one version of the locked work's rendition.
    let key = shared::domain::rendition_key(locked.id, locked.image, 400, "jpg");
    let head =
        s3.head_object().bucket(&ctx.storage.processed_bucket).key(&key).send().await.unwrap();
    s3.put_object_legal_hold()
        .bucket(&ctx.storage.processed_bucket)
        .key(&key)
        .set_version_id(head.version_id().map(str::to_owned))
        .legal_hold(ObjectLockLegalHold::builder().status(ObjectLockLegalHoldStatus::On).build())
        .send()
        .await
        .unwrap();

    let report = run(&ctx, policy()).await;
    assert_eq!(report.failures_total, 1, "{report:#?}");
    assert_eq!(report.failures[0].target, format!("artwork:{}", locked.id));
    assert!(report.failures[0].reason.contains("AccessDenied"), "{}", report.failures[0].reason);
    assert!(!report.succeeded());
    assert_eq!(left(&ctx, free.id).await, [0, 0, 0], "the other item is purged in the same batch");
    assert_eq!(report.rules["deleted-artworks"].rows, 1);
    let client = ctx.pool.get().await.unwrap();
    assert!(
        client
            .query_opt("SELECT 1 FROM artworks WHERE id = $1", &[&locked.id])
            .await
            .unwrap()
            .is_some(),
        "its row waits"
    );
    assert_eq!(
        versions_under(s3, &ctx.storage.processed_bucket, &key).await,
        1,
        "only the held version is left"
    );

    // Once the hold is lifted, the next run finishes it.
    s3.put_object_legal_hold()
        .bucket(&ctx.storage.processed_bucket)
        .key(&key)
        .set_version_id(head.version_id().map(str::to_owned))
        .legal_hold(ObjectLockLegalHold::builder().status(ObjectLockLegalHoldStatus::Off).build())
        .send()
        .await
        .unwrap();
    let again = run(&ctx, policy()).await;
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(left(&ctx, locked.id).await, [0, 0, 0]);
}

#[tokio::test]
async fn twenty_five_hundred_versions_take_exactly_three_delete_calls() {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Prolific Artist").await;
    let client = ctx.pool.get().await.unwrap();
    let a = shared::db::insert_artwork(
        &client,
        artist,
        &shared::domain::NewArtwork::titled("many").validate().unwrap(),
    )
    .await
    .unwrap();
    let image = Uuid::new_v4();
    shared::db::insert_image(
        &client,
        image,
        a.id,
        &shared::domain::original_key(a.id, image, "x.jpg"),
        None,
    )
    .await
    .unwrap();
    // 25 keys × 100 versions, written 16 at a time.
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let keys: Vec<String> =
        (0..25).map(|k| format!("renditions/{}/{image}/{k}.jpg", a.id)).collect();
    // One version of every key at a time: the emulator loses versions written
    // to the same key concurrently.
    for v in 0..100u8 {
        futures_util::stream::iter(&keys)
            .for_each_concurrent(16, |k| {
                let store = &store;
                let bucket = &ctx.storage.processed_bucket;
                async move {
                    store.put(bucket, k, vec![v], "image/jpeg").await.unwrap();
                }
            })
            .await;
    }
    delete_days_ago(&ctx, a.id, 40).await;

    // The sweep's S3 traffic through a proxy that counts DeleteObjects on the wire.
    let emulator = ctx.stack.aws.endpoint_url.clone().unwrap();
    let (proxy, wire) =
        local::proxy::counting(emulator, local::proxy::s3_delete_objects).await.unwrap();
    let proxied = shared::config::AwsConfig { endpoint_url: Some(proxy), ..ctx.stack.aws.clone() };
    let clients =
        shared::aws::Clients::new(&proxied).await.signing_as("gallery-retention", "testing");
    let retention = retention::retention_with(
        &ctx.retention_config(policy()),
        ctx.pool_as(crate::support::RETENTION),
        &clients,
    );
    let report = retention.run(&Sweep::at(Utc::now())).await.unwrap();
    let processed = &report.buckets[&ctx.storage.processed_bucket];
    assert_eq!(processed.versions, 2500);
    assert_eq!(processed.delete_requests, 3, "⌈2500 / 1000⌉ DeleteObjects calls");
    assert_eq!(wire.calls(), 3, "and exactly three on the wire");
    assert_eq!(processed.list_requests, 3, "ListObjectVersions pages of 1,000");
    assert_eq!(
        versions_under(
            &ctx.clients.s3,
            &ctx.storage.processed_bucket,
            &format!("renditions/{}/", a.id)
        )
        .await,
        0
    );
}

/// A backup row with its object and manifest in the primary bucket and the replica.
async fn backup_row(ctx: &TestContext, days_ago: i32, drilled: bool) -> (Uuid, String) {
    let client = ctx.pool_as(crate::support::BACKUP_RECORDS).get().await.unwrap();
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let replica = store.with_s3(ctx.replica_s3());
    let id = Uuid::new_v4();
    let key = format!("backups/old/{id}.cpgbak");
    let manifest = backup::Manifest::key_for(&key);
    for k in [&key, &manifest] {
        store
            .put(&ctx.storage.backups_bucket, k, vec![0; 16], "application/octet-stream")
            .await
            .unwrap();
        replica
            .put(&ctx.replica.backups_bucket, k, vec![0; 16], "application/octet-stream")
            .await
            .unwrap();
    }
    client
        .execute(
            "INSERT INTO backups (id, object_key, manifest_key, status, started_at, finished_at) \
             VALUES ($1, $2, $3, 'succeeded', now() - make_interval(days => $4), now() - make_interval(days => $4))",
            &[&id, &key, &manifest, &days_ago],
        )
        .await
        .unwrap();
    if drilled {
        client
            .execute(
                "INSERT INTO restore_drills (id, backup_id, status, finished_at) VALUES ($1, $2, 'succeeded', now())",
                &[&Uuid::new_v4(), &id],
            )
            .await
            .unwrap();
    }
    (id, key)
}

#[tokio::test]
async fn the_rotation_deletes_old_backups_everywhere_but_keeps_the_newest_one_a_drill_proved() {
    let ctx = TestContext::new().await;
    // The newest two never restored; the one before did.
    let (_, newest) = backup_row(&ctx, 1, false).await;
    let (_, newer) = backup_row(&ctx, 2, false).await;
    let (_, proven) = backup_row(&ctx, 3, true).await;
    let (gone_id, gone) = backup_row(&ctx, 4, false).await;
    let rotation = Rotation {
        keep_last: 2,
        daily: 0,
        weekly: 0,
        monthly: 0,
        yearly: 0,
        ..Rotation::default()
    };
    let report = run(&ctx, Policy { rotation, ..policy() }).await;
    assert_eq!(report.rules["backups"].rows, 1, "{report:#?}");
    let count = |key: String| {
        let (s3, replica) = (ctx.clients.s3.clone(), ctx.replica_s3());
        let (bucket, replica_bucket) =
            (ctx.storage.backups_bucket.clone(), ctx.replica.backups_bucket.clone());
        async move {
            (
                versions_under(&s3, &bucket, &key).await,
                versions_under(&replica, &replica_bucket, &key).await,
            )
        }
    };
    for kept in [&newest, &newer, &proven] {
        assert_eq!(
            count(kept.trim_end_matches(".cpgbak").to_owned()).await,
            (2, 2),
            "{kept} kept with its manifest, both copies"
        );
    }
    assert_eq!(
        count(gone.trim_end_matches(".cpgbak").to_owned()).await,
        (0, 0),
        "object and manifest gone from both regions"
    );
    let client = ctx.pool_as(crate::support::BACKUP_RECORDS).get().await.unwrap();
    let expired: Option<chrono::DateTime<Utc>> = client
        .query_one("SELECT expired_at FROM backups WHERE id = $1", &[&gone_id])
        .await
        .unwrap()
        .get(0);
    assert!(expired.is_some());
}

/// Every text column of every table that could hold an artist's personal data.
async fn personal_data_anywhere(
    client: &deadpool_postgres::Object,
    needles: &[&str],
) -> Vec<String> {
    let mut found = Vec::new();
    let tables =
        strings(client, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'").await;
    for table in tables {
        let text: String = client
            .query_one(
                &format!("SELECT coalesce(string_agg(t::text, ' '), '') FROM \"{table}\" t"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        for needle in needles {
            if text.contains(needle) {
                found.push(format!("{table} holds {needle:?}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn an_erasure_leaves_no_personal_field_anywhere_and_a_record_that_proves_it() {
    let ctx = TestContext::new().await;
    let client = ctx.pool.get().await.unwrap();
    let artist = shared::db::insert_artist(
        &client,
        "Erika Leaving",
        "erika.leaving@example.org",
        Some("Etchings from Ghent"),
        Some("https://erika.example"),
    )
    .await
    .unwrap()
    .id;
    ctx.token_for(artist, Utc::now() + Duration::days(30)).await;
    let live = work(&ctx, artist, "erika-plate").await;
    let deleted = work(&ctx, artist, "erika-deleted").await;
    delete_days_ago(&ctx, deleted.id, 3).await;
    shared::db::set_suspension(&client, artist, Some("complaint by Erika's gallerist"))
        .await
        .unwrap();
    let entry = AuditEntry {
        actor: "token:x",
        action: "artist.suspend",
        target: &format!("artist:{artist}"),
        request_id: None,
        detail: serde_json::json!({ "reason": "complaint by Erika's gallerist" }),
    };
    shared::db::append_audit(&client, &entry).await.unwrap();
    let (other, _) = ctx.artist_with_token("Staying Artist").await;
    let stays = work(&ctx, other, "stays").await;
    let (_, taken_before) = backup_row(&ctx, 0, true).await;

    let retention = ctx.retention(policy());
    let outcome = retention
        .erase_now(artist, "operator:arn:aws:iam::1:role/ops", "req-erase", Utc::now())
        .await
        .expect("erasure");
    assert!(outcome.report.succeeded(), "{:#?}", outcome.report);
    let record = outcome.erasure;
    assert!(record.completed_at.is_some());
    let rows = record.rows_deleted.clone().unwrap();
    assert_eq!(
        (rows["artists"].as_i64(), rows["artworks"].as_i64(), rows["images"].as_i64()),
        (Some(1), Some(2), Some(2))
    );
    assert_eq!(rows["api_tokens"].as_i64(), Some(1));
    assert_eq!(rows["audit_entries_redacted"].as_i64(), Some(1));
    assert_eq!(record.objects_deleted.as_ref().unwrap()["object_versions"].as_u64(), Some(14));
    let containing = record.backups_containing.clone().unwrap();
    assert_eq!(containing["backups"].as_array().unwrap().len(), 1, "{containing}");
    assert!(
        containing["backups"][0]["removed_by"].is_string(),
        "with the day the rotation removes it: {containing}"
    );
    assert!(taken_before.contains(containing["backups"][0]["backup_id"].as_str().unwrap()));

    for w in [&live, &deleted] {
        assert_eq!(left(&ctx, w.id).await, [0, 0, 0]);
    }
    assert_eq!(left(&ctx, stays.id).await, [3, 2, 2], "another artist's work is untouched");
    // Every table, read as the owner: no function's role may read them all.
    let found = personal_data_anywhere(
        &ctx.owner_pool().get().await.unwrap(),
        &["Erika", "erika.leaving@example.org", "Ghent", "erika.example"],
    )
    .await;
    assert!(found.is_empty(), "{found:?}");
    let stored = shared::db::erasure_by_id(&client, record.id).await.unwrap().unwrap();
    assert_eq!(stored.artist_id, artist);
    let audit =
        strings(&client, "SELECT action FROM audit_log WHERE action LIKE '%eras%' ORDER BY id")
            .await;
    assert_eq!(audit, ["artist.erasure_requested", "retention.erase_artist"]);
    // The ledger holds the completed record, sealed, in the backups bucket.
    let ledger = ctx.ledger().read_all().await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].completed_at.is_some());
    // Asking again for an erased artist: there is no such artist any more.
    assert!(retention.erase_now(artist, "operator:x", "req-again", Utc::now()).await.is_err());
}

#[tokio::test]
async fn an_erasure_requested_through_the_api_is_completed_by_the_next_sweep() {
    let ctx = TestContext::new().await;
    let client = ctx.pool.get().await.unwrap();
    let (artist, _) = ctx.artist_with_token("Asked To Go").await;
    let w = work(&ctx, artist, "asked").await;
    let (erasure, new) =
        shared::db::request_erasure(&client, artist, "token:admin", Some("req-api"))
            .await
            .unwrap()
            .unwrap();
    assert!(new);
    let (again, new) =
        shared::db::request_erasure(&client, artist, "token:admin", Some("req-api-2"))
            .await
            .unwrap()
            .unwrap();
    assert_eq!((again.id, new), (erasure.id, false), "asking twice is one erasure");
    let suspended: bool = client
        .query_one("SELECT suspended_at IS NOT NULL FROM artists WHERE id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    let live_tokens: i64 = client
        .query_one(
            "SELECT count(*) FROM api_tokens WHERE artist_id = $1 AND revoked_at IS NULL",
            &[&artist],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((suspended, live_tokens), (true, 0), "out of the gallery at once");

    let report = run(&ctx, policy()).await;
    assert_eq!(report.rules["artist-erasure"].items, 1, "{report:#?}");
    assert_eq!(left(&ctx, w.id).await, [0, 0, 0]);
    let done = shared::db::erasure_by_id(&client, erasure.id).await.unwrap().unwrap();
    assert!(done.completed_at.is_some());
    assert!(client
        .query_opt("SELECT 1 FROM artists WHERE id = $1", &[&artist])
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_restore_of_an_older_backup_replays_the_erasure() {
    let ctx = TestContext::new().await;
    let client = ctx.pool.get().await.unwrap();
    let artist =
        shared::db::insert_artist(&client, "Restored Ghost", "ghost@example.org", None, None)
            .await
            .unwrap()
            .id;
    work(&ctx, artist, "ghost-work").await;
    let service = crate::backups::service(&ctx).await;
    service.backup().await.expect("a backup that holds the artist");

    let retention = ctx.retention(policy());
    retention.erase_now(artist, "operator:x", "req-ghost", Utc::now()).await.expect("erasure");

    let database = crate::backups::database_name();
    let request = backup::restore::RestoreRequest {
        backup: shared::operator::BackupChoice::Latest,
        database: database.clone(),
        verify_first: false,
        replace: false,
        confirm_production: None,
        reason: None,
    };
    let restored = service.restore(&request).await.expect("restore");
    assert_eq!(restored.erasures_replayed, 1);
    let target = crate::backups::connect_as_owner(&ctx, &database).await;
    let back: i64 = target
        .query_one("SELECT count(*) FROM artists WHERE id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, 0, "the erased artist does not come back with the backup");
    let works: i64 = target
        .query_one("SELECT count(*) FROM artworks WHERE artist_id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    assert_eq!(works, 0);
    let text: String = target
        .query_one("SELECT coalesce(string_agg(a::text, ' '), '') FROM artists a", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!text.contains("ghost@example.org"));
    let replayed: bool = target
        .query_one("SELECT replayed_at IS NOT NULL FROM erasures WHERE artist_id = $1", &[&artist])
        .await
        .unwrap()
        .get(0);
    assert!(replayed, "the restored database records the erasure too");
}

/// Every version of `key` in `bucket`, deleted one by one, as a probe named
/// after `function`. The emulator enforces Object Lock whoever asks, not IAM:
/// which roles IAM refuses such a delete outright (every one but retention's)
/// is in the offline denial table (infra/authz/expectations.mjs), so the
/// probe signs as a set-up identity the authorization check does not evaluate.
async fn delete_every_version_as(
    ctx: &TestContext,
    function: &str,
    bucket: &str,
    key: &str,
) -> Vec<String> {
    let s3 = ctx.clients.signing_as(&format!("lock-probe-{function}"), "testing").s3;
    let listed =
        ctx.clients.s3.list_object_versions().bucket(bucket).prefix(key).send().await.unwrap();
    let mut refusals = Vec::new();
    for v in listed.versions() {
        let deleted = s3
            .delete_object()
            .bucket(bucket)
            .key(v.key().unwrap())
            .set_version_id(v.version_id().map(str::to_owned))
            .send()
            .await;
        if let Err(e) = deleted {
            refusals.push(aws_sdk_s3::error::DisplayErrorContext(&e).to_string());
        }
    }
    refusals
}

/// Backups nobody can delete early: every version of a backup's object and
/// manifest (and of an erasure record) is refused to every function's role
/// while its lock holds, and the rotation waits for the lock to lapse, then
/// expires the backup everywhere as its policy says.
#[tokio::test]
async fn a_locked_backup_is_deleted_by_no_role_and_retention_expires_it_once_the_lock_lapses() {
    let ctx = TestContext::new().await;
    let backup_records = ctx.pool_as(crate::support::BACKUP_RECORDS).get().await.unwrap();
    let lock = shared::aws::storage::Lock { retain: Duration::seconds(4), new_keys_only: true };
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id).locking(lock);
    let (_, newest) = backup_row(&ctx, 1, false).await;
    let id = Uuid::new_v4();
    let key = format!("backups/old/{id}.cpgbak");
    let manifest = backup::Manifest::key_for(&key);
    for k in [&key, &manifest] {
        store
            .put(&ctx.storage.backups_bucket, k, vec![1; 16], "application/octet-stream")
            .await
            .unwrap();
    }
    // A second write under the same key is refused: only new keys.
    let again =
        store.put(&ctx.storage.backups_bucket, &key, vec![2; 16], "application/octet-stream").await;
    assert!(again.is_err(), "{again:?}");
    backup_records
        .execute(
            "INSERT INTO backups (id, object_key, manifest_key, status, started_at, finished_at) \
             VALUES ($1, $2, $3, 'succeeded', now() - interval '30 days', now() - interval '30 days')",
            &[&id, &key, &manifest],
        )
        .await
        .unwrap();
    let (artist, _) = ctx.artist_with_token("Locked Record").await;
    let retention = ctx.retention(policy());
    retention.erase_now(artist, "operator:x", "req-lock", Utc::now()).await.expect("erasure");
    let record = ctx.ledger().read_all().await.unwrap()[0].id;
    let ledger_key = shared::archive::ledger::ledger_key(record);
    for function in ["api", "image-processor", "retention", "backup", "edge"] {
        for k in [&key, &manifest, &ledger_key] {
            let refusals =
                delete_every_version_as(&ctx, function, &ctx.storage.backups_bucket, k).await;
            assert!(!refusals.is_empty(), "{function} deleted {k}");
            assert!(
                refusals.iter().all(|r| r.contains("AccessDenied")),
                "{function}: {refusals:?}"
            );
        }
    }
    assert_eq!(versions_under(&ctx.clients.s3, &ctx.storage.backups_bucket, &key).await, 1);

    // The rotation expired it 30 days after it started; under a 30-day lock it waits.
    let waiting = run(&ctx, Policy { backup_lock: Duration::days(30), ..policy() }).await;
    assert_eq!(waiting.rules["backups"].locked, 1, "{waiting:#?}");
    assert_eq!((waiting.rules["backups"].rows, waiting.failures_total), (0, 0), "{waiting:#?}");
    // A policy that thinks the lock lapsed while S3 still holds it: S3 refuses,
    // the backup stays, and the run says why.
    let early = run(&ctx, policy()).await;
    assert_eq!(early.rules.get("backups").map_or(0, |r| r.rows), 0, "{early:#?}");
    assert!(early.failures.iter().any(|f| f.reason.contains("object lock")), "{early:#?}");
    assert_eq!(versions_under(&ctx.clients.s3, &ctx.storage.backups_bucket, &key).await, 1);

    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let expired = run(&ctx, policy()).await;
    assert_eq!(
        (expired.rules["backups"].rows, expired.rules["backups"].locked, expired.failures_total),
        (1, 0, 0),
        "{expired:#?}"
    );
    assert_eq!(versions_under(&ctx.clients.s3, &ctx.storage.backups_bucket, &key).await, 0);
    assert_eq!(
        versions_under(&ctx.clients.s3, &ctx.storage.backups_bucket, &newest).await,
        1,
        "the newest stays"
    );
    // The ledger record outlives every backup: still there, still locked.
    assert!(!delete_every_version_as(&ctx, "retention", &ctx.storage.backups_bucket, &ledger_key)
        .await
        .is_empty());
}
