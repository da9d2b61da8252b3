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

/// Characters of a generated token shown in lists, after [`TOKEN_PREFIX`].
pub const SHOWN_CHARS: usize = 8;

/// The part of a token shown in lists so a user can tell tokens apart: the first
/// [`SHOWN_CHARS`] characters after `hrt_` of a generated token (about 48 of its 238
/// bits). A token not made here (a bootstrap token an operator chose, at least 16
/// characters) shows a quarter of its characters at most, and never more than four.
pub fn shown_prefix(token: &str) -> String {
    match token.strip_prefix(TOKEN_PREFIX) {
        Some(random) => random.chars().take(SHOWN_CHARS).collect(),
        None => {
            let count = token.chars().count();
            token.chars().take((count / 4).min(4)).collect()
        }
    }
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

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 44, "{a}");
        assert!(
            a[TOKEN_PREFIX.len()..].chars().all(|c| c.is_ascii_alphanumeric()),
            "{a}"
        );
    }

    #[test]
    fn the_shown_prefix_is_a_small_part_of_the_token() {
        assert_eq!(shown_prefix("hrt_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd"), "AbCdEfGh");
        let generated = generate();
        assert_eq!(shown_prefix(&generated), &generated[4..12]);
        assert_eq!(shown_prefix("test-token-0123456789abcdef"), "test");
        assert_eq!(shown_prefix("sixteen-chars-xx"), "sixt");
        assert_eq!(shown_prefix("short"), "s");
        assert_eq!(shown_prefix("abc"), "");
    }

    #[test]
    fn digests_are_sha256_of_the_token_text() {
        // Each computed outside Rust: `printf %s TOKEN | sha256sum`.
        let vectors = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (
                "test-token-0123456789abcdef",
                "67e95073ea7d2f92f361b2b3a590935f82b670e8c5d7d96ac622282e2f7accc3",
            ),
            (
                "hrt_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd",
                "a9398d7ed0a74047d5a51341add88767e7c31a42d45dec3575681479f190ebef",
            ),
            (
                "\u{e9}",
                "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c",
            ),
        ];
        for (token, expected) in vectors {
            assert_eq!(hex(&digest(token)), expected, "{token:?}");
        }
    }

    #[test]
    fn digests_match_only_byte_for_byte() {
        let stored = digest("test-token-0123456789abcdef");
        let same = digest("test-token-0123456789abcdef");
        assert!(digests_match(&stored, &same));
        for bit in [0, 7, 128, 255] {
            let mut flipped = stored;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!digests_match(&stored, &flipped), "bit {bit}");
        }
        assert!(!digests_match(&stored, &stored[..31]));
        assert!(!digests_match(&stored[..31], &stored));
        assert!(!digests_match(&stored, &[]));
        assert!(!digests_match(&stored, &digest("test-token-0123456789abcdeg")));
    }
}
