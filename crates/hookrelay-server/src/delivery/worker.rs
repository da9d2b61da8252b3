//! The attempt worker: holds one of its webhook's slots and attempts deliveries of that
//! webhook one at a time, the one it started with, then the ones queued behind it.
//!
//! A worker does not record its attempts itself: it hands each result to the recorder
//! and makes its next attempt while the last one is being recorded, but no further
//! ([`RECORD_WINDOW`]). Right before it sends a delivery, it checks that this node's
//! heartbeat still allows attempts (dropping the delivery if not), and that a queued
//! delivery's lease outlasts the attempt (giving it back if not).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use hookrelay_core::delivery::{next_step, NextStep};
use hookrelay_core::record::retry_schedule;
use hookrelay_core::Timestamp;
use hookrelay_store::{AttemptResult, ClaimedDelivery};
use rand::Rng;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::attempt::{Body, Target};
use super::limit::LoadSignal;
use super::recorder::ToRecorder;
use super::slots::{Claimed, Shared};
use super::{saturating_micros, DeliveryConfig};
use crate::error_chain;
use crate::telemetry::{metrics, traces};
use tracing::Instrument;

/// Attempts of a worker that may be awaiting their record while it makes the next one.
const RECORD_WINDOW: usize = 1;

/// Attempts `first` (itself queued, or fresh from a claim), then the webhook's queued
/// deliveries, one at a time.
pub(super) async fn work(shared: Arc<Shared>, first: Claimed, permit: OwnedSemaphorePermit, mut queued: bool) {
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
        } else if !shared.fence.may_start_or_drop(&delivery.delivery_id, lease_until) {
            // The heartbeat is too old: another node may take this delivery over any
            // moment, so it is neither sent nor given back now (see `heartbeat`).
        } else if queued && !lease_outlasts_attempt(lease_until, &shared.config, Timestamp::now()) {
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
        next = shared.take_queued(&webhook_id, answer.take(), false);
        if next.is_none() {
            // The slot is held until the last records are in, so a webhook never has
            // more than twice its ceiling of attempts unrecorded.
            await_all(&mut unrecorded).await;
            next = shared.take_queued(&webhook_id, None, true);
        }
    }
    drop(permit);
    shared.status.wakeup().wake();
}

/// Whether an attempt started at `now` ends, at its timeout, while the delivery is still
/// leased (with a connect timeout to spare for recording it). A lease that saturated at
/// the end of time outlasts any attempt.
pub(super) fn lease_outlasts_attempt(lease_until: Timestamp, config: &DeliveryConfig, now: Timestamp) -> bool {
    if lease_until.as_micros() == i64::MAX {
        return true;
    }
    let needed = saturating_micros(config.attempt_timeout.saturating_add(config.connect_timeout));
    lease_until.as_micros().saturating_sub(now.as_micros()) >= needed
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
    let in_flight = metrics::AttemptInFlight::start();
    let span = traces::attempt_span(delivery);
    let report = super::attempt::attempt(&shared.client, target, delivery, body, &shared.config)
        .instrument(span.clone())
        .await;
    let signal = LoadSignal::of(report.outcome, &report.entry);
    let finish_time = Timestamp::now();
    let jitter = rand::thread_rng().gen_range(0.9..=1.1);
    let schedule = retry_schedule(&delivery.webhook.settings, &shared.config.retry_schedule);
    let next = next_step(schedule, delivery.attempt, report.outcome, finish_time, jitter);
    let entry = &report.entry;
    let succeeded = matches!(next, NextStep::Succeeded);
    in_flight.finish(succeeded);
    traces::attempt_answered(&span, entry.status_code, entry.error_kind);
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
        lease: delivery.lease.clone(),
    };
    let (recorded, recording) = oneshot::channel();
    // Counted before it is handed over, so the recorder never counts it down first.
    shared.status.unrecorded().add(1);
    if shared
        .recorder
        .send(ToRecorder::Result(result, recorded))
        .await
        .is_err()
    {
        shared.status.unrecorded().sub(1);
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

#[cfg(test)]
mod tests;
