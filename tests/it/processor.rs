//! The image processor end to end: presigned upload → S3 event → renditions,
//! through the emulator and PostgreSQL.

use std::io::Cursor;

use image_processor::renditions::{ProcessError, ProcessOutcome};
use serde_json::json;

use crate::api::{Gallery, Req};
use crate::support::{post_form, TestContext};

/// A small, asymmetric PNG: red left half, blue right half.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            image::Rgb([200, 30, 30])
        } else {
            image::Rgb([30, 30, 200])
        }
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Creates an artwork and an upload slot through the API; returns (image id, presigned post).
pub(crate) async fn upload_slot(
    ctx: &TestContext,
    file_name: &str,
) -> (String, shared::aws::storage::PresignedPost) {
    upload_slots(ctx, &[file_name]).await.remove(0)
}

/// One artwork with an upload slot per file name.
pub(crate) async fn upload_slots(
    ctx: &TestContext,
    file_names: &[&str],
) -> Vec<(String, shared::aws::storage::PresignedPost)> {
    let gallery = Gallery::new(ctx);
    let (_, token) = ctx.artist_with_token("Ada Copper").await;
    let artwork = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(&token)
                .json(&json!({ "title": "Foundry at Dusk" })),
        )
        .await
        .id();
    let uri = format!("/v1/manage/artworks/{artwork}/images");
    let mut slots = Vec::new();
    for file_name in file_names {
        let body = gallery
            .expect(
                201,
                Req::new("POST", &uri)
                    .token(&token)
                    .json(&json!({ "file_name": file_name, "alt_text": "A print" })),
            )
            .await
            .body;
        let fields = body["upload"]["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let post = shared::aws::storage::PresignedPost {
            url: body["upload"]["url"].as_str().unwrap().to_owned(),
            fields,
            expires_at: chrono::Utc::now(),
        };
        slots.push((body["image"]["id"].as_str().unwrap().to_owned(), post));
    }
    slots
}

pub(crate) async fn image_row(ctx: &TestContext, id: &str) -> shared::domain::Image {
    let client = ctx.pool.get().await.unwrap();
    shared::db::image_by_id(&client, id.parse().unwrap()).await.unwrap().unwrap()
}

#[tokio::test]
async fn an_upload_becomes_encrypted_renditions_and_the_original_goes() {
    let ctx = TestContext::new().await;
    // A key with a space, a literal plus and non-ASCII, as artists name files.
    let (image_id, post) = upload_slot(&ctx, "Été à Paris + 1.png").await;
    assert_eq!(post_form(&post, &png(1600, 900)).await, 201);
    let key = post.field("key").unwrap().to_owned();
    let processor = ctx.processor();
    let event = local::object_created_event(&ctx.storage.originals_bucket, &key, 0).unwrap();
    assert!(
        event.records[0].s3.object.key.as_deref().unwrap().contains("%2B"),
        "the event encodes `+`"
    );

    let outcomes = image_processor::handle(event.clone(), &processor).await.expect("processed");
    assert!(matches!(outcomes[..], [ProcessOutcome::Ready { .. }]), "{outcomes:?}");

    let row = image_row(&ctx, &image_id).await;
    assert_eq!(row.status, shared::domain::ImageStatus::Ready);
    assert!(row.content_sha256.is_some());
    assert!(!row.renditions.is_empty());
    for r in &row.renditions {
        let head = ctx
            .clients
            .s3
            .head_object()
            .bucket(&ctx.storage.processed_bucket)
            .key(&r.key)
            .send()
            .await
            .expect("rendition stored");
        assert_eq!(head.ssekms_key_id(), Some(ctx.storage.data_key_id.as_str()));
        assert_eq!(head.content_length(), Some(r.bytes as i64));
        assert!(r.width.max(r.height) <= 1600, "never upscaled: {r:?}");
    }
    let versions = ctx
        .clients
        .s3
        .list_object_versions()
        .bucket(&ctx.storage.originals_bucket)
        .send()
        .await
        .unwrap();
    assert!(
        versions.versions().is_empty() && versions.delete_markers().is_empty(),
        "every version of the original is gone"
    );

    // A duplicate delivery changes nothing.
    let again = image_processor::handle(event, &processor).await.unwrap();
    assert_eq!(again, [ProcessOutcome::AlreadyFinished]);
    assert_eq!(image_row(&ctx, &image_id).await.renditions, row.renditions);
}

#[tokio::test]
async fn a_file_that_is_not_an_image_is_recorded_as_failed_without_retry() {
    let ctx = TestContext::new().await;
    let (image_id, post) = upload_slot(&ctx, "notes.jpg").await;
    assert_eq!(post_form(&post, b"%PDF-1.7\n1 0 obj << >> endobj\n").await, 201);
    let event =
        local::object_created_event(&ctx.storage.originals_bucket, post.field("key").unwrap(), 0)
            .unwrap();
    let outcomes = image_processor::handle(event, &ctx.processor())
        .await
        .expect("a permanent failure is not an invocation error");
    assert!(
        matches!(&outcomes[..], [ProcessOutcome::Failed { reason }] if reason.contains("pdf")),
        "{outcomes:?}"
    );
    let row = image_row(&ctx, &image_id).await;
    assert_eq!(row.status, shared::domain::ImageStatus::Failed);
    assert!(row.failure_reason.unwrap().contains("not a supported image"));
}

