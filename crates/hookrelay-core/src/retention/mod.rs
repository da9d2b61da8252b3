//! How long history is kept: which events (with their deliveries and attempts) the
//! cleaner deletes, whose data it drops, and how much one batch may touch. The store
//! reads a space's oldest events in order and asks [`plan_deletion`] or
//! [`plan_payload_expiry`] what to do with them; both stop at the first event too young.

mod erasure;

use std::time::Duration;

pub use erasure::{Erasure, ErasureDraft, ERASURE_FIELDS};

use crate::timestamp::Timestamp;

/// Events one batch reads at most: a batch is one short transaction, and on SQLite a
/// publish waits behind at most one.
pub const EVENTS_PER_BATCH: u32 = 200;
/// Deliveries one batch deletes at most (a wide fan-out makes an event heavy); a batch
/// takes at least one event whatever its deliveries.
pub const DELIVERIES_PER_BATCH: u64 = 500;
/// Batches one cleaner run makes at most per space and kind, so that one space with a
/// large backlog does not hold up the others for long; the next run goes on.
pub const BATCHES_PER_RUN: u32 = 50;
/// Events still being delivered that payload expiry remembers per space to look at
/// again; beyond this many, the newest lose their data only with their event.
pub const WAITING_PER_SPACE: usize = 10_000;
/// Alerts one batch deletes at most.
pub const ALERTS_PER_BATCH: u32 = 500;
/// Pages SQLite's incremental vacuum frees per step (4 KiB pages: 1 MiB).
pub const VACUUM_PAGES_PER_STEP: u32 = 256;

/// How long a space's history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Events whose deliveries have all finished are deleted this long after publishing.
    pub retention: Duration,
    /// Events' data and attempts' response bodies are dropped this long after publishing.
    pub payload_retention: Option<Duration>,
}

impl RetentionPolicy {
    /// The server's default: 30 days, payloads kept as long.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

    /// Checks the policy: payloads must go before the events that hold them.
    pub fn check(&self) -> Result<(), String> {
        match self.payload_retention {
            Some(payload) if payload >= self.retention => Err(format!(
                "payload retention ({}s) must be shorter than retention ({}s): events are deleted with their data",
                payload.as_secs_f64(),
                self.retention.as_secs_f64()
            )),
            _ => Ok(()),
        }
    }

    /// This policy with a space's own values in place of the server's.
    pub fn for_space(self, space: SpaceRetention) -> Self {
        Self {
            retention: space.retention.unwrap_or(self.retention),
            payload_retention: space.payload_retention.or(self.payload_retention),
        }
    }

    /// The cut-off times at `now`.
    pub fn cutoffs(&self, now: Timestamp) -> Cutoffs {
        let delete_before = now.minus(self.retention);
        Cutoffs {
            delete_before,
            // A payload period as long as the retention adds nothing: the event goes.
            expire_payload_before: self
                .payload_retention
                .map(|payload| now.minus(payload))
                .filter(|&cutoff| cutoff > delete_before),
        }
    }
}

/// A space's own retention, set by operators; `None` keeps the server's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceRetention {
    /// See [`RetentionPolicy::retention`].
    pub retention: Option<Duration>,
    /// See [`RetentionPolicy::payload_retention`].
    pub payload_retention: Option<Duration>,
}

/// Events published before these times are past their retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoffs {
    /// Deleted, once their deliveries have all finished.
    pub delete_before: Timestamp,
    /// Their data dropped, once their deliveries have all finished.
    pub expire_payload_before: Option<Timestamp>,
}

/// One of a space's events as the cleaner reads it, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventAge {
    /// Its position in the space's order.
    pub seq: i64,
    /// When it was published.
    pub create_time: Timestamp,
    /// Deliveries it has.
    pub deliveries: u64,
    /// Whether one of them is pending (or, on SQLite, still being written).
    pub unfinished: bool,
    /// Whether its data was dropped already.
    pub data_removed: bool,
}

/// What one batch does with the events it read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchPlan {
    /// Positions of the events to delete (or whose data to drop).
    pub chosen: Vec<i64>,
    /// Where the next batch reads from (after this position).
    pub next_after: i64,
    /// Positions of events passed over because they were still being delivered (payload
    /// expiry looks at them again later).
    pub waiting: Vec<i64>,
    /// Whether the space has nothing more for this run: an event too young was reached,
    /// or the batch read fewer events than it asked for.
    pub done: bool,
}

/// Which of `events` (read after `after`, oldest first, at most `asked`) to delete:
/// those published before `cutoff` whose deliveries have all finished, up to
/// [`DELIVERIES_PER_BATCH`] deliveries (at least one event). An event still being
/// delivered is kept, with all its deliveries, and passed over.
pub fn plan_deletion(events: &[EventAge], after: i64, asked: u32, cutoff: Timestamp) -> BatchPlan {
    let mut plan = BatchPlan {
        next_after: after,
        ..BatchPlan::default()
    };
    let mut deliveries = 0u64;
    for event in events {
        if event.create_time >= cutoff {
            plan.done = true;
            return plan;
        }
        if !event.unfinished {
            if !plan.chosen.is_empty() && deliveries + event.deliveries > DELIVERIES_PER_BATCH {
                return plan;
            }
            deliveries += event.deliveries;
            plan.chosen.push(event.seq);
        }
        plan.next_after = event.seq;
    }
    plan.done = events.len() < asked as usize;
    plan
}

/// Which of `events` (read after `after`, oldest first, at most `asked`) lose their data:
/// those published before `cutoff` that still have it and whose deliveries have all
/// finished (a delivery still to be made needs its data); those still being delivered
/// are `waiting`, to be looked at again.
pub fn plan_payload_expiry(events: &[EventAge], after: i64, asked: u32, cutoff: Timestamp) -> BatchPlan {
    let mut plan = BatchPlan {
        next_after: after,
        ..BatchPlan::default()
    };
    for event in events {
        if event.create_time >= cutoff {
            plan.done = true;
            return plan;
        }
        if event.unfinished {
            plan.waiting.push(event.seq);
        } else if !event.data_removed {
            plan.chosen.push(event.seq);
        }
        plan.next_after = event.seq;
    }
    plan.done = events.len() < asked as usize;
    plan
}

/// What the cleaner removed, in one batch or in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Events deleted.
    pub events: u64,
    /// Deliveries deleted.
    pub deliveries: u64,
    /// Attempts deleted.
    pub attempts: u64,
    /// Events whose data was dropped.
    pub payloads: u64,
    /// Attempts whose response body was dropped.
    pub response_bodies: u64,
    /// Alerts (sent or given up) deleted.
    pub alerts: u64,
}

impl Removed {
    /// Both counts together.
    pub fn add(&mut self, other: Removed) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.payloads += other.payloads;
        self.response_bodies += other.response_bodies;
        self.alerts += other.alerts;
    }

    /// Whether rows were deleted (and SQLite has pages to give back).
    pub fn deleted_any(&self) -> bool {
        self.events + self.deliveries + self.attempts + self.alerts > 0
    }
}

#[cfg(test)]
mod tests;
