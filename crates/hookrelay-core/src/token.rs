//! API access tokens. Only a SHA-256 digest of a token is stored: tokens are long and
//! random, so a fast hash suffices and the database alone cannot be used to call the API.

use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of tokens hookrelay generates, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "hrt_";

/// A new random token (`hrt_` and 40 alphanumerics, about 238 bits).
pub fn generate() -> String {
    let random: String = OsRng.sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    format!("{TOKEN_PREFIX}{random}")
}

/// The digest under which a token is stored and looked up.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests in constant time.
pub fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_compare() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 44);
        assert!(digests_match(&digest(&a), &digest(&a)));
        assert!(!digests_match(&digest(&a), &digest(&b)));
    }
}
