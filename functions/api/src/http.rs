//! The HTTP behaviour every route shares, as middleware: the request id,
//! the body contract (size, `x-amz-content-sha256`), ETags and conditional
//! GETs, Cache-Control, per-token write limits, CORS, and problem+json for
//! the answers axum itself gives (404 for no route, 405 with `Allow`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as StateExtractor};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use lambda_http::RequestExt;
use sha2::{Digest, Sha256};

use crate::error::{ProblemContext, PROBLEM_CONTEXT};
use crate::{ApiError, SharedState};

/// Largest request body read. It admits every documented maximum in the
/// costliest legal encoding: an artwork's 20,000-character description in
/// astral-plane characters written as JSON escapes (`\ud83c\udfa8`, 12 bytes
/// each) is 240 KB, and its title and medium add under 6 KB.
pub const BODY_LIMIT: usize = 256 * 1024;

/// CloudFront forwards the client's payload hash; Lambda verifies it against the body.
pub const CONTENT_SHA256: &str = "x-amz-content-sha256";

/// The id of this request: Lambda's own id, or the caller's `x-request-id`, or a new one.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The SHA-256 of the request body, for idempotency fingerprints.
#[derive(Clone, Debug)]
pub struct BodyDigest(pub String);

/// The longest a request may take: the pool's wait for a connection, then two
/// statements' timeouts. The statement timeout is the server's: a database
/// that stops answering mid-query (paused, partitioned) would hold the
/// request until Lambda's 30 s timeout, and CloudFront would answer 504; this
/// answers 503 with Retry-After first (26 s with the default timeouts).
pub fn request_deadline(db: &shared::config::DbConfig) -> std::time::Duration {
    db.connect_timeout + std::time::Duration::from_secs(1) + db.statement_timeout * 2
}

/// Ends a request past its deadline with 503. Dropping the handler mid-
/// transaction is safe: the pool rolls a returned connection back.
pub async fn deadline(
    axum::extract::State(state): axum::extract::State<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    tokio::time::timeout(state.request_deadline, next.run(req)).await.map_err(|_| {
        ApiError::Unavailable(anyhow::anyhow!(
            "no answer within {} s: the database or S3 is not answering",
            state.request_deadline.as_secs()
        ))
    })
}

pub async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .extensions()
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| {
                    !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
                })
                .map(str::to_owned)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let ctx = ProblemContext {
        request_id: Some(id.clone()),
        instance: Some(req.uri().path().to_owned()),
    };
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let mut response = PROBLEM_CONTEXT
        .scope(ctx.clone(), tracing::Instrument::instrument(next.run(req), span.clone()))
        .await;
    if response.status().is_client_error() && !is_problem(response.headers()) {
        let path = ctx.instance.clone().unwrap_or_default();
        response = PROBLEM_CONTEXT.scope(ctx, async { as_problem(response, &path) }).await;
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request served"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/problem+json")
}

/// An answer axum gave by itself (no route, wrong method), as problem+json.
fn as_problem(response: Response, path: &str) -> Response {
    let status = response.status();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed {
            method: "this method".into(),
            allow: crate::routes::allowed_methods(path).unwrap_or_default(),
        },
        StatusCode::NOT_FOUND => ApiError::NoRoute,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit: BODY_LIMIT },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        _ => ApiError::Malformed(status.canonical_reason().unwrap_or("bad request").to_lowercase()),
    };
    error.into_response()
}

/// Reads the body once, bounded, and holds the client to the deployed
/// contract: a POST, PUT or PATCH names its body's SHA-256 in
/// `x-amz-content-sha256` (without it CloudFront would send it unsigned and
/// Lambda would refuse it), and a hash that does not match is refused here as
/// Lambda refuses it there.
pub async fn body_contract(req: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let bytes = read_bounded(body).await?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let carries_body =
        matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) || !bytes.is_empty();
    if carries_body && !is_preflight(&parts.headers, &parts.method) {
        let refusal = match parts.headers.get(CONTENT_SHA256).map(|v| v.to_str().map(str::to_ascii_lowercase)) {
            None => Some(format!(
                "{CONTENT_SHA256} is required: the hex SHA-256 of the body (of an empty body when there is none)"
            )),
            Some(Ok(given)) if given == digest => None,
            Some(_) => Some(format!("{CONTENT_SHA256} does not match the body")),
        };
        // A method the path does not have is answered 405 by the router, with
        // `Allow`, whatever its headers: the body contract is for real
        // operations. Asked only on a refusal, so a good request never pays.
        let routed = || {
            crate::routes::allowed_methods(parts.uri.path())
                .is_some_and(|allowed| allowed.split(", ").any(|m| m == parts.method.as_str()))
        };
        if let Some(why) = refusal.filter(|_| routed()) {
            return Err(ApiError::Malformed(why));
        }
    }
    parts.extensions.insert(BodyDigest(digest));
    Ok(next.run(Request::from_parts(parts, Body::from(bytes))).await)
}

