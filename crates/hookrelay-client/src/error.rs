//! The SDK's one error type.

use serde::Deserialize;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with its error envelope.
    #[error("{message} ({code} {reason})")]
    Api {
        /// The HTTP status.
        code: u16,
        /// A snake_case reason, e.g. `validation_failed`, `not_found`.
        reason: String,
        /// A sentence for humans.
        message: String,
        /// The fields and rules at fault, for validation errors.
        details: Vec<ApiErrorDetail>,
    },
    /// No answer within the client's timeout (after retries).
    #[error("the request timed out")]
    Timeout,
    /// The server could not be reached (after retries).
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// The answer was not what the API sends.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// The client was built with an unusable setting.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

/// One broken rule of a rejected request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ApiErrorDetail {
    /// The field, e.g. `events[0]` or `verificationMethod.secret`.
    pub field: String,
    /// The rule, e.g. `min_length`, `unknown_event`.
    pub rule: String,
    /// A sentence for humans.
    pub message: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    reason: String,
    message: String,
    #[serde(default)]
    details: Vec<ApiErrorDetail>,
}

impl Error {
    /// The error for a non-2xx answer.
    pub(crate) fn from_response(code: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => Self::Api {
                code,
                reason: error.reason,
                message: error.message,
                details: error.details,
            },
            Err(_) => Self::Api {
                code,
                reason: "http_error".into(),
                message: format!("HTTP {code}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
                details: Vec::new(),
            },
        }
    }

    /// Whether retrying the same request may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Api { code, .. } => *code == 429 || *code >= 500,
            Self::Timeout | Self::Network(_) => true,
            Self::Decode(_) | Self::Config(_) => false,
        }
    }
}
