//! The CDN's media path on loopback: `GET /renditions/{key}` reads the
//! processed bucket the way CloudFront does through its origin access control,
//! under the same rule the bucket policy enforces there: only an object tagged
//! `gallery-visibility=public` is served; anything else, a missing key
//! included, is 403 (S3 answers a reader without ListBucket so, and the
//! emulator enforces no bucket policy, hence this check). The URLs the API
//! hands out therefore have the same shape locally as in production.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shared::media::{servable, EdgeMedia, VISIBILITY_TAG};

/// Far above any rendition (2048 px JPEG or WebP); only a guard against buffering a stray object.
const MAX_RENDITION_BYTES: u64 = 64 * 1024 * 1024;

pub fn router(media: EdgeMedia) -> Router {
    // Reads sign as CloudFront's principal does in the recording of AWS
    // requests the test suite makes (infra/authz evaluates them as
    // cloudfront.amazonaws.com under the bucket and key policies).
    let media =
        EdgeMedia { store: media.store.signing_as("gallery-cloudfront", "testing"), ..media };
    Router::new().route("/renditions/{*rest}", get(rendition)).with_state(media)
}

async fn rendition(
    State(media): State<EdgeMedia>,
    method: Method,
    Path(rest): Path<String>,
) -> Response {
    let key = format!("renditions/{rest}");
    match media.store.tag(&media.bucket, &key, VISIBILITY_TAG).await {
        Ok(tag) if servable(tag.as_deref()) => {}
        Ok(_) => return denied(),
        Err(e) => {
            tracing::error!(error = %e, "edge: tag lookup failed");
            return StatusCode::BAD_GATEWAY.into_response();
        }
    }
    let object = match media.store.get_object(&media.bucket, &key, MAX_RENDITION_BYTES).await {
        Ok(Some(o)) => o,
        Ok(None) => return denied(),
        Err(e) => {
            tracing::error!(error = %e, "edge: read failed");
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    let length = object.bytes.len();
    let mut response = Response::new(if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(object.bytes)
    });
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, object.content_type.as_deref()),
        (header::CACHE_CONTROL, object.cache_control.as_deref()),
        (header::ETAG, object.etag.as_deref()),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // What the distribution's response headers policy adds.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn denied() -> Response {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}
