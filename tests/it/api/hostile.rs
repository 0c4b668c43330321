//! Every operation of the OpenAPI document, fed hostile values in each of its
//! path, query and body fields in turn (NUL, bidi overrides, overlong, out of
//! range, malformed, the wrong type): never a 5xx, always a problem, and
//! nothing written. The operations come from the document, so a new route is
//! covered the day it is added.

use serde_json::{json, Value};

use super::{published, snapshot, Gallery, Req};
use crate::support::TestContext;

/// Values for path and query parameters, as sent on the wire. A value that
/// starts with `%` is sent as it is (an escape that is not UTF-8).
fn hostile_parameters() -> Vec<String> {
    let mut values: Vec<String> = [
        "\u{0}",
        "a\u{0}b",
        "\u{202E}x",
        "-1",
        "0",
        "99999999999999999999",
        "1e308",
        "NaN",
        "-9999-01-01T00:00:00Z",
        "275760-09-13T00:00:00Z",
        // A cursor whose time PostgreSQL cannot hold.
        "LTMwMDAwMDAwMDAwMDAwMDAwMC4wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMQ",
        "%FF",
        "%C0%80",
        "' OR 1=1 --",
    ]
    .map(str::to_owned)
    .to_vec();
    values.push("x".repeat(3000));
    values
}

/// Values for body fields: none of them is valid for any field.
fn hostile_bodies() -> Vec<Value> {
    vec![
        json!("a\u{0}b"),
        json!("\u{202E}x"),
        json!("x\u{200B}y\u{2028}z"),
        json!(1e308),
        json!(-1),
        json!(true),
        json!({ "nested": 1 }),
        json!([1, 2]),
        json!("x".repeat(70_000)),
    ]
}

fn encode(value: &str) -> String {
    if value.starts_with('%') {
        return value.to_owned();
    }
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn hostile_values_in_every_field_of_every_operation_never_reach_a_5xx() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let work = published(&ctx, &gallery, "Hostile Input", "Under Test").await;
    let admin = ctx.admin_token().await;
    // Tokens record their last use at most once a minute: record it now.
    gallery.expect(200, Req::get("/v1/me").token(&work.token)).await;
    gallery.expect(200, Req::get("/v1/admin/artists").token(&admin)).await;
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;

    let document = serde_json::to_value(api::openapi()).unwrap();
    let real_id = |template: &str| -> String {
        let artist = work.artist.to_string();
        match template {
            t if t.starts_with("/v1/manage/artworks/") => work.artwork.clone(),
            t if t.starts_with("/v1/manage/editions/") => work.edition.clone(),
            t if t.starts_with("/v1/manage/images/") => work.image.clone(),
            t if t.starts_with("/v1/admin/artists/") || t.starts_with("/v1/artists/") => artist,
            t if t.contains("{slug}") => work.slug.clone(),
            _ => uuid::Uuid::nil().to_string(),
        }
    };
    let token_for = |template: &str| -> Option<&str> {
        if template.starts_with("/v1/admin") {
            Some(&admin)
        } else if template.starts_with("/v1/me") || template.starts_with("/v1/manage") {
            Some(&work.token)
        } else {
            None
        }
    };
    let schemas = &document["components"]["schemas"];
    let mut failures = Vec::new();
    let mut sent = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let path_with = |hostile: Option<(&str, &str)>| {
                let mut path = template.clone();
                for p in parameters.iter().filter(|p| p["in"] == "path") {
                    let name = p["name"].as_str().unwrap();
                    let value = match hostile {
                        Some((n, v)) if n == name => encode(v),
                        _ => real_id(template),
                    };
                    path = path.replace(&format!("{{{name}}}"), &value);
                }
                path
            };
            let request = |path: &str| {
                let req = Req::new(&method, path);
                let req = match token_for(template) {
                    Some(t) => req.token(t),
                    None => req,
                };
                match method.as_str() {
                    "POST" | "PUT" | "PATCH" => req.json(&json!({})),
                    _ => req,
                }
            };
            let mut cases: Vec<(String, Req)> = Vec::new();
            for p in &parameters {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                for value in hostile_parameters() {
                    match place {
                        "path" => {
                            let path = path_with(Some((name, &value)));
                            cases.push((format!("path {name}={value:.40?}"), request(&path)));
                        }
                        "query" => {
                            let path = format!("{}?{name}={}", path_with(None), encode(&value));
                            cases.push((format!("query {name}={value:.40?}"), request(&path)));
                        }
                        _ => {}
                    }
                }
            }
            let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            let body_schema = match body_schema["$ref"].as_str() {
                Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
                None => body_schema,
            };
            if let Some(properties) = body_schema["properties"].as_object() {
                for name in properties.keys() {
                    for value in hostile_bodies() {
                        let body = json!({ name: value });
                        let req = request(&path_with(None)).json(&body);
                        cases.push((format!("body {name}={:.40}", value.to_string()), req));
                    }
                }
            }
            for (what, req) in cases {
                sent += 1;
                let reply = gallery.deliver(&req).await;
                let problem = reply.header("content-type") == Some("application/problem+json");
                if reply.status >= 500 || (reply.status >= 400 && !problem) {
                    failures.push(format!("{method} {template} {what}: {reply:?}"));
                }
            }
        }
    }
    assert!(sent > 500, "only {sent} hostile requests: is the document read?");
    assert!(failures.is_empty(), "{} of {sent} failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(snapshot(&client).await, before, "a hostile request wrote something");
}
