//! The claim loop and the attempt workers.
//!
//! One dispatcher task claims due deliveries in batches and hands each to a worker.
//! A webhook never has more attempts in flight than its limit, which adapts to how its
//! receiver answers between one and `max_in_flight_per_webhook` (see [`super::limit`]):
//! its extra claimed deliveries wait in a per-webhook queue (topped up to
//! [`QUEUED_CAPS`] times the limit, so a worker that finishes goes straight on to the
//! webhook's next delivery without waiting for a claim), and a worker that finishes
//! takes the next one of the same webhook. Webhooks whose slots and queue are full are
//! left out of claims, so a receiver that hangs holds its own slots and nobody else's.
//! A queued delivery whose lease could run out during its attempt (its webhook's limit
//! fell while it waited) is given back instead of sent.
//!
//! Workers do not record their attempts themselves: they hand the results to one
//! recorder task, which records whatever has gathered in one store call. A worker
//! makes its next attempt while its previous one is being recorded, but no further:
//! it waits for that record before the attempt after. So the cap bounds the requests
//! a receiver sees at once, a commit's latency overlaps a request's instead of adding
//! to it, and a crash can repeat at most twice the attempts in flight, never a backlog
//! of unrecorded ones. An attempt's delivery stays leased until it is recorded, so
//! nothing else takes it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::{next_step, NextStep};
use hookrelay_core::webhook::ApiRelease;
use hookrelay_core::{DeliveryId, EventId, Timestamp, Webhook, WebhookId};
use hookrelay_store::{AttemptResult, ClaimRequest, ClaimedDelivery, Store};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::attempt::{build_client, Body, Client, Target};
use super::limit::{ClaimShare, InFlightLimit, LoadSignal};
use super::{DeliveryConfig, Wakeup, QUEUED_CAPS};
use crate::error_chain;

/// Most deliveries claimed in one query.
const CLAIM_BATCH: u32 = 256;
/// Pause after a failed claim before trying again.
const STORE_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Tries to record attempts before leaving their deliveries to their leases.
const RECORD_TRIES: u32 = 5;
/// Most attempt results recorded in one store call.
const RECORD_BATCH: usize = 512;
/// How long the claim loop sleeps, unless woken, after a claim that took some but not
/// all it asked for. Its attempts' records wake the loop anyway, so under load it does
/// not ask the store for the next due time (a query per round, which steps over every
/// leased delivery); this bounds how late a retry falling due meanwhile can start.
const BUSY_RECHECK: Duration = Duration::from_millis(100);
/// Attempts of a worker that may be awaiting their record while it makes the next one.
const RECORD_WINDOW: usize = 1;
/// Prepared targets kept for workers to come; past this many (more webhooks busy than
/// that), the cache starts again empty.
const TARGET_CACHE: usize = 4096;

pub struct Dispatcher {
    shared: Arc<Shared>,
    /// The recorder task.
    recording: tokio::task::JoinHandle<()>,
    /// How a claim is shared among webhooks.
    share: ClaimShare,
}

/// What the dispatcher and its workers share.
struct Shared {
    store: Arc<dyn Store>,
    client: Client,
    config: DeliveryConfig,
    wakeup: Wakeup,
    /// Per-webhook slots: attempts in flight and claimed deliveries waiting for a slot.
    webhooks: Mutex<HashMap<WebhookId, WebhookSlots>>,
    /// Bounds attempts in flight across all webhooks.
    permits: Arc<Semaphore>,
    /// Set at shutdown: workers stop taking queued deliveries.
    stopping: AtomicBool,
    /// Names this process in the leases it takes.
    owner: String,
    /// Where workers send what their attempts did.
    recorder: mpsc::Sender<ToRecorder>,
    /// Each webhook's prepared target, for the next worker that starts on it: under
    /// fan-out, workers come and go with nearly every delivery.
    targets: Mutex<KeptTargets>,
    /// Every worker, so shutdown can wait for them.
    workers: TaskTracker,
}

struct WebhookSlots {
    in_flight: u32,
    queued: VecDeque<Claimed>,
    limit: InFlightLimit,
}

impl WebhookSlots {
    fn new(ceiling: u32) -> Self {
        Self {
            in_flight: 0,
            queued: VecDeque::new(),
            limit: InFlightLimit::new(ceiling),
        }
    }

