//! Renditions at the edge: the URLs the API hands out answer 200 while the
//! work is public and 403 otherwise, read the way CloudFront reads them. The
//! emulator enforces no bucket policy, so the local edge (`local::edge`)
//! applies its rule (the `gallery-visibility` tag); the policy document itself
//! is checked by the Terraform read-back. Withdrawals invalidate through the
//! processed bucket's own events, as in AWS.

use std::collections::BTreeSet;

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use super::{mark_ready, published, Gallery, Req};
use crate::support::TestContext;

/// GETs a URL the API returned through the local edge; (status, headers).
async fn edge_get(gallery: &Gallery, url: &str) -> (u16, axum::http::HeaderMap) {
    let path = url::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_else(|_| url.to_owned());
    assert!(
        path.starts_with("/renditions/"),
        "rendition URLs share the distribution's shape: {url}"
    );
    let request = axum::http::Request::get(&path).body(Body::empty()).unwrap();
    let response = local::edge::router(gallery.state.media.clone()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let _ = body.collect().await.unwrap();
    (parts.status.as_u16(), parts.headers)
}

fn urls(artwork: &serde_json::Value) -> Vec<String> {
    artwork["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["renditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["url"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn artwork_etag(gallery: &Gallery, token: &str, id: &str) -> String {
    gallery.expect(200, Req::get(&format!("/v1/manage/artworks/{id}")).token(token)).await.etag()
}

async fn statuses(gallery: &Gallery, urls: &[String]) -> BTreeSet<u16> {
    let mut seen = BTreeSet::new();
    for url in urls {
        seen.insert(edge_get(gallery, url).await.0);
    }
    seen
}

#[tokio::test]
async fn renditions_are_served_only_while_their_work_is_public() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let p = published(&ctx, &gallery, "Ada Etcher", "Copper Dawn").await;
    let page = gallery.expect(200, Req::get(&format!("/v1/artworks/{}", p.slug))).await;
    let urls = urls(&page.body);
    assert_eq!(urls.len(), 2);
    assert!(
        urls.iter().all(|u| u.starts_with("https://media.copper-gallery.example/renditions/")),
        "{urls:?}"
    );
    for url in &urls {
        let (status, headers) = edge_get(&gallery, url).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }

    let status = |action: &str| json!({ "action": action });
    let path = format!("/v1/manage/artworks/{}/status", p.artwork);

    // Unpublished: withdrawn at once.
    let etag = artwork_etag(&gallery, &p.token, &p.artwork).await;
    gallery
        .expect(
            200,
            Req::new("POST", &path).token(&p.token).if_match(&etag).json(&status("unpublish")),
        )
        .await;
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([403]), "after unpublish");
    let images = gallery
        .expect(200, Req::get(&format!("/v1/manage/artworks/{}/images", p.artwork)).token(&p.token))
        .await;
    assert_eq!(images.body["images"][0]["visibility"], "private");
    assert!(
        images.body["images"][0]["renditions"][0]["url"].is_null(),
        "no public URL while private"
    );

    // Published again, then deleted: gone; restored: back.
    let etag = artwork_etag(&gallery, &p.token, &p.artwork).await;
    gallery
        .expect(
            200,
            Req::new("POST", &path).token(&p.token).if_match(&etag).json(&status("publish")),
        )
        .await;
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([200]), "after republishing");
    let etag = artwork_etag(&gallery, &p.token, &p.artwork).await;
    gallery
        .expect(
            204,
            Req::new("DELETE", &format!("/v1/manage/artworks/{}", p.artwork))
                .token(&p.token)
                .if_match(&etag),
        )
        .await;
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([403]), "after delete");
    let etag = artwork_etag(&gallery, &p.token, &p.artwork).await;
    gallery
        .expect(
            200,
            Req::new("POST", &format!("/v1/manage/artworks/{}/restore", p.artwork))
                .token(&p.token)
                .if_match(&etag)
                .empty_body(),
        )
        .await;
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([200]), "after restore");

    // The artist suspended: every work withdrawn; reinstated: back.
    let admin = ctx.admin_token().await;
    let artist_path = format!("/v1/admin/artists/{}", p.artist);
    let etag = gallery.expect(200, Req::get(&artist_path).token(&admin)).await.etag();
    gallery
        .expect(
            200,
            Req::new("POST", &format!("{artist_path}/suspension"))
                .token(&admin)
                .if_match(&etag)
                .json(&json!({ "reason": "unpaid fees" })),
        )
        .await;
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([403]), "after suspension");
    let etag = gallery.expect(200, Req::get(&artist_path).token(&admin)).await.etag();
    gallery
        .expect(
            200,
            Req::new("DELETE", &format!("{artist_path}/suspension")).token(&admin).if_match(&etag),
        )
        .await;
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([200]), "after reinstatement");
}

