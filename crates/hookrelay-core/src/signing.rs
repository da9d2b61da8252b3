//! Delivery signatures, as `delivery-protocol.md` defines them. The server signs with
//! these functions and receivers verify with them, so the two cannot drift apart.
//!
//! Header: `Monime-Signature: t=<unix seconds>,v1=<base64 signature>`; signed content:
//! `<t>_<raw body>`. HS256 is HMAC-SHA-256 keyed with the secret's UTF-8 bytes; ES256
//! is ECDSA P-256 / SHA-256 in the 64-byte IEEE P1363 (r‖s) form. During a key
//! rotation's overlap the header carries one `v1` per live key, newest first, and
//! `Monime-Signature-Key-Id` names those keys in the same order; a receiver accepts the
//! delivery when any `v1` verifies with any key it holds.
//!
//! HMAC is ring's: its SHA-256 is assembly with AVX2 and SHA-NI paths, where RustCrypto's
//! `sha2` has only the SHA-NI one, and signing a ~1 KiB body took twice as long with it
//! on a CPU without SHA-NI (signing was a tenth of the server's CPU in fan-out).

use base64::{engine::general_purpose::STANDARD, Engine};
use p256::ecdsa::{
    signature::{Signer, Verifier},
    Signature, SigningKey, VerifyingKey,
};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use ring::hmac;

use crate::Timestamp;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Monime-Signature";
/// The header that names the keys that signed, in the order of the `v1` values.
pub const KEY_ID_HEADER: &str = "Monime-Signature-Key-Id";
/// The most `v1` values a receiver looks at: a live key ring has at most two, and a
/// header with many more only makes the receiver work.
pub const MAX_SIGNATURES: usize = 8;
/// Default receiver tolerance between the signature's `t` and the receiver's clock.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// A key that signs deliveries.
#[derive(Clone)]
pub enum SignatureKey {
    /// The shared HS256 secret, as an HMAC key (its pads hashed once, not per signature).
    Hs256(hmac::Key),
    /// The server's ES256 private key.
    Es256(Box<SigningKey>),
}

/// A key that verifies deliveries.
#[derive(Clone)]
pub enum VerificationKey {
    /// The shared HS256 secret.
    Hs256(Vec<u8>),
    /// The webhook's ES256 public key.
    Es256(VerifyingKey),
}

// By hand: an HS256 secret must not reach a log through `{:?}`.
impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("VerificationKey::Hs256(<redacted>)"),
            Self::Es256(key) => f.debug_tuple("VerificationKey::Es256").field(key).finish(),
        }
    }
}

/// Why a delivery did not verify. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not exactly one `t=` and one to [`MAX_SIGNATURES`] `v1=`, or they
    /// do not parse.
    #[error("the signature header is malformed: {0}")]
    HeaderInvalid(&'static str),
    /// `t` is further from now than the tolerance allows.
    #[error("the signature timestamp is outside the tolerance")]
    TimestampOutsideTolerance,
    /// The signature does not match the body and key.
    #[error("the signature does not match")]
    SignatureMismatch,
}

/// The exact bytes that are signed: `<t>_<body>`.
pub fn signed_content(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(body.len() + 21);
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'_');
    content.extend_from_slice(body);
    content
}

impl SignatureKey {
    /// An HS256 key from the secret's bytes.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::Hs256(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The raw signature bytes over `<t>_<body>`.
    pub fn sign_raw(&self, timestamp: i64, body: &[u8]) -> Vec<u8> {
        match self {
            Self::Hs256(key) => {
                // The MAC takes `<t>_<body>` in parts: no copy of the body per attempt.
                let mut mac = hmac::Context::with_key(key);
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b"_");
                mac.update(body);
                mac.sign().as_ref().to_vec()
            }
            Self::Es256(key) => {
                let signature: Signature = key.sign(&signed_content(timestamp, body));
                signature.to_bytes().to_vec()
            }
        }
    }

    /// The full `Monime-Signature` header value.
    pub fn header_value(&self, timestamp: i64, body: &[u8]) -> String {
        format!("t={timestamp},v1={}", STANDARD.encode(self.sign_raw(timestamp, body)))
    }
}

