//! A worker's choice right before it sends a queued delivery, against a real SQLite
//! store and a real receiver on loopback.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::delivery::DeliveryStatus;
use hookrelay_core::{Timestamp, WebhookId};
use hookrelay_store::ClaimRequest;
use tokio::sync::mpsc;

use super::{lease_outlasts_attempt, work};
use crate::delivery::attempt::Body;
use crate::delivery::heartbeat::tests::fence_beaten;
use crate::delivery::recorder::{Recorder, RECORD_BATCH};
use crate::delivery::slots::{Claimed, Shared};
use crate::delivery::status::EngineStatus;
use crate::delivery::testing::{config, open_fence, Receiver, TestStore};
use crate::delivery::Fence;
use crate::delivery::{saturating_micros, Wakeup};

const SECOND: i64 = 1_000_000;

#[test]
fn a_lease_outlasts_an_attempt_with_the_attempt_and_connect_timeouts_left() {
    let config = config();
    let now = Timestamp::from_micros(1_000 * SECOND);
    let needed = saturating_micros(config.attempt_timeout + config.connect_timeout);
    assert!(lease_outlasts_attempt(now.plus_micros(needed), &config, now));
    assert!(!lease_outlasts_attempt(now.plus_micros(needed - 1), &config, now));
    assert!(
        !lease_outlasts_attempt(now.plus_micros(-SECOND), &config, now),
        "a lease that ran out"
    );
}

#[test]
fn a_lease_at_the_end_of_time_outlasts_any_attempt() {
    let mut config = config();
    config.attempt_timeout = Duration::from_millis(u64::MAX);
    let now = Timestamp::now();
    assert!(lease_outlasts_attempt(Timestamp::from_micros(i64::MAX), &config, now));
}

/// A store with one webhook to a receiver and one delivery, the engine's shared state
/// over it with a real recorder, and that delivery claimed under a lease ending at
/// `lease_until`, queued behind a worker that is about to take it.
async fn queued_delivery(lease_until: Timestamp) -> (TestStore, Receiver, Arc<Shared>, WebhookId) {
    queued_delivery_behind(lease_until, open_fence()).await
}

/// [`queued_delivery`], with the engine's heartbeat as `fence` says.
async fn queued_delivery_behind(lease_until: Timestamp, fence: Fence) -> (TestStore, Receiver, Arc<Shared>, WebhookId) {
    let test = TestStore::open().await;
    let receiver = Receiver::start().await;
    let webhook = test.webhook(&receiver.url, "payment.completed").await;
    assert_eq!(test.publish("payment.completed", 1).await, 1);
    let status = EngineStatus::new(Wakeup::default());
    let (recorder, results) = mpsc::channel(RECORD_BATCH);
    tokio::spawn(
        Recorder {
            store: test.store.clone(),
            policy: config().alert_policy,
            status: status.clone(),
            alerts: Wakeup::default(),
        }
        .run(results),
    );
    let shared = Arc::new(Shared::new(test.store.clone(), config(), status, recorder, fence));
    let claimed = claim(&test, &shared.owner, lease_until).await;
    assert_eq!(claimed.len(), 1);
    let (delivery, permit) = {
        let mut webhooks = shared.slots();
        let slots = shared.slots_of(&mut webhooks, &webhook);
        let permit = || shared.permits.clone().try_acquire_owned().ok();
        let started = slots.admit(claimed.into_iter().next().expect("one"), permit);
        started.expect("a free slot")
    };
    work(shared.clone(), delivery, permit, true).await;
    (test, receiver, shared, webhook)
}

async fn claim(test: &TestStore, owner: &str, lease_until: Timestamp) -> Vec<Claimed> {
    let request = ClaimRequest {
        now: Timestamp::now(),
        lease_until,
        owner: owner.to_owned(),
        limit: 10,
        per_webhook: 10,
        skip_webhooks: Vec::new(),
    };
    let webhook_epoch = test.store.webhook_epoch();
    let claimed = test.store.claim_deliveries(&request).await.expect("claim");
    claimed
        .into_iter()
        .map(|delivery| Claimed {
            body: Body::new(delivery.webhook.api_release, &delivery.event),
            delivery,
            webhook_epoch,
            lease_until,
        })
        .collect()
}

#[tokio::test]
async fn a_queued_delivery_whose_lease_could_run_out_during_its_attempt_is_given_back_unsent() {
    // Three seconds left; an attempt may take five, and connecting one.
    let lease_until = Timestamp::now().plus_micros(3 * SECOND);
    let (test, receiver, shared, webhook) = queued_delivery(lease_until).await;
    assert_eq!(receiver.received(), 0, "the worker finished without sending");
    let deliveries = test
        .store
        .list_deliveries(&test.space, &webhook, None, None, 10)
        .await
        .expect("list");
    assert_eq!(deliveries.items[0].status, DeliveryStatus::Pending);
    assert_eq!(deliveries.items[0].attempt_count, 0, "no attempt recorded");
    // Given back: another claim takes it now, not three seconds from now.
    let again = claim(&test, "another-node", Timestamp::now().plus_micros(60 * SECOND)).await;
    assert_eq!(again.len(), 1, "the delivery was given back");
    assert!(shared.slots().is_empty(), "the worker left its slot");
    let status = shared.status.snapshot();
    assert_eq!((status.attempts_in_flight, status.queued, status.unrecorded), (0, 0, 0));
}

#[tokio::test]
async fn a_queued_delivery_with_its_attempt_s_time_left_is_sent_and_recorded() {
    let lease_until = Timestamp::now().plus_micros(saturating_micros(config().lease()));
    let (test, receiver, shared, webhook) = queued_delivery(lease_until).await;
    assert_eq!(receiver.received(), 1);
    let deliveries = test
        .store
        .list_deliveries(&test.space, &webhook, None, None, 10)
        .await
        .expect("list");
    assert_eq!(deliveries.items[0].status, DeliveryStatus::Succeeded);
    assert_eq!(deliveries.items[0].attempt_count, 1, "recorded before the worker left");
    assert!(shared.slots().is_empty(), "the worker left its slot");
    let status = shared.status.snapshot();
    assert_eq!((status.attempts_in_flight, status.queued, status.unrecorded), (0, 0, 0));
}

/// A worker whose node's heartbeat is too old sends nothing, and gives nothing back:
/// another node may be taking the delivery over; the heartbeat gives it back later.
#[tokio::test]
async fn a_fenced_worker_drops_its_delivery_unsent_and_still_leased() {
    let lease_until = Timestamp::now().plus_micros(saturating_micros(config().lease()));
    let fence = fence_beaten(Duration::from_secs(4));
    let (test, receiver, shared, webhook) = queued_delivery_behind(lease_until, fence.clone()).await;
    assert_eq!(receiver.received(), 0, "nothing was sent");
    let deliveries = test
        .store
        .list_deliveries(&test.space, &webhook, None, None, 10)
        .await
        .expect("list");
    assert_eq!(deliveries.items[0].status, DeliveryStatus::Pending);
    assert_eq!(deliveries.items[0].attempt_count, 0);
    let again = claim(&test, "another-node", Timestamp::now().plus_micros(60 * SECOND)).await;
    assert!(again.is_empty(), "still leased: not given back by the worker");
    let dropped = fence.beat_began(std::time::Instant::now());
    assert_eq!(dropped.len(), 1, "noted for the heartbeat to give back");
    assert_eq!(dropped[0].0, deliveries.items[0].id);
    assert!(shared.slots().is_empty(), "the worker left its slot");
}
