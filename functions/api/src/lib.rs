//! The gallery's HTTP API, served by a Lambda function URL.
//!
//! Public reads need no credentials; every write needs a bearer token whose
//! digest is in `api_tokens`. Originals are uploaded straight to S3 with a
//! presigned POST, never through this function.

mod error;
pub mod lambda;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use deadpool_postgres::Pool;
use lambda_http::RequestExt;
use shared::config::{Common, Env, FromEnv, OperatorConfig};
use shared::domain::Principal;
use shared::storage::{ObjectStore, PostEndpoint};

pub use error::{ApiError, ProblemContext};

/// The API's configuration, read once at cold start.
#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// Largest original an artist may upload, enforced by the POST policy.
    pub upload_max_bytes: u64,
    pub upload_url_ttl: Duration,
    pub region: String,
    pub operator: OperatorConfig,
}

impl FromEnv for Config {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let upload_max_bytes = env.parse_or("GALLERY_UPLOAD_MAX_BYTES", 100 * 1024 * 1024u64);
        let upload_url_ttl = Duration::from_secs(env.parse_or("GALLERY_UPLOAD_URL_TTL_SECS", 900u64));
        let region = common.aws.region.clone().unwrap_or_else(|| env.required("AWS_REGION"));
        let operator = OperatorConfig::read(env);
        Self { common, upload_max_bytes, upload_url_ttl, region, operator }
    }
}

/// Everything a request handler needs, built once per cold start.
pub struct AppState {
    pub pool: Pool,
    pub store: ObjectStore,
    pub originals_bucket: String,
    pub post_endpoint: PostEndpoint,
    pub upload_max_bytes: u64,
    pub upload_url_ttl: Duration,
    /// Proves who runs an operator task (invocations outside the router).
    pub verifier: shared::ops::Verifier,
}

impl AppState {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let (clients, pool) = shared::aws::connect(&config.common).await?;
        Ok(Self::new(config, pool, &clients))
    }

    pub fn new(config: &Config, pool: Pool, clients: &shared::aws::Clients) -> Self {
        Self {
            pool,
            store: ObjectStore::new(clients, &config.common.storage.data_key_id),
            originals_bucket: config.common.storage.originals_bucket.clone(),
            post_endpoint: PostEndpoint { region: config.region.clone(), override_url: config.common.aws.endpoint_url.clone() },
            upload_max_bytes: config.upload_max_bytes,
            upload_url_ttl: config.upload_url_ttl,
            verifier: config.operator.verifier(&config.common.aws),
        }
    }
}

pub type State = Arc<AppState>;

/// The whole API. The Lambda and the local server both serve exactly this.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/health", get(routes::health))
        .route("/artworks", get(routes::list_artworks).post(routes::create_artwork))
        .route("/artworks/{slug}", get(routes::show_artwork))
        .route("/manage/artworks/{id}", get(routes::manage_artwork).patch(routes::update_artwork).delete(routes::delete_artwork))
        .route("/manage/artworks/{id}/editions", post(routes::create_edition))
        .route("/manage/artworks/{id}/images", post(routes::create_upload))
        .route("/manage/images/{id}", get(routes::show_image))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

/// The id of this request: Lambda's own id, or the caller's `x-request-id`, or a new one.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .extensions()
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let ctx = ProblemContext { request_id: Some(id.clone()), instance: Some(req.uri().path().to_owned()) };
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut response = error::PROBLEM_CONTEXT.scope(ctx, tracing::Instrument::instrument(next.run(req), span.clone())).await;
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request served")
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A caller whose bearer token is live. Extracting it from a request without
/// one (or with a bad one) answers 401 before the handler runs.
pub struct Authenticated(pub Principal);

impl FromRequestParts<State> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthenticated)?;
        let secret = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|s| s.starts_with(shared::domain::TOKEN_PREFIX) && s.len() <= 200)
            .ok_or(ApiError::Unauthenticated)?;
        let client = state.pool.get().await.map_err(shared::db::DbError::from)?;
        let principal = shared::db::principal_for_token(&client, &shared::domain::token_digest(secret)).await?;
        principal.map(Authenticated).ok_or(ApiError::Unauthenticated)
    }
}

/// `axum::Json`, but a body it cannot read becomes a problem+json 422.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use lambda_http::request::LambdaRequest;
    use shared::config::FromEnv;

    #[test]
    fn function_url_samples_parse_as_http_requests() {
        for sample in [
            include_str!("../../../events/function-url-get-artworks.json"),
            include_str!("../../../events/function-url-create-artwork.json"),
        ] {
            let event: LambdaRequest = serde_json::from_str(sample).unwrap();
            let request: lambda_http::Request = event.into();
            assert!(request.uri().path().starts_with("/artworks"));
        }
    }

    #[test]
    fn configuration_problems_are_listed_together() {
        let err = super::Config::read(shared::config::Env::from_map(Default::default())).unwrap_err();
        assert!(err.problems.len() >= 6, "{err}");
        assert!(err.to_string().contains("AWS_REGION is required"));
    }
}
