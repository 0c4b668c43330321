//! Every operation of the OpenAPI document, fed hostile values in each of its
//! path, query and body fields in turn: never a 5xx, always a problem. Values
//! no field accepts (NUL, bidi overrides, overlong, out of range, malformed,
//! the wrong type) write nothing; SQL injection, path traversal and URLs are
//! data a field may hold, so where one is accepted it is stored verbatim, runs
//! no SQL, makes no key outside its prefix and is never fetched. The
//! operations come from the document, so a new route is covered the day it is
//! added.

use serde_json::{json, Value};

use super::{published, snapshot, Gallery, Published, Req, ViewerReply};
use crate::support::{record_cases, TestContext};

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

/// One operation of the document, with what a hostile case needs of it.
struct Operation {
    method: String,
    template: String,
    parameters: Vec<Value>,
    body_fields: Vec<String>,
}

fn operations(document: &Value) -> Vec<Operation> {
    let schemas = &document["components"]["schemas"];
    let mut out = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            let body_schema = match body_schema["$ref"].as_str() {
                Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
                None => body_schema,
            };
            out.push(Operation {
                method,
                template: template.clone(),
                parameters: operation["parameters"].as_array().cloned().unwrap_or_default(),
                body_fields: body_schema["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// A published work, its artist's token and an admin's: what every
/// operation's real ids and credentials come from.
struct Target {
    work: Published,
    admin: String,
}

impl Target {
    async fn new(ctx: &TestContext, gallery: &Gallery, name: &str) -> Self {
        let work = published(ctx, gallery, name, "Under Test").await;
        let admin = ctx.admin_token().await;
        // Tokens record their last use at most once a minute: record it now.
        gallery.expect(200, Req::get("/v1/me").token(&work.token)).await;
        gallery.expect(200, Req::get("/v1/admin/artists").token(&admin)).await;
        Self { work, admin }
    }

    fn real_id(&self, template: &str) -> String {
        let work = &self.work;
        match template {
            t if t.starts_with("/v1/manage/artworks/") => work.artwork.clone(),
            t if t.starts_with("/v1/manage/editions/") => work.edition.clone(),
            t if t.starts_with("/v1/manage/images/") => work.image.clone(),
            t if t.starts_with("/v1/admin/artists/") || t.starts_with("/v1/artists/") => {
                work.artist.to_string()
            }
            t if t.contains("{slug}") => work.slug.clone(),
            _ => uuid::Uuid::nil().to_string(),
        }
    }

    /// The operation's path with real ids, but `hostile` in its one parameter.
    fn path(&self, op: &Operation, hostile: Option<(&str, &str)>) -> String {
        let mut path = op.template.clone();
        for p in op.parameters.iter().filter(|p| p["in"] == "path") {
            let name = p["name"].as_str().unwrap();
            let value = match hostile {
                Some((n, v)) if n == name => encode(v),
                _ => self.real_id(&op.template),
            };
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        path
    }

    fn request(&self, op: &Operation, path: &str) -> Req {
        let req = Req::new(&op.method, path);
        let req = if op.template.starts_with("/v1/admin") {
            req.token(&self.admin)
        } else if op.template.starts_with("/v1/me") || op.template.starts_with("/v1/manage") {
            req.token(&self.work.token)
        } else {
            req
        };
        match op.method.as_str() {
            "POST" | "PUT" | "PATCH" => req.json(&json!({})),
            _ => req,
        }
    }

    /// The ETag of what the operation's path names now, as its owner reads it.
    async fn current_etag(&self, gallery: &Gallery, op: &Operation) -> Option<String> {
        let read = Req::get(&self.path(op, None));
        let read = match op.template.starts_with("/v1/admin") {
            true => read.token(&self.admin),
            false => read.token(&self.work.token),
        };
        gallery.deliver(&read).await.header("etag").map(str::to_owned)
    }

    /// One case per value in each path and query parameter, as `(value, what, request)`.
    fn parameter_cases(&self, op: &Operation, values: &[String]) -> Vec<(String, String, Req)> {
        let mut cases = Vec::new();
        for p in &op.parameters {
            let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
            for value in values {
                let path = match place {
                    "path" => self.path(op, Some((name, value))),
                    "query" => format!("{}?{name}={}", self.path(op, None), encode(value)),
                    _ => continue,
                };
                let what = format!("{place} {name}={value:.40?}");
                cases.push((value.clone(), what, self.request(op, &path)));
            }
        }
        cases
    }
}

/// A 5xx, or a 4xx that is not a problem.
fn unanswered(reply: &ViewerReply) -> bool {
    let problem = reply.header("content-type") == Some("application/problem+json");
    reply.status >= 500 || (reply.status >= 400 && !problem)
}

#[tokio::test]
async fn hostile_values_in_every_field_of_every_operation_never_reach_a_5xx() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let target = Target::new(&ctx, &gallery, "Hostile Input").await;
    let client = ctx.pool.get().await.unwrap();
    let before = snapshot(&client).await;

    let document = serde_json::to_value(api::openapi()).unwrap();
    let mut failures = Vec::new();
    let mut sent = 0;
    for op in operations(&document) {
        let mut cases = target.parameter_cases(&op, &hostile_parameters());
        for name in &op.body_fields {
            for value in hostile_bodies() {
                let req =
                    target.request(&op, &target.path(&op, None)).json(&json!({ name: value }));
                cases.push((String::new(), format!("body {name}={:.40}", value.to_string()), req));
            }
        }
        for (_, what, req) in cases {
            sent += 1;
            let reply = gallery.deliver(&req).await;
            if unanswered(&reply) {
                failures.push(format!("{} {} {what}: {reply:?}", op.method, op.template));
            }
        }
    }
    assert!(sent > 500, "only {sent} hostile requests: is the document read?");
    assert!(failures.is_empty(), "{} of {sent} failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(snapshot(&client).await, before, "a hostile request wrote something");
    record_cases("hostile_values", sent);
}

/// SQL injection (each quoting style, stacked statements, a sleep, a table
/// it would create), path traversal (plain, escaped, Windows, NUL-cut) and
/// URLs pointing at a listener of the test's own: values a title or a note
/// may legitimately hold.
fn injections(listener: &str) -> Vec<String> {
    let mut values: Vec<String> = [
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "1; DROP TABLE artworks; --",
        "'; CREATE TABLE injected (x int); --",
        "'); SELECT pg_sleep(10); --",
        "$$; SELECT pg_sleep(10); $$",
        "\\'; SELECT 1; --",
        "../../../../etc/passwd",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..\\..\\windows\\win.ini",
        "originals/../renditions/x",
        "/etc/passwd",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
    ]
    .map(str::to_owned)
    .to_vec();
    values.push(format!("http://{listener}/fetched"));
    values.push(format!("//{listener}/fetched"));
    values
}

/// Every string in a reply that names a bucket key stays under its prefix
/// (but for the value sent, which a title may echo as it was sent).
fn keys_escaping(value: &Value, sent: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s == sent => {}
        Value::String(s)
            if (s.starts_with("originals/") || s.starts_with("renditions/"))
                && (s.split('/').any(|part| part == ".." || part == ".") || s.contains('\0')) =>
        {
            out.push(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| keys_escaping(v, sent, out)),
        Value::Object(fields) => fields.values().for_each(|v| keys_escaping(v, sent, out)),
        _ => {}
    }
}

#[tokio::test]
async fn injection_traversal_and_urls_in_every_field_are_data_never_code_keys_or_fetches() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let target = Target::new(&ctx, &gallery, "Injection Probe").await;
    // A URL sent anywhere must never be fetched: this listener counts tries.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let fetched = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = fetched.clone();
    let accepting = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let document = serde_json::to_value(api::openapi()).unwrap();
    let values = injections(&address);
    let (mut failures, mut sent, mut stored) = (Vec::new(), 0, 0);
    for op in operations(&document) {
        let mut cases = target.parameter_cases(&op, &values);
        for name in &op.body_fields {
            for value in &values {
                let req =
                    target.request(&op, &target.path(&op, None)).json(&json!({ name: value }));
                cases.push((value.clone(), format!("body {name}={value:.40?}"), req));
            }
        }
        for (value, what, mut req) in cases {
            sent += 1;
            // A body goes where a client would put it: with the current ETag,
            // so an accepted update reaches the database.
            if what.starts_with("body ") && matches!(op.method.as_str(), "PATCH" | "PUT") {
                if let Some(etag) = target.current_etag(&gallery, &op).await {
                    req = req.if_match(&etag);
                }
            }
            let started = std::time::Instant::now();
            let reply = gallery.deliver(&req).await;
            let shown = format!("{} {} {what}", op.method, op.template);
            if unanswered(&reply) {
                failures.push(format!("{shown}: {reply:?}"));
            }
            if started.elapsed() > std::time::Duration::from_secs(5) {
                failures
                    .push(format!("{shown}: took {:?} (an injected sleep?)", started.elapsed()));
            }
            let mut escaping = Vec::new();
            keys_escaping(&reply.body, &value, &mut escaping);
            if !escaping.is_empty() {
                failures.push(format!("{shown}: keys outside their prefix {escaping:?}"));
            }
            // Accepted, the value is stored as sent (the reply shows the field).
            if let Some((name, value)) = what.strip_prefix("body ").and_then(|w| w.split_once('='))
            {
                let sent_value = req_value(&req, name);
                if reply.status < 300 && reply.body[name].is_string() {
                    stored += 1;
                    if reply.body[name] != sent_value {
                        failures.push(format!("{shown}: stored {} for {value}", reply.body[name]));
                    }
                }
            }
        }
    }
    let client = ctx.pool.get().await.unwrap();
    let injected: bool = client
        .query_one("SELECT to_regclass('public.injected') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!injected, "an injected statement ran");
    // Every table is still there, and the catalogue still answers.
    snapshot(&client).await;
    gallery.expect(200, Req::get("/v1/artworks")).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    accepting.abort();
    let fetched = fetched.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent > 500, "only {sent} requests: is the document read?");
    assert!(stored > 20, "only {stored} values stored: do the writes reach the database?");
    assert!(failures.is_empty(), "{} of {sent} failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(fetched, 0, "a route fetched a URL a caller sent");
    record_cases("injection_traversal_urls", sent);
}

/// The body value a case sent for `name`.
fn req_value(req: &Req, name: &str) -> Value {
    serde_json::from_slice::<Value>(&req.body).map(|b| b[name].clone()).unwrap_or(Value::Null)
}
