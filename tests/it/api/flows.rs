//! Whole journeys through CloudFront: an artist from first draft to a public
//! page with loadable images; admins managing artists and tokens; the HTTP
//! contract (conditional requests, idempotency, audit) along the way.

use serde_json::{json, Value};

use super::{published, snapshot, Gallery, Req};
use crate::processor::png;
use crate::support::{post_form, strings, TestContext};

#[tokio::test]
async fn an_artist_goes_from_draft_to_a_public_page_whose_images_load() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Ada Copper").await;

    // Authorization is CloudFront's: a bearer token there never reaches the API.
    let refused = gallery
        .expect(
            401,
            Req::new("POST", "/v1/me/artworks")
                .header("authorization", &format!("Bearer {token}"))
                .json(&json!({ "title": "X" })),
        )
        .await;
    assert_eq!(refused.problem(), "unauthenticated");

    let created = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(&token)
                .json(&json!({ "title": "Été à Paris", "medium": "Etching", "year": 2026 })),
        )
        .await;
    assert_eq!(created.body["slug"], "ete-a-paris");
    assert_eq!(created.body["status"], "draft");
    let id = created.id();
    assert_eq!(created.header("location"), Some(format!("/v1/manage/artworks/{id}").as_str()));
    gallery.expect(404, Req::get("/v1/artworks/ete-a-paris")).await;

    gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{id}/editions"))
                .token(&token)
                .json(&json!({ "edition_size": 25, "paper": "Cotton Rag", "price_minor": 18000, "currency": "EUR" })),
        )
        .await;
    let upload = gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{id}/images"))
                .token(&token)
                .json(&json!({ "file_name": "plate.png", "alt_text": "A copper plate print" })),
        )
        .await;
    let image_id = upload.body["image"]["id"].as_str().unwrap().to_owned();

    // Publishing needs a ready image.
    let etag = gallery
        .expect(200, Req::get(&format!("/v1/manage/artworks/{id}")).token(&token))
        .await
        .etag();
    let early = Req::new("POST", &format!("/v1/manage/artworks/{id}/status"))
        .token(&token)
        .if_match(&etag)
        .json(&json!({ "action": "publish" }));
    assert!(gallery.expect(409, early).await.body["detail"]
        .as_str()
        .unwrap()
        .contains("ready image"));

    // The presigned POST is accepted by the object store and the original lands under our key.
    let fields = upload.body["upload"]["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let post = shared::aws::storage::PresignedPost {
        url: upload.body["upload"]["url"].as_str().unwrap().into(),
        fields,
        expires_at: chrono::Utc::now(),
    };
    assert_eq!(post_form(&post, &png(1200, 800)).await, 201);
    let key = post.field("key").unwrap().to_owned();
    let head = ctx
        .clients
        .s3
        .head_object()
        .bucket(&ctx.storage.originals_bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some(ctx.storage.data_key_id.as_str()));
    let event = local::object_created_event(&ctx.storage.originals_bucket, &key, 0).unwrap();
    image_processor::handle(event, &ctx.processor()).await.unwrap();
    let image =
        gallery.expect(200, Req::get(&format!("/v1/manage/images/{image_id}")).token(&token)).await;
    assert_eq!(image.body["status"], "ready");

    // Updates are conditional: none without If-Match, none with a stale one.
    let publish = |etag: Option<&str>| {
        let req = Req::new("POST", &format!("/v1/manage/artworks/{id}/status"))
            .token(&token)
            .json(&json!({ "action": "publish" }));
        match etag {
            Some(e) => req.if_match(e),
            None => req,
        }
    };
    assert_eq!(gallery.expect(428, publish(None)).await.problem(), "precondition-required");
    assert_eq!(
        gallery.expect(412, publish(Some("\"stale\""))).await.problem(),
        "precondition-failed"
    );
    let published = gallery.expect(200, publish(Some(&etag))).await;
    assert_eq!(published.body["status"], "published");
    assert!(published.body["published_at"].is_string());

    let page = gallery.expect(200, Req::get("/v1/artworks")).await;
    let card = &page.body["artworks"][0];
    assert_eq!(card["slug"], "ete-a-paris");
    assert_eq!(card["artist"]["name"], "Ada Copper");
    assert_eq!(card["price_from"], json!({ "minor": 18000, "currency": "EUR", "exponent": 2 }));
    let url = card["image"]["renditions"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("https://media.copper-gallery.example/renditions/"), "{url}");

    let detail = gallery.expect(200, Req::get("/v1/artworks/ete-a-paris")).await;
    assert!(detail.header("cache-control").unwrap().contains("stale-while-revalidate"));
    let text = detail.body.to_string();
    for internal in ["original_key", "\"key\"", "sha256", "email", "\"status\""] {
        assert!(!text.contains(internal), "public detail exposes {internal}: {text}");
    }
    // Every rendition URL names an object that exists in the processed bucket.
    for r in detail.body["images"][0]["renditions"].as_array().unwrap() {
        let key = r["url"]
            .as_str()
            .unwrap()
            .strip_prefix("https://media.copper-gallery.example/")
            .unwrap();
        ctx.clients
            .s3
            .head_object()
            .bucket(&ctx.storage.processed_bucket)
            .key(key)
            .send()
            .await
            .expect("rendition is there");
    }
    let again = gallery
        .send(Req::get("/v1/artworks/ete-a-paris").header("if-none-match", &detail.etag()))
        .await;
    assert_eq!(again.status, 304);
    assert_eq!(again.header("etag"), Some(detail.etag().as_str()));

    let client = ctx.pool.get().await.unwrap();
    // Each entry carries the Lambda request id of the invocation that wrote it.
    let actions = strings(
        &client,
        "SELECT action FROM audit_log WHERE request_id ~ '^[0-9a-f-]{36}$' ORDER BY id",
    )
    .await;
    assert_eq!(actions, ["artwork.create", "edition.create", "image.upload", "artwork.status"]);
}

