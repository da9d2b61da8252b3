//! What this process's stores did that callers cannot see from the values they get back:
//! deliveries cancelled in bulk (a webhook disabled or deleted, a claim finding its
//! webhook gone) and webhooks the record path disabled. Counted for the server's metrics,
//! which read [`snapshot`]; a store knows nothing of how they are exported.
//!
//! Counted when the statement runs, inside its transaction: a transaction rolled back
//! after it (a PostgreSQL deadlock retried) counts its work twice. Rare enough for a
//! rate an operator watches, and never undercounts.

use std::sync::atomic::{AtomicU64, Ordering};

static DELIVERIES_CANCELLED: AtomicU64 = AtomicU64::new(0);
static WEBHOOKS_AUTO_DISABLED: AtomicU64 = AtomicU64::new(0);

/// The counts since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Pending deliveries cancelled.
    pub deliveries_cancelled: u64,
    /// Webhooks disabled by their attempts' failures (410, failing too long).
    pub webhooks_auto_disabled: u64,
}

/// The counts so far.
pub fn snapshot() -> Activity {
    Activity {
        deliveries_cancelled: DELIVERIES_CANCELLED.load(Ordering::Relaxed),
        webhooks_auto_disabled: WEBHOOKS_AUTO_DISABLED.load(Ordering::Relaxed),
    }
}

pub(crate) fn deliveries_cancelled(count: u64) {
    DELIVERIES_CANCELLED.fetch_add(count, Ordering::Relaxed);
}

pub(crate) fn webhook_auto_disabled() {
    WEBHOOKS_AUTO_DISABLED.fetch_add(1, Ordering::Relaxed);
}
