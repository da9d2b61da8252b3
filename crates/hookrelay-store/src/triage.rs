//! Sorting a claim's leased rows by `hookrelay_core::claim::verdict`, for both backends:
//! what goes to the engine, what is cancelled, what is set aside and logged. The
//! backends run the SQL that carries the verdicts out.

use hookrelay_core::claim::{verdict, ClaimVerdict, WebhookAtClaim, UNREADABLE_SET_ASIDE};

use crate::{ClaimedDelivery, StoreError};

/// A claim's rows, sorted.
#[derive(Default)]
pub(crate) struct Triage {
    /// Deliveries to attempt, in the claim's order.
    pub ready: Vec<ClaimedDelivery>,
    /// Ids of deliveries to cancel: their webhook was disabled or deleted.
    pub cancel: Vec<String>,
    /// Deliveries to set aside: they cannot be read as they are.
    pub set_aside: Vec<Unreadable>,
}

impl Triage {
    /// Sorts one leased row: its webhook's state, or why it cannot be read; and the
    /// delivery decoded with its webhook, which runs only for a webhook that is ready.
    pub fn add(
        &mut self,
        delivery_id: String,
        webhook: Result<WebhookAtClaim, &StoreError>,
        decode: impl FnOnce() -> Result<ClaimedDelivery, StoreError>,
    ) {
        let (state, webhook_error) = match webhook {
            Ok(state) => (state, None),
            Err(error) => (WebhookAtClaim::Unreadable, Some(error)),
        };
        let decoded = (state == WebhookAtClaim::Ready).then(decode);
        let readable = matches!(decoded, Some(Ok(_)));
        match (verdict(state, readable), decoded) {
            (ClaimVerdict::Send, Some(Ok(delivery))) => self.ready.push(delivery),
            (ClaimVerdict::Cancel, _) => self.cancel.push(delivery_id),
            (_, Some(Err(error))) => self.set_aside.push(Unreadable::new(delivery_id, &error)),
            (_, _) => {
                let cause = webhook_error.map_or_else(|| "its webhook cannot be read".to_owned(), error_text);
                self.set_aside.push(Unreadable { delivery_id, cause });
            }
        }
    }

    /// The ids of the deliveries to set aside.
    pub fn set_aside_ids(&self) -> impl Iterator<Item = &str> {
        self.set_aside.iter().map(|u| u.delivery_id.as_str())
    }
}

fn error_text(error: &StoreError) -> String {
    hookrelay_core::error_chain(error)
}

/// A claimed delivery that could not be read, and why.
pub(crate) struct Unreadable {
    pub delivery_id: String,
    pub cause: String,
}

impl Unreadable {
    pub fn new(delivery_id: String, error: &StoreError) -> Self {
        Self {
            delivery_id,
            cause: error_text(error),
        }
    }

    /// Tells the operator, once per claim that meets them: the first few one by one
    /// (a wrong master key makes every delivery unreadable), then how many in all.
    pub fn log(unreadable: &[Self]) {
        const NAMED: usize = 5;
        for row in unreadable.iter().take(NAMED) {
            tracing::error!(
                delivery = %row.delivery_id,
                cause = %row.cause,
                set_aside_secs = UNREADABLE_SET_ASIDE.as_secs(),
                "a claimed delivery cannot be read; it is set aside and tried again later, the others go on"
            );
        }
        if unreadable.len() > NAMED {
            tracing::error!(
                unreadable = unreadable.len(),
                "claimed deliveries that cannot be read were set aside (the first {NAMED} are named above)"
            );
        }
    }
}
