//! The gallery's HTTP API, v1, served by a Lambda function URL behind CloudFront.
//!
//! The client contract is shaped by that path: CloudFront's origin access
//! control replaces `Authorization` with its own SigV4 signature, so the
//! gallery token travels in `x-gallery-token`; and Lambda refuses unsigned
//! payloads, so every POST, PUT and PATCH carries `x-amz-content-sha256`.
//! The local server and the tests enforce the same contract (`http.rs`).
//! Originals are uploaded straight to S3 with a presigned POST, never through
//! this function.

mod error;
mod extract;
mod http;
pub mod lambda;
mod operator;
mod routes;
mod views;
mod write;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use shared::aws::storage::{ObjectStore, PostEndpoint};
use shared::config::{Common, Env, FromEnv, OperatorConfig};
use shared::media::EdgeMedia;

pub use error::{ApiError, Problem, ProblemContext, PROBLEM_BASE};
pub use extract::TOKEN_HEADER;
pub use http::{RateLimiter, RequestId, TokenGuard, BODY_LIMIT};
pub use routes::{openapi, router};

/// The API's configuration, read once at cold start.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub common: Common,
    /// Largest original an artist may upload, enforced by the POST policy.
    pub upload_max_bytes: u64,
    pub upload_url_ttl: Duration,
    pub region: String,
    pub operator: OperatorConfig,
    /// Where renditions are served from: the prefix of every image URL.
    /// Relative (`/media`, the default) means the API's own CloudFront host.
    pub media_base_url: String,
    /// Browser origins allowed to call the API (CORS); empty allows none.
    pub cors_origins: Vec<String>,
    /// How long a soft-deleted artwork can still be restored; the retention
    /// run purges it after this (it reads the same variable).
    pub deleted_artwork_grace: chrono::Duration,
    /// Writes one token may make per minute on one instance.
    pub writes_per_minute: u32,
    /// The backups key: erasure requests are sealed into the ledger with it.
    pub backup_key_id: String,
}

impl FromEnv for ApiConfig {
    fn parse(env: &mut Env) -> Self {
        let common = Common::read(env);
        let upload_max_bytes = env.parse_or("GALLERY_UPLOAD_MAX_BYTES", 100 * 1024 * 1024u64);
        let upload_url_ttl =
            Duration::from_secs(env.parse_or("GALLERY_UPLOAD_URL_TTL_SECS", 900u64));
        let region = common.aws.region.clone().unwrap_or_else(|| env.required("AWS_REGION"));
        let operator = OperatorConfig::read(env);
        // Unset (no custom domain): root-relative URLs, `/renditions/…`, which
        // the distribution that serves the API also serves (its `/renditions/*`
        // behaviour); the API cannot name that distribution in its own
        // environment (it sits in front of the API).
        let media_base_url = env
            .optional("GALLERY_MEDIA_BASE_URL")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let cors_origins = env
            .optional("GALLERY_CORS_ORIGINS")
            .map(|v| {
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            })
            .unwrap_or_default();
        let deleted_artwork_grace =
            chrono::Duration::days(env.parse_or("RETENTION_DELETED_ARTWORK_DAYS", 30i64));
        let writes_per_minute = env.parse_or("GALLERY_WRITES_PER_MINUTE", 300u32);
        let backup_key_id = env.required("GALLERY_BACKUP_KMS_KEY_ID");
        Self {
            common,
            upload_max_bytes,
            upload_url_ttl,
            region,
            operator,
            media_base_url,
            cors_origins,
            deleted_artwork_grace,
            writes_per_minute,
            backup_key_id,
        }
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
    pub media_base_url: String,
    /// The processed bucket: edge visibility and previews.
    pub media: EdgeMedia,
    pub cors_origins: Vec<String>,
    pub deleted_artwork_grace: chrono::Duration,
    pub write_limiter: http::RateLimiter,
    /// Proves who runs an operator task (invocations outside the router).
    pub verifier: shared::runner::Verifier,
    /// How long a request may take before it is answered 503 (`http::deadline`).
    pub request_deadline: Duration,
    /// Bounds token guessing on this instance (`http::TokenGuard`).
    pub token_guard: http::TokenGuard,
    /// The erasure ledger: a request is recorded there before it is answered.
    pub ledger: shared::ledger::Ledger,
}

impl AppState {
    pub async fn connect(config: &ApiConfig) -> anyhow::Result<Self> {
        let (clients, pool) = shared::connect::connect(&config.common).await?;
        Ok(Self::new(config, pool, &clients))
    }