async fn read_bounded(body: Body) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, BODY_LIMIT);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ApiError::TooLarge { limit: BODY_LIMIT })
        }
        Err(e) => Err(ApiError::Malformed(format!("the body could not be read: {e}"))),
    }
}

fn is_preflight(headers: &HeaderMap, method: &Method) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Public reads may be cached by CloudFront and browsers briefly, and served
/// stale while revalidating; everything else is private and revalidated.
pub const PUBLIC_CACHE: &str = "public, max-age=60, stale-while-revalidate=300";
pub const PRIVATE_CACHE: &str = "private, no-cache";

/// Gives every successful JSON answer a strong ETag (the SHA-256 of its
/// bytes, which is what `If-Match` is compared with), answers a matching
/// `If-None-Match` on GET with 304, and sets Cache-Control where the handler
/// did not.
pub async fn representations(req: Request, next: Next) -> Result<Response, ApiError> {
    let conditional_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let if_none_match =
        req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = next.run(req).await;
    if !matches!(response.status(), StatusCode::OK | StatusCode::CREATED)
        || is_problem(response.headers())
    {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("response body: {e}")))?
        .to_bytes();
    let etag = etag_of_bytes(&bytes);
    parts.headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static(PRIVATE_CACHE));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, v);
    }
    if conditional_get && if_none_match.as_deref().is_some_and(|h| none_match_hits(h, &etag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
            if let Some(v) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, v.clone());
            }
        }
        return Ok(not_modified);
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Fields a representation shows but does not own: they move without any
/// write to it (a token's last use, an artist's count of live tokens, the
/// artist's name on an artwork). ETags leave them out, so `If-Match` fails
/// only when the resource itself changed: an admin's revoke does not meet a
/// 412 because the token was used in between, nor an artwork edit because
/// its artist was renamed. (A 304 may then keep such a field briefly stale.)
const DERIVED_FIELDS: &[&str] = &["last_used_at", "live_tokens", "artist_name"];

pub fn etag_of_bytes(bytes: &[u8]) -> String {
    // Every answer passes here: parse only those that can hold a derived field.
    let derived = DERIVED_FIELDS.iter().chain(&["artist"]).any(|f| {
        let quoted = format!("\"{f}\"");
        bytes.windows(quoted.len()).any(|w| w == quoted.as_bytes())
    });
    if !derived {
        return format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32]);
    }
    let basis = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for name in DERIVED_FIELDS {
                fields.remove(*name);
            }
            if fields.contains_key("title") {
                if let Some(serde_json::Value::Object(artist)) = fields.get_mut("artist") {
                    artist.remove("name");
                }
            }
            serde_json::to_vec(&fields).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    format!("\"{}\"", &hex::encode(Sha256::digest(&basis))[..32])
}

/// The ETag the GET of `value` answers with: handlers compare `If-Match` with it.
pub fn etag_of(value: &impl serde::Serialize) -> Result<String, ApiError> {
    let bytes = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(etag_of_bytes(&bytes))
}

/// `If-None-Match` uses weak comparison (RFC 9110 §13.1.2).
fn none_match_hits(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// `If-Match` uses strong comparison: a weak tag never matches.
pub fn match_hits(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t == etag)
}

/// Writes each token may make, per instance: a leaked token or a runaway
/// script is slowed before it reaches the database. Lambda runs many
/// instances, so this bounds a burst, not a day; WAF rate rules bound the edge.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<[u8; 16], (f64, Instant)>>,
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one write for `key`; `Err(seconds)` says when the next is allowed.
    pub fn take(&self, key: &[u8]) -> Result<(), u64> {
        let capacity = f64::from(self.per_minute);
        let rate = capacity / 60.0;
        let mut id = [0u8; 16];
        id.copy_from_slice(&Sha256::digest(key)[..16]);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
        }
        let (tokens, at) = buckets.entry(id).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Bounds token guessing on one instance: a token this instance has not
/// seen succeed lately costs one lookup from a shared budget, and past it the
/// request is 429 before the database is asked; a token that succeeded in
/// the last ten minutes never waits. Per client, the WAF's rate rules bound
/// requests by IP at the edge (the function cannot see the viewer's address:
/// the origin request policy forwards no CloudFront headers); across
/// instances the bound is the budget × the function's reserved concurrency,
/// against 2^256 possible tokens.
pub struct TokenGuard {
    lookups: RateLimiter,
    recent: Mutex<HashMap<[u8; 16], Instant>>,
}

