//! Claim rounds against a real SQLite store and real receivers on loopback: how a
//! round feeds the claim share, when it marks the engine idle, and the lease it takes.

use std::time::Duration;

use hookrelay_core::Timestamp;
use hookrelay_store::ClaimRequest;

use super::{lease_until, Dispatcher, Round};
use crate::delivery::heartbeat::tests::fence_beaten;
use crate::delivery::status::EngineStatus;
use crate::delivery::testing::{config, open_fence, Receiver, TestStore};
use crate::delivery::worker::lease_outlasts_attempt;
use crate::delivery::Fence;
use crate::delivery::{DeliveryConfig, Wakeup};

const CEILING: u32 = 200;
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn dispatcher(test: &TestStore, config: DeliveryConfig) -> (Dispatcher, EngineStatus) {
    fenced_by(test, config, open_fence())
}

fn fenced_by(test: &TestStore, config: DeliveryConfig, fence: Fence) -> (Dispatcher, EngineStatus) {
    let status = EngineStatus::new(Wakeup::default());
    let dispatcher = Dispatcher::new(test.store.clone(), config, status.clone(), Wakeup::default(), fence);
    (dispatcher, status)
}

fn wide_config() -> DeliveryConfig {
    DeliveryConfig {
        max_in_flight_per_webhook: CEILING,
        ..config()
    }
}

/// The share of one webhook in a claim of 256, as the rounds so far left it.
fn share(dispatcher: &Dispatcher) -> u32 {
    dispatcher.share.per_webhook(256, CEILING)
}

/// Waits until every attempt started has finished and been recorded.
async fn settle(status: &EngineStatus) {
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let now = status.snapshot();
            if (now.attempts_in_flight, now.queued, now.unrecorded) == (0, 0, 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "still busy: {:?}", status.snapshot());
}

#[tokio::test]
async fn a_round_that_claims_less_than_it_asked_shares_the_next_among_the_webhooks_it_found() {
    let test = TestStore::open().await;
    let receiver = Receiver::holding().await;
    for _ in 0..3 {
        test.webhook(&receiver.url, "payment.completed").await;
    }
    assert_eq!(test.publish("payment.completed", 2).await, 6);
    let (dispatcher, status) = dispatcher(&test, wide_config());
    assert_eq!(share(&dispatcher), CEILING, "no claim yet: the ceiling");

    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: true });
    assert_eq!(
        share(&dispatcher),
        256 / 3,
        "a claim of 256 among the three webhooks it found"
    );
    receiver.wait_for(6).await;
    assert_eq!(status.snapshot().attempts_in_flight, 6);

    // Everything due is leased: the round finds nothing, and says nothing of webhooks.
    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: false });
    assert_eq!(share(&dispatcher), 256 / 3);
    assert!(!status.snapshot().idle, "found nothing, but attempts are in flight");

    receiver.let_go();
    settle(&status).await;
    assert!(
        !status.snapshot().idle,
        "the records woke the engine after its last round"
    );
    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: false });
    assert!(
        status.snapshot().idle,
        "an empty round after the last wake-up, nothing held"
    );
    status.wakeup().wake();
    assert!(!status.snapshot().idle, "a wake-up makes it busy until the next round");
    dispatcher.drain().await;
}

#[tokio::test]
async fn a_full_round_raises_the_count_of_webhooks_with_work_and_never_lowers_it() {
    let test = TestStore::open().await;
    let receiver = Receiver::start().await;
    let (dispatcher, status) = dispatcher(
        &test,
        DeliveryConfig {
            max_in_flight: 4,
            ..wide_config()
        },
    );
    for _ in 0..3 {
        test.webhook(&receiver.url, "payment.completed").await;
    }
    test.publish("payment.completed", 1).await;
    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: true });
    assert_eq!(share(&dispatcher), 256 / 3);
    settle(&status).await;

    // Four deliveries of one webhook fill a claim of four: at least one has work.
    test.webhook(&receiver.url, "payment.failed").await;
    test.publish("payment.failed", 4).await;
    assert_eq!(dispatcher.claim_round().await, Round::Full);
    assert_eq!(share(&dispatcher), 256 / 3, "a full claim never lowers the count");
    settle(&status).await;

    // Six webhooks with work, a claim of four: full, and four is more than three.
    for _ in 0..6 {
        test.webhook(&receiver.url, "payout.completed").await;
    }
    test.publish("payout.completed", 1).await;
    assert_eq!(dispatcher.claim_round().await, Round::Full);
    assert_eq!(share(&dispatcher), 256 / 4, "a full claim raises the count");
    settle(&status).await;

    // The last two: a claim that found less than it asked for sets the count.
    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: true });
    assert_eq!(share(&dispatcher), (256 / 2).min(CEILING));
    settle(&status).await;
    assert_eq!(receiver.received(), 3 + 4 + 6);
    dispatcher.drain().await;
}

