//! What becomes of a claimed delivery, as pure rules shared by both storage backends.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// The state of a claimed delivery's webhook, as the claim found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookAtClaim {
    /// Enabled, and its stored values decode.
    Ready,
    /// Enabled, but a stored value (a sealed secret, a column) does not decode.
    Unreadable,
    /// Disabled since the delivery was published.
    Disabled,
    /// Deleted since the delivery was published.
    Deleted,
}

/// What a claim does with one delivery it leased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimVerdict {
    /// Hand it to a worker.
    Send,
    /// Cancel it: its webhook will never take it.
    Cancel,
    /// Set it aside under a longer lease ([`set_aside_until`]) and log it: it cannot be
    /// sent as it is, and it must not stop the deliveries due after it; should it be
    /// mended, it goes out then.
    SetAside,
}

/// The verdict on a claimed delivery whose own row decodes (`delivery_readable`) or
/// not, by its webhook's state. A disabled or deleted webhook's delivery is cancelled
/// whatever else is wrong with it: it would never be sent.
pub fn verdict(webhook: WebhookAtClaim, delivery_readable: bool) -> ClaimVerdict {
    match webhook {
        WebhookAtClaim::Disabled | WebhookAtClaim::Deleted => ClaimVerdict::Cancel,
        WebhookAtClaim::Unreadable => ClaimVerdict::SetAside,
        WebhookAtClaim::Ready if delivery_readable => ClaimVerdict::Send,
        WebhookAtClaim::Ready => ClaimVerdict::SetAside,
    }
}

/// How long an unreadable delivery is set aside at the least.
pub const UNREADABLE_SET_ASIDE: Duration = Duration::from_secs(5 * 60);

/// Until when an unreadable delivery claimed at `now` under a lease ending at
/// `lease_until` is set aside: [`UNREADABLE_SET_ASIDE`], or the claim's own lease if
/// that is longer (a set-aside never shortens a lease).
pub fn set_aside_until(now: Timestamp, lease_until: Timestamp) -> Timestamp {
    now.plus(UNREADABLE_SET_ASIDE).max(lease_until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        use ClaimVerdict::*;
        use WebhookAtClaim::*;
        for readable in [true, false] {
            assert_eq!(verdict(Disabled, readable), Cancel);
            assert_eq!(verdict(Deleted, readable), Cancel);
            assert_eq!(verdict(Unreadable, readable), SetAside);
        }
        assert_eq!(verdict(Ready, true), Send);
        assert_eq!(verdict(Ready, false), SetAside);
    }

    #[test]
    fn an_unreadable_delivery_is_set_aside_five_minutes_or_its_claims_lease_if_longer() {
        let at = |secs: i64| Timestamp::from_micros(secs * 1_000_000);
        assert_eq!(set_aside_until(at(0), at(60)), at(300));
        assert_eq!(set_aside_until(at(0), at(600)), at(600));
        assert_eq!(
            set_aside_until(Timestamp::from_micros(i64::MAX - 1), at(0)),
            Timestamp::from_micros(i64::MAX)
        );
    }
}
