//! Receiver-side verification of hookrelay deliveries: check the `Monime-Signature`
//! header against the raw body, then parse the event. Signature checking is
//! `hookrelay_core::signing`, the very code the server signs with.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookrelay_core::signing::{VerificationKey, VerifyError as SignatureError, DEFAULT_TOLERANCE_SECS};
use serde::Deserialize;
use serde_json::Value;

pub use hookrelay_core::signing::SIGNATURE_HEADER;

/// A verified delivery's body.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// The webhook's `apiRelease` when it was sent.
    pub api_version: String,
    /// Which event.
    pub event: EventHeader,
    /// What it is about.
    pub object: crate::types::EventObject,
    /// The object as published.
    pub data: Value,
}

/// The event's identity: de-duplicate on `id`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct EventHeader {
    /// `evt-…`, the same on every attempt.
    pub id: String,
    /// E.g. `payment.completed`.
    pub name: String,
    /// When it was published (RFC 3339).
    pub timestamp: String,
}

/// Why a delivery was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyErrorKind {
    /// The header is not exactly one `t=` and one `v1=` that parse.
    HeaderInvalid,
    /// `t` is further from now than the tolerance.
    TimestampOutsideTolerance,
    /// The signature does not match the body and key.
    SignatureMismatch,
    /// The signature is good but the body is not a delivery envelope.
    PayloadInvalid,
}

impl VerifyErrorKind {
    /// `header_invalid`, `timestamp_outside_tolerance`, `signature_mismatch` or `payload_invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderInvalid => "header_invalid",
            Self::TimestampOutsideTolerance => "timestamp_outside_tolerance",
            Self::SignatureMismatch => "signature_mismatch",
            Self::PayloadInvalid => "payload_invalid",
        }
    }
}

impl fmt::Display for VerifyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected delivery. Its message never contains key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct VerifyError {
    kind: VerifyErrorKind,
    detail: String,
}

impl VerifyError {
    /// Why.
    pub fn kind(&self) -> VerifyErrorKind {
        self.kind
    }
}

/// A key that can verify deliveries.
#[derive(Debug, thiserror::Error)]
#[error("not a PEM-encoded P-256 public key (-----BEGIN PUBLIC KEY-----)")]
pub struct InvalidPublicKey;

/// Verifies deliveries for one webhook. `Debug` shows the method and the tolerance, not
/// the key.
#[derive(Clone)]
pub struct Verifier {
    key: VerificationKey,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match &self.key {
            VerificationKey::Hs256(_) => "HS256",
            VerificationKey::Es256(_) => "ES256",
        };
        f.debug_struct("Verifier")
            .field("method", &method)
            .field("key", &crate::redact::Redacted)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// For an HS256 webhook, with its secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: VerificationKey::Hs256(secret.as_ref().to_vec()),
            tolerance: Duration::from_secs(DEFAULT_TOLERANCE_SECS),
        }
    }

    /// For an ES256 webhook, with the PEM `verificationMethod.publicKey` the API returned.
    pub fn es256(public_key_pem: &str) -> Result<Self, InvalidPublicKey> {
        Ok(Self {
            key: VerificationKey::es256_from_pem(public_key_pem).ok_or(InvalidPublicKey)?,
            tolerance: Duration::from_secs(DEFAULT_TOLERANCE_SECS),
        })
    }

    /// Accept signatures whose `t` is within `tolerance` of now (default 300 s).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies `body` (the raw bytes, before any JSON parsing) against the
    /// `Monime-Signature` header value, then parses it.
    pub fn verify(&self, body: &[u8], signature_header: &str) -> Result<WebhookEvent, VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.verify_at(body, signature_header, now)
    }

    /// [`Self::verify`] as if the time were `now` (unix seconds).
    pub fn verify_at(&self, body: &[u8], signature_header: &str, now: i64) -> Result<WebhookEvent, VerifyError> {
        self.key
            .verify(signature_header, body, now, self.tolerance.as_secs())
            .map_err(|error| {
                let kind = match error {
                    SignatureError::HeaderInvalid(_) => VerifyErrorKind::HeaderInvalid,
                    SignatureError::TimestampOutsideTolerance => VerifyErrorKind::TimestampOutsideTolerance,
                    SignatureError::SignatureMismatch => VerifyErrorKind::SignatureMismatch,
                };
                VerifyError {
                    kind,
                    detail: error.to_string(),
                }
            })?;
        serde_json::from_slice(body).map_err(|error| VerifyError {
            kind: VerifyErrorKind::PayloadInvalid,
            detail: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_the_hs256_secret() {
        let secret = "verifier-secret-that-must-not-print";
        let text = format!("{:?}", Verifier::hs256(secret));
        assert!(text.contains("HS256"), "{text}");
        assert!(!text.contains(secret), "the secret printed: {text}");
        // Nor as the bytes a derived `Debug` of the key would print.
        let bytes = format!("{:?}", secret.as_bytes());
        assert!(
            !text.contains(&bytes[1..bytes.len() - 1]),
            "the secret's bytes printed: {text}"
        );
    }
}
