//! What changing a webhook does beyond its own row, as a pure rule shared by both
//! storage backends.

/// What an update asks of the rows around the webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateEffects {
    /// Forget its failure record: re-enabling starts it afresh.
    pub reset_health: bool,
    /// Cancel its pending deliveries: a disabled webhook takes none.
    pub cancel_pending: bool,
}

/// The effects of an update that leaves the webhook enabled or not, from `was_enabled`.
pub fn update_effects(was_enabled: bool, is_enabled: bool) -> UpdateEffects {
    UpdateEffects {
        reset_health: is_enabled && !was_enabled,
        // Also when it was disabled already: a delivery published meanwhile (publishing
        // reads subscribers before it writes) must not wait for a claim to cancel it.
        cancel_pending: !is_enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabling_resets_health_and_disabled_cancels_pending() {
        let effects = |was, is| {
            let e = update_effects(was, is);
            (e.reset_health, e.cancel_pending)
        };
        assert_eq!(effects(false, true), (true, false));
        assert_eq!(effects(true, true), (false, false));
        assert_eq!(effects(true, false), (false, true));
        assert_eq!(effects(false, false), (false, true));
    }
}
