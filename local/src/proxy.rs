//! A pass-through HTTP proxy in front of the emulator that counts the
//! requests a predicate picks (KMS data keys, S3 multi-object deletes): what
//! the benchmarks report as calls, counted on the wire rather than trusted
//! from the code under test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use axum::body::Body;
use axum::extract::Request;
use http_body_util::BodyExt;

/// What the proxy saw of the requests it counts.
#[derive(Debug, Default)]
pub struct Counter {
    pub calls: AtomicU64,
    /// Summed time from forwarding each counted request to its whole answer.
    pub nanos: AtomicU64,
}

impl Counter {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn seconds(&self) -> f64 {
        self.nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// Starts the proxy on a free loopback port; returns its address and the counter.
pub async fn counting<F>(upstream: String, counts: F) -> Result<(String, Arc<Counter>)>
where
    F: Fn(&axum::http::request::Parts) -> bool + Clone + Send + Sync + 'static,
{
    let counter = Arc::new(Counter::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let seen = counter.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let (client, upstream, seen, counts) =
            (client.clone(), upstream.clone(), seen.clone(), counts.clone());
        async move {
            let (mut parts, body) = request.into_parts();
            let counted = counts(&parts);
            let started = std::time::Instant::now();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            parts.uri = format!("{upstream}{path}").parse().unwrap_or_default();
            let response = match client.request(Request::from_parts(parts, body)).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    axum::response::Response::from_parts(parts, Body::from(bytes))
                }
                Err(e) => axum::response::Response::builder()
                    .status(502)
                    .body(Body::from(e.to_string()))
                    .unwrap_or_default(),
            };
            if counted {
                seen.calls.fetch_add(1, Ordering::Relaxed);
                seen.nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            response
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, counter))
}

/// KMS `GenerateDataKey` (and its plaintext-free twin).
pub fn kms_data_key(parts: &axum::http::request::Parts) -> bool {
    let target =
        parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    target.ends_with(".GenerateDataKey") || target.ends_with(".GenerateDataKeyWithoutPlaintext")
}

/// S3 `DeleteObjects`: a POST with the `delete` sub-resource.
pub fn s3_delete_objects(parts: &axum::http::request::Parts) -> bool {
    parts.method == axum::http::Method::POST
        && parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "delete" || p.starts_with("delete=")))
}

/// S3 `DeleteObject`: a DELETE of one key (or one version of it).
pub fn s3_delete_object(parts: &axum::http::request::Parts) -> bool {
    parts.method == axum::http::Method::DELETE
}
