//! Rotating a webhook's signing key with an overlap: the request's rules, and the state a
//! rotation, or the end of its overlap, leaves the webhook in. At most two keys are live:
//! a rotation during an overlap replaces the previous key with the one it retires.

use std::time::Duration;

use serde_json::Value;

use super::fields::{parse_string_between, reject_unknown_fields, type_error};
use super::{limits, VerificationMethod, Webhook};
use crate::delivery::parse_duration;
use crate::id::KeyId;
use crate::signing;
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;

/// The fields a rotation request may carry.
pub const ROTATE_FIELDS: &[&str] = &["secret", "overlap"];
/// How long the retired key keeps signing when the request names no overlap.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest overlap: a week, past the default retry schedule's three days, so a
/// receiver has time to deploy the new key while retries of old deliveries still arrive.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A key that signed before the current one and is still live until `until`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreviousKey {
    /// Its id.
    pub key_id: KeyId,
    /// The secret or key pair (its `Debug` is redacted).
    pub verification: VerificationMethod,
    /// When the overlap ends: from then on only the current key signs.
    pub until: Timestamp,
}

/// A validated `POST /v1/webhooks/{id}/rotate` body.
#[derive(Clone, PartialEq, Eq)]
pub struct RotationRequest {
    /// The new HS256 secret, if the client chose one (else one is generated).
    pub secret: Option<String>,
    /// How long the retired key keeps signing; zero ends it at once.
    pub overlap: Duration,
}

impl std::fmt::Debug for RotationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationRequest")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("overlap", &self.overlap)
            .finish()
    }
}

impl RotationRequest {
    /// Parses a rotation body for a webhook signed by `method`, reporting every broken
    /// rule; `null` is the empty request.
    pub fn parse(body: &Value, method: &VerificationMethod) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let empty = serde_json::Map::new();
        let object = match body {
            Value::Null => &empty,
            Value::Object(object) => object,
            _ => {
                type_error("body", "a JSON object", &mut errors);
                return Err(errors);
            }
        };
        reject_unknown_fields(object, ROTATE_FIELDS, "", &mut errors);
        let secret = match (object.get("secret").filter(|v| !v.is_null()), method) {
            (None, _) => None,
            (Some(_), VerificationMethod::Es256 { .. }) => {
                errors.push(
                    "secret",
                    "not_allowed",
                    "secret applies to HS256 webhooks only: an ES256 rotation generates a new key pair",
                );
                None
            }
            (Some(value), VerificationMethod::Hs256 { secret: current }) => {
                let secret = parse_string_between(value, "secret", limits::SECRET_MIN, limits::SECRET_MAX, &mut errors);
                if secret.as_ref() == Some(current) {
                    errors.push("secret", "unchanged", "secret must differ from the current secret");
                }
                secret
            }
        };
        let overlap = match object.get("overlap").filter(|v| !v.is_null()) {
            None => Some(DEFAULT_OVERLAP),
            Some(value) => parse_overlap(value, &mut errors),
        };
        match overlap {
            Some(overlap) if errors.is_empty() => Ok(Self { secret, overlap }),
            _ => Err(errors),
        }
    }
}

fn parse_overlap(value: &Value, errors: &mut ValidationErrors) -> Option<Duration> {
    let Some(text) = value.as_str() else {
        type_error("overlap", "a duration string such as \"24h\"", errors);
        return None;
    };
    let Some(overlap) = parse_duration(text) else {
        errors.push(
            "overlap",
            "format",
            "overlap must be a whole number followed by ms, s, m, h or d, such as \"24h\" or \"0s\"",
        );
        return None;
    };
    if overlap > MAX_OVERLAP {
        errors.push("overlap", "maximum", "overlap must be at most 7d");
        return None;
    }
    Some(overlap)
}

/// A new key of the same kind as `method`: `secret` for HS256 if given, else generated.
fn new_key(method: &VerificationMethod, secret: Option<String>) -> VerificationMethod {
    match method {
        VerificationMethod::Hs256 { .. } => VerificationMethod::Hs256 {
            secret: secret.unwrap_or_else(super::draft::generate_secret),
        },
        VerificationMethod::Es256 { .. } => {
            let (private_key, public_key_pem) = signing::generate_es256();
            VerificationMethod::Es256 {
                private_key,
                public_key_pem,
            }
        }
    }
}

impl Webhook {
    /// The webhook after `request` at `now`: a new current key with a new id; the retired
    /// key stays live for the overlap (none when it is zero). A previous key still live
    /// is dropped: at most two keys sign.
    pub fn rotated(&self, request: RotationRequest, now: Timestamp) -> Webhook {
        let mut webhook = self.clone();
        let retired = std::mem::replace(&mut webhook.verification, new_key(&self.verification, request.secret));
        let retired_id = std::mem::replace(&mut webhook.key_id, KeyId::generate());
        webhook.previous_key = (!request.overlap.is_zero()).then(|| PreviousKey {
            key_id: retired_id,
            verification: retired,
            until: now.plus(request.overlap),
        });
        webhook.update_time = now;
        webhook
    }

    /// The previous key, while its overlap lasts at `now`.
    pub fn live_previous_key(&self, now: Timestamp) -> Option<&PreviousKey> {
        self.previous_key.as_ref().filter(|previous| now < previous.until)
    }

    /// The webhook with its overlap ended: only the current key signs.
    pub fn overlap_ended(&self, now: Timestamp) -> Webhook {
        let mut webhook = self.clone();
        if webhook.previous_key.take().is_some() {
            webhook.update_time = now;
        }
        webhook
    }

    /// The keys deliveries are signed with, or `None` if stored key material is corrupt.
    pub fn key_ring(&self) -> Option<signing::KeyRing> {
        let current = signing::NamedKey {
            id: self.key_id.as_str().to_owned(),
            key: self.verification.signature_key()?,
        };
        let previous = match &self.previous_key {
            None => None,
            Some(previous) => Some((
                signing::NamedKey {
                    id: previous.key_id.as_str().to_owned(),
                    key: previous.verification.signature_key()?,
                },
                previous.until,
            )),
        };
        Some(signing::KeyRing::new(current, previous))
    }
}

#[cfg(test)]
mod tests;