#[tokio::test]
async fn a_round_with_every_permit_taken_claims_nothing() {
    let test = TestStore::open().await;
    let receiver = Receiver::holding().await;
    let (dispatcher, status) = dispatcher(
        &test,
        DeliveryConfig {
            max_in_flight: 2,
            ..config()
        },
    );
    test.webhook(&receiver.url, "payment.completed").await;
    test.publish("payment.completed", 3).await;
    assert_eq!(dispatcher.claim_round().await, Round::Full);
    assert_eq!(dispatcher.claim_round().await, Round::NoCapacity);
    receiver.let_go();
    settle(&status).await;
    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: true });
    settle(&status).await;
    assert_eq!(receiver.received(), 3);
    dispatcher.drain().await;
}

#[test]
fn a_lease_under_a_huge_attempt_timeout_ends_at_the_end_of_time() {
    let now = Timestamp::now();
    for attempt_timeout in [Duration::from_millis(u64::MAX), 100_000 * YEAR] {
        let config = DeliveryConfig {
            attempt_timeout,
            ..config()
        };
        let lease = lease_until(now, &config);
        assert_eq!(lease, Timestamp::from_micros(i64::MAX), "{attempt_timeout:?}");
        assert!(lease_outlasts_attempt(lease, &config, now), "{attempt_timeout:?}");
    }
    let lease = lease_until(now, &config());
    let micros = i64::try_from(config().lease().as_micros()).expect("a short lease");
    assert_eq!(
        lease,
        now.plus_micros(micros),
        "a lease of ordinary length is what it says"
    );
}

#[tokio::test]
async fn a_delivery_claimed_under_a_huge_attempt_timeout_stays_leased() {
    let test = TestStore::open().await;
    let receiver = Receiver::holding().await;
    test.webhook(&receiver.url, "payment.completed").await;
    test.publish("payment.completed", 1).await;
    let config = DeliveryConfig {
        attempt_timeout: 100_000 * YEAR,
        ..config()
    };
    let (dispatcher, status) = dispatcher(&test, config);
    assert_eq!(dispatcher.claim_round().await, Round::Partial { claimed: true });
    receiver.wait_for(1).await;
    let now = Timestamp::now();
    let another_node = ClaimRequest {
        now,
        lease_until: now.plus_micros(60_000_000),
        owner: "another-node".into(),
        limit: 10,
        per_webhook: 10,
        skip_webhooks: Vec::new(),
    };
    let taken = test.store.claim_deliveries(&another_node).await.expect("claim");
    assert!(taken.is_empty(), "the lease ran out at once: it ended in the past");
    receiver.let_go();
    settle(&status).await;
    assert_eq!(receiver.received(), 1);
    dispatcher.drain().await;
}

/// A node whose heartbeat is too old claims nothing: others may be taking its work over.
#[tokio::test]
async fn a_fenced_dispatcher_claims_nothing() {
    let test = TestStore::open().await;
    let receiver = Receiver::start().await;
    test.webhook(&receiver.url, "payment.completed").await;
    test.publish("payment.completed", 3).await;
    let (dispatcher, _status) = fenced_by(&test, config(), fence_beaten(Duration::from_secs(4)));
    assert_eq!(dispatcher.claim_round().await, Round::Fenced);
    let now = Timestamp::now();
    let another_node = ClaimRequest {
        now,
        lease_until: now.plus_micros(60_000_000),
        owner: "another-node".into(),
        limit: 10,
        per_webhook: 10,
        skip_webhooks: Vec::new(),
    };
    let taken = test.store.claim_deliveries(&another_node).await.expect("claim");
    assert_eq!(taken.len(), 3, "nothing was claimed by the fenced node");
    assert_eq!(receiver.received(), 0);
    dispatcher.drain().await;
}
