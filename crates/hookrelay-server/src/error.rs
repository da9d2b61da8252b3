//! The API's one error type, and the one place it becomes the error envelope:
//! `{success: false, messages: [..], error: {code, reason, message, details}}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookrelay_core::quota::QuotaExceeded;
use hookrelay_core::{FieldError, ValidationErrors};
use hookrelay_store::StoreError;
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request broke field rules (body fields, query parameters or headers).
    #[error("{0}")]
    Validation(ValidationErrors),
    /// The body is not JSON.
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is not declared as JSON.
    #[error("the request body must be sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body exceeds the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// No token, or an unknown one.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A valid token used for another space.
    #[error("this access token does not grant access to space {0}")]
    Forbidden(String),
    /// A token without the scope an operation needs (or grants): the message names it.
    #[error("{0}")]
    InsufficientScope(String),
    /// The space is disabled by an operator.
    #[error("space {0} is disabled: its tokens are refused until an operator enables it")]
    SpaceDisabled(String),
    /// The request would take the space past a quota.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The space publishes faster than its rate; a token is there again after the
    /// duration, sent as `Retry-After` in whole seconds.
    #[error("{0}")]
    RateLimited(QuotaExceeded, Duration),
    /// No such resource in this space (or no such route).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// An `Idempotency-Key` reused for a different request.
    #[error("{0}")]
    IdempotencyConflict(&'static str),
    /// The webhook is disabled, so nothing can be sent to it.
    #[error("webhook {0} is disabled; enable it first")]
    WebhookDisabled(String),
    /// The request was not received and answered in time (`http_request_timeout`).
    #[error("the request was not received and answered within {} s; its connection is closed", .0.as_secs_f64())]
    RequestTimeout(Duration),
    /// The delivery's event has no data any more: nothing to send.
    #[error("{0}")]
    EventDataRemoved(String),
    /// Our fault; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// One broken rule.
    pub fn field(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(ValidationErrors::single(field, rule, message))
    }

    fn status_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            Self::SpaceDisabled(_) => (StatusCode::FORBIDDEN, "space_disabled"),
            Self::QuotaExceeded(_) => (StatusCode::CONFLICT, "quota_exceeded"),
            Self::RateLimited(..) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::IdempotencyConflict(_) => (StatusCode::CONFLICT, "idempotency_conflict"),
            Self::WebhookDisabled(_) => (StatusCode::CONFLICT, "webhook_disabled"),
            Self::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::EventDataRemoved(_) => (StatusCode::CONFLICT, "event_data_removed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least one.
fn retry_after(wait: Duration) -> HeaderValue {
    let seconds = wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0));
    HeaderValue::from(seconds.max(1))
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::QuotaExceeded(exceeded) => Self::QuotaExceeded(exceeded),
            StoreError::EventDataRemoved => Self::EventDataRemoved(StoreError::EventDataRemoved.to_string()),
            error => Self::Internal(Box::new(error)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, reason) = self.status_and_reason();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %crate::error_chain(cause.as_ref()), "request failed");
        }
        let message = self.to_string();
        let details: &[FieldError] = match &self {
            Self::Validation(errors) => &errors.0,
            _ => &[],
        };
        let body = json!({
            "success": false,
            "messages": [message],
            "error": {
                "code": status.as_u16(),
                "reason": reason,
                "message": message,
                "details": details,
            },
        });
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            Self::RateLimited(_, wait) => {
                response.headers_mut().insert(header::RETRY_AFTER, retry_after(*wait));
            }
            // The rest of a timed-out request may still be on its way: the connection
            // cannot carry another one.
            Self::RequestTimeout(_) => {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}
