//! The cleaner: every `cleaner_interval` it deletes each space's history past its
//! retention and drops payloads past their period, in small batches
//! (`hookrelay_core::retention`), then lets SQLite give the freed pages back and forgets
//! expired idempotency keys. On PostgreSQL the store's advisory lock keeps it to one
//! node at a time: a node that finds the lock taken leaves the run to the other.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrelay_core::retention::{
    Removed, RetentionPolicy, ALERTS_PER_BATCH, BATCHES_PER_RUN, EVENTS_PER_BATCH, VACUUM_PAGES_PER_STEP,
    WAITING_PER_SPACE,
};
use hookrelay_core::{SpaceId, Timestamp};
use hookrelay_store::{Store, StoreError};

/// How long history is kept and how often the cleaner looks.
#[derive(Clone, Copy, Debug)]
pub struct RetentionConfig {
    /// The server's default policy (a space may have its own).
    pub policy: RetentionPolicy,
    /// Time between runs.
    pub interval: Duration,
}

/// Whether a run went through or found another node cleaning.
enum Run {
    Done(Removed),
    OtherNode,
}

/// The cleaner's task and what it remembers between runs.
pub struct Cleaner {
    store: Arc<dyn Store>,
    config: RetentionConfig,
    /// Per space, the position up to which payloads have been looked at: events before
    /// it lost their data already, or are in `waiting`.
    payload_cursors: HashMap<SpaceId, i64>,
    /// Per space, events passed over while they were being delivered, looked at again
    /// each run (at most [`WAITING_PER_SPACE`]).
    waiting: HashMap<SpaceId, BTreeSet<i64>>,
}

impl Cleaner {
    /// A cleaner whose runs the metrics count (`telemetry::metrics::cleaner_ran`).
    pub fn new(store: Arc<dyn Store>, config: RetentionConfig) -> Self {
        Self {
            store,
            config,
            payload_cursors: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    /// Runs every interval until the task is aborted.
    pub async fn run_forever(mut self) {
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.run_once().await {
                tracing::warn!(error = %crate::error_chain(&error), "the retention cleaner failed; it tries again next run");
            }
        }
    }

    /// One run over every space.
    pub async fn run_once(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let removed = match self.clean_spaces(Timestamp::now()).await? {
            Run::Done(removed) => removed,
            Run::OtherNode => {
                tracing::debug!("another node is running the retention cleaner");
                return Ok(());
            }
        };
        let pages = if removed.deleted_any() || removed.payloads > 0 {
            self.reclaim().await?
        } else {
            0
        };
        let keys = self.store.prune_idempotency_records(Timestamp::now()).await?;
        crate::telemetry::metrics::cleaner_ran(&removed, pages, keys, Timestamp::now());
        tracing::info!(
            events = removed.events,
            deliveries = removed.deliveries,
            attempts = removed.attempts,
            payloads = removed.payloads,
            response_bodies = removed.response_bodies,
            alerts = removed.alerts,
            pages_reclaimed = pages,
            idempotency_keys = keys,
            duration_ms = started.elapsed().as_millis() as u64,
            "retention cleaner ran"
        );
        Ok(())
    }

    async fn clean_spaces(&mut self, now: Timestamp) -> Result<Run, StoreError> {
        let mut total = Removed::default();
        for space in self.store.list_spaces().await? {
            let cutoffs = self.config.policy.for_space(space.retention).cutoffs(now);
            let Some(removed) = self.delete_expired(&space.id, cutoffs.delete_before).await? else {
                return Ok(Run::OtherNode);
            };
            total.add(removed);
            let Some(alerts) = self.delete_old_alerts(&space.id, cutoffs.delete_before).await? else {
                return Ok(Run::OtherNode);
            };
            total.alerts += alerts;
            if let Some(cutoff) = cutoffs.expire_payload_before {
                let Some(removed) = self.expire_payloads(&space.id, cutoff, now).await? else {
                    return Ok(Run::OtherNode);
                };
                total.add(removed);
            }
        }
        Ok(Run::Done(total))
    }

    /// Deletes from the space's oldest event on, at most [`BATCHES_PER_RUN`] batches.
    async fn delete_expired(&self, space: &SpaceId, cutoff: Timestamp) -> Result<Option<Removed>, StoreError> {
        let mut removed = Removed::default();
        let mut after = 0;
        for _ in 0..BATCHES_PER_RUN {
            let Some(batch) = self.store.delete_expired(space, after, cutoff).await? else {
                return Ok(None);
            };
            removed.add(batch.removed);
            if batch.done {
                break;
            }
            after = batch.next_after;
        }
        Ok(Some(removed))
    }

    /// Deletes the space's alerts past the retention, at most [`BATCHES_PER_RUN`] batches.
    async fn delete_old_alerts(&self, space: &SpaceId, cutoff: Timestamp) -> Result<Option<u64>, StoreError> {
        let mut total = 0;
        for _ in 0..BATCHES_PER_RUN {
            let Some(deleted) = self.store.delete_old_alerts(space, cutoff).await? else {
                return Ok(None);
            };
            total += deleted;
            if deleted < u64::from(ALERTS_PER_BATCH) {
                break;
            }
        }
        Ok(Some(total))
    }

    /// Drops payloads of the events passed over before, then from where the last run
    /// stopped, at most [`BATCHES_PER_RUN`] batches.
    async fn expire_payloads(
        &mut self,
        space: &SpaceId,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Removed>, StoreError> {
        let mut removed = Removed::default();
        let earlier: Vec<i64> = self.waiting.remove(space).unwrap_or_default().into_iter().collect();
        let mut waiting = BTreeSet::new();
        for (n, chunk) in earlier.chunks(EVENTS_PER_BATCH as usize).enumerate() {
            let Some(batch) = self.store.expire_payloads_of(space, chunk, cutoff, now).await? else {
                // Another node is cleaning: keep what is left to look at.
                waiting.extend(earlier.iter().skip(n * EVENTS_PER_BATCH as usize));
                self.waiting.insert(space.clone(), waiting);
                return Ok(None);
            };
            removed.add(batch.removed);
            waiting.extend(batch.waiting);
        }
        let mut after = self.payload_cursors.get(space).copied().unwrap_or(0);
        let mut finished = true;
        for _ in 0..BATCHES_PER_RUN {
            let Some(batch) = self.store.expire_payloads(space, after, cutoff, now).await? else {
                finished = false;
                break;
            };
            removed.add(batch.removed);
            let room = WAITING_PER_SPACE.saturating_sub(waiting.len());
            waiting.extend(batch.waiting.into_iter().take(room));
            after = batch.next_after;
            if batch.done {
                break;
            }
        }
        self.payload_cursors.insert(space.clone(), after);
        if !waiting.is_empty() {
            self.waiting.insert(space.clone(), waiting);
        }
        Ok(finished.then_some(removed))
    }

    /// Gives freed pages back in small steps, each one write (SQLite), so that
    /// publishes wait behind one step at most.
    async fn reclaim(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let freed = self.store.reclaim_space(VACUUM_PAGES_PER_STEP).await?;
            total += freed;
            if freed < u64::from(VACUUM_PAGES_PER_STEP) {
                return Ok(total);
            }
        }
    }
}