#[tokio::test]
async fn a_no_op_update_changes_and_audits_nothing_and_a_real_one_does_both() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Quiet River").await;
    let uri = format!("/v1/manage/artworks/{}", work.artwork);
    let current = gallery.expect(200, Req::get(&uri).token(&work.token)).await;
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;
    let same = gallery
        .expect(
            200,
            Req::new("PATCH", &uri)
                .token(&work.token)
                .if_match(&current.etag())
                .json(&json!({ "title": " Quiet River " })),
        )
        .await;
    assert_eq!(same.etag(), current.etag(), "nothing changed");
    assert_eq!(snapshot(&client).await, before);

    let changed = gallery
        .expect(
            200,
            Req::new("PATCH", &uri)
                .token(&work.token)
                .if_match(&current.etag())
                .json(&json!({ "medium": "Drypoint", "description": "Line\nby line" })),
        )
        .await;
    assert_eq!(changed.body["medium"], "Drypoint");
    assert_ne!(changed.etag(), current.etag());
    let audit =
        strings(&client, "SELECT detail::text FROM audit_log WHERE action = 'artwork.update'")
            .await;
    assert_eq!(audit, [r#"{"fields": ["description", "medium"]}"#]);
    // The old ETag is now stale.
    gallery
        .expect(
            412,
            Req::new("PATCH", &uri)
                .token(&work.token)
                .if_match(&current.etag())
                .json(&json!({ "year": 2020 })),
        )
        .await;
    // Clearing a field with null.
    let cleared = gallery
        .expect(
            200,
            Req::new("PATCH", &uri)
                .token(&work.token)
                .if_match(&changed.etag())
                .json(&json!({ "medium": null })),
        )
        .await;
    assert_eq!(cleared.body["medium"], Value::Null);
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_creates_nothing_twice() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Twice Told").await;
    let uri = format!("/v1/manage/artworks/{}/editions", work.artwork);
    let body =
        json!({ "edition_size": 10, "paper": "Washi", "price_minor": 5000, "currency": "JPY" });
    let first = gallery
        .expect(
            201,
            Req::new("POST", &uri).token(&work.token).header("idempotency-key", "k-1").json(&body),
        )
        .await;
    let retry = gallery
        .expect(
            201,
            Req::new("POST", &uri).token(&work.token).header("idempotency-key", "k-1").json(&body),
        )
        .await;
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.etag(), first.etag());
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let client = ctx.pool.get().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM print_editions WHERE paper = 'Washi'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // The same key for another request is a client bug, said so.
    let other =
        json!({ "edition_size": 11, "paper": "Washi", "price_minor": 5000, "currency": "JPY" });
    let misuse = gallery
        .expect(
            422,
            Req::new("POST", &uri).token(&work.token).header("idempotency-key", "k-1").json(&other),
        )
        .await;
    assert_eq!(misuse.fields(), ["Idempotency-Key"]);
    // Concurrent retries of one sale record it once.
    let sale = Req::new("POST", &format!("/v1/manage/editions/{}/sales", work.edition))
        .token(&work.token)
        .header("idempotency-key", "sale-7")
        .json(&json!({ "count": 1 }));
    let replies = futures_join(&gallery, vec![sale.clone(), sale.clone(), sale]).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    let sold: i32 = client
        .query_one(
            "SELECT sold_count FROM print_editions WHERE id = $1",
            &[&work.edition.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sold, 1);
    // A token's secret is shown once, even to a retry.
    let admin = ctx.admin_token().await;
    let issue = Req::new("POST", "/v1/admin/tokens")
        .token(&admin)
        .header("idempotency-key", "t-1")
        .json(&json!({
            "scope": "artist", "artist_id": work.artist, "label": "phone", "expires_in_days": 30
        }));
    let issued = gallery.expect(201, issue.clone()).await;
    assert!(issued.body["secret"].as_str().unwrap().starts_with("cpg_"));
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let retried = gallery.expect(409, issue).await;
    assert!(!retried.body.to_string().contains("cpg_"));
}

/// Sends all at once: the requests interleave on their own database connections.
async fn futures_join(gallery: &Gallery, reqs: Vec<Req>) -> Vec<super::ViewerReply> {
    futures_util::future::join_all(reqs.into_iter().map(|req| gallery.send(req))).await
}

#[tokio::test]
async fn concurrent_sales_of_the_last_print_have_exactly_one_winner() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Last Print").await;
    let sell = || {
        Req::new("POST", &format!("/v1/manage/editions/{}/sales", work.edition))
            .token(&work.token)
            .json(&json!({ "count": 1 }))
    };
    gallery.expect(200, sell()).await;
    gallery.expect(200, sell()).await;
    let replies = futures_join(&gallery, (0..8).map(|_| sell()).collect()).await;
    let won = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(won, 1, "{replies:?}");
    assert!(
        replies.iter().all(|r| r.status == 200 || (r.status == 409 && r.problem() == "conflict")),
        "{replies:?}"
    );
    let edition = gallery
        .expect(200, Req::get(&format!("/v1/manage/editions/{}", work.edition)).token(&work.token))
        .await;
    assert_eq!(
        (edition.body["sold_count"].as_i64(), edition.body["edition_size"].as_i64()),
        (Some(3), Some(3))
    );
    let client = ctx.pool.get().await.unwrap();
    let sales =
        strings(&client, "SELECT action FROM audit_log WHERE action = 'edition.sale'").await;
    assert_eq!(sales.len(), 3, "one audit entry per sale that happened");
    // Sold out: the public card has no price left, and the available filter drops it.
    let page = gallery.expect(200, Req::get("/v1/artworks?available=true")).await;
    assert_eq!(page.body["artworks"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn admins_manage_artists_and_tokens_and_suspension_and_revocation_act_at_once() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let artist = gallery
        .expect(
            201,
            Req::new("POST", "/v1/admin/artists")
                .token(&admin)
                .json(&json!({ "name": "Cafe\u{301} Press", "email": "press@copper.example" })),
        )
        .await;
    assert_eq!(artist.body["name"], "Café Press", "names are stored in NFC");
    let artist_id = artist.id();
    let dup = gallery
        .expect(
            409,
            Req::new("POST", "/v1/admin/artists")
                .token(&admin)
                .json(&json!({ "name": "Other", "email": "PRESS@copper.example" })),
        )
        .await;
    assert!(dup.body["detail"].as_str().unwrap().contains("email"));

    let issued = gallery
        .expect(
            201,
            Req::new("POST", "/v1/admin/tokens")
                .token(&admin)
                .json(&json!({ "scope": "artist", "artist_id": artist_id, "label": "studio", "expires_in_days": 7 })),
        )
        .await;
    let secret = issued.body["secret"].as_str().unwrap().to_owned();
    let token_id = issued.body["token"]["id"].as_str().unwrap().to_owned();
    let list = gallery.expect(200, Req::get("/v1/admin/tokens").token(&admin)).await;
    assert!(!list.body.to_string().contains(&secret), "listings never carry secrets");

    // The new artist works, and publishes.
    let work = super::published_with_token(&ctx, &gallery, &secret, "Press Proof").await;
    gallery.expect(200, Req::get(&format!("/v1/artworks/{}", work.1))).await;

    // Suspension: tokens stop at once, works leave the public gallery.
    let etag = gallery
        .expect(200, Req::get(&format!("/v1/admin/artists/{artist_id}")).token(&admin))
        .await
        .etag();
    let suspended = gallery
        .expect(
            200,
            Req::new("POST", &format!("/v1/admin/artists/{artist_id}/suspension"))
                .token(&admin)
                .if_match(&etag)
                .json(&json!({ "reason": "chargebacks" })),
        )
        .await;
    assert!(suspended.body["suspended_at"].is_string());
    gallery.expect(401, Req::get("/v1/me").token(&secret)).await;
    gallery.expect(404, Req::get(&format!("/v1/artworks/{}", work.1))).await;
    gallery.expect(404, Req::get(&format!("/v1/artists/{artist_id}"))).await;
    assert!(gallery.expect(200, Req::get("/v1/artworks")).await.body["artworks"]
        .as_array()
        .unwrap()
        .is_empty());
    gallery
        .expect(
            200,
            Req::new("DELETE", &format!("/v1/admin/artists/{artist_id}/suspension"))
                .token(&admin)
                .if_match(&suspended.etag()),
        )
        .await;
    gallery.expect(200, Req::get("/v1/me").token(&secret)).await;
    gallery.expect(200, Req::get(&format!("/v1/artists/{artist_id}"))).await;

    // Revocation is effective on the next request, and final.
    let token =
        gallery.expect(200, Req::get(&format!("/v1/admin/tokens/{token_id}")).token(&admin)).await;
    gallery
        .expect(
            204,
            Req::new("DELETE", &format!("/v1/admin/tokens/{token_id}"))
                .token(&admin)
                .if_match(&token.etag()),
        )
        .await;
    gallery.expect(401, Req::get("/v1/me").token(&secret)).await;
    let client = ctx.pool.get().await.unwrap();
    let err = client
        .execute(
            "UPDATE api_tokens SET revoked_at = NULL WHERE id = $1",
            &[&token_id.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23514"), "a revoked token stays revoked");

    // The audit log answers who did what.
    let log = gallery
        .expect(200, Req::get(&format!("/v1/admin/audit?target=artist:{artist_id}")).token(&admin))
        .await;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // The admin read the artist's email in between: that read is audited too.
    assert_eq!(
        actions,
        ["artist.reinstate", "artist.suspend", "artist.personal_data_read", "artist.create"]
    );
    let page = gallery
        .expect(200, Req::get("/v1/admin/audit?limit=2&action=artwork.create").token(&admin))
        .await;
    assert_eq!(page.body["entries"].as_array().unwrap().len(), 1);
    assert!(page.body["next_cursor"].is_null());
}

#[tokio::test]
async fn a_deleted_artwork_frees_its_slug_and_can_be_restored_within_the_grace_period() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Gone Tomorrow").await;
    let uri = format!("/v1/manage/artworks/{}", work.artwork);
    let etag = gallery.expect(200, Req::get(&uri).token(&work.token)).await.etag();
    gallery.expect(204, Req::new("DELETE", &uri).token(&work.token).if_match(&etag)).await;
    gallery.expect(404, Req::get(&format!("/v1/artworks/{}", work.slug))).await;
    let deleted = gallery.expect(200, Req::get(&uri).token(&work.token)).await;
    assert!(deleted.body["deleted_at"].is_string());
    let listed =
        gallery.expect(200, Req::get("/v1/me/artworks?deleted=true").token(&work.token)).await;
    assert_eq!(listed.body["artworks"][0]["id"], work.artwork.as_str());

    // The slug is free again, for anyone.
    let (_, other) = ctx.artist_with_token("Other").await;
    gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(&other)
                .json(&json!({ "title": "Gone Tomorrow" })),
        )
        .await;
    let restore = Req::new("POST", &format!("{uri}/restore"))
        .token(&work.token)
        .if_match(&deleted.etag())
        .empty_body();
    let blocked = gallery.expect(409, restore.clone()).await;
    assert!(
        !blocked.body["detail"].as_str().unwrap().contains("Other"),
        "says nothing of the other artist"
    );
    let client = ctx.pool.get().await.unwrap();
    client.execute("UPDATE artworks SET deleted_at = now() WHERE slug = 'gone-tomorrow' AND deleted_at IS NULL", &[]).await.unwrap();
    let restored = gallery.expect(200, restore).await;
    assert_eq!(restored.body["deleted_at"], Value::Null);
    assert_eq!(restored.body["status"], "published");
}

#[tokio::test]
async fn images_are_ordered_and_removed_and_editions_retired() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Triptych").await;
    let images = format!("/v1/manage/artworks/{}/images", work.artwork);
    let second = gallery
        .expect(
            201,
            Req::new("POST", &images)
                .token(&work.token)
                .json(&json!({ "file_name": "b.jpg", "alt_text": "A second view" })),
        )
        .await
        .body["image"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    super::mark_ready(&ctx, &second).await;
    let image = gallery
        .expect(200, Req::get(&format!("/v1/manage/images/{second}")).token(&work.token))
        .await;
    assert_eq!(image.body["position"], 1);
    gallery
        .expect(
            200,
            Req::new("PATCH", &format!("/v1/manage/images/{second}"))
                .token(&work.token)
                .if_match(&image.etag())
                .json(&json!({ "position": 0 })),
        )
        .await;
    let listed = gallery.expect(200, Req::get(&images).token(&work.token)).await;
    let order: Vec<&str> = listed.body["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [second.as_str(), work.image.as_str()]);
    let public = gallery.expect(200, Req::get(&format!("/v1/artworks/{}", work.slug))).await;
    assert_eq!(public.body["images"][0]["id"], second.as_str(), "the primary image comes first");

    let first = gallery
        .expect(200, Req::get(&format!("/v1/manage/images/{second}")).token(&work.token))
        .await;
    gallery
        .expect(
            204,
            Req::new("DELETE", &format!("/v1/manage/images/{second}"))
                .token(&work.token)
                .if_match(&first.etag()),
        )
        .await;
    let listed = gallery.expect(200, Req::get(&images).token(&work.token)).await;
    assert_eq!(listed.body["images"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["images"][0]["position"], 0, "the gap closes");
    // A published work keeps at least one image.
    let last = gallery
        .expect(200, Req::get(&format!("/v1/manage/images/{}", work.image)).token(&work.token))
        .await;
    gallery
        .expect(
            409,
            Req::new("DELETE", &format!("/v1/manage/images/{}", work.image))
                .token(&work.token)
                .if_match(&last.etag()),
        )
        .await;

    let edition = format!("/v1/manage/editions/{}", work.edition);
    let e = gallery.expect(200, Req::get(&edition).token(&work.token)).await;
    let shrink = gallery
        .expect(
            200,
            Req::new("PATCH", &edition)
                .token(&work.token)
                .if_match(&e.etag())
                .json(&json!({ "edition_size": 2, "price_minor": 20000 })),
        )
        .await;
    assert_eq!(shrink.body["edition_size"], 2);
    let retired = gallery
        .expect(
            200,
            Req::new("POST", &format!("{edition}/retire"))
                .token(&work.token)
                .if_match(&shrink.etag())
                .empty_body(),
        )
        .await;
    assert!(retired.body["retired_at"].is_string());
    gallery
        .expect(
            409,
            Req::new("POST", &format!("{edition}/sales"))
                .token(&work.token)
                .json(&json!({ "count": 1 })),
        )
        .await;
    let public = gallery.expect(200, Req::get(&format!("/v1/artworks/{}", work.slug))).await;
    assert!(
        public.body["editions"].as_array().unwrap().is_empty(),
        "retired editions are not offered"
    );
}

#[tokio::test]
async fn browsers_from_allowed_origins_pass_preflight_and_others_do_not() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let preflight = |origin: &str| {
        Req::new("OPTIONS", "/v1/me/artworks")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "x-gallery-token, content-type, x-amz-content-sha256",
            )
    };
    let ok = gallery.send(preflight("https://copper-gallery.example")).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://copper-gallery.example"));
    assert!(ok.header("access-control-allow-headers").unwrap().contains("x-gallery-token"));
    let other = gallery.send(preflight("https://evil.example")).await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let simple = gallery
        .expect(200, Req::get("/v1/artworks").header("origin", "https://copper-gallery.example"))
        .await;
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://copper-gallery.example")
    );
    assert!(simple.header("access-control-expose-headers").unwrap().contains("etag"));
}

#[tokio::test]
async fn an_admin_asks_for_an_erasure_the_artist_leaves_at_once_and_retention_completes_it() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let owner = super::published(&ctx, &gallery, "Leaving Owner", "Last Print").await;
    let path = format!("/v1/admin/artists/{}/erasure", owner.artist);
    gallery.expect(428, Req::new("POST", &path).token(&admin).empty_body()).await;
    gallery
        .expect(403, Req::new("POST", &path).token(&owner.token).if_match("\"x\"").empty_body())
        .await;
    let etag = gallery
        .expect(200, Req::get(&format!("/v1/admin/artists/{}", owner.artist)).token(&admin))
        .await
        .etag();

    let asked = gallery
        .expect(202, Req::new("POST", &path).token(&admin).if_match(&etag).empty_body())
        .await;
    let erasure = asked.id();
    assert_eq!(
        asked.headers.get("location").map(String::as_str),
        Some(format!("/v1/admin/erasures/{erasure}").as_str())
    );
    assert!(asked.body["completed_at"].is_null());
    // Sealed into the ledger before the 202: a restore from now on replays it.
    let ledger = ctx.ledger().read_all().await.unwrap();
    assert_eq!(
        ledger.iter().map(|r| (r.id.to_string(), r.completed_at)).collect::<Vec<_>>(),
        [(erasure.clone(), None)]
    );
    // Out of the gallery at once: token dead, works gone from the public list.
    gallery.expect(401, Req::get("/v1/me").token(&owner.token)).await;
    gallery.expect(404, Req::get(&format!("/v1/artworks/{}", owner.slug))).await;
    // Asking again returns the open request.
    let etag = gallery
        .expect(200, Req::get(&format!("/v1/admin/artists/{}", owner.artist)).token(&admin))
        .await
        .etag();
    let again = gallery
        .expect(202, Req::new("POST", &path).token(&admin).if_match(&etag).empty_body())
        .await;
    assert_eq!(again.id(), erasure);

    let report = ctx
        .retention(shared::retention::Policy::default())
        .run(&retention::Sweep::at(chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(report.rules["artist-erasure"].items, 1, "{report:#?}");
    let done =
        gallery.expect(200, Req::get(&format!("/v1/admin/erasures/{erasure}")).token(&admin)).await;
    assert!(done.body["completed_at"].is_string());
    assert_eq!(done.body["rows_deleted"]["artists"], 1);
    assert!(!done.body.to_string().contains("Leaving Owner"), "the record holds no personal data");
    gallery
        .expect(404, Req::get(&format!("/v1/admin/artists/{}", owner.artist)).token(&admin))
        .await;
    gallery
        .expect(
            404,
            Req::get(&format!("/v1/admin/erasures/{}", uuid::Uuid::new_v4())).token(&admin),
        )
        .await;
}

/// An artist whose erasure is pending stays out of the gallery: no admin can
/// reinstate them or issue them a token, and a reinstatement racing the
/// erasure request never leaves a pending erasure with a reinstated artist.
#[tokio::test]
async fn an_artist_being_erased_cannot_be_reinstated_or_given_a_token_even_in_a_race() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let etag_of = |artist: uuid::Uuid| {
        let (gallery, admin) = (&gallery, &admin);
        async move {
            let uri = format!("/v1/admin/artists/{artist}");
            gallery.expect(200, Req::get(&uri).token(admin)).await.etag()
        }
    };
    let owner = super::published(&ctx, &gallery, "Leaving Soon", "Final Print").await;
    let erase = format!("/v1/admin/artists/{}/erasure", owner.artist);
    let etag = etag_of(owner.artist).await;
    gallery.expect(202, Req::new("POST", &erase).token(&admin).if_match(&etag).empty_body()).await;
    let suspension = format!("/v1/admin/artists/{}/suspension", owner.artist);
    let etag = etag_of(owner.artist).await;
    let refused =
        gallery.expect(409, Req::new("DELETE", &suspension).token(&admin).if_match(&etag)).await;
    assert!(refused.body["detail"].as_str().unwrap().contains("erasure is pending"), "{refused:?}");
    let token = serde_json::json!({ "scope": "artist", "artist_id": owner.artist, "label": "new phone", "expires_in_days": 30 });
    gallery.expect(409, Req::new("POST", "/v1/admin/tokens").token(&admin).json(&token)).await;

    // The race: a suspended artist, reinstated while an erasure is requested.
    for round in 0..5 {
        let (artist, _) = ctx.artist_with_token(&format!("Racing Artist {round}")).await;
        let suspension = format!("/v1/admin/artists/{artist}/suspension");
        let reason = serde_json::json!({ "reason": "under review" });
        let etag = etag_of(artist).await;
        gallery
            .expect(200, Req::new("POST", &suspension).token(&admin).if_match(&etag).json(&reason))
            .await;
        let etag = etag_of(artist).await;
        let erase = format!("/v1/admin/artists/{artist}/erasure");
        let (asked, reinstated) = tokio::join!(
            gallery.send(Req::new("POST", &erase).token(&admin).if_match(&etag).empty_body()),
            gallery.send(Req::new("DELETE", &suspension).token(&admin).if_match(&etag)),
        );
        assert!(asked.status < 500 && reinstated.status < 500, "{asked:?} {reinstated:?}");
        let client = ctx.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT a.suspended_at IS NOT NULL, EXISTS (SELECT 1 FROM erasures e WHERE e.artist_id = a.id AND e.completed_at IS NULL) \
                 FROM artists a WHERE a.id = $1",
                &[&artist],
            )
            .await
            .unwrap();
        let (suspended, pending): (bool, bool) = (row.get(0), row.get(1));
        assert!(suspended || !pending, "round {round}: reinstated with an erasure pending");
    }
}

