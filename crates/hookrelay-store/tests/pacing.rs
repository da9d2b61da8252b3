//! Pacing claims by `maxDeliveriesPerSecond` on both backends (a fresh PostgreSQL
//! database per test): a claim takes at most the tokens the webhook's bucket holds and
//! gives the rest back, claims pass the webhook over until its next token, the next due
//! time waits for that token, and concurrent claimers draw on one bucket.

mod common;

use common::{both, with_databases};

use std::collections::BTreeMap;

use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::webhook_settings::SettingsPatch;
use hookrelay_core::{ApiRelease, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
use hookrelay_store::{ClaimRequest, ClaimedDelivery, Store};
use serde_json::json;
use serde_json::value::RawValue;

/// A fixed "now", so due times are exact.
const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;

fn webhook(space: &SpaceId, event: &str) -> Webhook {
    Webhook {
        id: WebhookId::generate(),
        space_id: space.clone(),
        name: event.into(),
        url: "https://receiver.example.com/hook".into(),
        enabled: true,
        events: vec![event.into()],
        api_release: ApiRelease::Caph,
        verification: VerificationMethod::Hs256 {
            secret: "whsec_0123456789abcdef0123456789abcdef".into(),
        },
        headers: BTreeMap::new(),
        alert_emails: Vec::new(),
        metadata: serde_json::Map::new(),
        create_time: Timestamp::from_micros(T0),
        update_time: Timestamp::from_micros(T0),
        settings: Default::default(),
        key_id: hookrelay_core::KeyId::generate(),
        previous_key: None,
    }
}

fn event(space: &SpaceId, name: &str) -> Event {
    Event {
        id: EventId::generate(),
        space_id: space.clone(),
        name: name.into(),
        object: EventObject {
            id: "pmt-1".into(),
            object_type: "payment".into(),
        },
        data: RawValue::from_string("{}".into()).unwrap(),
        create_time: Timestamp::from_micros(T0),
        trace_parent: None,
    }
}

fn claim(now: i64, owner: &str) -> ClaimRequest {
    ClaimRequest {
        now: Timestamp::from_micros(now),
        lease_until: Timestamp::from_micros(now + 60 * SECOND),
        owner: owner.into(),
        limit: 100,
        per_webhook: 100,
        skip_webhooks: Vec::new(),
    }
}

fn of<'a>(claimed: &'a [ClaimedDelivery], webhook: &Webhook) -> Vec<&'a ClaimedDelivery> {
    claimed.iter().filter(|d| d.webhook.id == webhook.id).collect()
}

/// A space with a webhook paced at `rate` a second and one without a limit, and
/// `paced` and `free` deliveries due for each at T0.
async fn setup(store: &dyn Store, rate: u32, paced: usize, free: usize) -> (Webhook, Webhook) {
    let space = SpaceId::generate();
    store.ensure_space(&space).await.unwrap();
    let (limited, unlimited) = (
        webhook(&space, "payment.completed"),
        webhook(&space, "payout.completed"),
    );
    for w in [&limited, &unlimited] {
        store.create_webhook(w, None).await.unwrap();
    }
    let patch = SettingsPatch::parse(&json!({"maxDeliveriesPerSecond": rate})).unwrap();
    store
        .update_webhook_settings(&space, &limited.id, &patch)
        .await
        .unwrap()
        .expect("the webhook exists");
    for (name, n) in [("payment.completed", paced), ("payout.completed", free)] {
        for _ in 0..n {
            store.publish_event(&event(&space, name), None).await.unwrap();
        }
    }
    (limited, unlimited)
}

#[tokio::test]
async fn a_claim_takes_the_tokens_there_are_and_the_next_waits_for_the_next_token() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let (limited, unlimited) = setup(store.as_ref(), 4, 10, 5).await;
            let first = store.claim_deliveries(&claim(T0, "node-a")).await.unwrap();
            assert_eq!(of(&first, &limited).len(), 4, "{backend}: one second's worth");
            assert_eq!(
                of(&first, &unlimited).len(),
                5,
                "{backend}: the other webhook, all of it"
            );
            // The rest were given back, and the webhook is passed over until its next
            // token, 250 ms on.
            assert!(
                store.claim_deliveries(&claim(T0, "node-a")).await.unwrap().is_empty(),
                "{backend}"
            );
            let due = store.next_due_time(Timestamp::from_micros(T0), &[]).await.unwrap();
            assert_eq!(due, Some(Timestamp::from_micros(T0 + SECOND / 4)), "{backend}");
            let early = store
                .claim_deliveries(&claim(T0 + SECOND / 4 - 1, "node-a"))
                .await
                .unwrap();
            assert!(early.is_empty(), "{backend}: {} before the token", early.len());
            let next = store.claim_deliveries(&claim(T0 + SECOND / 4, "node-a")).await.unwrap();
            assert_eq!(next.len(), 1, "{backend}: one token");
            // Long after: a full bucket again, never more than one second's worth.
            let later = store
                .claim_deliveries(&claim(T0 + 60 * SECOND, "node-a"))
                .await
                .unwrap();
            assert_eq!(later.len(), 4, "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_draw_on_one_bucket() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 8).await {
            let (limited, _) = setup(store.as_ref(), 5, 40, 0).await;
            let claims: Vec<_> = (0..4)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move { store.claim_deliveries(&claim(T0, &format!("node-{i}"))).await })
                })
                .collect();
            let mut taken = 0;
            for claim in claims {
                taken += of(&claim.await.unwrap().unwrap(), &limited).len();
            }
            assert_eq!(taken, 5, "{backend}: four claimers at once share one second's worth");
            let after = store.claim_deliveries(&claim(T0 + SECOND, "node-9")).await.unwrap();
            assert_eq!(after.len(), 5, "{backend}: what they gave back is claimable");
        }
    })
    .await;
}

#[tokio::test]
async fn a_limited_webhooks_backlog_does_not_crowd_the_others_out_of_a_claim() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            // The limited webhook's deliveries come first, and fill the claim.
            let (limited, unlimited) = setup(store.as_ref(), 2, 20, 3).await;
            let request = ClaimRequest {
                limit: 10,
                per_webhook: 10,
                ..claim(T0, "node-a")
            };
            let claimed = store.claim_deliveries(&request).await.unwrap();
            assert_eq!(of(&claimed, &limited).len(), 2, "{backend}: its tokens");
            assert_eq!(of(&claimed, &unlimited).len(), 3, "{backend}: the room they left");
        }
    })
    .await;
}
