//! Retention and secure deletion against the real database and buckets.

use chrono::{Duration, Utc};
use shared::retention::{Policy, Retention};
use shared::storage::ObjectStore;

use crate::support::TestContext;

fn retention(ctx: &TestContext) -> Retention {
    let config =
        retention::Config { common: ctx.common(), policy: Policy { keep_backups: 1, ..Policy::default() }, operator: Default::default() };
    retention::retention_with(&config, ctx.pool.clone(), &ctx.clients)
}

async fn versions(ctx: &TestContext, bucket: &str, key: &str) -> usize {
    let out = ctx.clients.s3.list_object_versions().bucket(bucket).prefix(key).send().await.unwrap();
    out.versions().iter().filter(|v| v.key() == Some(key)).count() + out.delete_markers().iter().filter(|m| m.key() == Some(key)).count()
}

#[tokio::test]
async fn expired_data_is_deleted_with_every_object_version_and_fresh_data_stays() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let (artist, _) = ctx.artist_with_token("Leaving Artist").await;
    let client = ctx.pool.get().await.unwrap();
    let mut artworks = Vec::new();
    for (slug, deleted_days_ago) in [("old-deleted", 40), ("recently-deleted", 5)] {
        let new = shared::domain::NewArtwork::titled(slug);
        let a = shared::db::insert_artwork(&client, artist, &new.validate().unwrap()).await.unwrap();
        let image_id = uuid::Uuid::new_v4();
        let original = shared::domain::original_key(a.id, image_id, "plate.tif");
        shared::db::insert_image(&client, image_id, a.id, &original).await.unwrap();
        let rendition = shared::domain::rendition_key(a.id, image_id, 400, "jpg");
        // Two versions each: a plain DELETE would leave the older one behind.
        for v in 0..2u8 {
            store.put(&ctx.storage.processed_bucket, &rendition, vec![v; 8], "image/jpeg").await.unwrap();
        }
        client.execute("UPDATE images SET status = 'processing' WHERE id = $1", &[&image_id]).await.unwrap();
        let record = shared::domain::RenditionRecord {
            format: "jpg".into(),
            long_edge: 400,
            width: 400,
            height: 300,
            bytes: 8,
            sha256: "0".repeat(64),
            key: rendition.clone(),
        };
        shared::db::mark_image_ready(&client, image_id, &[record], &"1".repeat(64)).await.unwrap();
        client
            .execute("UPDATE artworks SET deleted_at = now() - make_interval(days => $2) WHERE id = $1", &[&a.id, &deleted_days_ago])
            .await
            .unwrap();
        artworks.push((a.id, rendition));
    }
    // An upload slot abandoned a week ago, whose original did arrive.
    let (abandoned_artwork, _) = (&artworks[1].0, ());
    let abandoned = uuid::Uuid::new_v4();
    let abandoned_key = shared::domain::original_key(*abandoned_artwork, abandoned, "late.jpg");
    shared::db::insert_image(&client, abandoned, *abandoned_artwork, &abandoned_key).await.unwrap();
    client.execute("UPDATE images SET created_at = now() - interval '7 days' WHERE id = $1", &[&abandoned]).await.unwrap();
    store.put(&ctx.storage.originals_bucket, &abandoned_key, vec![1; 8], "image/jpeg").await.unwrap();
    // A token revoked long ago, and a live one.
    client.execute("UPDATE api_tokens SET revoked_at = now() - interval '100 days'", &[]).await.unwrap();
    ctx.artist_with_token("Staying Artist").await;

    let report = retention(&ctx).run(Utc::now(), Some("retention-test")).await.expect("retention run");
    assert_eq!(report.artworks_purged, 1);
    assert_eq!(report.images_purged, 2, "{report:?}");
    assert_eq!(report.tokens_deleted, 1);
    assert!(report.objects_deleted >= 3, "{report:?}");

    assert_eq!(versions(&ctx, &ctx.storage.processed_bucket, &artworks[0].1).await, 0, "every version of the purged rendition is gone");
    assert_eq!(versions(&ctx, &ctx.storage.processed_bucket, &artworks[1].1).await, 2, "the recently deleted artwork is still restorable");
    assert_eq!(versions(&ctx, &ctx.storage.originals_bucket, &abandoned_key).await, 0);
    assert!(shared::db::artwork_by_id(&client, artworks[0].0).await.unwrap().is_none());
    let still_there: i64 = client.query_one("SELECT count(*) FROM artworks WHERE id = $1", &[&artworks[1].0]).await.unwrap().get(0);
    assert_eq!(still_there, 1);
    let tokens: i64 = client.query_one("SELECT count(*) FROM api_tokens", &[]).await.unwrap().get(0);
    assert_eq!(tokens, 1);
    let audit: Vec<String> =
        crate::support::strings(&client, "SELECT action FROM audit_log WHERE actor = 'system:retention' ORDER BY id").await;
    assert_eq!(audit, ["retention.purge_artwork", "retention.purge_image"]);

    // A second run finds nothing more to do.
    let again = retention(&ctx).run(Utc::now(), None).await.unwrap();
    assert_eq!(again, shared::retention::Report::default());
}

#[tokio::test]
async fn old_backups_expire_but_the_newest_good_one_is_kept() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let client = ctx.pool.get().await.unwrap();
    let mut keys = Vec::new();
    for days in [50, 60] {
        let id = uuid::Uuid::new_v4();
        let key = format!("backups/old/{id}.cpgbak");
        store.put(&ctx.storage.backups_bucket, &key, vec![0; 16], "application/octet-stream").await.unwrap();
        client
            .execute(
                "INSERT INTO backups (id, object_key, status, started_at, finished_at) VALUES ($1, $2, 'succeeded', now() - make_interval(days => $3), now() - make_interval(days => $3))",
                &[&id, &key, &days],
            )
            .await
            .unwrap();
        keys.push(key);
    }
    let report = retention(&ctx).run(Utc::now() + Duration::seconds(1), None).await.unwrap();
    assert_eq!(report.backups_expired, 1);
    assert_eq!(versions(&ctx, &ctx.storage.backups_bucket, &keys[0]).await, 1, "the newest good backup stays, however old");
    assert_eq!(versions(&ctx, &ctx.storage.backups_bucket, &keys[1]).await, 0);
    let expired: i64 = client.query_one("SELECT count(*) FROM backups WHERE expired_at IS NOT NULL", &[]).await.unwrap().get(0);
    assert_eq!(expired, 1);
}
