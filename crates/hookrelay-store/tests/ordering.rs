//! Ordered delivery per object on both backends: claims made at once by several nodes
//! (PostgreSQL: each with its own pool) lease at most one delivery of an object, always
//! its earliest unfinished one, while an unordered webhook's deliveries all go at once;
//! a retry holds the object back, giving up lets the next one go.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{both, with_databases};
use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::{DeliveryAttempt, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::webhook_settings::SettingsPatch;
use hookrelay_core::{ApiRelease, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
use hookrelay_store::{AttemptResult, ClaimRequest, ClaimedDelivery, PostgresStore, SqliteStore, Store};
use serde_json::json;
use serde_json::value::RawValue;

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;
const OBJECTS: usize = 6;
const PER_OBJECT: usize = 4;

fn webhook(space: &SpaceId, name: &str) -> Webhook {
    let id = WebhookId::generate();
    Webhook {
        space_id: space.clone(),
        name: name.into(),
        url: "https://receiver.example.com/hook".into(),
        enabled: true,
        events: vec!["payment.completed".into()],
        api_release: ApiRelease::Caph,
        verification: VerificationMethod::Hs256 {
            secret: format!("whsec_{}", &id.as_str()[4..]),
        },
        headers: Default::default(),
        alert_emails: Vec::new(),
        metadata: Default::default(),
        create_time: Timestamp::from_micros(T0),
        update_time: Timestamp::from_micros(T0),
        settings: Default::default(),
        key_id: hookrelay_core::KeyId::generate(),
        previous_key: None,
        id,
    }
}

fn event(space: &SpaceId, object: usize, at: i64) -> Event {
    Event {
        id: EventId::generate(),
        space_id: space.clone(),
        name: "payment.completed".into(),
        object: EventObject {
            id: format!("pmt-{object}"),
            object_type: "payment".into(),
        },
        data: RawValue::from_string("{}".into()).unwrap(),
        create_time: Timestamp::from_micros(at),
        trace_parent: None,
    }
}

fn claim(now: i64, owner: &str) -> ClaimRequest {
    ClaimRequest {
        now: Timestamp::from_micros(now),
        lease_until: Timestamp::from_micros(now + 60 * SECOND),
        owner: owner.into(),
        limit: 64,
        per_webhook: 64,
        skip_webhooks: Vec::new(),
    }
}

fn outcome(claimed: &ClaimedDelivery, next: NextStep, now: i64) -> AttemptResult {
    let status = if next == NextStep::Succeeded { 200 } else { 500 };
    AttemptResult {
        delivery_id: claimed.delivery_id.clone(),
        webhook_id: claimed.webhook.id.clone(),
        attempt: DeliveryAttempt {
            attempt: claimed.attempt,
            start_time: Timestamp::from_micros(now - 1_000),
            duration_ms: 1,
            status_code: Some(status),
            error_kind: (status != 200).then_some(hookrelay_core::delivery::ErrorKind::HttpStatus),
            response_body: None,
        },
        next,
        finish_time: Timestamp::from_micros(now),
        claimed_update_time: claimed.update_time,
        lease: claimed.lease.clone(),
    }
}

const POLICY: AlertPolicy = AlertPolicy {
    failing_after_attempts: 1_000,
    quiet_period: std::time::Duration::from_secs(3600),
    disable_after: std::time::Duration::from_secs(365 * 24 * 3600),
};

/// Four claimers at once (four stores on PostgreSQL, one shared on SQLite).
async fn claim_at_once(nodes: &[Arc<dyn Store>], now: i64) -> Vec<ClaimedDelivery> {
    let claims = nodes.iter().enumerate().map(|(i, node)| {
        let node = node.clone();
        tokio::spawn(async move { node.claim_deliveries(&claim(now, &format!("node-{i}"))).await.unwrap() })
    });
    let mut all = Vec::new();
    for claimed in claims {
        all.extend(claimed.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_lease_one_delivery_per_object_in_publish_order() {
    with_databases(|url, dir| async move {
        let cipher = SecretCipher::new(&MasterKey::generate());
        let sqlite: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("hr.db"), cipher.clone())
                .await
                .unwrap(),
        );
        let postgres: Arc<dyn Store> = Arc::new(PostgresStore::open(&url, cipher.clone(), 4).await.unwrap());
        for (backend, store) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            let (ordered, unordered) = (webhook(&space, "ordered"), webhook(&space, "unordered"));
            for hook in [&ordered, &unordered] {
                store.create_webhook(hook, None).await.unwrap();
            }
            let patch = SettingsPatch::parse(&json!({"ordering": "object"})).unwrap();
            store
                .update_webhook_settings(&space, &ordered.id, &patch)
                .await
                .unwrap();
            // Published round-robin over the objects: event i is object i % OBJECTS.
            let mut published: HashMap<String, Vec<EventId>> = HashMap::new();
            for i in 0..OBJECTS * PER_OBJECT {
                let event = event(&space, i % OBJECTS, T0 + i as i64);
                store.publish_event(&event, None).await.unwrap();
                published.entry(event.object.id.clone()).or_default().push(event.id);
            }
            let nodes: Vec<Arc<dyn Store>> = match backend {
                "PostgreSQL" => {
                    let mut nodes = Vec::new();
                    for _ in 0..4 {
                        nodes.push(
                            Arc::new(PostgresStore::open(&url, cipher.clone(), 2).await.unwrap()) as Arc<dyn Store>
                        );
                    }
                    nodes
                }
                _ => vec![store.clone(); 4],
            };
            let mut sent: HashMap<String, Vec<EventId>> = HashMap::new();
            let mut now = T0 + 100 * SECOND;
            for round in 0.. {
                assert!(round < 3 * PER_OBJECT, "{backend}: claims stalled: {sent:?}");
                let claimed = claim_at_once(&nodes, now).await;
                let (of_ordered, of_unordered): (Vec<_>, Vec<_>) =
                    claimed.iter().partition(|c| c.webhook.id == ordered.id);
                if round == 0 {
                    assert_eq!(
                        of_unordered.len(),
                        OBJECTS * PER_OBJECT,
                        "{backend}: unordered all at once"
                    );
                }
                let objects: HashSet<&str> = of_ordered.iter().map(|c| c.event.object.id.as_str()).collect();
                assert_eq!(
                    objects.len(),
                    of_ordered.len(),
                    "{backend}: two of one object leased at once"
                );
                if of_ordered.is_empty() {
                    break;
                }
                let mut results = Vec::new();
                for delivery in &of_ordered {
                    let object = delivery.event.object.id.clone();
                    let before = sent.get(&object).map_or(0, Vec::len);
                    assert_eq!(delivery.event.id, published[&object][before], "{backend}: out of order");
                    // Object 0's second event fails once (a retry holds the object
                    // back); object 1's first is given up (the next one goes).
                    let next = match (object.as_str(), before, delivery.attempt) {
                        ("pmt-0", 1, 1) => NextStep::RetryAt(Timestamp::from_micros(now + SECOND)),
                        ("pmt-1", 0, _) => NextStep::Failed { disable_webhook: false },
                        _ => NextStep::Succeeded,
                    };
                    if !matches!(next, NextStep::RetryAt(_)) {
                        sent.entry(object).or_default().push(delivery.event.id.clone());
                    }
                    results.push(outcome(delivery, next, now));
                }
                results.extend(of_unordered.iter().map(|c| outcome(c, NextStep::Succeeded, now)));
                store.record_attempts(&results, &POLICY).await.unwrap();
                now += 2 * SECOND;
            }
            assert_eq!(sent, published, "{backend}: every event went, in publish order");
        }
    })
    .await;
}

#[tokio::test]
async fn a_retried_delivery_takes_its_webhooks_ordering_as_it_is_now() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            let hook = webhook(&space, "turned-ordered");
            store.create_webhook(&hook, None).await.unwrap();
            // Failed for good while the webhook did not order: it has no ordering key.
            let first = event(&space, 0, T0);
            store.publish_event(&first, None).await.unwrap();
            let now = T0 + 100 * SECOND;
            let claimed = store.claim_deliveries(&claim(now, "node")).await.unwrap();
            assert_eq!(claimed.len(), 1, "{backend}");
            let failed = NextStep::Failed { disable_webhook: false };
            store
                .record_attempts(&[outcome(&claimed[0], failed, now)], &POLICY)
                .await
                .unwrap();
            let patch = SettingsPatch::parse(&json!({"ordering": "object"})).unwrap();
            store.update_webhook_settings(&space, &hook.id, &patch).await.unwrap();
            let second = event(&space, 0, T0 + 1);
            store.publish_event(&second, None).await.unwrap();
            // Retried now, the older delivery takes its publish-order place: the newer
            // one of its object waits for it.
            let retried = store
                .retry_delivery(
                    &space,
                    &hook.id,
                    &claimed[0].delivery_id,
                    Timestamp::from_micros(now + SECOND),
                )
                .await
                .unwrap();
            assert!(retried.is_some(), "{backend}");
            let now = now + 2 * SECOND;
            let claimed = store.claim_deliveries(&claim(now, "node")).await.unwrap();
            let events: Vec<&EventId> = claimed.iter().map(|c| &c.event.id).collect();
            assert_eq!(events, vec![&first.id], "{backend}: the retried one alone");
            store
                .record_attempts(&[outcome(&claimed[0], NextStep::Succeeded, now)], &POLICY)
                .await
                .unwrap();
            let claimed = store.claim_deliveries(&claim(now + SECOND, "node")).await.unwrap();
            let events: Vec<&EventId> = claimed.iter().map(|c| &c.event.id).collect();
            assert_eq!(events, vec![&second.id], "{backend}: then the next");
        }
    })
    .await;
}