/// One ETag wins once: concurrent reorders or removals of an image holding
/// the same ETag are decided under the artwork's lock, so one succeeds, the
/// other is refused, and the audit log has one entry.
#[tokio::test]
async fn concurrent_image_writes_with_one_etag_have_one_winner() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Contested").await;
    let images = format!("/v1/manage/artworks/{}/images", work.artwork);
    let mut added = Vec::new();
    for name in ["b.jpg", "c.jpg"] {
        let body = json!({ "file_name": name, "alt_text": "A print" });
        let reply =
            gallery.expect(201, Req::new("POST", &images).token(&work.token).json(&body)).await;
        let id = reply.body["image"]["id"].as_str().unwrap().to_owned();
        super::mark_ready(&ctx, &id).await;
        added.push(id);
    }
    let audited = |action: &'static str| {
        let ctx = &ctx;
        async move {
            let client = ctx.pool.get().await.unwrap();
            let row = client
                .query_one("SELECT count(*) FROM audit_log WHERE action = $1", &[&action])
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };
    let uri = format!("/v1/manage/images/{}", added[1]);
    let etag = gallery.expect(200, Req::get(&uri).token(&work.token)).await.etag();
    let patch = |position: i64| {
        Req::new("PATCH", &uri)
            .token(&work.token)
            .if_match(&etag)
            .json(&json!({ "position": position }))
    };
    let (a, b) = tokio::join!(gallery.send(patch(0)), gallery.send(patch(1)));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{a:?} {b:?}");
    assert_eq!(audited("image.update").await, 1);

    let etag = gallery.expect(200, Req::get(&uri).token(&work.token)).await.etag();
    let delete = || Req::new("DELETE", &uri).token(&work.token).if_match(&etag);
    let (a, b) = tokio::join!(gallery.send(delete()), gallery.send(delete()));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert!(statuses[0] == 204 && [404, 412].contains(&statuses[1]), "{a:?} {b:?}");
    assert_eq!(audited("image.remove").await, 1);
}

