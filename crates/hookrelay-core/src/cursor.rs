//! Opaque page cursors. A cursor names the last item of a page by its position in the
//! owner's creation order, so pages stay stable while items are added or removed.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

const VERSION: &str = "c1:";

/// Encodes the creation sequence number of the last item on a page.
pub fn encode(sequence: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}{sequence}"))
}

/// Decodes a cursor made by [`encode`]; `None` for anything else.
pub fn decode(cursor: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    text.strip_prefix(VERSION)?.parse().ok().filter(|n: &i64| *n > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_rejects_garbage() {
        assert_eq!(super::decode(&super::encode(42)), Some(42));
        for bad in ["", "abc", "YzE6", "YzE6LTE", "!!"] {
            assert_eq!(super::decode(bad), None, "{bad:?}");
        }
    }
}
