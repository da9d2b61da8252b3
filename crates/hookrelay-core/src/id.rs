//! Prefixed identifiers. A random suffix makes ids unguessable; the prefix makes them
//! self-describing in logs and lets the API reject an id of the wrong kind early.

use std::fmt;

use rand::{distributions::Alphanumeric, Rng};

/// Characters of the time part of a generated id: base 62 microseconds since 1970,
/// enough until the year 2398.
const TIME_PART_LEN: usize = 9;
/// Characters of randomness in a generated id: 20 alphanumerics is about 119 bits.
const RANDOM_PART_LEN: usize = 20;
/// Base 62 digits in ASCII order, so ids sort as their times do.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The time of creation, then randomness (like Svix's KSUIDs). Ids made one after
/// another sort together, so each insert into an index on them lands on the same last
/// pages instead of a random one: a commit writes a few pages, not one per row.
/// The randomness comes from the thread's CSPRNG (ChaCha, seeded and reseeded from the
/// OS): ids are made per delivery, and `OsRng` would cost a system call per character.
fn time_ordered_suffix() -> String {
    let mut suffix = String::with_capacity(TIME_PART_LEN + RANDOM_PART_LEN);
    let mut micros = u64::try_from(crate::Timestamp::now().as_micros()).unwrap_or(0);
    let mut time = [b'0'; TIME_PART_LEN];
    for digit in time.iter_mut().rev() {
        *digit = BASE62[(micros % 62) as usize];
        micros /= 62;
    }
    suffix.extend(time.iter().map(|&b| char::from(b)));
    let mut rng = rand::thread_rng();
    suffix.extend((0..RANDOM_PART_LEN).map(|_| char::from(rng.sample(Alphanumeric))));
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

            /// A new unguessable id, sorting after those made before it.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, time_ordered_suffix()))
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

prefixed_id!(
    /// An access token's record (`tok-…`); never the token itself.
    TokenId,
    "tok-",
    64
);

prefixed_id!(
    /// A webhook's signing key, HS256 secret or ES256 key pair (`key-…`): named in
    /// each delivery's `Monime-Signature-Key-Id` and in the JWKS.
    KeyId,
    "key-",
    64
);

prefixed_id!(
    /// The record of an erasure request (`ers-…`).
    ErasureId,
    "ers-",
    64
);

prefixed_id!(
    /// A bulk recovery of a webhook's failed deliveries (`rcv-…`).
    RecoveryId,
    "rcv-",
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
        assert_eq!(a.as_str().len(), 4 + TIME_PART_LEN + RANDOM_PART_LEN);
    }

    #[test]
    fn ids_made_later_sort_later() {
        let first = DeliveryId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later: Vec<DeliveryId> = (0..100).map(|_| DeliveryId::generate()).collect();
        assert!(
            later.iter().all(|id| id > &first),
            "{first} sorts after one of {later:?}"
        );
        // Ids of the same microsecond still differ in their random part.
        let mut unique = later.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), later.len());
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