/// A limited edition stays limited: once a print is sold its size is fixed,
/// unless a correction says why; the audit log records every field before and
/// after, a sale's price as it was, and who read artists' emails.
#[tokio::test]
async fn a_sold_edition_keeps_its_size_and_the_audit_log_tells_the_whole_story() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let work = published(&ctx, &gallery, "Ada Copper", "Numbered").await;
    let edition = format!("/v1/manage/editions/{}", work.edition);
    let sale = Req::new("POST", &format!("{edition}/sales")).token(&work.token);
    gallery.expect(200, sale.json(&json!({ "count": 3 }))).await;
    let etag = gallery.expect(200, Req::get(&edition).token(&work.token)).await.etag();
    let patch = |body: serde_json::Value| {
        Req::new("PATCH", &edition).token(&work.token).if_match(&etag).json(&body)
    };
    // Sold out (3 of 3) and raised: no longer a limited edition. Refused.
    let raised = gallery.expect(422, patch(json!({ "edition_size": 50 }))).await;
    assert_eq!(raised.fields(), ["edition_size"]);
    let corrected = gallery
        .expect(
            200,
            patch(json!({ "edition_size": 4, "paper": "Washi", "correction_reason": "one print was miscounted" })),
        )
        .await;
    assert_eq!(corrected.body["edition_size"], 4);

    let client = ctx.pool.get().await.unwrap();
    let detail = |action: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT detail FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1",
                    &[&action],
                )
                .await
                .unwrap();
            row.get::<_, serde_json::Value>(0)
        }
    };
    let update = detail("edition.update").await;
    assert_eq!(update["size"], json!([3, 4]));
    assert_eq!(update["paper"][1], "Washi");
    assert_eq!(update["currency"], json!(["EUR", "EUR"]));
    assert_eq!(update["correction_reason"], "one print was miscounted");
    let sold = detail("edition.sale").await;
    assert_eq!(
        (sold["price_minor"].as_i64(), sold["currency"].as_str()),
        (Some(18000), Some("EUR"))
    );

    gallery.expect(200, Req::get("/v1/admin/artists").token(&admin)).await;
    gallery
        .expect(200, Req::get(&format!("/v1/admin/artists/{}", work.artist)).token(&admin))
        .await;
    let reads = client
        .query(
            "SELECT target, detail FROM audit_log WHERE action = 'artist.personal_data_read' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(reads.len(), 2, "every read of emails is audited");
    let artist = work.artist.to_string();
    assert!(reads[0].get::<_, serde_json::Value>(1)["artists"].to_string().contains(&artist));
    assert_eq!(reads[1].get::<_, String>(0), format!("artist:{artist}"));
    let leaked = client
        .query_one("SELECT count(*) FROM audit_log WHERE detail::text LIKE '%@%'", &[])
        .await
        .unwrap();
    assert_eq!(leaked.get::<_, i64>(0), 0, "no email in the audit log");
}