/// Lookups of tokens an instance has not seen succeed, per minute.
pub const NEW_TOKEN_LOOKUPS_PER_MINUTE: u32 = 600;
const RECENT: std::time::Duration = std::time::Duration::from_secs(600);

impl TokenGuard {
    pub fn per_minute(lookups: u32) -> Self {
        Self { lookups: RateLimiter::per_minute(lookups), recent: Mutex::new(HashMap::new()) }
    }

    fn key(digest: &str) -> [u8; 16] {
        let mut id = [0u8; 16];
        id.copy_from_slice(&Sha256::digest(digest.as_bytes())[..16]);
        id
    }

    /// `Err(seconds)` when this token may not be looked up now.
    pub fn admit(&self, digest: &str) -> Result<(), u64> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.get(&Self::key(digest)).is_some_and(|at| at.elapsed() < RECENT) {
            return Ok(());
        }
        drop(recent);
        self.lookups.take(b"new tokens")
    }

    /// A token that authenticated: free from now on, for a while.
    pub fn known(&self, digest: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() > 10_000 {
            recent.retain(|_, at| at.elapsed() < RECENT);
        }
        recent.insert(Self::key(digest), Instant::now());
    }
}

/// Limits writes per presented token (valid or not: counting happens before
/// the database is asked, so a flood of bad tokens is throttled too).
pub async fn write_limit(
    StateExtractor(state): StateExtractor<SharedState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write {
        if let Some(token) = req.headers().get(crate::TOKEN_HEADER) {
            state
                .write_limiter
                .take(token.as_bytes())
                .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
        }
    }
    Ok(next.run(req).await)
}

/// CORS for the configured browser origins. Preflights are answered here,
/// before routing, so they never meet a 405.
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allowed: Vec<HeaderValue> =
        origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static(crate::TOKEN_HEADER),
            header::HeaderName::from_static(CONTENT_SHA256),
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_cover_a_representations_own_fields_only() {
        let token = |used: &str| format!(r#"{{"id":"t","label":"phone","last_used_at":"{used}"}}"#);
        assert_eq!(
            etag_of_bytes(token("2026-01-01").as_bytes()),
            etag_of_bytes(token("2026-02-02").as_bytes())
        );
        let relabelled = r#"{"id":"t","label":"laptop","last_used_at":"2026-01-01"}"#;
        assert_ne!(
            etag_of_bytes(token("2026-01-01").as_bytes()),
            etag_of_bytes(relabelled.as_bytes())
        );
        let work = |artist: &str| {
            format!(
                r#"{{"title":"Dawn","artist":{{"id":"a","name":"{artist}"}},"artist_name":"{artist}"}}"#
            )
        };
        assert_eq!(etag_of_bytes(work("Ada").as_bytes()), etag_of_bytes(work("Ada L.").as_bytes()));
        let artist = |name: &str| format!(r#"{{"id":"a","name":"{name}","live_tokens":1}}"#);
        assert_ne!(
            etag_of_bytes(artist("Ada").as_bytes()),
            etag_of_bytes(artist("Ada L.").as_bytes())
        );
    }

    #[test]
    fn conditional_comparisons() {
        let tag = etag_of_bytes(b"{}");
        assert!(none_match_hits(&tag, &tag));
        assert!(none_match_hits(&format!("\"x\", W/{tag}"), &tag), "If-None-Match is weak");
        assert!(none_match_hits("*", &tag));
        assert!(match_hits(&tag, &tag));
        assert!(!match_hits(&format!("W/{tag}"), &tag), "If-Match is strong");
        assert!(!match_hits("\"other\"", &tag));
    }

    #[test]
    fn new_tokens_share_a_budget_and_known_ones_skip_it() {
        let guard = TokenGuard::per_minute(2);
        guard.known("good");
        assert!(guard.admit("a").is_ok() && guard.admit("b").is_ok());
        assert!(guard.admit("c").is_err(), "the third new token waits");
        assert!(guard.admit("good").is_ok(), "a token that succeeded lately does not");
    }

    #[test]
    fn the_limiter_refills() {
        let limiter = RateLimiter::per_minute(2);
        assert!(limiter.take(b"a").is_ok());
        assert!(limiter.take(b"a").is_ok());
        let retry = limiter.take(b"a").unwrap_err();
        assert!((1..=30).contains(&retry), "{retry}");
        assert!(limiter.take(b"b").is_ok(), "tokens are limited separately");
    }
}
