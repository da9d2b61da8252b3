//! What the claim loop and its workers share: each busy webhook's slots (attempts in
//! flight under its limit, and the claimed deliveries queued behind them), the permits
//! that bound attempts in flight in all, and the targets prepared for workers to come.
//!
//! A webhook's slots live while it has a worker: a delivery is queued only behind a
//! worker of its own webhook, which takes it, and the last worker to leave removes the
//! slots, under the same lock as it looks for more.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use hookrelay_core::{Timestamp, Webhook, WebhookId};
use hookrelay_store::{ClaimedDelivery, Store};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::attempt::{build_client, Body, Client, Target};
use super::heartbeat::Fence;
use super::limit::{InFlightLimit, LoadSignal};
use super::recorder::ToRecorder;
use super::status::EngineStatus;
use super::worker::work;
use super::{DeliveryConfig, QUEUED_CAPS};

/// Prepared targets kept for workers to come; past this many (more webhooks busy than
/// that), the cache starts again empty.
const TARGET_CACHE: usize = 4096;

/// What the dispatcher and its workers share.
pub(super) struct Shared {
    pub(super) store: Arc<dyn Store>,
    pub(super) client: Client,
    pub(super) config: DeliveryConfig,
    /// What the engine is doing, and what wakes it.
    pub(super) status: EngineStatus,
    /// Per-webhook slots: attempts in flight and claimed deliveries waiting for a slot.
    webhooks: Mutex<HashMap<WebhookId, WebhookSlots<Claimed>>>,
    /// Bounds attempts in flight across all webhooks.
    pub(super) permits: Arc<Semaphore>,
    /// Set at shutdown: workers stop taking queued deliveries.
    pub(super) stopping: AtomicBool,
    /// Names this process in the leases it takes.
    pub(super) owner: String,
    /// Whether attempts may start: the heartbeat is fresh enough.
    pub(super) fence: Fence,
    /// Where workers send what their attempts did.
    pub(super) recorder: mpsc::Sender<ToRecorder>,
    /// Each webhook's prepared target, for the next worker that starts on it: under
    /// fan-out, workers come and go with nearly every delivery.
    targets: Mutex<KeptTargets>,
    /// Every worker, so shutdown can wait for them.
    pub(super) workers: TaskTracker,
}

/// A claimed delivery, the store's webhook epoch read before it was claimed, the body
/// it sends (shared with the claim's other deliveries of its event), and when its lease
/// ends.
pub(super) struct Claimed {
    pub(super) delivery: ClaimedDelivery,
    pub(super) webhook_epoch: Option<u64>,
    pub(super) body: Body,
    pub(super) lease_until: Timestamp,
}

/// One webhook's slots: its workers (each holding a permit) and the deliveries `D`
/// queued behind them. Every change is counted in the engine's status too.
pub(super) struct WebhookSlots<D> {
    in_flight: u32,
    queued: VecDeque<D>,
    pub(super) limit: InFlightLimit,
    status: EngineStatus,
}

impl<D> WebhookSlots<D> {
    pub(super) fn new(ceiling: u32, status: EngineStatus) -> Self {
        Self {
            in_flight: 0,
            queued: VecDeque::new(),
            limit: InFlightLimit::new(ceiling),
            status,
        }
    }

    /// A fresh delivery takes a slot below the limit with a permit from `permit`, and is
    /// returned for a worker the caller starts; else it is queued behind the webhook's
    /// workers, one of which takes it.
    pub(super) fn admit<P>(&mut self, delivery: D, permit: impl FnOnce() -> Option<P>) -> Option<(D, P)> {
        if self.in_flight < self.limit.current() {
            if let Some(permit) = permit() {
                self.start_one();
                return Some((delivery, permit));
            }
        }
        debug_assert!(self.in_flight > 0, "a delivery queued with no worker to take it");
        self.queued.push_back(delivery);
        self.status.queued().add(1);
        None
    }

    /// Takes queued deliveries, each with a permit from `permit`, into slots below the
    /// limit, for workers the caller starts.
    pub(super) fn take_up_to_limit<P>(&mut self, mut permit: impl FnMut() -> Option<P>, started: &mut Vec<(D, P)>) {
        while self.in_flight < self.limit.current() && !self.queued.is_empty() {
            let Some(permit) = permit() else { break };
            self.start_one();
            if let Some(delivery) = self.pop_queued() {
                started.push((delivery, permit));
            }
        }
    }

    /// What a worker holding a slot does after an attempt, given what its answer said
    /// (`answer`: the signal and when the attempt was sent): the webhook's next queued
    /// delivery, or none when stopping or when the webhook has more workers than its
    /// limit now allows. When the limit rose, queued deliveries are taken, each with a
    /// permit from `permit`, into slots up to it, for workers the caller starts. With
    /// `or_leave`, a worker finding none gives its slot back, so nothing is queued behind
    /// a worker that is leaving (one that leaves over the limit leaves others at it).
    pub(super) fn after_attempt<P>(
        &mut self,
        answer: Option<(LoadSignal, Instant)>,
        stopping: bool,
        or_leave: bool,
        permit: impl FnMut() -> Option<P>,
        started: &mut Vec<(D, P)>,
    ) -> Option<D> {
        let rose = answer.is_some_and(|(signal, sent)| self.limit.answered(signal, sent, Instant::now()));
        let next = if stopping || self.in_flight > self.limit.current() {
            None
        } else {
            self.pop_queued()
        };
        if rose && !stopping {
            self.take_up_to_limit(permit, started);
        }
        if next.is_none() && or_leave {
            self.in_flight -= 1;
            self.status.in_flight().sub(1);
        }
        next
    }