/// ETags version what a write can change: a token used in between does not
/// make an admin's revoke fail, nor an artist's rename an artwork edit.
#[tokio::test]
async fn etags_move_only_with_the_resources_own_fields() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let work = published(&ctx, &gallery, "Ada Copper", "Steady").await;
    let listed = gallery.expect(200, Req::get("/v1/admin/tokens").token(&admin)).await;
    let token_id = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["artist_id"] == work.artist.to_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_uri = format!("/v1/admin/tokens/{token_id}");
    let before = gallery.expect(200, Req::get(&token_uri).token(&admin)).await;
    // The artist's token is used (its last use recorded), then the admin revokes.
    let client = ctx.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE api_tokens SET last_used_at = NULL WHERE id = $1",
            &[&token_id.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    gallery.expect(200, Req::get("/v1/me").token(&work.token)).await;
    let after = gallery.expect(200, Req::get(&token_uri).token(&admin)).await;
    assert_ne!(before.body["last_used_at"], after.body["last_used_at"]);
    assert_eq!(before.etag(), after.etag(), "a token's use is not a change to it");

    let artwork_uri = format!("/v1/manage/artworks/{}", work.artwork);
    let artwork_etag = gallery.expect(200, Req::get(&artwork_uri).token(&work.token)).await.etag();
    let artist_uri = format!("/v1/admin/artists/{}", work.artist);
    let artist_etag = gallery.expect(200, Req::get(&artist_uri).token(&admin)).await.etag();
    let rename = json!({ "name": "Ada Copper-Lovelace" });
    gallery
        .expect(
            200,
            Req::new("PATCH", &artist_uri).token(&admin).if_match(&artist_etag).json(&rename),
        )
        .await;
    let edit = json!({ "medium": "Etching" });
    gallery
        .expect(
            200,
            Req::new("PATCH", &artwork_uri).token(&work.token).if_match(&artwork_etag).json(&edit),
        )
        .await;
    gallery
        .expect(204, Req::new("DELETE", &token_uri).token(&admin).if_match(&before.etag()))
        .await;
}

