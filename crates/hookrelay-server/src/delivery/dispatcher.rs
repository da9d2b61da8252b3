//! The claim loop.
//!
//! One dispatcher task claims due deliveries in batches and hands each to a worker
//! ([`super::worker`]). A webhook never has more attempts in flight than its limit, which
//! adapts to how its receiver answers between one and `max_in_flight_per_webhook` (see
//! [`super::limit`]): its extra claimed deliveries wait in a per-webhook queue (topped up
//! to [`QUEUED_CAPS`](super::QUEUED_CAPS) times the limit, so a worker that finishes goes straight on to the
//! webhook's next delivery without waiting for a claim; see [`super::slots`]), and a
//! worker that finishes takes the next one of the same webhook. Webhooks whose slots and
//! queue are full are left out of claims, so a receiver that hangs holds its own slots
//! and nobody else's. A queued delivery whose lease could run out during its attempt
//! (its webhook's limit fell while it waited) is given back instead of sent.
//!
//! Workers hand their results to one recorder task ([`super::recorder`]). A worker makes
//! its next attempt while its previous one is being recorded, but no further: it waits
//! for that record before the attempt after. So the cap bounds the requests a receiver
//! sees at once, a commit's latency overlaps a request's instead of adding to it, and a
//! crash can repeat at most twice the attempts in flight, never a backlog of unrecorded
//! ones.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::webhook::ApiRelease;
use hookrelay_core::{DeliveryId, EventId, Timestamp, WebhookId};
use hookrelay_store::{ClaimRequest, ClaimedDelivery, Store};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};

use super::attempt::Body;
use super::heartbeat::Fence;
use super::limit::ClaimShare;
use super::recorder::{Recorder, ToRecorder, RECORD_BATCH};
use super::slots::{Claimed, Shared};
use super::status::EngineStatus;
use super::worker::work;
use super::{saturating_micros, DeliveryConfig, Wakeup};
use crate::error_chain;
use crate::telemetry::metrics::{self, DbOperation};

/// Most deliveries claimed in one query.
const CLAIM_BATCH: u32 = 256;
/// Pause after a failed claim before trying again.
const STORE_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long the claim loop sleeps, unless woken, after a claim that took some but not
/// all it asked for. Its attempts' records wake the loop anyway, so under load it does
/// not ask the store for the next due time (a query per round, which steps over every
/// leased delivery); this bounds how late a retry falling due meanwhile can start.
const BUSY_RECHECK: Duration = Duration::from_millis(100);

pub struct Dispatcher {
    shared: Arc<Shared>,
    /// The recorder task.
    recording: tokio::task::JoinHandle<()>,
    /// How a claim is shared among webhooks.
    share: ClaimShare,
}

