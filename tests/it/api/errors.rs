//! Bad input, every class: a 4xx problem+json naming what is wrong, nothing
//! written, never a 500.

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use super::{published, snapshot, Gallery, Req};
use crate::support::TestContext;

#[tokio::test]
async fn malformed_bodies_wrong_types_and_sizes_get_their_own_status() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Careful Artist").await;
    // The token's last use is recorded at most once a minute: record it now.
    gallery.expect(200, Req::get("/v1/me").token(&token)).await;
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;
    let create = || Req::new("POST", "/v1/me/artworks").token(&token);

    assert_eq!(
        gallery
            .expect(400, create().raw(b"{not json".to_vec(), "application/json"))
            .await
            .problem(),
        "malformed"
    );
    assert_eq!(
        gallery.expect(400, create().raw(Vec::new(), "application/json")).await.problem(),
        "malformed"
    );
    assert_eq!(
        gallery
            .expect(400, create().raw(b"{\"title\":\"\xff\xfe\"}".to_vec(), "application/json"))
            .await
            .problem(),
        "malformed"
    );
    assert_eq!(
        gallery
            .expect(415, create().raw(b"title=x".to_vec(), "application/x-www-form-urlencoded"))
            .await
            .problem(),
        "unsupported-media-type"
    );
    assert_eq!(
        gallery.expect(415, create().raw(b"{}".to_vec(), "text/plain")).await.problem(),
        "unsupported-media-type"
    );
    let huge = json!({ "title": "x", "description": "d".repeat(api::BODY_LIMIT) });
    assert_eq!(gallery.expect(413, create().json(&huge)).await.problem(), "too-large");

    for (body, field) in [
        (json!({ "title": "nul\u{0}here" }), "title"),
        (json!({ "title": "x".repeat(301) }), "title"),
        (json!({ "title": "ok", "medium": "bell\u{7}" }), "medium"),
        (json!({ "title": "ok", "description": "bidi \u{202e} trick" }), "description"),
        (json!({ "title": "ok", "slug": "Not A Slug" }), "slug"),
        (json!({ "title": "ok", "year": 99 }), "year"),
        (json!({ "title": "ok", "width_mm": -5 }), "width_mm"),
    ] {
        let reply = gallery.expect(422, create().json(&body)).await;
        assert_eq!(reply.problem(), "invalid");
        assert_eq!(reply.fields(), [field], "{body}");
    }
    for body in [
        json!({ "title": "ok", "year": 1e30 }),
        json!({ "title": "ok", "unknown": 1 }),
        json!({ "title": 5 }),
        json!([]),
    ] {
        let reply = gallery.expect(422, create().json(&body)).await;
        assert_eq!(reply.fields(), ["body"], "{body}");
    }
    assert_eq!(snapshot(&client).await, before, "nothing was written");
}

#[tokio::test]
async fn editions_refuse_negative_prices_unknown_currencies_and_huge_numbers() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Priced").await;
    let uri = format!("/v1/manage/artworks/{}/editions", work.artwork);
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;
    let base = json!({ "edition_size": 10, "paper": "Rag", "price_minor": 100, "currency": "EUR" });
    for (patch, field) in [
        (json!({ "price_minor": -1 }), "price_minor"),
        (json!({ "price_minor": 10_000_000_001i64 }), "price_minor"),
        (json!({ "currency": "XYZ" }), "currency"),
        (json!({ "currency": "eur" }), "currency"),
        (json!({ "edition_size": 0 }), "edition_size"),
        (json!({ "paper": "" }), "paper"),
    ] {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        assert_eq!(
            gallery
                .expect(422, Req::new("POST", &uri).token(&work.token).json(&body))
                .await
                .fields(),
            [field],
            "{body}"
        );
    }
    let mut overflow = base.clone();
    overflow["price_minor"] = json!(1e300);
    assert_eq!(
        gallery
            .expect(422, Req::new("POST", &uri).token(&work.token).json(&overflow))
            .await
            .fields(),
        ["body"]
    );
    let sale = format!("/v1/manage/editions/{}/sales", work.edition);
    assert_eq!(
        gallery
            .expect(422, Req::new("POST", &sale).token(&work.token).json(&json!({ "count": 0 })))
            .await
            .fields(),
        ["count"]
    );
    assert_eq!(snapshot(&client).await, before);
}