#[tokio::test]
async fn a_guessed_draft_key_never_answers_200() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Bea Burin").await;
    let created = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks").token(&token).json(&json!({ "title": "Unseen" })),
        )
        .await;
    let artwork = created.id();
    let upload = gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{artwork}/images"))
                .token(&token)
                .json(&json!({ "file_name": "u.jpg", "alt_text": "A print" })),
        )
        .await;
    let image = upload.body["image"]["id"].as_str().unwrap().to_owned();
    mark_ready(&ctx, &image).await;
    // The objects exist (the processor wrote them) but the work is a draft.
    let keys = [400, 1600].map(|edge| {
        shared::domain::rendition_key(artwork.parse().unwrap(), image.parse().unwrap(), edge, "jpg")
    });
    for key in &keys {
        assert!(ctx
            .clients
            .s3
            .head_object()
            .bucket(&ctx.storage.processed_bucket)
            .key(key)
            .send()
            .await
            .is_ok());
        assert_eq!(edge_get(&gallery, &format!("/{key}")).await.0, 403, "{key}");
    }
    // A key that does not exist answers the same: no existence oracle.
    let random =
        shared::domain::rendition_key(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), 400, "jpg");
    assert_eq!(edge_get(&gallery, &format!("/{random}")).await.0, 403);

    // The artist sees their draft through short-lived presigned URLs only.
    let shown =
        gallery.expect(200, Req::get(&format!("/v1/manage/images/{image}")).token(&token)).await;
    assert!(
        shown.body.get("original_key").is_none() && !shown.body.to_string().contains("\"key\""),
        "no storage keys: {}",
        shown.body
    );
    let preview = gallery
        .expect(200, Req::get(&format!("/v1/manage/images/{image}/preview")).token(&token))
        .await;
    assert_eq!(preview.header("cache-control"), Some("no-store"));
    let url = url::Url::parse(preview.body["renditions"][0]["url"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query.get("X-Amz-Expires").map(String::as_str), Some("600"));
    assert_eq!(
        query.get("response-cache-control").map(String::as_str),
        Some("private, max-age=600")
    );
    assert!(url.path().ends_with(&keys[0]), "{url}");
    // The artist's browser opens it: a GET signed by the API's role.
    assert_eq!(crate::support::get_url(url.as_str()).await, 200, "{url}");
    // Another artist cannot ask for it.
    let (_, other) = ctx.artist_with_token("Cy Mezzotint").await;
    gallery
        .expect(404, Req::get(&format!("/v1/manage/images/{image}/preview")).token(&other))
        .await;
}

#[tokio::test]
async fn uploads_are_pinned_to_an_image_type() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Dee Drypoint").await;
    let artwork = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks").token(&token).json(&json!({ "title": "Plate" })),
        )
        .await
        .id();
    let path = format!("/v1/manage/artworks/{artwork}/images");
    let png = gallery
        .expect(
            201,
            Req::new("POST", &path)
                .token(&token)
                .json(&json!({ "file_name": "scan", "content_type": "image/png" })),
        )
        .await;
    assert_eq!(png.body["upload"]["fields"]["Content-Type"], "image/png");
    let jpeg = gallery
        .expect(
            201,
            Req::new("POST", &path).token(&token).json(&json!({ "file_name": "IMG_0001.JPG" })),
        )
        .await;
    assert_eq!(jpeg.body["upload"]["fields"]["Content-Type"], "image/jpeg");
    for body in [
        json!({ "file_name": "notes.txt" }),
        json!({ "file_name": "x.jpg", "content_type": "image/svg+xml" }),
    ] {
        let refused = gallery.expect(422, Req::new("POST", &path).token(&token).json(&body)).await;
        assert_eq!(refused.fields(), vec!["content_type"], "{body}");
    }
}

