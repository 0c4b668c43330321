//! The catalogue features of API v1.1: search, sorted lists with keyset
//! cursors, retired slugs that still lead to their work, sales as numbered
//! rows, and alt text required to publish.

use serde_json::{json, Value};

use super::{
    change_status, draft_with_edition, mark_ready, published, published_with_token, snapshot,
    Gallery, Req, ViewerReply,
};
use crate::support::TestContext;

fn slugs(reply: &ViewerReply) -> Vec<String> {
    reply.body["artworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `path` (which has no query string of its own beyond `?…`),
/// `limit` at a time, following `next_cursor`.
async fn every_page(gallery: &Gallery, path: &str, limit: u32) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = gallery.expect(200, Req::get(&url)).await;
        out.extend(slugs(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
        assert!(out.len() < 100, "paging does not end: {out:?}");
    }
}

async fn patch_artwork(gallery: &Gallery, token: &str, artwork: &str, body: Value) -> ViewerReply {
    let path = format!("/v1/manage/artworks/{artwork}");
    let etag = gallery.expect(200, Req::get(&path).token(token)).await.etag();
    gallery.send(Req::new("PATCH", &path).token(token).if_match(&etag).json(&body)).await
}

/// Search folds accents and case, matches the artist's name, ranks title
/// matches first, and pages by rank without skipping or repeating.
#[tokio::test]
async fn search_finds_works_by_title_artist_medium_and_description_accents_folded() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let zoe = published(&ctx, &gallery, "Zoë Brûlé", "Harbour at Dawn").await;
    let (_, bo) = ctx.artist_with_token("Bo Etcher").await;
    let (cliffs, _) = published_with_token(&ctx, &gallery, &bo, "Cliffs").await;
    patch_artwork(
        &gallery,
        &bo,
        &cliffs,
        json!({ "description": "A harbour seen from the cliffs", "medium": "Mezzotint" }),
    )
    .await;
    published_with_token(&ctx, &gallery, &bo, "Meadow").await;

    let by_artist = gallery.expect(200, Req::get("/v1/artworks?q=zoe%20brule")).await;
    assert_eq!(slugs(&by_artist), [zoe.slug.as_str()], "accents and case fold");
    // Title (weight A) outranks description (weight C).
    let harbour = gallery.expect(200, Req::get("/v1/artworks?q=harbours")).await;
    assert_eq!(slugs(&harbour), [zoe.slug.clone(), "cliffs".to_owned()], "{:?}", harbour.body);
    let medium = gallery.expect(200, Req::get("/v1/artworks?q=mezzotint")).await;
    assert_eq!(slugs(&medium), ["cliffs"]);
    let excluded = gallery.expect(200, Req::get("/v1/artworks?q=harbour%20-cliffs")).await;
    assert_eq!(slugs(&excluded), [zoe.slug.as_str()], "websearch syntax");
    assert_eq!(every_page(&gallery, "/v1/artworks?q=harbour", 1).await, slugs(&harbour));
    // Search is cacheable at the edge like every public read.
    assert!(harbour.header("cache-control").unwrap().contains("public"));

    for bad in ["", "%00", &"w".repeat(201), "a%E2%80%A8b"] {
        let reply = gallery.expect(422, Req::get(&format!("/v1/artworks?q={bad}"))).await;
        assert_eq!(reply.fields(), ["q"], "{bad}: {:?}", reply.body);
    }
    let no_search = gallery.expect(422, Req::get("/v1/artworks?sort=relevance")).await;
    assert_eq!(no_search.fields(), ["sort"]);
}

/// Every order pages through the whole list with a small page size and gets
/// exactly the full list's order; a cursor of one order is refused by another.
#[tokio::test]
async fn every_sort_order_pages_stably_with_keyset_cursors() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Ada Copper").await;
    let mut works = Vec::new();
    for (title, year, price) in [
        ("Birch", Some(1990), 5000),
        ("alder", Some(2001), 5000),
        ("Cedar", None, 1200),
        ("Dogwood", Some(2001), 90000),
        ("Elm", Some(1875), 1200),
    ] {
        let (artwork, slug) = published_with_token(&ctx, &gallery, &token, title).await;
        patch_artwork(&gallery, &token, &artwork, json!({ "year": year })).await;
        let editions = format!("/v1/manage/artworks/{artwork}/editions");
        let body =
            json!({ "edition_size": 5, "paper": "Rag", "price_minor": price, "currency": "GBP" });
        gallery.expect(201, Req::new("POST", &editions).token(&token).json(&body)).await;
        works.push(slug);
    }
    let expected = |order: &[&str]| order.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases = [
        ("sort=title", expected(&["alder", "birch", "cedar", "dogwood", "elm"])),
        ("sort=year_asc", expected(&["elm", "birch", "alder", "dogwood", "cedar"])),
        ("sort=year_desc", expected(&["alder", "dogwood", "birch", "elm", "cedar"])),
        ("sort=price_asc&currency=GBP", expected(&["cedar", "elm", "alder", "birch", "dogwood"])),
        ("sort=price_desc&currency=GBP", expected(&["dogwood", "birch", "alder", "elm", "cedar"])),
        ("sort=newest", works.iter().rev().cloned().collect()),
    ];
    for (query, order) in &cases {
        let path = format!("/v1/artworks?{query}");
        let whole = gallery.expect(200, Req::get(&path)).await;
        // Ties (same year, same price) are broken by id: compare sets of tied
        // works by checking the full list against itself paged, and the
        // untied positions against the expectation.
        let all = slugs(&whole);
        assert_eq!(all.len(), 5, "{query}: {all:?}");
        for (i, slug) in order.iter().enumerate() {
            let tied = matches!(
                (*query, slug.as_str()),
                ("sort=year_asc" | "sort=year_desc", "alder" | "dogwood")
                    | (
                        "sort=price_asc&currency=GBP" | "sort=price_desc&currency=GBP",
                        "alder" | "birch" | "cedar" | "elm"
                    )
            );
            if !tied {
                assert_eq!(&all[i], slug, "{query}: {all:?}");
            }
        }
        for limit in [1, 2, 3] {
            assert_eq!(every_page(&gallery, &path, limit).await, all, "{query} by {limit}");
        }
    }
    let title_page = gallery.expect(200, Req::get("/v1/artworks?sort=title&limit=1")).await;
    let cursor = title_page.body["next_cursor"].as_str().unwrap();
    let wrong =
        gallery.expect(422, Req::get(&format!("/v1/artworks?sort=year_asc&cursor={cursor}"))).await;
    assert_eq!(wrong.fields(), ["cursor"]);
    let priced = gallery.expect(422, Req::get("/v1/artworks?sort=price_asc")).await;
    assert_eq!(priced.fields(), ["currency"]);
    let unknown = gallery.send(Req::get("/v1/artworks?sort=cheapest")).await;
    assert!(matches!(unknown.status, 400 | 422), "{unknown:?}");
}