/// Prices compare only within a currency, sold-out editions are not on sale,
/// and every price carries its currency's exponent.
#[tokio::test]
async fn price_filters_respect_currencies_and_sold_out_editions() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Priced Twice").await;
    let editions = format!("/v1/manage/artworks/{}/editions", work.artwork);
    let add = |body: serde_json::Value| Req::new("POST", &editions).token(&work.token).json(&body);
    let cheap = gallery
        .expect(201, add(json!({ "edition_size": 1, "paper": "Rag", "price_minor": 1000, "currency": "EUR" })))
        .await
        .id();
    gallery
        .expect(
            200,
            Req::new("POST", &format!("/v1/manage/editions/{cheap}/sales"))
                .token(&work.token)
                .json(&json!({ "count": 1 })),
        )
        .await;
    gallery
        .expect(201, add(json!({ "edition_size": 10, "paper": "Washi", "price_minor": 5000, "currency": "JPY" })))
        .await;
    let slugs = |reply: &super::ViewerReply| -> Vec<String> {
        reply.body["artworks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    // The only EUR edition under 20.00 is sold out.
    let under = gallery.expect(200, Req::get("/v1/artworks?price_max=2000&currency=EUR")).await;
    assert!(!slugs(&under).contains(&work.slug), "{:?}", under.body);
    let mixed = gallery.expect(422, Req::get("/v1/artworks?price_max=2000")).await;
    assert_eq!(mixed.fields(), ["currency"]);
    let yen = gallery.expect(200, Req::get("/v1/artworks?currency=JPY")).await;
    let card = &yen.body["artworks"][0];
    assert_eq!(card["slug"], work.slug.as_str());
    assert_eq!(card["price_from"], json!({ "minor": 5000, "currency": "JPY", "exponent": 0 }));
    // Unfiltered: the first edition's currency, the cheapest print on sale in it.
    let all = gallery.expect(200, Req::get("/v1/artworks")).await;
    assert_eq!(
        all.body["artworks"][0]["price_from"],
        json!({ "minor": 18000, "currency": "EUR", "exponent": 2 })
    );
    let page = gallery.expect(200, Req::get(&format!("/v1/artworks/{}", work.slug))).await;
    let exponents: Vec<(String, u64)> = page.body["editions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["currency"].as_str().unwrap().to_owned(), e["currency_exponent"].as_u64().unwrap())
        })
        .collect();
    assert!(
        exponents.contains(&("JPY".into(), 0)) && exponents.contains(&("EUR".into(), 2)),
        "{exponents:?}"
    );
}

