//! The API as clients reach it once deployed: through CloudFront with origin
//! access control into the function URL (`cloudfront.rs`), every answer
//! checked against the served OpenAPI document (`spec.rs`).

mod catalogue;
mod cloudfront;
mod errors;
mod flows;
mod hostile;
mod matrix;
mod media;
mod pagination;
mod spec;

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::TestContext;

/// One request as a viewer (browser, phone, script) sends it to CloudFront.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            headers: vec![("x-request-id".into(), "test-request-1".into())],
            body: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn token(self, token: &str) -> Self {
        self.header(api::TOKEN_HEADER, token)
    }

    pub fn if_match(self, etag: &str) -> Self {
        self.header("if-match", etag)
    }

    /// A JSON body, with the content type and the payload hash the contract asks for.
    pub fn json(self, body: &Value) -> Self {
        self.raw(body.to_string().into_bytes(), "application/json")
    }

    pub fn raw(mut self, body: Vec<u8>, content_type: &str) -> Self {
        self.body = body;
        let sha = hex(&self.body);
        self.header("content-type", content_type).header("x-amz-content-sha256", &sha)
    }

    /// A POST without a body still names the empty body's hash.
    pub fn empty_body(self) -> Self {
        let sha = hex(b"");
        self.header("x-amz-content-sha256", &sha)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What came back.
#[derive(Debug)]
pub struct ViewerReply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl ViewerReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn etag(&self) -> String {
        self.header("etag").unwrap_or_else(|| panic!("no ETag: {self:?}")).to_owned()
    }

    /// The last segment of a problem's `type` URI.
    pub fn problem(&self) -> &str {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix(api::PROBLEM_BASE))
            .unwrap_or_else(|| panic!("no problem type: {self:?}"))
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("no id: {self:?}")).to_owned()
    }

    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// The API of one test, reached the deployed way. Every reply is checked
/// against the OpenAPI document before the test sees it.
pub struct Gallery {
    pub state: api::SharedState,
    router: axum::Router,
}

impl Gallery {
    pub fn new(ctx: &TestContext) -> Self {
        Self::with_state(ctx.api_state())
    }

    pub fn with_state(state: api::SharedState) -> Self {
        let router = api::router(state.clone());
        Self { state, router }
    }

    pub async fn send(&self, req: Req) -> ViewerReply {
        let reply = self.deliver(&req).await;
        spec::check_reply(&req, &reply);
        reply
    }

    /// Sends without checking the reply against the document.
    pub async fn deliver(&self, req: &Req) -> ViewerReply {
        cloudfront::deliver(&self.state, self.router.clone(), req).await
    }

    /// Sends and insists on `status`, showing the reply otherwise.
    pub async fn expect(&self, status: u16, req: Req) -> ViewerReply {
        let shown = format!("{} {}", req.method, req.path);
        let reply = self.send(req).await;
        assert_eq!(reply.status, status, "{shown}: {reply:?}");
        reply
    }
}

/// Everything a write could change, as one digest per table: a refused
/// request must leave every one of them as it was.
pub async fn snapshot(client: &deadpool_postgres::Object) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for table in [
        "artists",
        "artworks",
        "print_editions",
        "print_sales",
        "artwork_slugs",
        "images",
        "api_tokens",
        "audit_log",
        "idempotency_keys",
    ] {
        let sql = format!(
            "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
        );
        out.insert(table, client.query_one(&sql, &[]).await.unwrap().get::<_, String>(0));
    }
    out
}

/// A published artwork with a ready image and an edition, made through the
/// API (the image's processing stands in for the processor's own test).
pub struct Published {
    pub artist: uuid::Uuid,
    pub token: String,
    pub artwork: String,
    pub slug: String,
    pub edition: String,
    pub image: String,
}