    pub fn new(config: &ApiConfig, pool: Pool, clients: &shared::aws::Clients) -> Self {
        let store = ObjectStore::new(clients, &config.common.storage.data_key_id);
        Self {
            media: EdgeMedia {
                pool: pool.clone(),
                store: store.clone(),
                bucket: config.common.storage.processed_bucket.clone(),
            },
            pool,
            store,
            originals_bucket: config.common.storage.originals_bucket.clone(),
            post_endpoint: PostEndpoint {
                region: config.region.clone(),
                override_url: config.common.aws.endpoint_url.clone(),
            },
            upload_max_bytes: config.upload_max_bytes,
            upload_url_ttl: config.upload_url_ttl,
            media_base_url: config.media_base_url.clone(),
            cors_origins: config.cors_origins.clone(),
            deleted_artwork_grace: config.deleted_artwork_grace,
            write_limiter: http::RateLimiter::per_minute(config.writes_per_minute),
            verifier: shared::runner::Verifier::new(&config.operator, &config.common.aws),
            request_deadline: http::request_deadline(&config.common.db),
            token_guard: http::TokenGuard::per_minute(http::NEW_TOKEN_LOOKUPS_PER_MINUTE),
            ledger: shared::ledger::Ledger::new(
                clients,
                &config.common.storage.backups_bucket,
                &config.backup_key_id,
            ),
        }
    }

    async fn client(&self) -> Result<shared::db::Client, ApiError> {
        Ok(self.pool.get().await?)
    }

    /// After a write commits: the edge serves what the catalogue now says. A
    /// failure does not undo the write (it stands); the reconcile sweep settles
    /// the drift, and the metric alarms.
    async fn settle_artwork(&self, artwork_id: uuid::Uuid) {
        report_settle(self.media.settle_artwork(artwork_id).await);
    }

    async fn settle_artist(&self, artist_id: uuid::Uuid) {
        report_settle(self.media.settle_artist(artist_id).await);
    }
}

fn report_settle(result: Result<shared::media::Settled, shared::media::MediaError>) {
    match result {
        Ok(s) => tracing::info!(
            published = s.published.len(),
            withdrawn = s.withdrawn.len(),
            "edge visibility settled"
        ),
        Err(e) => {
            tracing::error!(error = %e, "edge visibility not settled; the reconcile sweep will");
            shared::telemetry::count("api", "EdgeSettleFailed", 1.0);
        }
    }
}

pub type SharedState = Arc<AppState>;

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
            assert!(request.uri().path().starts_with("/v1/"));
        }
    }

    /// Without a custom domain Terraform leaves the media origin empty: the
    /// rendition URLs must be root-relative under `/renditions/`, the path the
    /// distribution in front of the API serves (no behaviour serves `/media`).
    #[test]
    fn without_a_media_origin_renditions_are_root_relative() {
        let vars = [
            ("GALLERY_ORIGINALS_BUCKET", "g-originals"),
            ("GALLERY_PROCESSED_BUCKET", "g-processed"),
            ("GALLERY_BACKUPS_BUCKET", "g-backups"),
            ("GALLERY_KMS_KEY_ID", "alias/g-data"),
            ("GALLERY_BACKUP_KMS_KEY_ID", "alias/g-backups"),
            ("DATABASE_HOST", "db.internal"),
            ("DATABASE_NAME", "gallery"),
            ("DATABASE_USER", "gallery_app"),
            (
                "DATABASE_PASSWORD_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db",
            ),
            ("DATABASE_CA_BUNDLE", "/var/task/rds-ca-bundle.pem"),
            ("AWS_REGION", "eu-west-1"),
            ("GALLERY_MEDIA_BASE_URL", ""),
        ];
        let env = shared::config::Env::from_map(
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        );
        let config = super::ApiConfig::read(env).unwrap();
        let url = crate::views::Media(&config.media_base_url).url("renditions/a/b/800.webp");
        assert_eq!(url, "/renditions/a/b/800.webp");
    }

    #[test]
    fn configuration_problems_are_listed_together() {
        let err =
            super::ApiConfig::read(shared::config::Env::from_map(Default::default())).unwrap_err();
        assert!(err.problems.len() >= 6, "{err}");
        assert!(err.to_string().contains("AWS_REGION is required"));
    }
}
