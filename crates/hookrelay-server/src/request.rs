//! Extractors that turn the raw request into trusted values: the caller's space
//! (authentication and tenancy), the JSON body, the idempotency key. Each rejects with
//! an [`ApiError`], so every malformed request gets the envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use hookrelay_core::access::{last_use_due, Grant, Refusal};
use hookrelay_core::quota::Quotas;
use hookrelay_core::{token, SpaceId, Timestamp};
use serde_json::Value;

use crate::api::RequiredScope;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted, in bytes (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `Monime-Version` values this server speaks.
pub const SUPPORTED_VERSIONS: &[&str] = &["caph.2025-08-23", "caph.2025-06-20"];

/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX: usize = 64;

/// An authenticated caller acting in one space, with a token that has the scope of the
/// route it calls (declared where the route is registered: `api::RouteTable::add`).
#[derive(Clone, Debug)]
pub struct Tenant {
    /// The space named by `Monime-Space-Id` and granted by the token.
    pub space_id: SpaceId,
    /// What the caller's token grants.
    pub grant: Arc<Grant>,
}

impl Tenant {
    /// The quotas the caller's space works within.
    pub fn quotas(&self, state: &AppState) -> Quotas {
        self.grant.quotas.over(&state.quotas)
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(&RequiredScope(scope)) = parts.extensions.get::<RequiredScope>() else {
            return Err(ApiError::Internal("an authenticated route declares no scope".into()));
        };
        let token = bearer_token(&parts.headers)?;
        let digest = token::digest(token);
        let grant = state
            .grant(&digest)
            .await?
            .ok_or(ApiError::Unauthenticated("the access token is not valid"))?;
        let space_id = space_header(&parts.headers)?;
        check_version(&parts.headers)?;
        let now = Timestamp::now();
        grant.allows(&space_id, scope, now).map_err(|refusal| match refusal {
            Refusal::Expired => ApiError::Unauthenticated("the access token has expired"),
            Refusal::OtherSpace => ApiError::Forbidden(space_id.to_string()),
            Refusal::SpaceDisabled => ApiError::SpaceDisabled(space_id.to_string()),
            Refusal::MissingScope(scope) => ApiError::InsufficientScope(format!(
                "this access token lacks the scope {scope}, which this operation needs"
            )),
        })?;
        if last_use_due(grant.last_used_time, now) {
            state.record_use(&digest, &grant, now);
        }
        Ok(Self { space_id, grant })
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthenticated(
        "the Authorization header is missing: send `Authorization: Bearer <token>`",
    ))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the Authorization header is not a bearer token"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(ApiError::Unauthenticated(
            "the Authorization header is not a bearer token",
        )),
    }
}

fn space_header(headers: &HeaderMap) -> Result<SpaceId, ApiError> {
    const FIELD: &str = "Monime-Space-Id";
    let value = headers
        .get(FIELD)
        .ok_or_else(|| ApiError::field(FIELD, "required", "the Monime-Space-Id header is required"))?;
    value.to_str().ok().and_then(SpaceId::parse).ok_or_else(|| {
        ApiError::field(
            FIELD,
            "format",
            "Monime-Space-Id must be `spc-` followed by letters, digits, `_` or `-`, at most 64 characters",
        )
    })
}

fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    const FIELD: &str = "Monime-Version";
    match headers.get(FIELD) {
        None => Ok(()),
        Some(value) if value.to_str().is_ok_and(|v| SUPPORTED_VERSIONS.contains(&v)) => Ok(()),
        Some(_) => Err(ApiError::field(
            FIELD,
            "enum",
            format!("Monime-Version must be one of: {}", SUPPORTED_VERSIONS.join(", ")),
        )),
    }
}

/// A request body that is a JSON document of at most [`MAX_BODY_BYTES`]: parsed, and
/// the bytes as sent (for what must be kept exactly as the client wrote it).
#[derive(Debug)]
pub struct JsonBody(pub Value, pub Bytes);

impl JsonBody {
    /// Parses bytes a [`JsonBytes`] read.
    pub fn parse(bytes: Bytes) -> Result<Self, ApiError> {
        let value = serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        Ok(Self(value, bytes))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        Self::parse(bytes)
    }
}

/// The bytes of a request body declared as JSON, of at most [`MAX_BODY_BYTES`], not yet
/// parsed: for a handler that reads them into its own types first.
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(MAX_BODY_BYTES)
            } else {
                ApiError::InvalidJson(rejection.body_text())
            }
        })?;
        Ok(Self(bytes))
    }
}

/// The `Idempotency-Key` header, required on POST.
#[derive(Clone, Debug)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        const FIELD: &str = "Idempotency-Key";
        let value = parts.headers.get(FIELD).ok_or_else(|| {
            ApiError::field(
                FIELD,
                "required",
                "the Idempotency-Key header is required on POST requests",
            )
        })?;
        let key = value
            .to_str()
            .map_err(|_| ApiError::field(FIELD, "format", "Idempotency-Key must be printable ASCII"))?;
        if key.trim().is_empty() {
            return Err(ApiError::field(FIELD, "required", "Idempotency-Key must not be empty"));
        }
        if key.len() > IDEMPOTENCY_KEY_MAX {
            return Err(ApiError::field(
                FIELD,
                "max_length",
                format!("Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} characters"),
            ));
        }
        Ok(Self(key.to_owned()))
    }
}