    /// No worker and nothing queued: the slots can go.
    pub(super) fn is_unused(&self) -> bool {
        self.in_flight == 0 && self.queued.is_empty()
    }

    /// Whether the webhook should not be claimed for: its slots are taken and its queue
    /// is full.
    pub(super) fn saturated(&self) -> bool {
        self.in_flight + self.queued.len() as u32 >= (1 + QUEUED_CAPS).saturating_mul(self.limit.current())
    }

    /// Empties the queue (at shutdown, to give its deliveries back).
    pub(super) fn drain_queued(&mut self) -> Vec<D> {
        self.status.queued().sub(self.queued.len());
        self.queued.drain(..).collect()
    }

    /// Counted in flight before it leaves the queue, so the engine never looks idle
    /// between the two.
    fn start_one(&mut self) {
        self.in_flight += 1;
        self.status.in_flight().add(1);
    }

    fn pop_queued(&mut self) -> Option<D> {
        let delivery = self.queued.pop_front()?;
        self.status.queued().sub(1);
        Some(delivery)
    }
}

impl Shared {
    pub(super) fn new(
        store: Arc<dyn Store>,
        config: DeliveryConfig,
        status: EngineStatus,
        recorder: mpsc::Sender<ToRecorder>,
        fence: Fence,
    ) -> Self {
        Self {
            store,
            client: build_client(&config),
            permits: Arc::new(Semaphore::new(config.max_in_flight as usize)),
            config,
            owner: status.node().to_owned(),
            status,
            webhooks: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            fence,
            recorder,
            targets: Mutex::new(KeptTargets::default()),
            workers: TaskTracker::new(),
        }
    }

    pub(super) fn slots(&self) -> MutexGuard<'_, HashMap<WebhookId, WebhookSlots<Claimed>>> {
        self.webhooks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The webhook's slots, made for its first delivery in the engine.
    pub(super) fn slots_of<'a>(
        &self,
        webhooks: &'a mut HashMap<WebhookId, WebhookSlots<Claimed>>,
        webhook: &WebhookId,
    ) -> &'a mut WebhookSlots<Claimed> {
        webhooks
            .entry(webhook.clone())
            .or_insert_with(|| WebhookSlots::new(self.config.max_in_flight_per_webhook, self.status.clone()))
    }

    /// Webhooks that should not be claimed for: their slots are taken and their queue
    /// is full.
    pub(super) fn saturated(&self) -> Vec<WebhookId> {
        self.slots()
            .iter()
            .filter(|(_, s)| s.saturated())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The webhook's next queued delivery for a worker that made an attempt (see
    /// [`WebhookSlots::after_attempt`]); the webhook's slots go with its last worker.
    pub(super) fn take_queued(
        self: &Arc<Self>,
        webhook_id: &WebhookId,
        answer: Option<(LoadSignal, Instant)>,
        or_leave: bool,
    ) -> Option<Claimed> {
        let mut started = Vec::new();
        let next = {
            let mut webhooks = self.slots();
            let slots = webhooks.get_mut(webhook_id).expect("a working webhook has slots");
            let stopping = self.stopping.load(Ordering::SeqCst);
            let permit = || self.permits.clone().try_acquire_owned().ok();
            let next = slots.after_attempt(answer, stopping, or_leave, permit, &mut started);
            if slots.is_unused() {
                webhooks.remove(webhook_id);
            }
            next
        };
        self.start_workers(started);
        next
    }

    /// Starts a worker for each queued delivery taken into a slot.
    pub(super) fn start_workers(self: &Arc<Self>, started: Vec<(Claimed, OwnedSemaphorePermit)>) {
        for (delivery, permit) in started {
            self.workers.spawn(work(self.clone(), delivery, permit, true));
        }
    }

    /// A target for `webhook` as it is: the kept one if it still serves, else a new one.
    /// Targets are kept only while no webhook changes (the store's epoch), and only for
    /// a webhook as claimed under the current epoch, so those of deleted, disabled or
    /// re-keyed webhooks, keys included, are dropped at the next worker start after the
    /// change (a failure that disables its webhook moves the epoch too). A
    /// store without an epoch (PostgreSQL) keeps none.
    pub(super) fn target(&self, webhook: &Arc<Webhook>, claimed_epoch: Option<u64>) -> Arc<Target> {
        let epoch = self.store.webhook_epoch();
        if epoch.is_some() {
            let mut kept = self.targets();
            // Epochs only grow: a worker that read an older one changes nothing.
            if kept.epoch < epoch {
                kept.by_webhook.clear();
                kept.epoch = epoch;
            }
            if let Some(target) = kept.by_webhook.get(&webhook.id).filter(|t| t.serves(webhook)) {
                return target.clone();
            }
        }
        // Made outside the lock: it parses the URL and opens the key.
        let target = Arc::new(Target::new(webhook.clone(), &self.config));
        if epoch.is_some() && claimed_epoch == epoch {
            let mut kept = self.targets();
            if kept.epoch == epoch {
                if kept.by_webhook.len() >= TARGET_CACHE {
                    kept.by_webhook.clear();
                }
                kept.by_webhook.insert(webhook.id.clone(), target.clone());
            }
        }
        target
    }

    fn targets(&self) -> MutexGuard<'_, KeptTargets> {
        self.targets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Prepared targets, under the webhook epoch they were kept in.
#[derive(Default)]
struct KeptTargets {
    epoch: Option<u64>,
    by_webhook: HashMap<WebhookId, Arc<Target>>,
}

#[cfg(test)]
mod tests;
