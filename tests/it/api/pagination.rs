//! Keyset pagination of the public list: stable under ties and under
//! concurrent publishing, and the filters.

use std::collections::HashSet;

use serde_json::Value;

use super::{Gallery, Req};
use crate::support::TestContext;

/// Inserts a published artwork (with a live edition) straight into the database.
async fn publish_raw(
    client: &deadpool_postgres::Object,
    artist: uuid::Uuid,
    slug: &str,
    at: &str,
    price: i64,
    medium: &str,
    year: i32,
) {
    let id = uuid::Uuid::new_v4();
    client
        .execute(
            "INSERT INTO artworks (id, artist_id, title, slug, medium, year, status, published_at) \
             VALUES ($1, $2, $3, $3, $4, $5, 'published', $6::text::timestamptz)",
            &[&id, &artist, &slug, &medium, &year, &at],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO print_editions (id, artwork_id, edition_size, paper, price_minor, currency) VALUES ($1, $2, 5, 'Rag', $3, 'EUR')",
            &[&uuid::Uuid::new_v4(), &id, &price],
        )
        .await
        .unwrap();
}

async fn walk(gallery: &Gallery, query: &str, limit: usize) -> Vec<String> {
    let mut slugs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/artworks?limit={limit}&{query}cursor={c}"),
            None => format!("/v1/artworks?limit={limit}&{query}"),
        };
        let page = gallery.expect(200, Req::get(&path)).await;
        let works = page.body["artworks"].as_array().unwrap();
        assert!(works.len() <= limit);
        slugs.extend(works.iter().map(|w| w["slug"].as_str().unwrap().to_owned()));
        match &page.body["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
        tokio::task::yield_now().await;
    }
    slugs
}

#[tokio::test]
async fn every_published_work_comes_exactly_once_under_ties_and_concurrent_publishing() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (artist, _) = ctx.artist_with_token("Prolific").await;
    let client = ctx.pool.get().await.unwrap();
    let mut existing = HashSet::new();
    for i in 0..45 {
        // Fifteen share each timestamp: the id must break the ties.
        let at = format!("2026-11-0{}T12:00:00Z", 1 + i / 15);
        let slug = format!("tied-{i}");
        publish_raw(&client, artist, &slug, &at, 100, "Etching", 2000).await;
        existing.insert(slug);
    }
    let writer_pool = ctx.pool.clone();
    let writer = tokio::spawn(async move {
        let client = writer_pool.get().await.unwrap();
        for i in 0..30 {
            publish_raw(
                &client,
                artist,
                &format!("new-{i}"),
                &chrono::Utc::now().to_rfc3339(),
                100,
                "Etching",
                2000,
            )
            .await;
            // And one older work unpublished and republished: it moves to the front.
            tokio::task::yield_now().await;
        }
    });
    let seen = walk(&gallery, "", 4).await;
    writer.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no work came twice: {seen:?}");
    for slug in &existing {
        assert!(unique.contains(slug), "{slug} was skipped");
    }
    // Once quiet, a walk sees exactly everything.
    assert_eq!(walk(&gallery, "", 10).await.len(), 75);
}

#[tokio::test]
async fn the_public_list_filters_by_artist_medium_year_price_and_availability() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let (ada, _) = ctx.artist_with_token("Ada").await;
    let (bo, _) = ctx.artist_with_token("Bo").await;
    let client = ctx.pool.get().await.unwrap();
    publish_raw(&client, ada, "a-etching-1990", "2026-11-01T00:00:00Z", 5_000, "Etching", 1990)
        .await;
    publish_raw(&client, ada, "a-litho-2020", "2026-11-02T00:00:00Z", 50_000, "Lithograph", 2020)
        .await;
    publish_raw(&client, bo, "b-etching-2021", "2026-11-03T00:00:00Z", 20_000, "etching", 2021)
        .await;
    client
        .execute(
            "UPDATE print_editions SET sold_count = edition_size WHERE artwork_id = (SELECT id FROM artworks WHERE slug = 'a-litho-2020')",
            &[],
        )
        .await
        .unwrap();
    let slugs = |q: &'static str| {
        let gallery = &gallery;
        async move { walk(gallery, q, 10).await }
    };
    assert_eq!(slugs("medium=ETCHING&").await, ["b-etching-2021", "a-etching-1990"]);
    assert_eq!(slugs("year_min=2000&year_max=2020&").await, ["a-litho-2020"]);
    // a-litho-2020's only edition is sold out: nothing of it is on sale at any price.
    assert_eq!(slugs("price_min=10000&currency=EUR&").await, ["b-etching-2021"]);
    assert_eq!(slugs("price_max=10000&currency=EUR&").await, ["a-etching-1990"]);
    assert_eq!(slugs("available=true&").await, ["b-etching-2021", "a-etching-1990"]);
    assert_eq!(
        walk(&gallery, &format!("artist={ada}&"), 10).await,
        ["a-litho-2020", "a-etching-1990"]
    );
    let profile = gallery.expect(200, Req::get(&format!("/v1/artists/{bo}"))).await;
    assert_eq!(profile.body["artist"]["name"], "Bo");
    assert_eq!(profile.body["artworks"]["artworks"][0]["slug"], "b-etching-2021");
    assert!(profile.body.to_string().find("email").is_none());
}