impl VerificationKey {
    /// An ES256 key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn es256_from_pem(pem: &str) -> Option<Self> {
        VerifyingKey::from_public_key_pem(pem).ok().map(Self::Es256)
    }

    /// Checks `header` against `body` at time `now` (unix seconds): accepted when any of
    /// its `v1` values verifies with this key.
    pub fn verify(&self, header: &str, body: &[u8], now: i64, tolerance_secs: u64) -> Result<(), VerifyError> {
        verify_any(std::slice::from_ref(self), header, body, now, tolerance_secs)
    }

    /// Whether `signature` is this key's over `content`.
    pub(crate) fn accepts(&self, content: &[u8], signature: &[u8]) -> bool {
        match self {
            // Compares in constant time.
            Self::Hs256(secret) => hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), content, signature).is_ok(),
            Self::Es256(key) => {
                Signature::from_slice(signature).is_ok_and(|signature| key.verify(content, &signature).is_ok())
            }
        }
    }
}

/// Checks `header` against `body` at time `now` (unix seconds) with every candidate key
/// (a receiver during a rotation holds the old and the new): accepted when any `v1`
/// verifies with any of `keys`.
pub fn verify_any(
    keys: &[VerificationKey],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    let (timestamp, signatures) = parse_header(header)?;
    if now.abs_diff(timestamp) > tolerance_secs {
        return Err(VerifyError::TimestampOutsideTolerance);
    }
    let content = signed_content(timestamp, body);
    let verified = keys
        .iter()
        .any(|key| signatures.iter().any(|signature| key.accepts(&content, signature)));
    verified.then_some(()).ok_or(VerifyError::SignatureMismatch)
}

/// Splits `t=…,v1=…[,v1=…]` into the timestamp and the decoded signatures.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), VerifyError> {
    let (mut timestamp, mut signatures) = (None, Vec::new());
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(VerifyError::HeaderInvalid("a field is not key=value"))?;
        match key {
            "t" if timestamp.replace(value).is_some() => return Err(VerifyError::HeaderInvalid("duplicate t")),
            "t" => {}
            "v1" if signatures.len() == MAX_SIGNATURES => return Err(VerifyError::HeaderInvalid("too many v1")),
            "v1" => signatures.push(
                STANDARD
                    .decode(value)
                    .map_err(|_| VerifyError::HeaderInvalid("v1 is not base64"))?,
            ),
            _ => return Err(VerifyError::HeaderInvalid("unknown field")),
        }
    }
    let timestamp = timestamp
        .ok_or(VerifyError::HeaderInvalid("missing t"))?
        .parse::<i64>()
        .map_err(|_| VerifyError::HeaderInvalid("t is not an integer"))?;
    if signatures.is_empty() {
        return Err(VerifyError::HeaderInvalid("missing v1"));
    }
    Ok((timestamp, signatures))
}

/// A signing key and its id.
#[derive(Clone)]
pub struct NamedKey {
    /// The key's id (`key-…`).
    pub id: String,
    /// The key.
    pub key: SignatureKey,
}

/// The keys a webhook signs with: its current key and, until the rotation's overlap ends,
/// the key before it. Any delivery format signs with [`KeyRing::live`].
#[derive(Clone)]
pub struct KeyRing {
    current: NamedKey,
    previous: Option<(NamedKey, Timestamp)>,
}

/// The two header values of a signed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Monime-Signature`: `t=…,v1=<newest>[,v1=<previous>]`.
    pub signature: String,
    /// `Monime-Signature-Key-Id`: the ids of the keys, in the order of the `v1` values.
    pub key_ids: String,
}

impl KeyRing {
    /// `current`, and `previous` while `now` is before its end time.
    pub fn new(current: NamedKey, previous: Option<(NamedKey, Timestamp)>) -> Self {
        Self { current, previous }
    }