/// An artist signs a lost phone out without waiting for an admin: they list
/// their own tokens (never anyone else's) and revoke one; another artist's
/// token is not found, and admins manage tokens under /v1/admin.
#[tokio::test]
async fn artists_list_and_revoke_their_own_tokens_only() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let (ada, laptop) = ctx.artist_with_token("Ada Copper").await;
    let (_, other) = ctx.artist_with_token("Bo Etcher").await;
    let phone = gallery
        .expect(
            201,
            Req::new("POST", "/v1/admin/tokens").token(&admin).json(
                &json!({ "scope": "artist", "artist_id": ada, "label": "phone", "expires_in_days": 30 }),
            ),
        )
        .await;
    let (phone_id, phone_secret) = (
        phone.body["token"]["id"].as_str().unwrap().to_owned(),
        phone.body["secret"].as_str().unwrap().to_owned(),
    );
    let mine = gallery.expect(200, Req::get("/v1/me/tokens").token(&laptop)).await;
    let labels: Vec<&str> = mine.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels.contains(&"phone") && !mine.body.to_string().contains("cpg_"), "no secrets");
    gallery.expect(403, Req::get("/v1/me/tokens").token(&admin)).await;

    let uri = format!("/v1/me/tokens/{phone_id}");
    let etag = gallery
        .expect(200, Req::get(&format!("/v1/admin/tokens/{phone_id}")).token(&admin))
        .await
        .etag();
    gallery.expect(404, Req::new("DELETE", &uri).token(&other).if_match(&etag)).await;
    gallery.expect(204, Req::new("DELETE", &uri).token(&laptop).if_match(&etag)).await;
    gallery.expect(401, Req::get("/v1/me").token(&phone_secret)).await;
    gallery.expect(200, Req::get("/v1/me").token(&laptop)).await;
    let client = ctx.pool.get().await.unwrap();
    let actor = client
        .query_one("SELECT actor FROM audit_log WHERE action = 'token.revoke'", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert!(actor.starts_with("token:"), "the artist's own token is the actor: {actor}");
}