/// A published work's old slug answers 301 to its current one, stays its own
/// (no other work may take it and hijack shared links), and the work may take
/// it back.
#[tokio::test]
async fn a_retired_slug_redirects_to_its_work_and_stays_reserved() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Harbour").await;
    let renamed =
        patch_artwork(&gallery, &work.token, &work.artwork, json!({ "slug": "harbour-at-dawn" }))
            .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    let moved = gallery.expect(301, Req::get(&format!("/v1/artworks/{}", work.slug))).await;
    assert_eq!(moved.header("location"), Some("/v1/artworks/harbour-at-dawn"));
    assert!(moved.header("cache-control").unwrap().contains("public"));
    gallery.expect(200, Req::get("/v1/artworks/harbour-at-dawn")).await;

    // Nobody else may take the retired slug, at creation or by an edit.
    let (_, bo) = ctx.artist_with_token("Bo Etcher").await;
    let taken = gallery
        .expect(
            409,
            Req::new("POST", "/v1/me/artworks")
                .token(&bo)
                .json(&json!({ "title": "x", "slug": work.slug })),
        )
        .await;
    assert_eq!(taken.problem(), "conflict");
    // The work itself may go back to it; the redirect then goes the other way.
    let back =
        patch_artwork(&gallery, &work.token, &work.artwork, json!({ "slug": work.slug })).await;
    assert_eq!(back.status, 200, "{back:?}");
    gallery.expect(200, Req::get(&format!("/v1/artworks/{}", work.slug))).await;
    let other = gallery.expect(301, Req::get("/v1/artworks/harbour-at-dawn")).await;
    assert_eq!(other.header("location"), Some(format!("/v1/artworks/{}", work.slug).as_str()));

    // A slug a draft had was never public: nothing to keep.
    let created = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(&bo)
                .json(&json!({ "title": "Draft", "slug": "draft-one" })),
        )
        .await;
    patch_artwork(&gallery, &bo, &created.id(), json!({ "slug": "draft-two" })).await;
    gallery.expect(404, Req::get("/v1/artworks/draft-one")).await;
    gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(&work.token)
                .json(&json!({ "title": "y", "slug": "draft-one" })),
        )
        .await;
}

