//! Prefixed identifiers. A random suffix makes ids unguessable; the prefix makes them
//! self-describing in logs and lets the API reject an id of the wrong kind early.

use std::fmt;

use rand::{distributions::Alphanumeric, Rng};

/// Characters of randomness in a generated id: 26 alphanumerics is about 155 bits.
const RANDOM_SUFFIX_LEN: usize = 26;

/// From the thread's CSPRNG (ChaCha, seeded and reseeded from the OS): ids are made
/// per delivery, and `OsRng` would cost a system call per character.
fn random_suffix() -> String {
    let mut rng = rand::thread_rng();
    let mut suffix = String::with_capacity(RANDOM_SUFFIX_LEN);
    suffix.extend((0..RANDOM_SUFFIX_LEN).map(|_| char::from(rng.sample(Alphanumeric))));
    suffix
}

/// Whether `suffix` is a plausible id suffix: non-empty, ASCII alphanumerics, `_` or `-`.
fn is_valid_suffix(suffix: &str) -> bool {
    !suffix.is_empty()
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $max_len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;
            /// The longest id of this kind that is accepted.
            pub const MAX_LEN: usize = $max_len;

            /// A new random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_suffix()))
            }

            /// Parses an id, accepting only the right prefix, a non-empty suffix of
            /// `[A-Za-z0-9_-]` and at most [`Self::MAX_LEN`] characters.
            pub fn parse(value: &str) -> Option<Self> {
                let suffix = value.strip_prefix($prefix)?;
                (value.len() <= $max_len && is_valid_suffix(suffix)).then(|| Self(value.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A space: the tenant that owns webhooks, events and tokens (`spc-…`).
    SpaceId,
    "spc-",
    64
);
prefixed_id!(
    /// A webhook (`whk-…`).
    WebhookId,
    "whk-",
    64
);

prefixed_id!(
    /// A published event (`evt-…`).
    EventId,
    "evt-",
    64
);
prefixed_id!(
    /// One event's delivery to one webhook (`dlv-…`).
    DeliveryId,
    "dlv-",
    64
);

prefixed_id!(
    /// An alert e-mail about a webhook (`alr-…`).
    AlertId,
    "alr-",
    64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = WebhookId::generate();
        let b = WebhookId::generate();
        assert_ne!(a, b);
        assert_eq!(WebhookId::parse(a.as_str()), Some(a.clone()));
        assert!(a.as_str().starts_with("whk-"));
        assert_eq!(a.as_str().len(), 4 + RANDOM_SUFFIX_LEN);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "spc-", "whk-abc", "spc-a b", "spc-é", "SPC-abc"] {
            assert_eq!(SpaceId::parse(bad), None, "{bad:?}");
        }
        assert!(SpaceId::parse(&format!("spc-{}", "a".repeat(60))).is_some());
        assert!(SpaceId::parse(&format!("spc-{}", "a".repeat(61))).is_none());
    }
}