    /// The keys that sign at `now`, newest first: an overlap ends by time alone.
    pub fn live(&self, now: Timestamp) -> impl Iterator<Item = &NamedKey> {
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(key, _)| key);
        std::iter::once(&self.current).chain(previous)
    }

    /// The headers of an attempt made at `now`, over `body`.
    pub fn sign(&self, now: Timestamp, body: &[u8]) -> SignedHeaders {
        let timestamp = now.as_unix_seconds();
        let mut signature = format!("t={timestamp}");
        let mut key_ids = String::new();
        for named in self.live(now) {
            signature.push_str(",v1=");
            STANDARD.encode_string(named.key.sign_raw(timestamp, body), &mut signature);
            if !key_ids.is_empty() {
                key_ids.push(',');
            }
            key_ids.push_str(&named.id);
        }
        SignedHeaders { signature, key_ids }
    }
}

/// A new ES256 key pair: the private scalar (32 bytes) and the PEM SPKI public key.
pub fn generate_es256() -> (Vec<u8>, String) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 public key always encodes");
    (key.to_bytes().to_vec(), pem)
}

/// The fields of a JWK that name a P-256 public key: the rest (`kid`, `use`, `alg`)
/// are the key set's to interpret, and `p256`'s JWK type refuses them.
const JWK_KEY_FIELDS: [&str; 4] = ["kty", "crv", "x", "y"];

/// An ES256 public key (PEM SPKI) as an RFC 7517 JWK: `kty: EC`, `crv: P-256`, `x`, `y`
/// (base64url, unpadded), with `kid`, `use: sig` and `alg: ES256`. `None` if the PEM
/// holds no P-256 key.
pub fn es256_jwk(public_key_pem: &str, key_id: &str) -> Option<serde_json::Value> {
    let key = p256::PublicKey::from_public_key_pem(public_key_pem).ok()?;
    let mut jwk = serde_json::to_value(key.to_jwk()).ok()?;
    let object = jwk.as_object_mut()?;
    object.insert("kid".into(), key_id.into());
    object.insert("use".into(), "sig".into());
    object.insert("alg".into(), "ES256".into());
    Some(jwk)
}

/// The ES256 verification key of a JWK from a key set, `None` unless it is a P-256
/// public key whose `use` (if any) is `sig` and whose `alg` (if any) is `ES256`.
pub fn es256_from_jwk(jwk: &serde_json::Value) -> Option<VerificationKey> {
    let object = jwk.as_object()?;
    let allows = |field: &str, value: &str| object.get(field).is_none_or(|v| v.as_str() == Some(value));
    if !allows("use", "sig") || !allows("alg", "ES256") || object.contains_key("d") {
        return None;
    }
    let key_fields: serde_json::Map<String, serde_json::Value> = JWK_KEY_FIELDS
        .iter()
        .filter_map(|field| Some(((*field).to_owned(), object.get(*field)?.clone())))
        .collect();
    let jwk: p256::elliptic_curve::JwkEcKey = serde_json::from_value(key_fields.into()).ok()?;
    let key = p256::PublicKey::from_jwk(&jwk).ok()?;
    Some(VerificationKey::Es256(VerifyingKey::from(key)))
}