#[tokio::test]
async fn a_withdrawal_invalidates_exactly_its_renditions() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let p = published(&ctx, &gallery, "Eve Aquatint", "Salt Marsh").await;

    // As Terraform wires it: the processed bucket's tag and delete events → a queue.
    let sqs = aws_sdk_sqs::Client::new(&ctx.clients.sdk);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{}-events", ctx.storage.processed_bucket))
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder().name(FilterRuleName::Prefix).value("renditions/").build(),
                )
                .build(),
        )
        .build();
    let config = QueueConfiguration::builder()
        .queue_arn(queue_arn)
        .events(Event::from("s3:ObjectTagging:*"))
        .events(Event::from("s3:ObjectRemoved:*"))
        .filter(filter)
        .build()
        .unwrap();
    ctx.clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&ctx.storage.processed_bucket)
        .notification_configuration(
            NotificationConfiguration::builder().queue_configurations(config).build(),
        )
        .send()
        .await
        .unwrap();
    // Drop the configuration's test event.
    receive_all(&sqs, &queue_url).await;

    let etag = gallery
        .expect(200, Req::get(&format!("/v1/manage/artworks/{}", p.artwork)).token(&p.token))
        .await
        .etag();
    gallery
        .expect(
            200,
            Req::new("POST", &format!("/v1/manage/artworks/{}/status", p.artwork))
                .token(&p.token)
                .if_match(&etag)
                .json(&json!({ "action": "unpublish" })),
        )
        .await;

    let messages = receive_all(&sqs, &queue_url).await;
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({
        "Records": messages.iter().map(|(id, body)| json!({ "messageId": id, "body": body, "eventSource": "aws:sqs" })).collect::<Vec<_>>()
    }))
    .unwrap();

    let cloudfront = aws_sdk_cloudfront::Client::new(&ctx.clients.sdk);
    let distribution = create_distribution(&cloudfront, &ctx.storage.processed_bucket).await;
    // The edge function's own identity, for the recording of AWS requests.
    let as_edge = aws_sdk_cloudfront::Client::new(&ctx.clients_as("edge").sdk);
    let invalidator = edge::withdrawal::Invalidator {
        cloudfront: as_edge,
        distribution_id: distribution.clone(),
    };
    let (outcome, response) = edge::handle(event, &invalidator).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(outcome.invalidations.len(), 1, "one batch, one invalidation: {outcome:?}");

    let image: uuid::Uuid = p.image.parse().unwrap();
    let artwork: uuid::Uuid = p.artwork.parse().unwrap();
    let expected: BTreeSet<String> = [400, 1600]
        .map(|e| format!("/{}", shared::domain::rendition_key(artwork, image, e, "jpg")))
        .into();
    let made = cloudfront
        .get_invalidation()
        .distribution_id(&distribution)
        .id(&outcome.invalidations[0])
        .send()
        .await
        .unwrap();
    let paths: BTreeSet<String> = made
        .invalidation()
        .unwrap()
        .invalidation_batch()
        .unwrap()
        .paths()
        .unwrap()
        .items()
        .iter()
        .cloned()
        .collect();
    assert_eq!(paths, expected);
}