/// Paging the audit log by id never skips an entry whose transaction commits
/// after a later one's: the reader waits for writers in flight.
#[tokio::test]
async fn audit_pages_never_skip_an_entry_that_commits_late() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let entry = |action: &'static str| shared::db::AuditEntry {
        actor: "system:test",
        action,
        target: "race",
        request_id: None,
        detail: json!({}),
    };
    let mut slow = ctx.pool.get().await.unwrap();
    let open = slow.transaction().await.unwrap();
    shared::db::append_audit(&open, &entry("race.first")).await.unwrap();
    // A later entry (a higher id) commits first.
    shared::db::append_audit(&ctx.pool.get().await.unwrap(), &entry("race.second")).await.unwrap();
    let read = gallery.send(Req::get("/v1/admin/audit?target=race").token(&admin));
    let commit_late = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        open.commit().await.unwrap();
    };
    let (page, ()) = tokio::join!(read, commit_late);
    assert_eq!(page.status, 200, "{page:?}");
    let actions: Vec<&str> = page.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["race.second", "race.first"],
        "the page waited for the first entry's commit"
    );
}

/// A deleted artwork whose slug another work took meanwhile comes back under
/// a new slug the artist names; without one, the refusal says how.
#[tokio::test]
async fn a_deleted_artwork_whose_slug_was_taken_is_restored_under_a_new_one() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Ada Copper").await;
    let create = |title: &str| {
        Req::new("POST", "/v1/me/artworks").token(&token).json(&json!({ "title": title }))
    };
    let first = gallery.expect(201, create("Dawn")).await;
    let uri = format!("/v1/manage/artworks/{}", first.id());
    gallery.expect(204, Req::new("DELETE", &uri).token(&token).if_match(&first.etag())).await;
    let second = gallery.expect(201, create("Dawn")).await;
    assert_eq!(second.body["slug"], "dawn", "a deleted work frees its slug");
    let deleted = gallery.expect(200, Req::get(&uri).token(&token)).await;
    let restore =
        || Req::new("POST", &format!("{uri}/restore")).token(&token).if_match(&deleted.etag());
    let refused = gallery.expect(409, restore().empty_body()).await;
    assert!(refused.body["detail"].as_str().unwrap().contains("new one"), "{refused:?}");
    assert_eq!(
        gallery.expect(422, restore().json(&json!({ "slug": "Not A Slug" }))).await.fields(),
        ["slug"]
    );
    gallery.expect(409, restore().json(&json!({ "slug": "dawn" }))).await;
    let restored =
        gallery.expect(200, restore().json(&json!({ "slug": "dawn-first-light" }))).await;
    assert_eq!(restored.body["slug"], "dawn-first-light");
    assert!(restored.body["deleted_at"].is_null());
}

/// The public artist index: artists in good standing with published work, the
/// most recently published first, each with their newest works; paged.
#[tokio::test]
async fn the_artist_index_lists_artists_with_published_work_newest_first() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    let ada = published(&ctx, &gallery, "Ada Copper", "First Light").await;
    let bo = published(&ctx, &gallery, "Bo Etcher", "Second Light").await;
    let cy = published(&ctx, &gallery, "Cy Suspended", "Hidden Light").await;
    let (_, drafter) = ctx.artist_with_token("Dee Drafts").await;
    gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks").token(&drafter).json(&json!({ "title": "Unseen" })),
        )
        .await;
    let suspension = format!("/v1/admin/artists/{}/suspension", cy.artist);
    let etag = gallery
        .expect(200, Req::get(&format!("/v1/admin/artists/{}", cy.artist)).token(&admin))
        .await
        .etag();
    gallery
        .expect(
            200,
            Req::new("POST", &suspension)
                .token(&admin)
                .if_match(&etag)
                .json(&json!({ "reason": "review" })),
        )
        .await;

    let first = gallery.expect(200, Req::get("/v1/artists?limit=1")).await;
    assert!(first.header("cache-control").unwrap().starts_with("public"), "{first:?}");
    let entry = &first.body["artists"][0];
    assert_eq!(entry["artist"]["name"], "Bo Etcher", "the most recently published first");
    assert_eq!(entry["published_works"], 1);
    assert_eq!(entry["newest"][0]["slug"], bo.slug.as_str());
    assert_eq!(entry["href"], format!("/v1/artists/{}", bo.artist));
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second =
        gallery.expect(200, Req::get(&format!("/v1/artists?limit=1&cursor={cursor}"))).await;
    assert_eq!(second.body["artists"][0]["artist"]["name"], "Ada Copper");
    assert_eq!(second.body["artists"][0]["newest"][0]["slug"], ada.slug.as_str());
    assert!(
        second.body["next_cursor"].is_null(),
        "no suspended artist, no artist without published work"
    );
    assert_eq!(gallery.expect(422, Req::get("/v1/artists?limit=25")).await.fields(), ["limit"]);
}
