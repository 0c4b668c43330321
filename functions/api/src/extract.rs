//! Extractors: who is calling, and the request's parts read strictly, each
//! failure a typed `ApiError` (so a problem+json answer) instead of axum's
//! plain-text rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shared::domain::{Principal, Scope};
use uuid::Uuid;

use crate::http::BodyDigest;
use crate::{ApiError, SharedState};

/// The header the gallery token travels in. Not `Authorization`: CloudFront's
/// origin access control overwrites that with its own signature.
pub const TOKEN_HEADER: &str = "x-gallery-token";

/// A caller whose gallery token is live. Extracting it from a request without
/// one (or with a bad one) answers 401 before the handler runs.
pub struct Authenticated(pub Principal);

impl FromRequestParts<SharedState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let secret = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| s.starts_with(shared::domain::TOKEN_PREFIX) && s.len() <= 200)
            .ok_or(ApiError::Unauthenticated)?;
        let digest = shared::domain::token_digest(secret);
        state
            .token_guard
            .admit(&digest)
            .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
        let client = state.client().await?;
        let principal = shared::db::principal_for_token(&client, &digest).await?;
        if principal.is_some() {
            state.token_guard.known(&digest);
        }
        principal.map(Authenticated).ok_or(ApiError::Unauthenticated)
    }
}

/// An authenticated request's context: the state, the caller, its request id.
pub struct Caller {
    pub state: SharedState,
    pub who: Principal,
    pub request: crate::RequestId,
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let Authenticated(who) = Authenticated::from_request_parts(parts, state).await?;
        let request = parts
            .extensions
            .get::<crate::RequestId>()
            .cloned()
            .unwrap_or_else(|| crate::RequestId(String::new()));
        Ok(Self { state: state.clone(), who, request })
    }
}

/// What a route needs of its caller.
pub trait Require {
    /// The artist this token acts for; admins have none (403).
    fn artist(&self) -> Result<Uuid, ApiError>;
    fn admin(&self) -> Result<(), ApiError>;
}

impl Require for Principal {
    fn artist(&self) -> Result<Uuid, ApiError> {
        match (self.scope, self.artist_id) {
            (Scope::Artist, Some(id)) => Ok(id),
            _ => Err(ApiError::Forbidden),
        }
    }

    fn admin(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            Scope::Artist => Err(ApiError::Forbidden),
        }
    }
}

/// `axum::Json`, with its rejections as problems: 415 without a JSON content
/// type, 400 for broken syntax, 422 for the wrong shape (unknown fields too).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// A JSON body that may be absent: an empty body is `None`, anything else is
/// read exactly as [`Json`] reads it.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let limit = crate::BODY_LIMIT;
        let bytes =
            axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::TooLarge { limit })?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(Some(value)))
    }
}

/// A query string read strictly (unknown parameters refused), 400 otherwise.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A path parameter; one that does not parse (a bad id, bytes that are not
/// UTF-8) names nothing that exists: 404.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The `If-Match` an update must carry: 428 without it, 412 when it names a
/// representation other than the current one.
pub struct IfMatch(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::Malformed("If-Match is not ASCII".into()))?
                    .to_owned(),
            ),
        };
        Ok(Self(value))
    }
}

impl IfMatch {
    /// Checks the header against the ETag of the representation as it is now.
    pub fn check(&self, current: &impl serde::Serialize) -> Result<(), ApiError> {
        let header = self.0.as_deref().ok_or(ApiError::PreconditionRequired)?;
        if crate::http::match_hits(header, &crate::http::etag_of(current)?) {
            Ok(())
        } else {
            Err(ApiError::PreconditionFailed)
        }
    }
}

/// An optional `Idempotency-Key`, with the fingerprint of the request it came with.
pub struct Idempotency(pub Option<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get("idempotency-key") else { return Ok(Self(None)) };
        let key = raw
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::Malformed(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                )
            })?;
        // The same key with another body (or on another route) is a client bug, not a retry.
        let body = parts.extensions.get::<BodyDigest>().map(|d| d.0.as_str()).unwrap_or_default();
        let fingerprint = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(format!("{} {}\n{body}", parts.method, parts.uri.path())))
        };
        Ok(Self(Some((key.to_owned(), fingerprint))))
    }
}