    /// Takes queued deliveries, each with a permit from `permit`, into slots below the
    /// limit, for workers the caller starts.
    fn take_up_to_limit(
        &mut self,
        mut permit: impl FnMut() -> Option<OwnedSemaphorePermit>,
        started: &mut Vec<(Claimed, OwnedSemaphorePermit)>,
    ) {
        while self.in_flight < self.limit.current() && !self.queued.is_empty() {
            let Some(permit) = permit() else { break };
            if let Some(delivery) = self.queued.pop_front() {
                self.in_flight += 1;
                started.push((delivery, permit));
            }
        }
    }

    /// Whether the webhook should not be claimed for: its slots are taken and its queue
    /// is full.
    fn saturated(&self) -> bool {
        self.in_flight + self.queued.len() as u32 >= (1 + QUEUED_CAPS).saturating_mul(self.limit.current())
    }
}

/// A claimed delivery, the store's webhook epoch read before it was claimed, the body
/// it sends (shared with the claim's other deliveries of its event), and when its lease
/// ends.
struct Claimed {
    delivery: ClaimedDelivery,
    webhook_epoch: Option<u64>,
    body: Body,
    lease_until: Timestamp,
}

enum ToRecorder {
    /// A result, and who to tell once it is recorded (or given up on).
    Result(AttemptResult, oneshot::Sender<()>),
    /// Answered once everything sent before it is recorded; the recorder then stops.
    Flush(oneshot::Sender<()>),
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, HashMap<WebhookId, WebhookSlots>> {
        self.webhooks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Webhooks that should not be claimed for: their slots are taken and their queue
    /// is full.
    fn saturated(&self) -> Vec<WebhookId> {
        self.slots()
            .iter()
            .filter(|(_, s)| s.saturated())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A target for `webhook` as it is: the kept one if it still serves, else a new one.
    /// Targets are kept only while no webhook changes (the store's epoch), and only for
    /// a webhook as claimed under the current epoch, so those of deleted, disabled or
    /// re-keyed webhooks, keys included, are dropped at the next worker start after the
    /// change (a failure that disables its webhook moves the epoch too). A
    /// store without an epoch (PostgreSQL) keeps none.
    fn target(&self, webhook: &Arc<Webhook>, claimed_epoch: Option<u64>) -> Arc<Target> {
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

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, config: DeliveryConfig, wakeup: Wakeup, alerts: Wakeup) -> Self {
        let client = build_client(&config);
        let owner = format!("pid-{}-{:08x}", std::process::id(), rand::thread_rng().gen::<u32>());
        let (recorder, results) = mpsc::channel(2 * RECORD_BATCH);
        let recording = tokio::spawn(record(
            store.clone(),
            results,
            config.alert_policy,
            wakeup.clone(),
            alerts,
        ));
        Self {
            shared: Arc::new(Shared {
                store,
                client,
                permits: Arc::new(Semaphore::new(config.max_in_flight as usize)),
                config,
                wakeup,
                webhooks: Mutex::new(HashMap::new()),
                stopping: AtomicBool::new(false),
                owner,
                recorder,
                targets: Mutex::new(KeptTargets::default()),
                workers: TaskTracker::new(),
            }),
            recording,
            share: ClaimShare::default(),
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let pause = match self.claim_round().await {
                Round::Full => continue,
                Round::Partial { claimed: true } => Some(BUSY_RECHECK.min(self.shared.config.idle_poll)),
                Round::Partial { claimed: false } => self.idle_wait().await,
                Round::NoCapacity => None,
                Round::StoreFailed => Some(STORE_RETRY_PAUSE),
            };
            let sleep = async {
                match pause {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.shared.wakeup.woken() => {}
                () = sleep => {}
                _ = stop.changed() => {}
            }
        }
        self.drain().await;
    }

    async fn claim_round(&self) -> Round {
        let shared = &self.shared;
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
            lease_until: now.plus_micros(shared.config.lease().as_micros() as i64),
            owner: shared.owner.clone(),
            limit: free,
            per_webhook: self.share.per_webhook(free, shared.config.max_in_flight_per_webhook),
            skip_webhooks: shared.saturated(),
        };
        let claimed = match shared.store.claim_deliveries(&request).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "claiming deliveries failed");
                return Round::StoreFailed;
            }
        };
        let full = claimed.len() as u32 == request.limit;
        let claimed_any = !claimed.is_empty();
        let webhooks: HashSet<&WebhookId> = claimed.iter().map(|d| &d.webhook.id).collect();
        self.share.claimed(webhooks.len(), full);
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
        let slots = webhooks
            .entry(delivery.delivery.webhook.id.clone())
            .or_insert_with(|| WebhookSlots::new(shared.config.max_in_flight_per_webhook));
        if slots.in_flight < slots.limit.current() {
            if let Some(permit) = reserved.split(1) {
                slots.in_flight += 1;
                drop(webhooks);
                shared.workers.spawn(work(shared.clone(), delivery, permit, false));
                return;
            }
        }
        // Behind a worker of its own webhook, which will take it.
        debug_assert!(slots.in_flight > 0, "a delivery queued with no worker to take it");
        slots.queued.push_back(delivery);
    }

    /// Starts workers for queued deliveries of webhooks whose limit rose while this
    /// round's claim held the free permits, with the permits the claim did not use.
    fn start_waiting(&self, reserved: &mut OwnedSemaphorePermit) {
        let shared = &self.shared;
        let mut started = Vec::new();
        {
            let mut webhooks = shared.slots();
            for slots in webhooks.values_mut() {
                slots.take_up_to_limit(|| reserved.split(1), &mut started);
            }
        }
        for (delivery, permit) in started {
            shared.workers.spawn(work(shared.clone(), delivery, permit, true));
        }
    }

    /// How long to sleep when no more work is due now: until the next retry is due,
    /// at most `idle_poll` (work from other nodes, leases that ran out).
    async fn idle_wait(&self) -> Option<Duration> {
        let shared = &self.shared;
        let now = Timestamp::now();
        match shared.store.next_due_time(now, &shared.saturated()).await {
            Ok(Some(due)) => {
                let micros = (due.as_micros() - now.as_micros()).max(0) as u64;
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
        for claimed in shared.slots().values_mut().flat_map(|s| s.queued.drain(..)) {
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

enum Round {
    /// The claim filled its batch: more may be due.
    Full,
    /// Everything due and claimable was claimed; `claimed`: some was.
    Partial { claimed: bool },
    /// Every attempt slot is taken: wait for one to free.
    NoCapacity,
    /// The store failed.
    StoreFailed,
}

/// Attempts `first` (itself queued, or fresh from a claim), then the webhook's queued
/// deliveries, one at a time.
async fn work(shared: Arc<Shared>, first: Claimed, permit: OwnedSemaphorePermit, mut queued: bool) {
    let webhook_id = first.delivery.webhook.id.clone();
    let mut next = Some(first);
    let mut unrecorded = VecDeque::with_capacity(RECORD_WINDOW + 1);
    // What the last attempt's answer said about the receiver's load, and when it was sent.
    let mut answer = None;
    // Looked up again only when the webhook changes.
    let mut target: Option<Arc<Target>> = None;
    while let Some(Claimed {
        mut delivery,
        webhook_epoch,
        body,
        lease_until,
    }) = next
    {
        // A queued delivery waited behind other attempts: send it with the webhook as it
        // is now, and not at all if the webhook was disabled or deleted meanwhile (its
        // delivery was cancelled then). Unless no webhook changed since the claim.
        let unchanged = webhook_epoch.is_some() && webhook_epoch == shared.store.webhook_epoch();
        let current = !queued || unchanged || refresh_webhook(&shared, &mut delivery).await;
        if !current {
            // Cancelled with its webhook.
        } else if queued && !lease_outlasts_attempt(lease_until, &shared.config) {
            // Checked after the reload, right before sending.
            give_back(&shared, &delivery, lease_until).await;
        } else {
            let target = match target.take() {
                Some(prepared) if prepared.serves(&delivery.webhook) => target.insert(prepared),
                _ => target.insert(shared.target(&delivery.webhook, webhook_epoch)),
            };
            let sent = Instant::now();
            if let Some(finished) = attempt(&shared, target, &delivery, &body).await {
                answer = Some((finished.signal, sent));
                unrecorded.push_back(finished.recording);
                // Recording a failure may disable the webhook (410, failing too long):
                // the next delivery waits for it, so it sees that.
                if !finished.succeeded {
                    await_all(&mut unrecorded).await;
                }
            }
        }
        while unrecorded.len() > RECORD_WINDOW {
            if let Some(recording) = unrecorded.pop_front() {
                let _ = recording.await;
            }
        }
        queued = true;
        next = take_queued(&shared, &webhook_id, answer.take(), false);
        if next.is_none() {
            // The slot is held until the last records are in, so a webhook never has
            // more than twice its ceiling of attempts unrecorded.
            await_all(&mut unrecorded).await;
            next = take_queued(&shared, &webhook_id, None, true);
        }
    }
    drop(permit);
    shared.wakeup.wake();
}

/// Whether an attempt started now ends, at its timeout, while the delivery is still
/// leased (with a connect timeout to spare for recording it).
fn lease_outlasts_attempt(lease_until: Timestamp, config: &DeliveryConfig) -> bool {
    let needed = (config.attempt_timeout + config.connect_timeout).as_micros() as i64;
    lease_until.as_micros() - Timestamp::now().as_micros() >= needed
}

/// Gives a claimed delivery back to the store unattempted, if its lease is still this
/// claim's; the next claim takes it with a lease of its own.
async fn give_back(shared: &Shared, delivery: &ClaimedDelivery, lease_until: Timestamp) {
    tracing::info!(delivery = %delivery.delivery_id, webhook = %delivery.webhook.id, "giving back a queued delivery whose lease would run out during its attempt");
    if let Err(error) = shared
        .store
        .release_deliveries(std::slice::from_ref(&delivery.delivery_id), &shared.owner, lease_until)
        .await
    {
        tracing::warn!(error = %error_chain(&error), delivery = %delivery.delivery_id, "giving back a delivery failed; its lease will run out");
    }
}

/// Waits until every result in `unrecorded` is recorded.
async fn await_all(unrecorded: &mut VecDeque<oneshot::Receiver<()>>) {
    for recording in unrecorded.drain(..) {
        let _ = recording.await;
    }
}

/// The webhook's next queued delivery for this worker, after taking in what its last
/// attempt's answer said (`answer`: the signal and when the attempt was sent). None when
/// stopping, or when the webhook has more workers than its limit now allows. When the
/// limit rose, workers are started for queued deliveries up to it. With `or_leave`, a
/// worker finding none gives its slot back, under the same lock, so nothing is queued
/// behind a worker that is leaving (one that leaves over the limit leaves others at it).
fn take_queued(
    shared: &Arc<Shared>,
    webhook_id: &WebhookId,
    answer: Option<(LoadSignal, Instant)>,
    or_leave: bool,
) -> Option<Claimed> {
    let mut started = Vec::new();
    let next = {
        let mut webhooks = shared.slots();
        let slots = webhooks.get_mut(webhook_id).expect("a working webhook has slots");
        let rose = answer.is_some_and(|(signal, sent)| slots.limit.answered(signal, sent, Instant::now()));
        let stopping = shared.stopping.load(Ordering::SeqCst);
        let next = if stopping || slots.in_flight > slots.limit.current() {
            None
        } else {
            slots.queued.pop_front()
        };
        if rose && !stopping {
            slots.take_up_to_limit(|| shared.permits.clone().try_acquire_owned().ok(), &mut started);
        }
        if next.is_none() && or_leave {
            slots.in_flight -= 1;
            if slots.in_flight == 0 && slots.queued.is_empty() {
                webhooks.remove(webhook_id);
            }
        }
        next
    };
    for (delivery, permit) in started {
        shared.workers.spawn(work(shared.clone(), delivery, permit, true));
    }
    next
}
/// Reloads the delivery's webhook; `false` when it is gone or disabled.
async fn refresh_webhook(shared: &Shared, delivery: &mut ClaimedDelivery) -> bool {
    match shared
        .store
        .get_webhook(&delivery.event.space_id, &delivery.webhook.id)
        .await
    {
        Ok(Some(webhook)) if webhook.enabled => {
            delivery.webhook = Arc::new(webhook);
            true
        }
        Ok(_) => false,
        Err(error) => {
            // The claimed copy is at most one attempt old: better sent than stuck.
            tracing::warn!(error = %error_chain(&error), "reloading a webhook failed; using the claimed copy");
            true
        }
    }
}

/// Attempts the delivery and hands the result to the recorder; the answer comes once it
/// is recorded (`None`: the recorder has stopped), with whether the attempt succeeded.
async fn attempt(shared: &Shared, target: &Target, delivery: &ClaimedDelivery, body: &Body) -> Option<Finished> {
    let report = super::attempt::attempt(&shared.client, target, delivery, body, &shared.config).await;
    let signal = LoadSignal::of(report.outcome, &report.entry);
    let finish_time = Timestamp::now();
    let jitter = rand::thread_rng().gen_range(0.9..=1.1);
    let next = next_step(
        &shared.config.retry_schedule,
        delivery.attempt,
        report.outcome,
        finish_time,
        jitter,
    );
    let entry = &report.entry;
    let succeeded = matches!(next, NextStep::Succeeded);
    tracing::debug!(
        delivery = %delivery.delivery_id,
        webhook = %delivery.webhook.id,
        attempt = entry.attempt,
        status = ?entry.status_code,
        error_kind = ?entry.error_kind,
        duration_ms = entry.duration_ms,
        ?next,
        "attempt finished"
    );
    let result = AttemptResult {
        delivery_id: delivery.delivery_id.clone(),
        webhook_id: delivery.webhook.id.clone(),
        attempt: report.entry,
        next,
        finish_time,
        claimed_update_time: delivery.update_time,
    };
    let (recorded, recording) = oneshot::channel();
    if shared
        .recorder
        .send(ToRecorder::Result(result, recorded))
        .await
        .is_err()
    {
        tracing::warn!(delivery = %delivery.delivery_id, "the recorder has stopped; the delivery will be attempted again when its lease runs out");
        return None;
    }
    Some(Finished {
        recording,
        succeeded,
        signal,
    })
}

/// An attempt handed to the recorder.
struct Finished {
    /// Answered once the attempt is recorded.
    recording: oneshot::Receiver<()>,
    succeeded: bool,
    /// What the answer said about the receiver's load.
    signal: LoadSignal,
}

/// The recorder task: records attempt results in batches until flushed.
async fn record(
    store: Arc<dyn Store>,
    mut results: mpsc::Receiver<ToRecorder>,
    policy: AlertPolicy,
    work: Wakeup,
    alerts: Wakeup,
) {
    let mut messages = Vec::with_capacity(RECORD_BATCH);
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    let mut waiting = Vec::with_capacity(RECORD_BATCH);
    while results.recv_many(&mut messages, RECORD_BATCH).await > 0 {
        let mut flushed = None;
        for message in messages.drain(..) {
            match message {
                ToRecorder::Result(result, recorded) => {
                    batch.push(result);
                    waiting.push(recorded);
                }
                ToRecorder::Flush(answer) => flushed = Some(answer),
            }
        }
        if !batch.is_empty() {
            record_batch(store.as_ref(), &batch, &policy, &alerts).await;
            // Recorded deliveries may be due at a time the claim loop has not seen (they
            // were leased until now): a retry, or a manual retry the record kept.
            work.wake();
            batch.clear();
            waiting.drain(..).for_each(|recorded| {
                let _ = recorded.send(());
            });
        }
        if let Some(answer) = flushed {
            let _ = answer.send(());
            return;
        }
    }
}

async fn record_batch(store: &dyn Store, batch: &[AttemptResult], policy: &AlertPolicy, alerts: &Wakeup) {
    let mut pause = Duration::from_millis(50);
    for tries_left in (0..RECORD_TRIES).rev() {
        match store.record_attempts(batch, policy).await {
            Ok(queued) => {
                if queued > 0 {
                    alerts.wake();
                }
                return;
            }
            Err(error) if tries_left > 0 => {
                tracing::warn!(error = %error_chain(&error), "recording attempts failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(error) => {
                tracing::error!(
                    error = %error_chain(&error),
                    attempts = batch.len(),
                    "recording attempts failed; their deliveries will be attempted again when their leases run out"
                );
            }
        }
    }
}