/// Each print sold has a number and the price of the moment; a void keeps the
/// sale with its reason and frees the number; the size never goes below the
/// highest number sold.
#[tokio::test]
async fn sales_are_numbered_rows_that_can_be_voided_with_a_reason() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Numbered").await;
    let sell = |body: Value| {
        Req::new("POST", &format!("/v1/manage/editions/{}/sales", work.edition))
            .token(&work.token)
            .json(&body)
    };
    let first =
        gallery.expect(200, sell(json!({ "count": 2, "external_ref": "order-1001" }))).await;
    let numbers = |reply: &ViewerReply| -> Vec<i64> {
        reply.body["sales"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["print_number"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(numbers(&first), [1, 2]);
    assert_eq!(first.body["sold_count"], 2, "the edition's fields are still in the answer");
    assert_eq!(first.body["sales"][0]["price_minor"], 18000);
    assert_eq!(first.body["sales"][0]["external_ref"], "order-1001");
    let sale_one = first.body["sales"][0]["id"].as_str().unwrap().to_owned();

    // The price changes; sold prints keep theirs.
    let edition = format!("/v1/manage/editions/{}", work.edition);
    let etag = gallery.expect(200, Req::get(&edition).token(&work.token)).await.etag();
    gallery
        .expect(
            200,
            Req::new("PATCH", &edition)
                .token(&work.token)
                .if_match(&etag)
                .json(&json!({ "price_minor": 25000 })),
        )
        .await;

    let void = |id: &str, body: Value| {
        Req::new("POST", &format!("/v1/manage/sales/{id}/void")).token(&work.token).json(&body)
    };
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;
    for bad in [
        json!({}),
        json!({ "reason": "" }),
        json!({ "reason": "a\nb" }),
        json!({ "reason": "x".repeat(501) }),
    ] {
        let reply = gallery.send(void(&sale_one, bad.clone())).await;
        assert!(matches!(reply.status, 400 | 422), "{bad}: {reply:?}");
    }
    assert_eq!(snapshot(&client).await, before, "a refused void writes nothing");
    let (_, stranger) = ctx.artist_with_token("Bo Etcher").await;
    let foreign = Req::new("POST", &format!("/v1/manage/sales/{sale_one}/void"))
        .token(&stranger)
        .json(&json!({ "reason": "not mine" }));
    gallery.expect(404, foreign).await;

    let voided = gallery.expect(200, void(&sale_one, json!({ "reason": "recorded twice" }))).await;
    assert_eq!(voided.body["void_reason"], "recorded twice");
    gallery.expect(409, void(&sale_one, json!({ "reason": "again" }))).await;
    // Number 1 is for sale again, at today's price.
    let again = gallery.expect(200, sell(json!({}))).await;
    assert_eq!(numbers(&again), [1]);
    assert_eq!(again.body["sales"][0]["price_minor"], 25000);
    let list = gallery.expect(200, Req::get(&format!("{edition}/sales")).token(&work.token)).await;
    let rows: Vec<(i64, bool)> = list.body["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["print_number"].as_i64().unwrap(), s["voided_at"].is_string()))
        .collect();
    assert_eq!(rows, [(1, true), (1, false), (2, false)]);

    // Sold out (3 of 3): the size may only be corrected, never below print 3… after
    // voiding print 2, the highest number sold is still 3.
    let third = gallery.expect(200, sell(json!({}))).await;
    assert_eq!(numbers(&third), [3]);
    let two = again.body["sales"][0]["id"].as_str().unwrap().to_owned();
    let _ = two;
    let second = list.body["sales"][2]["id"].as_str().unwrap().to_owned();
    gallery.expect(200, void(&second, json!({ "reason": "returned" }))).await;
    let etag = gallery.expect(200, Req::get(&edition).token(&work.token)).await.etag();
    let shrink = gallery
        .expect(
            422,
            Req::new("PATCH", &edition)
                .token(&work.token)
                .if_match(&etag)
                .json(&json!({ "edition_size": 2, "correction_reason": "miscounted" })),
        )
        .await;
    assert_eq!(shrink.fields(), ["edition_size"]);
    let audit = strings_of(
        &ctx,
        "SELECT action FROM audit_log WHERE action LIKE 'edition.sale%' ORDER BY id",
    )
    .await;
    assert_eq!(
        audit,
        ["edition.sale", "edition.sale_void", "edition.sale", "edition.sale", "edition.sale_void"]
    );
}

async fn strings_of(ctx: &TestContext, sql: &str) -> Vec<String> {
    crate::support::strings(&ctx.pool.get().await.unwrap(), sql).await
}

/// Concurrent sales never give two live sales one print number.
#[tokio::test]
async fn concurrent_sales_get_distinct_print_numbers() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Ada Copper", "Busy").await;
    let editions = format!("/v1/manage/artworks/{}/editions", work.artwork);
    let big = gallery
        .expect(
            201,
            Req::new("POST", &editions)
                .token(&work.token)
                .json(&json!({ "edition_size": 40, "paper": "Rag", "price_minor": 100, "currency": "EUR" })),
        )
        .await
        .id();
    let sales = (0..12).map(|_| {
        gallery.send(
            Req::new("POST", &format!("/v1/manage/editions/{big}/sales"))
                .token(&work.token)
                .json(&json!({ "count": 3 })),
        )
    });
    let replies = futures_util::future::join_all(sales).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    let mut numbers: Vec<i64> = replies
        .iter()
        .flat_map(|r| {
            r.body["sales"].as_array().unwrap().iter().map(|s| s["print_number"].as_i64().unwrap())
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=36).collect::<Vec<_>>());
}

/// A work is published only when every image it shows is described; a
/// published work takes new images only with alt text, which the public sees.
#[tokio::test]
async fn alt_text_is_required_to_publish_and_shown_to_the_public() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (_, token) = ctx.artist_with_token("Ada Copper").await;
    let edition =
        json!({ "edition_size": 3, "paper": "Rag", "price_minor": 100, "currency": "EUR" });
    let (artwork, slug) = draft_with_edition(&gallery, &token, "Undescribed", edition).await;
    let images = format!("/v1/manage/artworks/{artwork}/images");
    let upload = gallery
        .expect(201, Req::new("POST", &images).token(&token).json(&json!({ "file_name": "a.jpg" })))
        .await;
    let image = upload.body["image"]["id"].as_str().unwrap().to_owned();
    mark_ready(&ctx, &image).await;
    let refused = change_status(&gallery, &token, &artwork, "publish").await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(refused.body["detail"].as_str().unwrap().contains("alt text"), "{:?}", refused.body);

    let image_path = format!("/v1/manage/images/{image}");
    let image_etag = gallery.expect(200, Req::get(&image_path).token(&token)).await.etag();
    for bad in [
        json!({ "alt_text": "" }),
        json!({ "alt_text": "a\u{2028}b" }),
        json!({ "alt_text": null }),
        json!({ "alt": "x" }),
    ] {
        let reply = gallery
            .send(Req::new("PATCH", &image_path).token(&token).if_match(&image_etag).json(&bad))
            .await;
        assert!(matches!(reply.status, 400 | 422), "{bad}: {reply:?}");
    }
    gallery
        .expect(
            200,
            Req::new("PATCH", &image_path)
                .token(&token)
                .if_match(&image_etag)
                .json(&json!({ "alt_text": "A harbour at dawn, etched in copper" })),
        )
        .await;
    assert_eq!(change_status(&gallery, &token, &artwork, "publish").await.status, 200);
    let page = gallery.expect(200, Req::get(&format!("/v1/artworks/{slug}"))).await;
    assert_eq!(page.body["images"][0]["alt"], "A harbour at dawn, etched in copper");
    let list = gallery.expect(200, Req::get("/v1/artworks")).await;
    assert_eq!(list.body["artworks"][0]["image"]["alt"], "A harbour at dawn, etched in copper");

    let undescribed = gallery
        .expect(422, Req::new("POST", &images).token(&token).json(&json!({ "file_name": "b.jpg" })))
        .await;
    assert_eq!(undescribed.fields(), ["alt_text"]);
}