pub async fn published(ctx: &TestContext, gallery: &Gallery, name: &str, title: &str) -> Published {
    let (artist, token) = ctx.artist_with_token(name).await;
    let (artwork, slug) = published_with_token(ctx, gallery, &token, title).await;
    let editions = gallery
        .expect(200, Req::get(&format!("/v1/manage/artworks/{artwork}/editions")).token(&token))
        .await;
    let images = gallery
        .expect(200, Req::get(&format!("/v1/manage/artworks/{artwork}/images")).token(&token))
        .await;
    let edition = editions.body["editions"][0]["id"].as_str().unwrap().to_owned();
    let image = images.body["images"][0]["id"].as_str().unwrap().to_owned();
    Published { artist, token, artwork, slug, edition, image }
}

/// Records renditions for an image as the processor would, and stores them
/// as it does: private until a settle finds the artwork public.
pub async fn mark_ready(ctx: &TestContext, image: &str) {
    let client = ctx.pool.get().await.unwrap();
    let id: uuid::Uuid = image.parse().unwrap();
    let row =
        client.query_one("SELECT artwork_id FROM images WHERE id = $1", &[&id]).await.unwrap();
    let artwork: uuid::Uuid = row.get(0);
    client.execute("UPDATE images SET status = 'processing' WHERE id = $1", &[&id]).await.unwrap();
    let renditions = [400u32, 1600]
        .map(|edge| shared::domain::RenditionRecord {
            format: "jpeg".into(),
            long_edge: edge,
            width: edge,
            height: edge * 3 / 4,
            bytes: 1000,
            sha256: "a".repeat(64),
            key: shared::domain::rendition_key(artwork, id, edge, "jpg"),
        })
        .to_vec();
    let store = shared::aws::storage::ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let tagging = shared::media::initial_tagging();
    for r in &renditions {
        let meta = shared::aws::storage::ObjectMeta {
            content_type: "image/jpeg",
            cache_control: Some(shared::media::RENDITION_CACHE_CONTROL),
            tags: Some(&tagging),
        };
        store
            .put_with(
                &ctx.storage.processed_bucket,
                &r.key,
                format!("jpeg {}", r.key).into_bytes(),
                &meta,
            )
            .await
            .unwrap();
    }
    assert!(shared::db::mark_image_ready(&client, id, &renditions, &"b".repeat(64)).await.unwrap());
}

/// A draft artwork with one edition (`edition`'s fields); returns (artwork
/// id, slug).
pub async fn draft_with_edition(
    gallery: &Gallery,
    token: &str,
    title: &str,
    edition: serde_json::Value,
) -> (String, String) {
    let created = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(token)
                .json(&serde_json::json!({ "title": title })),
        )
        .await;
    let artwork = created.id();
    gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{artwork}/editions"))
                .token(token)
                .json(&edition),
        )
        .await;
    (artwork, created.body["slug"].as_str().unwrap().to_owned())
}

/// Asks for `action` (`publish`, `unpublish`, `archive`) on `artwork` with
/// its current ETag; the answer.
pub async fn change_status(
    gallery: &Gallery,
    token: &str,
    artwork: &str,
    action: &str,
) -> ViewerReply {
    let path = format!("/v1/manage/artworks/{artwork}");
    let etag = gallery.expect(200, Req::get(&path).token(token)).await.etag();
    gallery
        .send(
            Req::new("POST", &format!("{path}/status"))
                .token(token)
                .if_match(&etag)
                .json(&serde_json::json!({ "action": action })),
        )
        .await
}

/// Publishes an artwork for an existing token; returns (artwork id, slug).
pub async fn published_with_token(
    ctx: &TestContext,
    gallery: &Gallery,
    token: &str,
    title: &str,
) -> (String, String) {
    let edition = serde_json::json!({ "edition_size": 3, "paper": "Cotton Rag", "price_minor": 18000, "currency": "EUR" });
    let (artwork, slug) = draft_with_edition(gallery, token, title, edition).await;
    let upload = gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{artwork}/images"))
                .token(token)
                .json(&serde_json::json!({ "file_name": "p.jpg", "alt_text": "A test print" })),
        )
        .await;
    mark_ready(ctx, upload.body["image"]["id"].as_str().unwrap()).await;
    let published = change_status(gallery, token, &artwork, "publish").await;
    assert_eq!(published.status, 200, "{published:?}");
    (artwork, slug)
}
