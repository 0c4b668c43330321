//! Every failure the API returns is `application/problem+json` (RFC 9457),
//! with a stable `type` URI per problem and the request id.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::aws::storage::StorageError;
use shared::db::DbError;
use shared::domain::Invalid;

/// Where the problem types are documented; each `type` is this plus the problem's slug.
pub const PROBLEM_BASE: &str = "https://copper-gallery.example/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or query is not syntactically what the route reads.
    #[error("the request is malformed: {0}")]
    Malformed(String),
    #[error("the request is invalid")]
    Invalid(Vec<Invalid>),
    #[error("a gallery token is required in the x-gallery-token header")]
    Unauthenticated,
    #[error("this token may not do that")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: String, allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the resource changed since it was read; fetch it again and retry with its new ETag")]
    PreconditionFailed,
    #[error("this request must carry If-Match with the resource's ETag")]
    PreconditionRequired,
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("too many requests; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The problem document, as the OpenAPI document describes it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable URI naming the problem, e.g. `https://copper-gallery.example/problems/invalid`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// One entry per field that broke a rule (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Request facts a problem body repeats, set by the request-context middleware.
#[derive(Clone, Debug, Default)]
pub struct ProblemContext {
    pub request_id: Option<String>,
    pub instance: Option<String>,
}

tokio::task_local! {
    pub static PROBLEM_CONTEXT: ProblemContext;
}

/// How long a client should wait after a 503 before retrying.
const RETRY_AFTER_UNAVAILABLE: u64 = 2;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last segment of the problem's `type` URI; stable, documented in the README.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Invalid(_) => "invalid",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::NoRoute => "no-route",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::PreconditionRequired => "precondition-required",
            Self::TooLarge { .. } => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Invalid { field, message: message.into() }])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Unavailable(e) | Self::Internal(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    status = status.as_u16(),
                    "request failed"
                );
                shared::telemetry::count("api", "ApiServerError", 1.0);
            }
            Self::Unauthenticated => shared::telemetry::count("api", "ApiUnauthorized", 1.0),
            _ => {}
        }
        let ctx = PROBLEM_CONTEXT.try_with(Clone::clone).unwrap_or_default();
        let errors = match &self {
            Self::Invalid(list) => list
                .iter()
                .map(|i| FieldError { field: i.field.to_owned(), message: i.message.clone() })
                .collect(),
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("{PROBLEM_BASE}{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            // A 5xx says no more than its own text; the chain went to the log.
            detail: self.to_string(),
            instance: ctx.instance,
            request_id: ctx.request_id,
            errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"status\":500}".to_vec());
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Self::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("GalleryToken header=\"x-gallery-token\""),
                );
            }
            Self::MethodNotAllowed { allow, .. } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_UNAVAILABLE));
            }
            _ => {}
        }
        response
    }
}

/// Columns whose CHECK a client's value can break (`<table>_<column>_check`).
const CHECKED_FIELDS: &[&str] = &[
    "name",
    "email",
    "bio",
    "website",
    "title",
    "slug",
    "description",
    "medium",
    "year",
    "width_mm",
    "height_mm",
    "edition_size",
    "paper",
    "price_minor",
    "currency",
    "label",
];

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e.sqlstate() {
            // Every uniqueness and rule the client can break is checked before
            // the write with a specific message; these are the races left over.
            Some("23505") => Self::Conflict("that already exists".into()),
            Some("23514") => match e.constraint() {
                Some("print_editions_not_oversold") => Self::Conflict(
                    "the change would sell more prints than the edition holds".into(),
                ),
                Some(c) => {
                    match CHECKED_FIELDS.iter().find(|f| c.ends_with(&format!("_{f}_check"))) {
                        Some(field) => {
                            Self::invalid(field, "breaks the gallery's rule for this field")
                        }
                        None => Self::Conflict(format!(
                            "the change would break a rule of the gallery ({c})"
                        )),
                    }
                }
                None => Self::Conflict("the change would break a rule of the gallery".into()),
            },
            // Class 22, data exceptions: a value PostgreSQL cannot hold or
            // compare. The handlers validate first; this is the backstop, so a
            // client's value never becomes a 500.
            Some(code) if code.starts_with("22") => {
                Self::invalid("request", "holds a value the gallery cannot store")
            }
            // Serialization failures, deadlocks, a lock not granted in time: retry.
            Some("40001") | Some("40P01") | Some("55P03") => Self::Unavailable(e.into()),
            _ if e.is_retryable() => Self::Unavailable(e.into()),
            _ => Self::Internal(e.into()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::from(e).into()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_retryable() {
            Self::Unavailable(e.into())
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<shared::ledger::LedgerError> for ApiError {
    fn from(e: shared::ledger::LedgerError) -> Self {
        if e.is_retryable() {
            Self::Unavailable(e.into())
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            // Well-formed JSON of the wrong shape: unknown field, wrong type, number out of range.
            JsonRejection::JsonDataError(e) => Self::invalid("body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::Malformed(e.body_text()),
            other => Self::Malformed(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::Malformed(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    // A path segment that is not valid UTF-8 or not the expected type names nothing we have.
    fn from(_: PathRejection) -> Self {
        Self::NotFound
    }
}

impl From<Vec<Invalid>> for ApiError {
    fn from(v: Vec<Invalid>) -> Self {
        Self::Invalid(v)
    }
}