#[tokio::test]
async fn a_webhook_whose_due_deliveries_all_wait_does_not_take_a_claims_only_place() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            let ordered = webhook(&space, "ordered");
            store.create_webhook(&ordered, None).await.unwrap();
            let patch = SettingsPatch::parse(&json!({"ordering": "object"})).unwrap();
            store
                .update_webhook_settings(&space, &ordered.id, &patch)
                .await
                .unwrap();
            for at in [T0, T0 + 1] {
                store.publish_event(&event(&space, 0, at), None).await.unwrap();
            }
            // The object's first is retried in an hour: its second is due but waits.
            let now = T0 + 100 * SECOND;
            let one = |now: i64| ClaimRequest {
                limit: 1,
                ..claim(now, "node")
            };
            let first = store.claim_deliveries(&one(now)).await.unwrap();
            let later = NextStep::RetryAt(Timestamp::from_micros(now + 3600 * SECOND));
            store
                .record_attempts(&[outcome(&first[0], later, now)], &POLICY)
                .await
                .unwrap();
            // Another webhook's delivery (of an event the ordered one does not take),
            // due after the waiting one.
            let mut other = webhook(&space, "other");
            other.events = vec!["payment.failed".into()];
            store.create_webhook(&other, None).await.unwrap();
            let mut fresh = event(&space, 1, T0 + 2);
            fresh.name = "payment.failed".into();
            store.publish_event(&fresh, None).await.unwrap();
            let claimed = store.claim_deliveries(&one(now + SECOND)).await.unwrap();
            let events: Vec<&EventId> = claimed.iter().map(|c| &c.event.id).collect();
            assert_eq!(
                events,
                vec![&fresh.id],
                "{backend}: the claim's one place goes to work that may go"
            );
        }
    })
    .await;
}
