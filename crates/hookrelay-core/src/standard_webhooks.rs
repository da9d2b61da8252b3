//! Deliveries in the Standard Webhooks format (<https://www.standardwebhooks.com>), for
//! webhooks whose `format` setting asks for it: the same body as Monime's format, with the
//! specification's `webhook-id`, `webhook-timestamp` and `webhook-signature` headers in
//! place of `Monime-Signature`.
//!
//! Signed content: `<webhook-id>.<webhook-timestamp>.<raw body>`.
//! - HS256: `v1,<base64 HMAC-SHA-256>`, keyed with the webhook's secret as Monime defines
//!   it (its UTF-8 bytes). The specification writes a secret as `whsec_` and the base64 of
//!   its key bytes, so a Monime secret `s` is `whsec_<base64(s)>` to its libraries
//!   ([`specification_secret`]).
//! - ES256: the specification defines no ECDSA signature. It is carried under its own
//!   identifier, `es256,<base64 P1363 r‖s>`, which the specification's libraries skip as
//!   an unknown version (as they would a future one); receivers verify it with the
//!   webhook's public key.

use base64::{engine::general_purpose::STANDARD, Engine};
use p256::ecdsa::{signature::Signer, Signature};
use ring::hmac;

use crate::signing::{SignatureKey, VerificationKey, VerifyError, MAX_SIGNATURES};

/// The message id header: the event id, the same on every attempt.
pub const ID_HEADER: &str = "webhook-id";
/// The unix seconds of the attempt.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Space-separated `<version>,<base64 signature>` pairs.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The signature version of HMAC-SHA-256 in the specification.
pub const HMAC_VERSION: &str = "v1";
/// hookrelay's signature version for ES256, which the specification does not define.
pub const ES256_VERSION: &str = "es256";
/// The prefix the specification gives a symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The bytes signed: `<id>.<timestamp>.<body>`.
pub fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + body.len() + 22);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// One `<version>,<base64 signature>` entry of `webhook-signature`, made with `key`.
pub fn signature(key: &SignatureKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    let content = signed_content(id, timestamp, body);
    match key {
        SignatureKey::Hs256(key) => {
            let tag = hmac::sign(key, &content);
            format!("{HMAC_VERSION},{}", STANDARD.encode(tag.as_ref()))
        }
        SignatureKey::Es256(key) => {
            let signature: Signature = key.sign(&content);
            format!("{ES256_VERSION},{}", STANDARD.encode(signature.to_bytes()))
        }
    }
}

/// A Monime HS256 secret written as the specification's libraries take it.
pub fn specification_secret(monime_secret: &str) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(monime_secret.as_bytes()))
}

/// A received delivery's `webhook-id`, `webhook-timestamp` and `webhook-signature`.
#[derive(Clone, Copy, Debug)]
pub struct ReceivedHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

/// Checks a delivery in this format at `now` (unix seconds): accepted when any entry of
/// `webhook-signature` of a version hookrelay signs with verifies with any of `keys`.
/// Entries of other versions are skipped, as the specification asks.
pub fn verify_any(
    keys: &[VerificationKey],
    headers: ReceivedHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    if headers.id.is_empty() {
        return Err(VerifyError::HeaderInvalid("missing webhook-id"));
    }
    let timestamp: i64 = headers
        .timestamp
        .parse()
        .map_err(|_| VerifyError::HeaderInvalid("webhook-timestamp is not an integer"))?;
    if now.abs_diff(timestamp) > tolerance_secs {
        return Err(VerifyError::TimestampOutsideTolerance);
    }
    let entries: Vec<&str> = headers.signature.split(' ').filter(|e| !e.is_empty()).collect();
    if entries.is_empty() || entries.len() > MAX_SIGNATURES {
        return Err(VerifyError::HeaderInvalid(
            "webhook-signature has no or too many entries",
        ));
    }
    let content = signed_content(headers.id, timestamp, body);
    let verified = entries.iter().any(|entry| {
        let Some((version, encoded)) = entry.split_once(',') else {
            return false;
        };
        let known = version == HMAC_VERSION || version == ES256_VERSION;
        let signature = STANDARD.decode(encoded).unwrap_or_default();
        known && keys.iter().any(|key| key.accepts(&content, &signature))
    });
    verified.then_some(()).ok_or(VerifyError::SignatureMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{es256_signing_key, generate_es256, VerificationKey};

    #[test]
    fn hmac_matches_the_specifications_example() {
        // The specification's test vector: secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
        // id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body {"test": 2432232314}.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = SignatureKey::hs256(&secret);
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn any_known_entry_verifies_and_unknown_versions_are_skipped() {
        let (old, new) = (SignatureKey::hs256(b"old-secret"), SignatureKey::hs256(b"new-secret"));
        let header = format!(
            "v1a,AAAA {} {}",
            signature(&new, "evt-1", 1_000, b"{}"),
            signature(&old, "evt-1", 1_000, b"{}")
        );
        let received = ReceivedHeaders {
            id: "evt-1",
            timestamp: "1000",
            signature: &header,
        };
        for secret in [&b"old-secret"[..], b"new-secret"] {
            let keys = [VerificationKey::Hs256(secret.to_vec())];
            assert_eq!(verify_any(&keys, received, b"{}", 1_010, 300), Ok(()));
        }
        let wrong = [VerificationKey::Hs256(b"other".to_vec())];
        assert_eq!(
            verify_any(&wrong, received, b"{}", 1_010, 300),
            Err(VerifyError::SignatureMismatch)
        );
        let keys = [VerificationKey::Hs256(b"new-secret".to_vec())];
        let other_id = ReceivedHeaders {
            id: "evt-2",
            ..received
        };
        assert_eq!(
            verify_any(&keys, other_id, b"{}", 1_010, 300),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify_any(&keys, received, b"{}", 2_000, 300),
            Err(VerifyError::TimestampOutsideTolerance)
        );
        let bad_time = ReceivedHeaders {
            timestamp: "soon",
            ..received
        };
        assert!(matches!(
            verify_any(&keys, bad_time, b"{}", 1_010, 300),
            Err(VerifyError::HeaderInvalid(_))
        ));
    }

    #[test]
    fn a_monime_secret_maps_to_whsec_of_its_bytes() {
        let secret = "your-32-character-minimum-secret-key-here";
        let mapped = specification_secret(secret);
        let bytes = STANDARD.decode(mapped.strip_prefix(SECRET_PREFIX).unwrap()).unwrap();
        assert_eq!(bytes, secret.as_bytes());
    }

    #[test]
    fn es256_is_carried_under_its_own_version_and_verifies_with_the_public_key() {
        let (private, pem) = generate_es256();
        let key = SignatureKey::Es256(Box::new(es256_signing_key(&private).unwrap()));
        let entry = signature(&key, "evt-1", 1_000, b"{}");
        let (version, encoded) = entry.split_once(',').unwrap();
        assert_eq!(version, ES256_VERSION);
        let raw = STANDARD.decode(encoded).unwrap();
        let VerificationKey::Es256(public) = VerificationKey::es256_from_pem(&pem).unwrap() else {
            panic!("an ES256 key");
        };
        use p256::ecdsa::signature::Verifier;
        let signature = Signature::from_slice(&raw).unwrap();
        assert!(public
            .verify(&signed_content("evt-1", 1_000, b"{}"), &signature)
            .is_ok());
        assert!(public
            .verify(&signed_content("evt-2", 1_000, b"{}"), &signature)
            .is_err());
    }
}
