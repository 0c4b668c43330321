//! Every failure the API returns is `application/problem+json` (RFC 9457).

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::db::DbError;
use shared::domain::Invalid;
use shared::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid: {0}")]
    BadBody(String),
    #[error("the request is invalid")]
    Invalid(Vec<Invalid>),
    #[error("a bearer token is required")]
    Unauthenticated,
    #[error("this token may not do that")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError<'a>>,
}

#[derive(Serialize)]
struct FieldError<'a> {
    field: &'a str,
    message: &'a str,
}

/// Request facts a problem body repeats, set by the request-id middleware.
#[derive(Clone, Debug, Default)]
pub struct ProblemContext {
    pub request_id: Option<String>,
    pub instance: Option<String>,
}

tokio::task_local! {
    pub static PROBLEM_CONTEXT: ProblemContext;
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadBody(_) | Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::BadBody(_) => "bad-body",
            Self::Invalid(_) => "invalid",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Unavailable(e) | Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), status = status.as_u16(), "request failed");
                shared::telemetry::count("api", "ApiServerError", 1.0);
            }
            Self::Unauthenticated => shared::telemetry::count("api", "ApiUnauthorized", 1.0),
            _ => {}
        }
        let ctx = PROBLEM_CONTEXT.try_with(Clone::clone).unwrap_or_default();
        let errors = match &self {
            Self::Invalid(list) => list.iter().map(|i| FieldError { field: i.field, message: &i.message }).collect(),
            _ => Vec::new(),
        };
        let kind = format!("https://copper-gallery.example/problems/{}", self.slug());
        let body = Problem {
            kind: &kind,
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            // A 5xx says no more than its own text; the chain went to the log.
            detail: self.to_string(),
            instance: ctx.instance,
            request_id: ctx.request_id,
            errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"status\":500}".to_vec());
        let mut response = (status, json).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e.sqlstate() {
            Some("23505") => Self::Conflict("that already exists".into()),
            Some("23514") => Self::Conflict(
                "the change would break a rule of the gallery (for example, selling more prints than the edition holds)".into(),
            ),
            _ if e.is_retryable() => Self::Unavailable(e.into()),
            _ => Self::Internal(e.into()),
        }
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

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::BadBody(r.body_text())
    }
}

impl From<Vec<Invalid>> for ApiError {
    fn from(v: Vec<Invalid>) -> Self {
        Self::Invalid(v)
    }
}