#[tokio::test]
async fn a_missing_original_is_a_recorded_failure() {
    let ctx = TestContext::new().await;
    let (image_id, post) = upload_slot(&ctx, "never-uploaded.png").await;
    let event =
        local::object_created_event(&ctx.storage.originals_bucket, post.field("key").unwrap(), 0)
            .unwrap();
    let outcomes = image_processor::handle(event, &ctx.processor()).await.unwrap();
    assert!(matches!(&outcomes[..], [ProcessOutcome::Failed { .. }]), "{outcomes:?}");
    assert_eq!(image_row(&ctx, &image_id).await.status, shared::domain::ImageStatus::Failed);
}

#[tokio::test]
async fn unknown_keys_and_other_buckets_are_ignored() {
    let ctx = TestContext::new().await;
    let processor = ctx.processor();
    let stray = local::object_created_event(&ctx.storage.originals_bucket, "somewhere/else.jpg", 1)
        .unwrap();
    assert_eq!(
        image_processor::handle(stray, &processor).await.unwrap(),
        [ProcessOutcome::Ignored]
    );
    let other =
        local::object_created_event(&ctx.storage.processed_bucket, "renditions/a/b/400.jpg", 1)
            .unwrap();
    assert_eq!(
        image_processor::handle(other, &processor).await.unwrap(),
        [ProcessOutcome::Ignored]
    );
}

#[tokio::test]
async fn an_unavailable_database_fails_the_invocation_for_retry() {
    let ctx = TestContext::new().await;
    let port = crate::support::closed_port();
    let down = shared::config::DbConfig {
        port,
        connect_timeout: std::time::Duration::from_secs(1),
        ..ctx.db.clone()
    };
    let mut processor = ctx.processor();
    processor.pool = shared::db::pool(&down, &ctx.stack.app_password).unwrap();
    let event =
        local::object_created_event(&ctx.storage.originals_bucket, "originals/a/b/c.png", 1)
            .unwrap();
    let err: ProcessError =
        image_processor::handle(event, &processor).await.expect_err("must ask Lambda to retry");
    assert!(err.is_retryable(), "{err}");
}

/// A burst of uploads at the processor's reserved concurrency, a quarter of
/// them not images and some delivered twice: every image ends ready or
/// failed with a reason, none is left pending or processing. The suite runs
/// a small burst; `cargo xtask reliability` a large one
/// (`GALLERY_BURST_IMAGES`).
#[tokio::test]
async fn a_burst_of_uploads_leaves_every_image_ready_or_failed_with_a_reason() {
    use futures_util::StreamExt;
    let ctx = TestContext::new().await;
    let count: usize =
        std::env::var("GALLERY_BURST_IMAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(8);
    let names: Vec<String> = (0..count).map(|i| format!("burst {i}.png")).collect();
    let slots = upload_slots(&ctx, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mut events = Vec::new();
    for (i, (_, post)) in slots.iter().enumerate() {
        let body = match i % 4 {
            3 => b"%PDF-1.7 not an image".to_vec(),
            _ => png(640 + 32 * (i as u32 % 7), 480),
        };
        assert_eq!(post_form(post, &body).await, 201);
        let key = post.field("key").unwrap();
        let event = local::object_created_event(&ctx.storage.originals_bucket, key, 0).unwrap();
        // S3 delivers at least once: every third event comes twice.
        events.extend(std::iter::repeat_n(event, if i % 3 == 0 { 2 } else { 1 }));
    }
    let processor = ctx.processor();
    let delivered = events.len();
    let results: Vec<_> = futures_util::stream::iter(events)
        .map(|event| image_processor::handle(event, &processor))
        .buffer_unordered(4)
        .collect()
        .await;
    for result in &results {
        assert!(result.is_ok(), "an invocation failed: {result:?}");
    }
    let mut ready = 0;
    for (id, _) in &slots {
        let row = image_row(&ctx, id).await;
        match row.status {
            shared::domain::ImageStatus::Ready => {
                assert!(!row.renditions.is_empty(), "{row:?}");
                ready += 1;
            }
            shared::domain::ImageStatus::Failed => {
                assert!(row.failure_reason.is_some_and(|r| !r.is_empty()), "no reason: {id}");
            }
            other => panic!("image {id} left {other:?} after the burst"),
        }
    }
    assert_eq!(ready, count - count / 4, "every image that is one is ready");
    crate::support::record_cases("processor_burst", delivered);
}