/// Rebuilds an ES256 signing key from its 32-byte scalar.
pub fn es256_signing_key(private_key: &[u8]) -> Option<SigningKey> {
    SigningKey::from_slice(private_key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_key_never_prints_a_secret() {
        let key = VerificationKey::Hs256(b"whsec-do-not-print-0123456789abcdef".to_vec());
        let printed = format!("{key:?}");
        assert!(!printed.contains("do-not-print"), "{printed}");
        assert!(!printed.contains("119, 104"), "secret bytes: {printed}");
    }

    #[test]
    fn hs256_matches_an_independent_vector() {
        // printf '1700000000_{"a":1}' | openssl dgst -sha256 -hmac 'whsec-0123456789abcdef0123456789abcdef' -binary | base64
        let key = SignatureKey::hs256(b"whsec-0123456789abcdef0123456789abcdef");
        assert_eq!(
            key.header_value(1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=TZUvG93ZedhCOwcfwQ2c3r7pLi7pkFGOrRdIsdlTGSE="
        );
    }

    #[test]
    fn es256_round_trips_through_pem_and_rejects_tampering() {
        let (private, pem) = generate_es256();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let signer = SignatureKey::Es256(Box::new(es256_signing_key(&private).unwrap()));
        let header = signer.header_value(1_000, b"{}");
        let verifier = VerificationKey::es256_from_pem(&pem).unwrap();
        assert_eq!(verifier.verify(&header, b"{}", 1_010, 300), Ok(()));
        assert_eq!(
            verifier.verify(&header, b"{ }", 1_010, 300),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verifier.verify(&header, b"{}", 2_000, 300),
            Err(VerifyError::TimestampOutsideTolerance)
        );
    }

    #[test]
    fn during_an_overlap_both_keys_sign_and_either_verifies() {
        let (old, new) = (
            b"old-secret-0123456789abcdef0123456789",
            b"new-secret-0123456789abcdef0123456789",
        );
        let named = |id: &str, secret: &[u8]| NamedKey {
            id: id.to_owned(),
            key: SignatureKey::hs256(secret),
        };
        let until = Timestamp::from_micros(2_000_000_000);
        let ring = KeyRing::new(named("key-new", new), Some((named("key-old", old), until)));
        let during = ring.sign(Timestamp::from_micros(1_000_000_000), b"{}");
        assert_eq!(during.key_ids, "key-new,key-old");
        assert_eq!(during.signature.matches(",v1=").count(), 2, "{}", during.signature);
        for secret in [&old[..], &new[..]] {
            let key = VerificationKey::Hs256(secret.to_vec());
            assert_eq!(key.verify(&during.signature, b"{}", 1_000, 300), Ok(()));
        }
        let after = ring.sign(until, b"{}");
        assert_eq!(after.key_ids, "key-new");
        assert_eq!(
            VerificationKey::Hs256(old.to_vec()).verify(&after.signature, b"{}", 2_000, 300),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            VerificationKey::Hs256(new.to_vec()).verify(&after.signature, b"{}", 2_000, 300),
            Ok(())
        );
        let others = [
            VerificationKey::Hs256(b"x".to_vec()),
            VerificationKey::Hs256(old.to_vec()),
        ];
        assert_eq!(verify_any(&others, &during.signature, b"{}", 1_000, 300), Ok(()));
    }

    #[test]
    fn an_es256_key_round_trips_through_a_jwk() {
        let (private, pem) = generate_es256();
        let jwk = es256_jwk(&pem, "key-1").unwrap();
        assert_eq!(
            (&jwk["kty"], &jwk["crv"], &jwk["kid"], &jwk["use"], &jwk["alg"]),
            (
                &"EC".into(),
                &"P-256".into(),
                &"key-1".into(),
                &"sig".into(),
                &"ES256".into()
            )
        );
        for coordinate in ["x", "y"] {
            let text = jwk[coordinate].as_str().unwrap();
            assert_eq!(text.len(), 43, "32 bytes, base64url unpadded: {text}");
        }
        let signer = SignatureKey::Es256(Box::new(es256_signing_key(&private).unwrap()));
        let header = signer.header_value(1_000, b"{}");
        assert_eq!(es256_from_jwk(&jwk).unwrap().verify(&header, b"{}", 1_000, 300), Ok(()));
        let mut encrypting = jwk.clone();
        encrypting["use"] = "enc".into();
        assert!(es256_from_jwk(&encrypting).is_none());
    }

    #[test]
    fn malformed_headers_are_named() {
        let key = VerificationKey::Hs256(b"k".to_vec());
        for bad in [
            "",
            "t=1",
            "v1=AA==",
            "t=1,t=2,v1=AA==",
            "t=x,v1=AA==",
            "t=1,v1=%%%",
            "t=1,v1=AA==,v2=AA==",
            "t=1,v1=AA==,v1=AA==,v1=AA==,v1=AA==,v1=AA==,v1=AA==,v1=AA==,v1=AA==,v1=AA==",
        ] {
            assert!(
                matches!(key.verify(bad, b"", 1, 300), Err(VerifyError::HeaderInvalid(_))),
                "{bad:?}"
            );
        }
    }
}
