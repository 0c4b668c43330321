//! One write: a transaction holding the change, its audit entry and (for a
//! POST with `Idempotency-Key`) the answer a retry gets. Either all of it
//! commits or none of it does.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::db::{self, AuditEntry};
use shared::domain::Principal;

use crate::extract::Idempotency;
use crate::{ApiError, RequestId};

pub struct Write<'a> {
    pub tx: deadpool_postgres::Transaction<'a>,
    who: Principal,
    request_id: String,
    key: Option<String>,
}

/// What a write answers.
pub struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
    /// Whether a retry may be given this body again (not a token's secret).
    replayable: bool,
}

impl Reply {
    pub fn ok(body: &impl Serialize) -> Result<Self, ApiError> {
        Ok(Self { status: StatusCode::OK, location: None, body: to_json(body)?, replayable: true })
    }

    pub fn created(location: String, body: &impl Serialize) -> Result<Self, ApiError> {
        Ok(Self {
            status: StatusCode::CREATED,
            location: Some(location),
            body: to_json(body)?,
            replayable: true,
        })
    }

    /// Taken on, finished later (`location` says where to follow it).
    pub fn accepted(location: String, body: &impl Serialize) -> Result<Self, ApiError> {
        Ok(Self {
            status: StatusCode::ACCEPTED,
            location: Some(location),
            body: to_json(body)?,
            replayable: true,
        })
    }

    /// Shown once, never stored: a retry learns only that it already happened.
    pub fn secret(mut self) -> Self {
        self.replayable = false;
        self
    }

    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, location: None, body: Vec::new(), replayable: true }
    }
}

fn to_json(body: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.into()))
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let has_body = !self.body.is_empty();
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        if has_body {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(location) = self.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok())
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        if !self.replayable {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}

impl<'a> Write<'a> {
    pub async fn begin(
        client: &'a mut db::Client,
        who: &Principal,
        request: &RequestId,
    ) -> Result<Write<'a>, ApiError> {
        let tx = client.transaction().await?;
        Ok(Write { tx, who: who.clone(), request_id: request.0.clone(), key: None })
    }

    /// Claims the request's idempotency key. `Some(answer)` is the earlier
    /// request's answer: return it and write nothing.
    pub async fn idempotent(
        &mut self,
        idempotency: &Idempotency,
    ) -> Result<Option<Response>, ApiError> {
        let Some((key, fingerprint)) = &idempotency.0 else { return Ok(None) };
        let Some(earlier) =
            db::claim_idempotency_key(&self.tx, self.who.token_id, key, fingerprint).await?
        else {
            self.key = Some(key.clone());
            return Ok(None);
        };
        if &earlier.request_sha256 != fingerprint {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "was already used for a different request",
            ));
        }
        let status = earlier
            .status
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::CONFLICT);
        let Some(body) = earlier.body else {
            return Err(ApiError::Conflict(format!(
                "this Idempotency-Key already completed (status {}); its answer was shown once and is not repeated",
                status.as_u16()
            )));
        };
        let mut response =
            Reply { status, location: earlier.location, body: body.into_bytes(), replayable: true }
                .into_response();
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        Ok(Some(response))
    }

    pub async fn audit(
        &self,
        action: &str,
        target: String,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let entry = AuditEntry {
            actor: &self.who.actor(),
            action,
            target: &target,
            request_id: Some(&self.request_id),
            detail,
        };
        db::append_audit(&self.tx, &entry).await?;
        Ok(())
    }

    /// Stores the answer under the idempotency key (if any), then commits.
    pub async fn commit(self, reply: Reply) -> Result<Response, ApiError> {
        if let Some(key) = &self.key {
            let body = reply.replayable.then(|| String::from_utf8_lossy(&reply.body).into_owned());
            db::record_idempotent_outcome(
                &self.tx,
                self.who.token_id,
                key,
                reply.status.as_u16() as i16,
                reply.location.as_deref(),
                body.as_deref(),
            )
            .await?;
        }
        self.tx.commit().await?;
        Ok(reply.into_response())
    }
}