#[tokio::test]
async fn paths_queries_and_methods_that_name_nothing() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    assert_eq!(gallery.expect(404, Req::get("/v1/artworks/%FF")).await.problem(), "not-found");
    assert_eq!(
        gallery.expect(404, Req::get("/v1/artists/not-a-uuid")).await.problem(),
        "not-found"
    );
    assert_eq!(gallery.expect(404, Req::get("/no/such/route")).await.problem(), "no-route");
    let wrong = gallery.expect(405, Req::new("DELETE", "/v1/artworks")).await;
    assert_eq!(wrong.problem(), "method-not-allowed");
    assert!(wrong.header("allow").unwrap().contains("GET"), "{wrong:?}");
    assert_eq!(
        gallery.expect(400, Req::get("/v1/artworks?colour=red")).await.problem(),
        "malformed"
    );
    assert_eq!(
        gallery.expect(400, Req::get("/v1/artworks?year_min=99999999999")).await.problem(),
        "malformed"
    );
    assert_eq!(gallery.expect(422, Req::get("/v1/artworks?limit=5000")).await.fields(), ["limit"]);
    assert_eq!(
        gallery.expect(422, Req::get("/v1/artworks?cursor=bm9wZQ")).await.fields(),
        ["cursor"]
    );
    assert_eq!(
        gallery.expect(422, Req::get("/v1/artworks?year_min=2020&year_max=2000")).await.fields(),
        ["year_min"]
    );
    assert_eq!(
        gallery.expect(422, Req::get("/v1/artworks?currency=ZZZ")).await.fields(),
        ["currency"]
    );
    assert_eq!(gallery.expect(422, Req::get("/v1/artworks?medium=%00")).await.fields(), ["medium"]);
}

