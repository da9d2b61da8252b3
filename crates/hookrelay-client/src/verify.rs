//! Receiver-side verification of hookrelay deliveries: check the `Monime-Signature`
//! header against the raw body, then parse the event. Signature checking is
//! `hookrelay_core::signing`, the very code the server signs with. During a key
//! rotation's overlap a delivery carries one `v1` per live key: a verifier holding the
//! old key, the new one, or both accepts it (`Verifier::or_hs256`, `Verifier::or_es256`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookrelay_core::signing::{verify_any, VerificationKey, VerifyError as SignatureError, DEFAULT_TOLERANCE_SECS};
use serde::Deserialize;
use serde_json::Value;

pub use hookrelay_core::signing::{KEY_ID_HEADER, SIGNATURE_HEADER};
pub use hookrelay_core::standard_webhooks::{self, ReceivedHeaders};

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
    /// The header is not exactly one `t=` and at least one `v1=` that parse.
    HeaderInvalid,
    /// `t` is further from now than the tolerance.
    TimestampOutsideTolerance,
    /// The signature does not match the body and key.
    SignatureMismatch,
    /// The signature is good but the body is not a delivery envelope.
    PayloadInvalid,
    /// No key of the key set is one the delivery names in `Monime-Signature-Key-Id`,
    /// even after fetching the set again.
    UnknownKey,
    /// The key set could not be fetched or read.
    KeySetUnavailable,
}

impl VerifyErrorKind {
    /// `header_invalid`, `timestamp_outside_tolerance`, `signature_mismatch`,
    /// `payload_invalid`, `unknown_key` or `key_set_unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderInvalid => "header_invalid",
            Self::TimestampOutsideTolerance => "timestamp_outside_tolerance",
            Self::SignatureMismatch => "signature_mismatch",
            Self::PayloadInvalid => "payload_invalid",
            Self::UnknownKey => "unknown_key",
            Self::KeySetUnavailable => "key_set_unavailable",
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

    pub(crate) fn new(kind: VerifyErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// A key that can verify deliveries.
#[derive(Debug, thiserror::Error)]
#[error("not a PEM-encoded P-256 public key (-----BEGIN PUBLIC KEY-----)")]
pub struct InvalidPublicKey;

/// Verifies deliveries for one webhook, with one key or several (during a rotation's
/// overlap, the old and the new). `Debug` shows the method and the tolerance, not the keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<VerificationKey>,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<&str> = self
            .keys
            .iter()
            .map(|key| match key {
                VerificationKey::Hs256(_) => "HS256",
                VerificationKey::Es256(_) => "ES256",
            })
            .collect();
        f.debug_struct("Verifier")
            .field("methods", &methods)
            .field("keys", &crate::redact::Redacted)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// For an HS256 webhook, with its secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::with_keys(vec![VerificationKey::Hs256(secret.as_ref().to_vec())])
    }

    /// For an ES256 webhook, with the PEM `verificationMethod.publicKey` the API returned.
    pub fn es256(public_key_pem: &str) -> Result<Self, InvalidPublicKey> {
        Ok(Self::with_keys(vec![es256_key(public_key_pem)?]))
    }

    /// Verifies with any of `keys`.
    pub(crate) fn with_keys(keys: Vec<VerificationKey>) -> Self {
        Self {
            keys,
            tolerance: Duration::from_secs(DEFAULT_TOLERANCE_SECS),
        }
    }

    /// Also accepts deliveries signed with this HS256 secret: during a rotation, hold
    /// the new secret and the old one until the overlap ends.
    pub fn or_hs256(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.keys.push(VerificationKey::Hs256(secret.as_ref().to_vec()));
        self
    }

    /// Also accepts deliveries signed with the key of this PEM public key.
    pub fn or_es256(mut self, public_key_pem: &str) -> Result<Self, InvalidPublicKey> {
        self.keys.push(es256_key(public_key_pem)?);
        Ok(self)
    }

    /// Accept signatures whose `t` is within `tolerance` of now (default 300 s).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies `body` (the raw bytes, before any JSON parsing) against the
    /// `Monime-Signature` header value, then parses it: accepted when any `v1` in the
    /// header verifies with any of this verifier's keys.
    pub fn verify(&self, body: &[u8], signature_header: &str) -> Result<WebhookEvent, VerifyError> {
        self.verify_at(body, signature_header, unix_now())
    }

    /// [`Self::verify`] as if the time were `now` (unix seconds).
    pub fn verify_at(&self, body: &[u8], signature_header: &str, now: i64) -> Result<WebhookEvent, VerifyError> {
        verify_any(&self.keys, signature_header, body, now, self.tolerance.as_secs()).map_err(rejected)?;
        parse_event(body)
    }

    /// Verifies a delivery of a webhook whose `format` is `standard-webhooks`, from its
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, then parses it:
    /// accepted when any `v1` (HS256) or `es256` entry verifies with any of this
    /// verifier's keys.
    pub fn verify_standard(
        &self,
        body: &[u8],
        headers: standard_webhooks::ReceivedHeaders<'_>,
    ) -> Result<WebhookEvent, VerifyError> {
        self.verify_standard_at(body, headers, unix_now())
    }

    /// [`Self::verify_standard`] as if the time were `now` (unix seconds).
    pub fn verify_standard_at(
        &self,
        body: &[u8],
        headers: standard_webhooks::ReceivedHeaders<'_>,
        now: i64,
    ) -> Result<WebhookEvent, VerifyError> {
        let tolerance = self.tolerance.as_secs();
        standard_webhooks::verify_any(&self.keys, headers, body, now, tolerance).map_err(rejected)?;
        parse_event(body)
    }
}

/// A signature check's refusal as the SDK names it.
fn rejected(error: SignatureError) -> VerifyError {
    let kind = match error {
        SignatureError::HeaderInvalid(_) => VerifyErrorKind::HeaderInvalid,
        SignatureError::TimestampOutsideTolerance => VerifyErrorKind::TimestampOutsideTolerance,
        SignatureError::SignatureMismatch => VerifyErrorKind::SignatureMismatch,
    };
    VerifyError::new(kind, error.to_string())
}

/// A verified body as the event it must be.
fn parse_event(body: &[u8]) -> Result<WebhookEvent, VerifyError> {
    serde_json::from_slice(body).map_err(|error| VerifyError::new(VerifyErrorKind::PayloadInvalid, error.to_string()))
}

fn es256_key(public_key_pem: &str) -> Result<VerificationKey, InvalidPublicKey> {
    VerificationKey::es256_from_pem(public_key_pem).ok_or(InvalidPublicKey)
}

/// Now, in unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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
