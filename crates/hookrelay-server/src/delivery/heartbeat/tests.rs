//! The fence, and the heartbeat task against a real SQLite store: when attempts may
//! start, and what a heartbeat written again does with deliveries dropped meanwhile.

use std::time::{Duration, Instant};

use hookrelay_core::node::Liveness;
use hookrelay_core::Timestamp;
use hookrelay_store::{ClaimRequest, NodeBeat};

use super::{Fence, Heartbeat};
use crate::delivery::testing::{Receiver, TestStore};
use crate::delivery::Wakeup;

/// A fence whose last heartbeat began `ago`.
pub(crate) fn fence_beaten(ago: Duration) -> Fence {
    let fence = Fence::new(Liveness::default());
    let _ = fence.beat_began(Instant::now() - ago);
    fence
}

fn node(id: &str) -> NodeBeat {
    NodeBeat {
        id: id.into(),
        host: "test-host".into(),
        pid: std::process::id(),
        started: Timestamp::now(),
        timeout: Liveness::default().node_timeout,
    }
}

fn claim_request(owner: &str) -> ClaimRequest {
    let now = Timestamp::now();
    ClaimRequest {
        now,
        lease_until: now.plus_micros(60_000_000),
        owner: owner.into(),
        limit: 10,
        per_webhook: 10,
        skip_webhooks: Vec::new(),
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_fence_opens_with_a_heartbeat_and_closes_as_it_ages() {
    let fence = Fence::new(Liveness::default());
    assert!(!fence.may_start(), "no heartbeat yet");
    let fresh = Instant::now();
    let _ = fence.beat_began(fresh);
    assert!(fence.may_start());
    let _ = fence.beat_began(fresh - Duration::from_secs(60));
    assert!(fence.may_start(), "an older heartbeat does not move it back");
    assert!(fence_beaten(Duration::from_millis(3900)).may_start());
    assert!(
        !fence_beaten(Duration::from_secs(4)).may_start(),
        "a fifth of the 5 s timeout early"
    );
}

#[test]
fn a_fence_where_no_node_takes_over_never_closes_once_open() {
    let fence = Fence::never_closing(Liveness::default());
    assert!(!fence.may_start(), "no heartbeat yet");
    let _ = fence.beat_began(Instant::now() - Duration::from_secs(7 * 24 * 3600));
    assert!(fence.may_start());
}

#[tokio::test]
async fn the_heartbeat_registers_the_node_opens_the_fence_and_wakes_the_engine() {
    let test = TestStore::open().await;
    let (fence, wakeup) = (Fence::new(Liveness::default()), Wakeup::default());
    let heartbeat = Heartbeat::start(test.store.clone(), node("node-1"), fence.clone(), wakeup.clone());
    eventually("the fence opens", || fence.may_start()).await;
    assert!(wakeup.generation() > 0, "the engine is woken to claim");
    let nodes = test.store.nodes().await.expect("nodes");
    assert_eq!(nodes.len(), 1);
    let expected = NodeBeat {
        started: nodes[0].node.started,
        ..node("node-1")
    };
    assert_eq!(nodes[0].node, expected);
    heartbeat.stop().await;
}

/// Deliveries dropped while fenced stay leased (another node may be taking them over);
/// once a heartbeat is written again they are given back under their own lease.
#[tokio::test]
async fn a_heartbeat_written_again_gives_back_what_was_dropped_while_fenced() {
    let test = TestStore::open().await;
    let receiver = Receiver::start().await;
    test.webhook(&receiver.url, "payment.completed").await;
    test.publish("payment.completed", 2).await;
    let claimed = test
        .store
        .claim_deliveries(&claim_request("node-1"))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    let fence = fence_beaten(Duration::from_secs(10));
    for delivery in &claimed {
        assert!(!fence.may_start_or_drop(&delivery.delivery_id, delivery.lease.until));
    }
    assert!(test
        .store
        .claim_deliveries(&claim_request("node-2"))
        .await
        .expect("claim")
        .is_empty());
    let wakeup = Wakeup::default();
    let heartbeat = Heartbeat::start(test.store.clone(), node("node-1"), fence.clone(), wakeup.clone());
    eventually("the fence opens", || fence.may_start()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        let again = test
            .store
            .claim_deliveries(&claim_request("node-2"))
            .await
            .expect("claim");
        if !again.is_empty() || Instant::now() > deadline {
            break again;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(again.len(), 2, "both were given back");
    assert!(fence.beat_began(Instant::now()).is_empty(), "given back once");
    assert_eq!(receiver.received(), 0);
    heartbeat.stop().await;
}
