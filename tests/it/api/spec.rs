//! The served OpenAPI document against the router, and every reply of every
//! API test against the document.

use std::sync::OnceLock;

use serde_json::{json, Value};

use super::{Gallery, Req, ViewerReply};
use crate::support::TestContext;

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(api::openapi()).unwrap())
}

/// The document's path template matching a concrete path, e.g. `/v1/artworks/{slug}`.
fn template_for(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object().unwrap();
    // Literal segments win over parameters, as in the router.
    let mut best: Option<(&str, usize)> = None;
    for template in paths.keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literals = 0;
        let fits = parts.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                !s.is_empty()
            } else {
                literals += 1;
                t == s
            }
        });
        if fits && best.is_none_or(|(_, l)| literals > l) {
            best = Some((template.as_str(), literals));
        }
    }
    best.map(|(t, _)| t)
}

/// Checks a reply against the operation that served it. Answers outside any
/// operation (no route, a refused preflight, Lambda's own refusal) must still be problems or documented.
pub fn check_reply(req: &Req, reply: &ViewerReply) {
    if reply.status == 304 || req.method == "OPTIONS" {
        return;
    }
    let Some(template) = template_for(&req.path) else {
        assert_eq!(
            reply.status, 404,
            "{} {} is not in the document but answered {reply:?}",
            req.method, req.path
        );
        assert_eq!(reply.problem(), "no-route");
        return;
    };
    let Some(operation) = document()["paths"][template].get(req.method.to_ascii_lowercase()) else {
        if reply.status == 403 && reply.body.get("Message").is_some() {
            return;
        }
        assert_eq!(
            reply.status, 405,
            "{} {template} is not an operation but answered {reply:?}",
            req.method
        );
        assert_eq!(reply.problem(), "method-not-allowed");
        return;
    };
    if reply.status == 403 && reply.body.get("Message").is_some() {
        return; // Lambda refused the payload hash; the function never ran.
    }
    let response = operation["responses"].get(reply.status.to_string()).unwrap_or_else(|| {
        panic!(
            "{} {template} answered {} which the document does not list: {reply:?}",
            req.method, reply.status
        )
    });
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(
            reply.body.is_null(),
            "{} {template} {}: undocumented body {reply:?}",
            req.method,
            reply.status
        );
        return;
    };
    let content_type = reply.header("content-type").unwrap_or_default();
    let media = content.get(content_type).unwrap_or_else(|| {
        panic!("{} {template}: content type {content_type:?} not documented", req.method)
    });
    let Some(schema) = media.get("schema") else { return };
    let mut root = schema.clone();
    if let Some(object) = root.as_object_mut() {
        object.insert("components".into(), document()["components"].clone());
    } else {
        root = json!({ "allOf": [schema], "components": document()["components"] });
    }
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("schema of {} {template} {}: {e}", req.method, reply.status));
    let errors: Vec<String> = validator
        .iter_errors(&reply.body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{} {template} {} does not match its schema: {errors:?}\n{}",
        req.method,
        reply.status,
        reply.body
    );
}

/// Every operation of the document, filled with ids nobody has.
/// Whether an operation needs a token: public ones say `security: []`.
pub fn secured(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| !s.is_empty())
}

pub fn operations() -> Vec<(String, String, &'static Value)> {
    let mut out = Vec::new();
    for (template, item) in document()["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                out.push((method.to_ascii_uppercase(), template.clone(), op));
            }
        }
    }
    out
}

fn fill(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { uuid::Uuid::new_v4().to_string() } else { s.to_owned() })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_is_the_generated_one() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let reply = gallery.expect(200, Req::get("/v1/openapi.json")).await;
    assert_eq!(&reply.body, document());
    assert!(
        reply.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        reply.body["openapi"]
    );
    assert!(reply.header("cache-control").unwrap().starts_with("public"));
    assert_eq!(
        reply.body["components"]["securitySchemes"]["gallery_token"]["name"],
        api::TOKEN_HEADER
    );
    for (method, template, op) in operations() {
        assert!(
            op["summary"].is_string() || op["description"].is_string(),
            "{method} {template} is undocumented"
        );
        let body_methods = ["POST", "PUT", "PATCH"];
        if body_methods.contains(&method.as_str()) {
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params.iter().any(|p| p["name"] == "x-amz-content-sha256" && p["required"] == true),
                "{method} {template}"
            );
        }
        if secured(op) {
            assert!(op["responses"].get("401").is_some(), "{method} {template}");
        } else {
            assert_eq!(op["security"], json!([]), "{method} {template} says it is public");
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    for (method, template, _) in operations() {
        let path = fill(&template);
        let mut req = Req::new(&method, &path);
        if method != "GET" && method != "DELETE" {
            req = req.json(&json!({}));
        }
        let reply = gallery.send(req).await;
        assert_ne!(reply.status, 405, "{method} {template}");
        if reply.status == 404 {
            assert_eq!(
                reply.problem(),
                "not-found",
                "{method} {template} is documented but not routed"
            );
        }
    }
    for (template, item) in document()["paths"].as_object().unwrap() {
        let allowed: Vec<String> = ["get", "post", "put", "patch", "delete"]
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_ascii_uppercase())
            .collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if allowed.iter().any(|a| a == method) {
                continue;
            }
            let mut req = Req::new(method, &fill(template));
            if method != "GET" && method != "DELETE" {
                req = req.json(&json!({}));
            }
            let reply = gallery.send(req).await;
            assert_eq!(reply.status, 405, "{method} {template}: {reply:?}");
            let allow = reply.header("allow").unwrap_or_default().to_owned();
            for a in &allowed {
                assert!(
                    allow.contains(a.as_str()),
                    "{method} {template}: Allow {allow:?} lacks {a}"
                );
            }
        }
    }
    // Routes are only ever added through the documented `routes!` macro.
    let src = format!("{}/../functions/api/src", env!("CARGO_MANIFEST_DIR"));
    for entry in walk(std::path::Path::new(&src)) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(!text.contains(".route(\""), "{} adds an undocumented route", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Client generators name their methods after operationIds: every one is
/// present, unique, and derived from the method and path (so it is stable).
#[test]
fn every_operation_has_a_unique_stable_id() {
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in document()["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                continue; // path-level keys (parameters), not operations
            };
            assert!(seen.insert(id.to_owned()), "{method} {path}: operationId {id} repeats");
        }
    }
    assert!(seen.len() > 30, "{seen:?}");
    assert_eq!(
        document()["paths"]["/v1/artworks/{slug}"]["get"]["operationId"],
        "getArtworksBySlug"
    );
    assert_eq!(
        document()["paths"]["/v1/admin/artists/{id}/suspension"]["delete"]["operationId"],
        "deleteAdminArtistsByIdSuspension"
    );
}