async fn receive_all(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let batch = got.messages();
        if batch.is_empty() {
            return out;
        }
        for m in batch {
            out.push((m.message_id().unwrap().to_owned(), m.body().unwrap().to_owned()));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

async fn create_distribution(cloudfront: &aws_sdk_cloudfront::Client, bucket: &str) -> String {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("renditions")
        .domain_name(format!("{bucket}.s3.eu-west-1.amazonaws.com"))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(uuid::Uuid::new_v4().to_string())
        .comment("test")
        .enabled(true)
        .origins(Origins::builder().quantity(1).items(origin).build().unwrap())
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("renditions")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = cloudfront.create_distribution().distribution_config(config).send().await.unwrap();
    out.distribution().unwrap().id().to_owned()
}

#[tokio::test]
async fn unknown_or_rewritten_edge_state_is_settled_from_the_catalogue() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let p = published(&ctx, &gallery, "Gil Lithograph", "Quay").await;
    let urls = urls(&gallery.expect(200, Req::get(&format!("/v1/artworks/{}", p.slug))).await.body);
    let media = gallery.state.media.clone();
    let keys: Vec<String> =
        urls.iter().map(|u| url::Url::parse(u).unwrap().path()[1..].to_owned()).collect();
    let hide_all = || async {
        for key in &keys {
            media
                .store
                .set_tag(&media.bucket, key, shared::media::VISIBILITY_TAG, "private")
                .await
                .unwrap();
        }
    };

    // A restored catalogue (the bucket copied from the replica, tags lost):
    // the restore forgets what the objects carry; the reconcile re-tags them.
    hide_all().await;
    let client = ctx.pool.get().await.unwrap();
    assert_eq!(shared::db::forget_edge_visibility(&**client).await.unwrap(), 1);
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([403]));
    let (settled, failed) = media.reconcile(1).await.unwrap();
    assert!(failed.is_empty());
    assert_eq!(settled.published.len(), 2);
    assert_eq!(statuses(&gallery, &urls).await, BTreeSet::from([200]), "after the reconcile");
    assert_eq!(
        media.reconcile(100).await.unwrap().0,
        shared::media::Settled::default(),
        "a second run finds nothing"
    );

    // A second invocation of the processor rewrote the renditions (new
    // versions, private) after the first one's settle: its own settle
    // publishes them again.
    hide_all().await;
    let artwork: uuid::Uuid = p.artwork.parse().unwrap();
    media.settle_rewritten(artwork, p.image.parse().unwrap()).await.unwrap();
    assert_eq!(
        statuses(&gallery, &urls).await,
        BTreeSet::from([200]),
        "after the rewrite's settle"
    );
}

#[tokio::test]
async fn a_new_image_of_a_published_work_goes_public_with_the_processors_one_connection() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let p = published(&ctx, &gallery, "Hal Woodcut", "Pier").await;
    let slot = gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{}/images", p.artwork))
                .token(&p.token)
                .json(&json!({ "file_name": "b.png", "alt_text": "A print" })),
        )
        .await;
    let image = slot.body["image"]["id"].as_str().unwrap().to_owned();
    let key = slot.body["upload"]["fields"]["key"].as_str().unwrap().to_owned();
    let original = crate::processor::png(900, 600);
    ctx.clients
        .s3
        .put_object()
        .bucket(&ctx.storage.originals_bucket)
        .key(&key)
        .body(original.into())
        .send()
        .await
        .unwrap();

    // As deployed: DATABASE_POOL_SIZE=1 (infra/functions.tf).
    let mut processor = ctx.processor();
    let one = shared::config::DbConfig { pool_size: 1, ..ctx.db_as(crate::support::PROCESSOR) };
    processor.pool = shared::db::pool(&one, &ctx.stack.app_password).unwrap();
    processor.process(&ctx.storage.originals_bucket, &key).await.unwrap();

    let shown =
        gallery.expect(200, Req::get(&format!("/v1/manage/images/{image}")).token(&p.token)).await;
    assert_eq!(shown.body["status"], "ready");
    assert_eq!(
        shown.body["visibility"], "public",
        "settled by the processor itself: {}",
        shown.body
    );
    let url = shown.body["renditions"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(edge_get(&gallery, &url).await.0, 200);
}