#[tokio::test]
async fn the_payload_hash_is_required_on_the_deployed_path_and_locally() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Ada").await;
    let unsigned = Req::new("POST", "/v1/me/artworks")
        .token(&token)
        .json(&json!({ "title": "x" }))
        .without("x-amz-content-sha256");
    // Through CloudFront, Lambda refuses it before the function runs.
    assert_eq!(gallery.send(unsigned.clone()).await.status, 403);
    let lying = unsigned.clone().header("x-amz-content-sha256", &super::hex(b"something else"));
    assert_eq!(gallery.send(lying.clone()).await.status, 403);
    // The local server (the same router, reached directly) holds clients to the same contract.
    for req in [unsigned, lying] {
        let mut builder = axum::http::Request::builder().method("POST").uri(&req.path);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let response = api::router(gallery.state.clone())
            .oneshot(builder.body(Body::from(req.body.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert!(body["detail"].as_str().unwrap().contains("x-amz-content-sha256"), "{body}");
    }
}

#[tokio::test]
async fn writes_beyond_the_rate_are_told_when_to_retry() {
    let ctx = TestContext::new().await;
    let mut config_state = ctx.api_state();
    std::sync::Arc::get_mut(&mut config_state).unwrap().write_limiter = api_limiter(2);
    let gallery = Gallery::with_state(config_state);
    let (_, token) = ctx.artist_with_token("Busy").await;
    let create =
        |t: &str| Req::new("POST", "/v1/me/artworks").token(&token).json(&json!({ "title": t }));
    gallery.expect(201, create("one")).await;
    gallery.expect(201, create("two")).await;
    let limited = gallery.expect(429, create("three")).await;
    assert_eq!(limited.problem(), "too-many-requests");
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    gallery.expect(200, Req::get("/v1/me").token(&token)).await;
}

/// Token guessing is bounded per instance: past the budget of lookups of
/// tokens the instance has not seen succeed, a request is 429 before the
/// database is asked, and a token that did succeed is not held up.
#[tokio::test]
async fn token_guessing_is_bounded_and_known_tokens_pass() {
    let ctx = TestContext::new().await;
    let mut state = ctx.api_state();
    std::sync::Arc::get_mut(&mut state).unwrap().token_guard = api::TokenGuard::per_minute(4);
    let gallery = Gallery::with_state(state);
    let (_, token) = ctx.artist_with_token("Known").await;
    gallery.expect(200, Req::get("/v1/me").token(&token)).await;
    let guess = || Req::get("/v1/me").token(&shared::domain::new_token().0);
    for _ in 0..3 {
        gallery.expect(401, guess()).await;
    }
    let limited = gallery.expect(429, guess()).await;
    assert_eq!(limited.problem(), "too-many-requests");
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    gallery.expect(200, Req::get("/v1/me").token(&token)).await;
}

fn api_limiter(per_minute: u32) -> api::RateLimiter {
    api::RateLimiter::per_minute(per_minute)
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after_not_a_500() {
    let ctx = TestContext::new().await;
    let port = crate::support::closed_port();
    let down = shared::config::DbConfig {
        port,
        connect_timeout: std::time::Duration::from_secs(1),
        ..ctx.db.clone()
    };
    let mut state = ctx.api_state();
    std::sync::Arc::get_mut(&mut state).unwrap().pool =
        shared::db::pool(&down, &ctx.stack.app_password).unwrap();
    let gallery = Gallery::with_state(state);
    for req in
        [Req::get("/v1/artworks"), Req::get("/v1/health"), Req::get("/v1/me").token("cpg_anything")]
    {
        let reply = gallery.expect(503, req).await;
        assert_eq!(reply.problem(), "unavailable");
        assert!(reply.header("retry-after").is_some());
    }
}

/// Every write of the document, from its rightful caller, × every class of
/// bad request it can get: each answers its documented problem and nothing
/// is written.
#[tokio::test]
async fn every_write_refuses_every_class_of_bad_request_and_writes_nothing() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let owner = published(&ctx, &gallery, "Owner", "Owned Work").await;
    let admin = ctx.admin_token().await;
    let (token_id, _) =
        ctx.token_for(owner.artist, chrono::Utc::now() + chrono::Duration::hours(1)).await;
    gallery.expect(200, Req::get("/v1/me").token(&owner.token)).await;
    gallery.expect(200, Req::get("/v1/admin/artists").token(&admin)).await;
    let sale = super::matrix::sold_print(&gallery, &owner).await;
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;
    let mut checked = 0;
    for (method, template, op) in super::spec::operations() {
        if method == "GET" || !super::spec::secured(op) {
            continue;
        }
        let token = if template.starts_with("/v1/admin") { &admin } else { &owner.token };
        let path = super::matrix::fill_with(&template, &owner, owner.artist, token_id, &sale);
        let base = || Req::new(&method, &path).token(token);
        let conditional =
            op["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "If-Match"));
        let valid = super::matrix::valid_body(&method, &template);
        if op.get("requestBody").is_some() {
            let expect = |status: u16, problem: &'static str, req: Req| {
                let gallery = &gallery;
                let shown = format!("{method} {template}");
                async move {
                    let reply = gallery.send(req.if_match("\"x\"")).await;
                    assert_eq!(
                        (reply.status, reply.problem()),
                        (status, problem),
                        "{shown}: {reply:?}"
                    );
                }
            };
            expect(400, "malformed", base().raw(b"{,}".to_vec(), "application/json")).await;
            expect(415, "unsupported-media-type", base().raw(b"{}".to_vec(), "text/plain")).await;
            expect(
                413,
                "too-large",
                base().json(&json!({ "padding": "p".repeat(api::BODY_LIMIT) })),
            )
            .await;
            expect(422, "invalid", base().json(&json!({ "no_such_field": 1 }))).await;
            expect(422, "invalid", base().json(&json!(42))).await;
            checked += 5;
        }
        if conditional {
            let with_body = |req: Req| match &valid {
                Some(body) => req.json(body),
                None if method == "POST" => req.empty_body(),
                None => req,
            };
            assert_eq!(
                gallery.expect(428, with_body(base())).await.problem(),
                "precondition-required",
                "{method} {template}"
            );
            assert_eq!(
                gallery.expect(412, with_body(base()).if_match("\"stale\"")).await.problem(),
                "precondition-failed",
                "{method} {template}"
            );
            checked += 2;
        }
    }
    assert!(checked > 60, "{checked}");
    assert_eq!(snapshot(&client).await, before, "no bad request wrote anything");
}

/// Values that once reached PostgreSQL and came back as a 500 (or as the
/// wrong problem): each is now refused with its field named, and nothing is written.
#[tokio::test]
async fn values_the_database_cannot_hold_are_refused_before_it() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let admin = ctx.admin_token().await;
    gallery.expect(200, Req::get("/v1/admin/artists").token(&admin)).await;
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;

    assert_eq!(gallery.expect(404, Req::get("/v1/artworks/%00")).await.problem(), "not-found");
    assert_eq!(gallery.expect(404, Req::get("/v1/artworks/a%00b")).await.problem(), "not-found");
    let ancient = "LTMwMDAwMDAwMDAwMDAwMDAwMC4wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMQ";
    assert_eq!(
        gallery.expect(422, Req::get(&format!("/v1/artworks?cursor={ancient}"))).await.fields(),
        ["cursor"]
    );
    for field in ["since", "until"] {
        let uri = format!("/v1/admin/audit?{field}=-9999-01-01T00:00:00Z");
        assert_eq!(gallery.expect(422, Req::get(&uri).token(&admin)).await.fields(), [field]);
    }
    let artist = |name: &str, website: &str| {
        Req::new("POST", "/v1/admin/artists")
            .token(&admin)
            .json(&json!({ "name": name, "email": "ada@copper.example", "website": website }))
    };
    // The table wants the scheme in lower case; this was a 409 about overselling.
    assert_eq!(gallery.expect(422, artist("Ada", "HTTPS://a.example")).await.fields(), ["website"]);
    for name in ["Ada\u{200B}", "Ada\u{2028}Lovelace", "Ada\u{E0041}"] {
        assert_eq!(
            gallery.expect(422, artist(name, "https://a.example")).await.fields(),
            ["name"],
            "{name:?}"
        );
    }
    assert_eq!(snapshot(&client).await, before, "nothing was written");
}

/// The body limit admits every documented maximum, in the costliest legal
/// encoding: a 20,000-character description of astral-plane characters sent
/// as JSON escapes (240 KB).
#[tokio::test]
async fn the_longest_description_in_the_costliest_encoding_fits_the_body_limit() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Palette Artist").await;
    let description = "\\ud83c\\udfa8".repeat(20_000);
    let body = format!("{{\"title\":\"Palette\",\"description\":\"{description}\"}}");
    assert!(body.len() > 64 * 1024);
    let create = Req::new("POST", "/v1/me/artworks").token(&token);
    let reply = gallery.expect(201, create.raw(body.into_bytes(), "application/json")).await;
    assert_eq!(reply.body["description"].as_str().unwrap().chars().count(), 20_000);
}
