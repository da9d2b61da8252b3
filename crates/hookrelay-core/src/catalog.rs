//! The event catalog: which event names a webhook may subscribe to and a producer may
//! publish. Monime's events are built in; operators add their own in the config file.

use std::collections::BTreeSet;

/// The events every hookrelay knows, named as Monime names them.
pub const BUILT_IN_EVENTS: &[&str] = &[
    "payment.created",
    "payment.completed",
    "payment.failed",
    "payout.created",
    "payout.processing",
    "payout.completed",
    "payout.failed",
    "checkout_session.completed",
    "checkout_session.expired",
    "checkout_session.cancelled",
    "payment_code.created",
    "payment_code.processed",
    "payment_code.completed",
    "payment_code.expired",
    "payment_code.cancelled",
    "internal_transfer.completed",
    "internal_transfer.failed",
];

/// The set of known event names.
#[derive(Clone, Debug)]
pub struct EventCatalog {
    names: BTreeSet<String>,
}

/// An operator-supplied event name that does not look like `resource.action`.
#[derive(Debug, thiserror::Error)]
#[error("event name {0:?} is not of the form `resource.action` (lowercase letters, digits and `_`, dot-separated, at most 100 characters)")]
pub struct InvalidEventName(pub String);

impl EventCatalog {
    /// The built-in events plus `extra` ones, each checked for shape.
    pub fn with_extra<I, S>(extra: I) -> Result<Self, InvalidEventName>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut names: BTreeSet<String> = BUILT_IN_EVENTS.iter().map(|s| (*s).to_owned()).collect();
        for name in extra {
            let name = name.into();
            if !is_well_formed(&name) {
                return Err(InvalidEventName(name));
            }
            names.insert(name);
        }
        Ok(Self { names })
    }

    /// Whether `name` is in the catalog.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

impl Default for EventCatalog {
    fn default() -> Self {
        Self::with_extra(std::iter::empty::<String>()).expect("built-in names are well formed")
    }
}

fn is_well_formed(name: &str) -> bool {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    name.len() <= 100 && name.contains('.') && name.split('.').all(segment_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_and_extras_are_known() {
        let catalog = EventCatalog::with_extra(["invoice.paid"]).unwrap();
        assert!(catalog.contains("payment.completed"));
        assert!(catalog.contains("invoice.paid"));
        assert!(!catalog.contains("payment.exploded"));
        assert_eq!(catalog.names().count(), BUILT_IN_EVENTS.len() + 1);
    }

    #[test]
    fn malformed_extras_are_refused() {
        for bad in ["", "payment", "Payment.done", "a..b", "a.b c"] {
            assert!(EventCatalog::with_extra([bad]).is_err(), "{bad:?}");
        }
    }
}
