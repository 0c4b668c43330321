//! The API through its router, as the function URL delivers requests.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::TestContext;

async fn call(state: &api::State, req: Request<Body>) -> (StatusCode, String, Value) {
    let response = api::router(state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    (status, content_type, body)
}

fn json_request(method: &str, uri: &str, token: Option<&str>, body: Value) -> Request<Body> {
    let mut builder =
        Request::builder().method(method).uri(uri).header("content-type", "application/json").header("x-request-id", "test-request-1");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn health_reports_the_database() {
    let ctx = TestContext::new().await;
    let (status, _, body) = call(&ctx.api_state(), get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn writes_need_a_live_token_and_say_so_in_problem_json() {
    let ctx = TestContext::new().await;
    let state = ctx.api_state();
    for token in [None, Some("cpg_wrong"), Some("not-even-our-format")] {
        let (status, content_type, body) = call(&state, json_request("POST", "/artworks", token, json!({ "title": "X" }))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], 401);
        assert_eq!(body["request_id"], "test-request-1");
        assert_eq!(body["instance"], "/artworks");
    }
    // A revoked token is as good as none.
    let (_, token) = ctx.artist_with_token("Revoked").await;
    let client = ctx.pool.get().await.unwrap();
    client.execute("UPDATE api_tokens SET revoked_at = now()", &[]).await.unwrap();
    let (status, _, _) = call(&state, json_request("POST", "/artworks", Some(&token), json!({ "title": "X" }))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_artist_creates_publishes_and_the_public_sees_it() {
    let ctx = TestContext::new().await;
    let state = ctx.api_state();
    let (_, token) = ctx.artist_with_token("Ada Copper").await;

    let (status, _, created) = call(
        &state,
        json_request("POST", "/artworks", Some(&token), json!({ "title": "Copper Sunrise", "medium": "Etching", "year": 2026 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["slug"], "copper-sunrise");
    assert_eq!(created["status"], "draft");
    let id = created["id"].as_str().unwrap().to_owned();

    // Drafts are not public.
    let (status, content_type, _) = call(&state, get("/artworks/copper-sunrise")).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));

    let (status, _, edition) = call(
        &state,
        json_request(
            "POST",
            &format!("/manage/artworks/{id}/editions"),
            Some(&token),
            json!({ "edition_size": 25, "paper": "Cotton Rag", "price_minor": 18000, "currency": "EUR" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{edition}");
    let (status, _, published) =
        call(&state, json_request("PATCH", &format!("/manage/artworks/{id}"), Some(&token), json!({ "status": "published" }))).await;
    assert_eq!(status, StatusCode::OK, "{published}");

    let (status, _, page) = call(&state, get("/artworks")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["artworks"][0]["slug"], "copper-sunrise");
    assert_eq!(page["artworks"][0]["artist_name"], "Ada Copper");
    assert!(page["artworks"][0].get("email").is_none(), "no personal data in public reads");
    let (status, _, detail) = call(&state, get("/artworks/copper-sunrise")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["editions"][0]["edition_size"], 25);

    // Every write left an audit entry carrying the request id.
    let client = ctx.pool.get().await.unwrap();
    let actions: Vec<String> =
        crate::support::strings(&client, "SELECT action FROM audit_log WHERE request_id = 'test-request-1' ORDER BY id").await;
    assert_eq!(actions, ["artwork.create", "edition.create", "artwork.status"]);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let ctx = TestContext::new().await;
    let state = ctx.api_state();
    let (_, token) = ctx.artist_with_token("Careful Artist").await;

    let (status, content_type, body) =
        call(&state, json_request("POST", "/artworks", Some(&token), json!({ "title": "", "year": 12, "slug": "Not A Slug" }))).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"));
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["title", "slug", "year"]);

    let raw = Request::builder()
        .method("POST")
        .uri("/artworks")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, content_type, body) = call(&state, raw).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"));
    assert!(body["detail"].as_str().unwrap().contains("not valid"), "{body}");

    let (status, _, _) = call(&state, json_request("POST", "/artworks", Some(&token), json!({ "title": "A", "unknown": 1 }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    call(&state, json_request("POST", "/artworks", Some(&token), json!({ "title": "Twice" }))).await;
    let (status, _, body) = call(&state, json_request("POST", "/artworks", Some(&token), json!({ "title": "Twice" }))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("twice"), "{body}");

    let (status, _, _) = call(&state, get("/artworks?limit=5000")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = call(&state, get("/manage/artworks/not-a-uuid")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&state, get("/no/such/route")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn artists_cannot_touch_each_others_work() {
    let ctx = TestContext::new().await;
    let state = ctx.api_state();
    let (_, owner) = ctx.artist_with_token("Owner").await;
    let (_, other) = ctx.artist_with_token("Other").await;
    let (_, _, created) = call(&state, json_request("POST", "/artworks", Some(&owner), json!({ "title": "Mine" }))).await;
    let id = created["id"].as_str().unwrap();
    for (method, uri, body) in [
        ("PATCH", format!("/manage/artworks/{id}"), json!({ "status": "published" })),
        ("DELETE", format!("/manage/artworks/{id}"), json!({})),
        ("POST", format!("/manage/artworks/{id}/images"), json!({ "file_name": "x.jpg" })),
    ] {
        let (status, _, _) = call(&state, json_request(method, &uri, Some(&other), body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
    }
}

#[tokio::test]
async fn a_function_url_event_is_served_by_the_same_router() {
    let ctx = TestContext::new().await;
    let event: lambda_http::request::LambdaRequest =
        serde_json::from_str(include_str!("../../events/function-url-get-artworks.json")).unwrap();
    let request: lambda_http::Request = event.into();
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, Body::from(body.to_vec()));
    let (status, _, body) = call(&ctx.api_state(), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["artworks"].is_array());
}