/// Every status and header the API sends is in the document: 500 everywhere,
/// 304 on reads, ETag on representations, Location on creations,
/// Retry-After on 429 and 503, the replay marker where Idempotency-Key is taken.
#[test]
fn every_status_and_header_the_api_sends_is_documented() {
    for (path, item) in document()["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else {
                continue;
            };
            let at = format!("{method} {path}");
            assert!(responses.contains_key("500"), "{at}: 500");
            if method == "get" {
                assert!(responses.contains_key("304"), "{at}: 304");
            }
            for (code, response) in responses {
                let headers = &response["headers"];
                assert!(headers.get("x-request-id").is_some(), "{at} {code}: x-request-id");
                if code == "200" || code == "201" {
                    assert!(headers.get("ETag").is_some(), "{at} {code}: ETag");
                }
                if code == "201" || code == "202" {
                    assert!(headers.get("Location").is_some(), "{at} {code}: Location");
                }
                if code == "429" || code == "503" {
                    assert!(headers.get("Retry-After").is_some(), "{at} {code}: Retry-After");
                }
            }
        }
    }
    let create = &document()["paths"]["/v1/me/artworks"]["post"]["responses"]["201"]["headers"];
    assert!(create.get("idempotent-replayed").is_some(), "{create}");
}

/// Closed sets are enums in the schemas, so generated clients type them.
#[test]
fn closed_sets_are_enums() {
    let schemas = &document()["components"]["schemas"];
    for (name, values) in [
        ("Scope", ["admin", "artist"].as_slice()),
        ("Transition", &["archive", "publish", "unpublish"]),
    ] {
        let mut listed: Vec<&str> = schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {}", schemas[name]))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, values, "{name}");
    }
    assert_eq!(schemas["NewToken"]["properties"]["scope"]["$ref"], "#/components/schemas/Scope");
    assert_eq!(
        schemas["StatusChange"]["properties"]["action"]["$ref"],
        "#/components/schemas/Transition"
    );
    assert_eq!(
        schemas["TokenListing"]["properties"]["scope"]["$ref"],
        "#/components/schemas/Scope"
    );
}

/// The rules the handlers enforce are in the schemas, so clients (and
/// schema-driven testers) know them before they send.
#[test]
fn validation_rules_are_in_the_schemas() {
    let schemas = &document()["components"]["schemas"];
    let artwork = &schemas["NewArtwork"]["properties"];
    assert_eq!(
        (artwork["title"]["minLength"].as_u64(), artwork["title"]["maxLength"].as_u64()),
        (Some(1), Some(300))
    );
    assert_eq!(artwork["slug"]["pattern"], "^[a-z0-9]+(-[a-z0-9]+)*$");
    assert_eq!(artwork["year"]["minimum"].as_f64(), Some(1000.0));
    let edition = &schemas["NewEdition"]["properties"];
    assert_eq!(edition["currency"]["pattern"], "^[A-Z]{3}$");
    assert_eq!(edition["price_minor"]["maximum"].as_f64(), Some(10_000_000_000.0));
    assert_eq!(schemas["Sale"]["properties"]["count"]["maximum"].as_f64(), Some(1000.0));
}

/// `docs/openapi.json` is the document the API serves, so clients generate
/// from the repository and every contract change shows in review. After a
/// deliberate change: `GALLERY_WRITE_OPENAPI=1 cargo xtask test committed_document`.
#[test]
fn the_committed_document_is_the_served_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let served = serde_json::to_string_pretty(document()).unwrap() + "\n";
    if std::env::var_os("GALLERY_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is not the served document: run \
         `GALLERY_WRITE_OPENAPI=1 cargo xtask test committed_document` and review the diff"
    );
}
