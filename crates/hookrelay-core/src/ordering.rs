//! Ordered delivery per object (`ordering: "object"`), as pure rules for the stores.
//!
//! A delivery of a webhook that orders by object carries its event's object id as an
//! ordering key, and a claim passes over it while an earlier delivery (in publish order)
//! with the same webhook and key is pending. The key is written when the delivery is,
//! and rewritten on the webhook's pending deliveries when the setting changes, so the
//! setting applies to every delivery not yet finished, not only to later publishes.

use crate::webhook_settings::{DeliveryOrdering, WebhookSettings};

/// What a settings change does to the ordering keys of a webhook's pending deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rekey {
    /// Ordering was turned on: each pending delivery takes its event's object id.
    Keyed,
    /// Ordering was turned off: every pending delivery's key is cleared, and they go
    /// out concurrently as they fall due.
    Unkeyed,
}

/// Whether a change of a webhook's settings from `before` to `after` rekeys its pending
/// deliveries; `None` when the ordering stays as it was.
pub fn rekey(before: &WebhookSettings, after: &WebhookSettings) -> Option<Rekey> {
    match (before.ordering, after.ordering) {
        (DeliveryOrdering::None, DeliveryOrdering::Object) => Some(Rekey::Keyed),
        (DeliveryOrdering::Object, DeliveryOrdering::None) => Some(Rekey::Unkeyed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(ordering: DeliveryOrdering) -> WebhookSettings {
        WebhookSettings {
            ordering,
            ..WebhookSettings::default()
        }
    }

    #[test]
    fn only_a_change_of_ordering_rekeys() {
        use DeliveryOrdering::{None as Unordered, Object};
        assert_eq!(rekey(&ordered(Unordered), &ordered(Object)), Some(Rekey::Keyed));
        assert_eq!(rekey(&ordered(Object), &ordered(Unordered)), Some(Rekey::Unkeyed));
        assert_eq!(rekey(&ordered(Object), &ordered(Object)), None);
        assert_eq!(rekey(&ordered(Unordered), &ordered(Unordered)), None);
        let mut paced = ordered(Object);
        paced.max_deliveries_per_second = Some(5);
        assert_eq!(rekey(&ordered(Object), &paced), None, "another field changed alone");
    }
}
