//! Secrets at rest. HS256 secrets, ES256 private keys and custom header values are
//! sealed with XChaCha20-Poly1305 under the operator's master key before they reach the
//! database, bound to the row they belong to (associated data), so a database file or
//! dump alone reveals none of them and a sealed value cannot be moved to another row.

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use rand::{rngs::OsRng, RngCore};

/// Format version of sealed values, stored as their first byte.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The 256-bit key that seals every secret.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

/// A master key that is not 32 bytes of base64 or hex.
#[derive(Debug, thiserror::Error)]
#[error("the master key must be 32 bytes, as 64 hex digits or as base64 (44 characters)")]
pub struct InvalidMasterKey;

/// A sealed value that does not open: wrong master key, tampering, or another row's value.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret could not be opened: wrong master key or corrupted data")]
pub struct UnsealError;

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Parses 64 hex digits or standard base64 of 32 bytes (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, InvalidMasterKey> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| InvalidMasterKey)?
        } else {
            STANDARD.decode(text).map_err(|_| InvalidMasterKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| InvalidMasterKey)?;
        Ok(Self(key))
    }

    /// Base64, as written to a key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Seals and opens secrets under one master key.
#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretCipher(<redacted>)")
    }
}

impl SecretCipher {
    /// A cipher keyed by `key`.
    pub fn new(key: &MasterKey) -> Self {
        Self {
            aead: XChaCha20Poly1305::new((&key.0).into()),
        }
    }

    /// Seals `plaintext`, bound to `context` (e.g. the owning row's id).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        // From the thread's CSPRNG (ChaCha, seeded and reseeded from the OS), as ids are:
        // `OsRng` is a system call per seal, and every publish seals its idempotency record.
        // A random 192-bit nonce only has to be unique, which either gives.
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory inputs");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a value made by [`Self::seal`] with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, UnsealError> {
        let (&version, rest) = sealed.split_first().ok_or(UnsealError)?;
        if version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(UnsealError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| UnsealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_same_key_and_context() {
        let key = MasterKey::generate();
        let cipher = SecretCipher::new(&key);
        let sealed = cipher.seal(b"top secret", b"whk-1");
        assert!(!sealed.windows(10).any(|w| w == b"top secret"));
        assert_eq!(cipher.open(&sealed, b"whk-1").unwrap(), b"top secret");
        assert!(cipher.open(&sealed, b"whk-2").is_err());
        let other = SecretCipher::new(&MasterKey::generate());
        assert!(other.open(&sealed, b"whk-1").is_err());
        let reparsed = SecretCipher::new(&MasterKey::parse(&key.to_base64()).unwrap());
        assert_eq!(reparsed.open(&sealed, b"whk-1").unwrap(), b"top secret");
    }

    #[test]
    fn parses_hex_and_base64_only_of_32_bytes() {
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::parse(&"ab".repeat(31)).is_err());
        assert!(MasterKey::parse("not a key").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 16])).is_err());
    }
}
