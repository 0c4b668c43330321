//! S3 and KMS through the emulator: encryption, versions, presigned uploads.

use std::time::Duration;

use futures_util::TryStreamExt;
use shared::aws::storage::{ObjectHead, ObjectStore, PostEndpoint, Ranges};

use crate::support::{post_form, TestContext};

#[tokio::test]
async fn sse_kms_put_and_get_round_trip() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let bucket = &ctx.storage.processed_bucket;
    let body = b"copper plate".repeat(1000);
    let version =
        store.put(bucket, "renditions/a/b/400.jpg", body.clone(), "image/jpeg").await.unwrap();
    assert!(version.is_some(), "the bucket is versioned");
    let head = store.head(bucket, "renditions/a/b/400.jpg").await.unwrap().expect("exists");
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(
        head.kms_key_id.as_deref(),
        Some(ctx.storage.data_key_id.as_str()),
        "encrypted with our key"
    );
    let raw = ctx
        .clients
        .s3
        .head_object()
        .bucket(bucket)
        .key("renditions/a/b/400.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
    assert_eq!(store.get(bucket, "renditions/a/b/400.jpg", 1 << 20).await.unwrap(), body);
}

#[tokio::test]
async fn ranged_reads_return_the_one_version_they_were_given_in_order() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let bucket = &ctx.storage.processed_bucket;
    let key = "backups/ranged.bin";
    // Not a multiple of the range size: the last range is short.
    let first: Vec<u8> = (0..(1 << 20) + 17).map(|i: u32| (i % 251) as u8).collect();
    store.put(bucket, key, first.clone(), "application/octet-stream").await.unwrap();
    let head = store.head(bucket, key).await.unwrap().expect("exists");
    // Overwritten after the HEAD: the read still returns the version it names.
    store.put(bucket, key, vec![0u8; 10], "application/octet-stream").await.unwrap();
    let ranges = Ranges { size: 64 << 10, in_flight: 3 };
    let pieces: Vec<_> = store.get_ranges(bucket, key, &head, ranges).try_collect().await.unwrap();
    assert_eq!(pieces.len(), 17, "16 full ranges and a short one");
    assert_eq!(pieces.concat(), first);
    // Without a version id the ETag pins it: a changed object is refused, not mixed in.
    let unpinned = ObjectHead { version_id: None, ..head };
    let err = store
        .get_ranges(bucket, key, &unpinned, ranges)
        .try_collect::<Vec<_>>()
        .await
        .expect_err("the object changed since its HEAD");
    assert!(err.to_string().contains("Precondition"), "{err}");
}

#[tokio::test]
async fn objects_over_the_limit_are_refused_before_buffering() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    store
        .put(&ctx.storage.originals_bucket, "big", vec![0u8; 4096], "application/octet-stream")
        .await
        .unwrap();
    let err =
        store.get(&ctx.storage.originals_bucket, "big", 1024).await.expect_err("over the limit");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn deleting_an_original_removes_every_version() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let bucket = &ctx.storage.originals_bucket;
    for i in 0..3u8 {
        store.put(bucket, "originals/x/y/file.jpg", vec![i; 10], "image/jpeg").await.unwrap();
    }
    store.put(bucket, "originals/x/y/file.jpg.keep", vec![9; 10], "image/jpeg").await.unwrap();
    assert_eq!(store.delete_all_versions(bucket, "originals/x/y/file.jpg").await.unwrap(), 3);
    let versions = ctx.clients.s3.list_object_versions().bucket(bucket).send().await.unwrap();
    let left: Vec<_> = versions.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(left, ["originals/x/y/file.jpg.keep"], "only the other key remains");
    assert!(versions.delete_markers().is_empty());
}

#[tokio::test]
async fn a_presigned_post_uploads_an_encrypted_original() {
    let ctx = TestContext::new().await;
    let store = ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let endpoint = PostEndpoint {
        region: ctx.region.clone(),
        override_url: ctx.stack.aws.endpoint_url.clone(),
    };
    let key = "originals/a/b/Été à Paris + 1.jpg";
    let post = store
        .presigned_post(
            &ctx.storage.originals_bucket,
            key,
            "image/jpeg",
            1 << 20,
            Duration::from_secs(600),
            &endpoint,
        )
        .await
        .unwrap();
    let status = post_form(&post, b"not really a jpeg").await;
    assert!((200..300).contains(&status), "upload answered {status}");
    let head = store
        .head(&ctx.storage.originals_bucket, key)
        .await
        .unwrap()
        .expect("uploaded under the exact key");
    assert_eq!(head.size, 17);
    assert!(head.kms_key_id.is_some(), "SSE-KMS applied");
}

#[tokio::test]
async fn an_unreachable_object_store_is_a_bounded_retryable_error() {
    let port = crate::support::closed_port();
    let aws = shared::config::AwsConfig {
        endpoint_url: Some(format!("http://127.0.0.1:{port}")),
        region: Some("eu-west-1".into()),
        ..Default::default()
    };
    let clients = shared::aws::Clients::new(&aws).await;
    let store = ObjectStore::new(&clients, "alias/none");
    let started = std::time::Instant::now();
    let err = store.head("any-bucket", "any-key").await.expect_err("nothing listens there");
    assert!(err.is_retryable(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "must not hang: {:?}", started.elapsed());
}