#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// The claim filled its batch: more may be due.
    Full,
    /// Everything due and claimable was claimed; `claimed`: some was.
    Partial { claimed: bool },
    /// Every attempt slot is taken: wait for one to free.
    NoCapacity,
    /// The store failed.
    StoreFailed,
    /// The heartbeat is too old to start attempts: claim nothing until it is written.
    Fenced,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        config: DeliveryConfig,
        status: EngineStatus,
        alerts: Wakeup,
        fence: Fence,
    ) -> Self {
        let (recorder, results) = mpsc::channel(2 * RECORD_BATCH);
        let recording = tokio::spawn(
            Recorder {
                store: store.clone(),
                policy: config.alert_policy,
                status: status.clone(),
                alerts,
            }
            .run(results),
        );
        Self {
            shared: Arc::new(Shared::new(store, config, status, recorder, fence)),
            recording,
            share: ClaimShare::default(),
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let wakeup = self.shared.status.wakeup().clone();
        while !*stop.borrow() {
            let pause = match self.claim_round().await {
                Round::Full => continue,
                Round::Partial { claimed: true } => Some(BUSY_RECHECK.min(self.shared.config.idle_poll)),
                Round::Partial { claimed: false } => self.idle_wait().await,
                Round::NoCapacity => None,
                Round::StoreFailed => Some(STORE_RETRY_PAUSE),
                // A heartbeat that is written again wakes the loop.
                Round::Fenced => Some(self.shared.config.liveness.heartbeat_interval),
            };
            let sleep = async {
                match pause {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wakeup.woken() => {}
                () = sleep => {}
                _ = stop.changed() => {}
            }
        }
        self.drain().await;
    }

    async fn claim_round(&self) -> Round {
        let shared = &self.shared;
        // Claimed now, its deliveries would only be dropped: others may take them.
        if !shared.fence.may_start() {
            return Round::Fenced;
        }
        // Read first: a wake-up after this is for work this round may not see.
        let generation = shared.status.wakeup().generation();
        // Held for the claim's deliveries, so that a worker starting another (its
        // webhook's limit rose) while the claim is on its way cannot leave a delivery of
        // an idle webhook queued with no worker to take it. Unused ones go back after.
        let (free, mut reserved) = loop {
            let free = (shared.permits.available_permits() as u32).min(CLAIM_BATCH);
            if free == 0 {
                return Round::NoCapacity;
            }
            // Fails only if a worker took some since they were counted.
            if let Ok(reserved) = shared.permits.clone().try_acquire_many_owned(free) {
                break (free, reserved);
            }
        };
        // Read before the claim: a webhook changed after this is read again before use.
        let webhook_epoch = shared.store.webhook_epoch();
        let now = Timestamp::now();
        let request = ClaimRequest {
            now,
            lease_until: lease_until(now, &shared.config),
            owner: shared.owner.clone(),
            limit: free,
            per_webhook: self.share.per_webhook(free, shared.config.max_in_flight_per_webhook),
            skip_webhooks: shared.saturated(),
        };
        let claim = shared.store.claim_deliveries(&request);
        let claimed = match metrics::time_db(DbOperation::Claim, claim).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "claiming deliveries failed");
                return Round::StoreFailed;
            }
        };
        let full = took_share(&self.share, &claimed, request.limit);
        if claimed.is_empty() {
            shared.status.found_nothing_due(generation);
        }
        let claimed_any = !claimed.is_empty();
        // One body per event and release: a fan-out's deliveries share their event.
        let mut bodies: HashMap<(EventId, ApiRelease), Body> = HashMap::new();
        for delivery in claimed {
            let release = delivery.webhook.api_release;
            let body = bodies
                .entry((delivery.event.id.clone(), release))
                .or_insert_with(|| Body::new(release, &delivery.event))
                .clone();
            self.dispatch(
                Claimed {
                    delivery,
                    webhook_epoch,
                    body,
                    lease_until: request.lease_until,
                },
                &mut reserved,
            );
        }
        self.start_waiting(&mut reserved);
        if full {
            Round::Full
        } else {
            Round::Partial { claimed: claimed_any }
        }
    }

    /// Starts a worker for the delivery, or queues it behind its webhook's attempts.
    /// `reserved` holds a permit for each delivery the claim may have brought.
    fn dispatch(&self, delivery: Claimed, reserved: &mut OwnedSemaphorePermit) {
        let shared = &self.shared;
        let mut webhooks = shared.slots();
        let slots = shared.slots_of(&mut webhooks, &delivery.delivery.webhook.id);
        if let Some((delivery, permit)) = slots.admit(delivery, || reserved.split(1)) {
            drop(webhooks);
            shared.workers.spawn(work(shared.clone(), delivery, permit, false));
        }
    }

    /// Starts workers for queued deliveries of webhooks whose limit rose while this
    /// round's claim held the free permits, with the permits the claim did not use.
    fn start_waiting(&self, reserved: &mut OwnedSemaphorePermit) {
        let mut started = Vec::new();
        for slots in self.shared.slots().values_mut() {
            slots.take_up_to_limit(|| reserved.split(1), &mut started);
        }
        self.shared.start_workers(started);
    }

    /// How long to sleep when no more work is due now: until the next retry is due,
    /// at most `idle_poll` (work from other nodes, leases that ran out).
    async fn idle_wait(&self) -> Option<Duration> {
        let shared = &self.shared;
        let now = Timestamp::now();
        match shared.store.next_due_time(now, &shared.saturated()).await {
            Ok(Some(due)) => {
                let micros = u64::try_from(due.as_micros().saturating_sub(now.as_micros())).unwrap_or(0);
                Some(Duration::from_micros(micros).min(shared.config.idle_poll))
            }
            Ok(None) => Some(shared.config.idle_poll),
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "reading the next due time failed");
                Some(STORE_RETRY_PAUSE)
            }
        }
    }

    /// Stops: gives back deliveries that never started, waits for attempts in flight.
    async fn drain(self) {
        let recording = self.recording;
        let shared = &self.shared;
        let tracker = &shared.workers;
        shared.stopping.store(true, Ordering::SeqCst);
        // Given back claim by claim: only where the lease is still the one claimed.
        let mut unstarted: HashMap<Timestamp, Vec<DeliveryId>> = HashMap::new();
        for claimed in shared.slots().values_mut().flat_map(|s| s.drain_queued()) {
            unstarted
                .entry(claimed.lease_until)
                .or_default()
                .push(claimed.delivery.delivery_id);
        }
        for (lease_until, ids) in unstarted {
            if let Err(error) = shared.store.release_deliveries(&ids, &shared.owner, lease_until).await {
                tracing::warn!(error = %error_chain(&error), "releasing unstarted deliveries failed; their leases will run out");
            }
        }
        tracker.close();
        let in_flight = tracker.len();
        if in_flight > 0 {
            tracing::info!(in_flight, grace = ?shared.config.shutdown_grace, "waiting for attempts in flight");
        }
        if tokio::time::timeout(shared.config.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = tracker.len(),
                "attempts still in flight after the grace period; their deliveries will be attempted again"
            );
        }
        let (flushed, flushing) = oneshot::channel();
        if shared.recorder.send(ToRecorder::Flush(flushed)).await.is_ok() {
            let _ = flushing.await;
        }
        let _ = recording.await;
    }
}

/// When a lease taken `now` ends: far in the future, never in the past, however long
/// the configured timeouts.
fn lease_until(now: Timestamp, config: &DeliveryConfig) -> Timestamp {
    now.plus_micros(saturating_micros(config.lease()))
}

/// Takes in what a claim of `asked` deliveries found: how many webhooks it found work
/// for, and whether it filled its size (then more may be due). Returns whether it did.
fn took_share(share: &ClaimShare, claimed: &[ClaimedDelivery], asked: u32) -> bool {
    let full = claimed.len() as u32 == asked;
    let webhooks: HashSet<&WebhookId> = claimed.iter().map(|d| &d.webhook.id).collect();
    share.claimed(webhooks.len(), full);
    full
}

#[cfg(test)]
mod tests;
