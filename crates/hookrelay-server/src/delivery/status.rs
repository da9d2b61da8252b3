//! What the engine is doing, for `GET /healthz` and for anyone who needs to know when
//! it has settled (a test asserting that something was not delivered).
//!
//! The engine is idle when the claim loop's last round found nothing due, that round
//! started after the latest wake-up, and nothing is in flight, queued in memory or
//! waiting for its record. Every request that stores due work wakes the engine before
//! it is answered, and a wake-up moves the [`Wakeup`]'s generation on at once, so once
//! such a request is answered the engine is not idle until a later round found
//! nothing. Work that falls due later (a retry's delay) does not count until it is due.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::heartbeat::Fence;
use super::Wakeup;

/// The engine's counters and its wake-up, shared by the engine and the API.
#[derive(Clone, Debug)]
pub struct EngineStatus(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    wakeup: Wakeup,
    /// This node's id: the owner its leases and its heartbeat name.
    node: String,
    /// Whether the engine may start attempts, once it has started.
    fence: OnceLock<Fence>,
    /// Workers holding one of their webhook's slots: an attempt going out, or the
    /// next one being prepared, or the last ones' records awaited.
    in_flight: Gauge,
    /// Claimed deliveries waiting in memory for a slot of their webhook.
    queued: Gauge,
    /// Attempt results handed to the recorder and not yet recorded (or given up on).
    unrecorded: Gauge,
    /// The wake-up generation at the start of the last claim round that found nothing
    /// due; [`NEVER`] before the first.
    settled_at: AtomicU64,
}

const NEVER: u64 = u64::MAX;

/// A count that goes up and down.
#[derive(Debug, Default)]
pub(crate) struct Gauge(AtomicUsize);

impl Gauge {
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The engine as one read of its status saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSnapshot {
    /// This node's id, as its leases and its heartbeat name it.
    pub node: String,
    /// The node starts no attempt: it could not write its heartbeat in time (or has
    /// not yet written its first), so other nodes may take its deliveries over.
    pub fenced: bool,
    /// Nothing due is unclaimed, and nothing claimed is unfinished or unrecorded.
    pub idle: bool,
    /// Workers holding a slot (see [`EngineStatus`]).
    pub attempts_in_flight: usize,
    /// Claimed deliveries waiting for a slot.
    pub queued: usize,
    /// Attempt results not yet recorded.
    pub unrecorded: usize,
}

impl EngineStatus {
    /// The status of an engine woken by `wakeup`, which has not started yet.
    pub fn new(wakeup: Wakeup) -> Self {
        Self(Arc::new(Counters {
            wakeup,
            node: super::heartbeat::new_node_id(),
            fence: OnceLock::new(),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            unrecorded: Gauge::default(),
            settled_at: AtomicU64::new(NEVER),
        }))
    }

    /// What wakes the engine.
    pub fn wakeup(&self) -> &Wakeup {
        &self.0.wakeup
    }

    /// This node's id: the owner its leases and its heartbeat name.
    pub fn node(&self) -> &str {
        &self.0.node
    }

    /// Tells the status the engine's fence (once, as the engine starts).
    pub(crate) fn set_fence(&self, fence: Fence) {
        let _ = self.0.fence.set(fence);
    }

    /// The engine now.
    pub fn snapshot(&self) -> StatusSnapshot {
        // The counters first, then the round, then the generation: a wake-up between
        // these reads makes the answer "busy", never "idle" with work unseen.
        let attempts_in_flight = self.0.in_flight.get();
        let queued = self.0.queued.get();
        let unrecorded = self.0.unrecorded.get();
        let settled_at = self.0.settled_at.load(Ordering::SeqCst);
        let settled = settled_at == self.0.wakeup.generation();
        StatusSnapshot {
            node: self.0.node.clone(),
            fenced: self.0.fence.get().is_some_and(|fence| !fence.may_start()),
            idle: settled && attempts_in_flight == 0 && queued == 0 && unrecorded == 0,
            attempts_in_flight,
            queued,
            unrecorded,
        }
    }

    /// A claim round that started at wake-up `generation` found nothing due.
    pub(crate) fn found_nothing_due(&self, generation: u64) {
        self.0.settled_at.store(generation, Ordering::SeqCst);
    }

    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.0.in_flight
    }

    pub(crate) fn queued(&self) -> &Gauge {
        &self.0.queued
    }

    pub(crate) fn unrecorded(&self) -> &Gauge {
        &self.0.unrecorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_only_after_an_empty_round_since_the_last_wakeup_with_nothing_held() {
        let wakeup = Wakeup::default();
        let status = EngineStatus::new(wakeup.clone());
        assert!(!status.snapshot().idle, "not idle before the first round");
        status.found_nothing_due(wakeup.generation());
        assert!(status.snapshot().idle);

        // A publish wakes the engine: busy until a round that started after it.
        let before = wakeup.generation();
        wakeup.wake();
        assert!(!status.snapshot().idle, "a wake-up makes the engine busy at once");
        status.found_nothing_due(before);
        assert!(
            !status.snapshot().idle,
            "a round that started before the wake-up says nothing"
        );
        status.found_nothing_due(wakeup.generation());
        assert!(status.snapshot().idle);

        for (gauge, name) in [
            (status.in_flight(), "in flight"),
            (status.queued(), "queued"),
            (status.unrecorded(), "unrecorded"),
        ] {
            gauge.add(2);
            assert!(!status.snapshot().idle, "{name}: not idle");
            gauge.sub(2);
            assert!(status.snapshot().idle, "{name}: idle again");
        }
        status.unrecorded().add(3);
        assert_eq!(
            status.snapshot(),
            StatusSnapshot {
                node: status.node().to_owned(),
                fenced: false,
                idle: false,
                attempts_in_flight: 0,
                queued: 0,
                unrecorded: 3
            }
        );
    }
}
