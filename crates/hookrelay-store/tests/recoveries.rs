//! Recoveries on both backends alike: batches walk a webhook's deliveries by position,
//! retry those the window matches, and save the cursor and counts with them; the lease
//! keeps a recovery to one owner. The PostgreSQL server is as in `tests/postgres.rs`.

mod common;

use std::collections::BTreeMap;

use common::{both, with_databases};
use hookrelay_core::delivery::{DeliveryAttempt, DeliveryStatus, ErrorKind, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::recovery::{Recovery, RecoveryCounts, RecoveryDraft, RecoveryStatus, RECOVERABLE};
use hookrelay_core::{ApiRelease, EventId, RecoveryId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
use hookrelay_store::traits::*;
use hookrelay_store::{AttemptResult, ClaimRequest, RecoveryProgress};
use serde_json::value::RawValue;

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn webhook(space: &SpaceId) -> Webhook {
    let id = WebhookId::generate();
    Webhook {
        space_id: space.clone(),
        name: "recovered".into(),
        url: "https://receiver.example.com/hooks".into(),
        enabled: true,
        events: vec!["payment.completed".into()],
        api_release: ApiRelease::Caph,
        verification: VerificationMethod::Hs256 {
            secret: format!("whsec_{}", &id.as_str()[4..]),
        },
        headers: BTreeMap::new(),
        alert_emails: Vec::new(),
        metadata: serde_json::Map::new(),
        create_time: at(T0),
        update_time: at(T0),
        settings: Default::default(),
        key_id: hookrelay_core::KeyId::generate(),
        previous_key: None,
        id,
    }
}

fn event(space: &SpaceId, n: i64) -> Event {
    Event {
        id: EventId::generate(),
        space_id: space.clone(),
        name: "payment.completed".into(),
        object: EventObject {
            id: format!("pmt-{n}"),
            object_type: "payment".into(),
        },
        data: RawValue::from_string(format!(r#"{{"n": {n}}}"#)).unwrap(),
        create_time: at(T0 + n),
        trace_parent: None,
    }
}

/// Publishes `count` events and fails each delivery for good, the `n`th at `T0 + n s`.
async fn failed_deliveries(store: &dyn Store, space: &SpaceId, count: i64) {
    for n in 0..count {
        store.publish_event(&event(space, n), None).await.unwrap();
        let now = T0 + n * SECOND;
        let request = ClaimRequest {
            now: at(now),
            lease_until: at(now + 60 * SECOND),
            owner: "node-a".into(),
            limit: 10,
            per_webhook: 10,
            skip_webhooks: Vec::new(),
        };
        let claimed = store.claim_deliveries(&request).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let c = &claimed[0];
        let result = AttemptResult {
            delivery_id: c.delivery_id.clone(),
            webhook_id: c.webhook.id.clone(),
            attempt: DeliveryAttempt {
                attempt: c.attempt,
                start_time: at(now),
                duration_ms: 1,
                status_code: Some(500),
                error_kind: Some(ErrorKind::HttpStatus),
                response_body: None,
            },
            next: NextStep::Failed { disable_webhook: false },
            finish_time: at(now),
            claimed_update_time: c.update_time,
            lease: c.lease.clone(),
        };
        store.record_attempts(&[result], &Default::default()).await.unwrap();
    }
}

fn recovery(space: &SpaceId, webhook: &WebhookId, since: i64, until: i64) -> Recovery {
    Recovery {
        id: RecoveryId::generate(),
        space_id: space.clone(),
        webhook_id: webhook.clone(),
        draft: RecoveryDraft {
            since: at(since),
            until: at(until),
            statuses: RECOVERABLE.to_vec(),
        },
        status: RecoveryStatus::Running,
        counts: RecoveryCounts::default(),
        create_time: at(T0 + 100 * SECOND),
        finish_time: None,
    }
}

fn counts(matched: u64, requeued: u64) -> RecoveryCounts {
    RecoveryCounts {
        matched,
        requeued,
        skipped: 0,
    }
}

#[tokio::test]
async fn batches_walk_the_window_once_under_one_lease_on_both_backends() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            let hook = webhook(&space);
            store.create_webhook(&hook, None).await.unwrap();
            // Deliveries 0..7 failed at T0 + n s; the window takes 2..6.
            failed_deliveries(store.as_ref(), &space, 7).await;
            let asked = recovery(&space, &hook.id, T0 + 2 * SECOND, T0 + 6 * SECOND);
            store.create_recovery(&asked, None).await.unwrap();
            let now = at(T0 + 200 * SECOND);
            let lease = now.plus_micros(60 * SECOND);

            let id = store.claim_recovery("node-a", now, lease).await.unwrap();
            assert_eq!(id.as_ref(), Some(&asked.id), "{backend}");
            assert_eq!(
                store.claim_recovery("node-b", now, lease).await.unwrap(),
                None,
                "{backend}: leased"
            );
            let other = store.recover_batch(&asked.id, "node-b", now, lease, 3).await.unwrap();
            assert_eq!(other, None, "{backend}: only the owner runs a batch");

            let first = store.recover_batch(&asked.id, "node-a", now, lease, 3).await.unwrap();
            let expected = RecoveryProgress {
                status: RecoveryStatus::Running,
                counts: counts(1, 1),
                requeued_now: 1,
            };
            assert_eq!(first, Some(expected), "{backend}: deliveries 0-2 read, 2 retried");
            let second = store.recover_batch(&asked.id, "node-a", now, lease, 3).await.unwrap();
            assert_eq!(
                second.map(|p| (p.status, p.counts)),
                Some((RecoveryStatus::Running, counts(4, 4))),
                "{backend}"
            );
            let third = store.recover_batch(&asked.id, "node-a", now, lease, 3).await.unwrap();
            assert_eq!(
                third.map(|p| (p.status, p.counts)),
                Some((RecoveryStatus::Completed, counts(4, 4))),
                "{backend}"
            );
            assert_eq!(
                store.recover_batch(&asked.id, "node-a", now, lease, 3).await.unwrap(),
                None,
                "{backend}: done"
            );
            assert_eq!(
                store.claim_recovery("node-b", now, lease).await.unwrap(),
                None,
                "{backend}: nothing running"
            );

            let saved = store.get_recovery(&space, &hook.id, &asked.id).await.unwrap().unwrap();
            assert_eq!(
                (saved.status, saved.counts),
                (RecoveryStatus::Completed, counts(4, 4)),
                "{backend}"
            );
            assert_eq!(saved.finish_time, Some(now), "{backend}");
            let page = store.list_deliveries(&space, &hook.id, None, None, 50).await.unwrap();
            let mut by_time: Vec<(i64, DeliveryStatus, Option<Timestamp>)> = page
                .items
                .iter()
                .map(|d| (d.create_time.as_micros() - T0, d.status, d.next_attempt_time))
                .collect();
            by_time.sort_by_key(|d| d.0);
            let pending = (DeliveryStatus::Pending, Some(now));
            let failed = (DeliveryStatus::Failed, None);
            let expected: Vec<_> = [failed, failed, pending, pending, pending, pending, failed]
                .into_iter()
                .enumerate()
                .map(|(n, (status, due))| (n as i64, status, due))
                .collect();
            assert_eq!(by_time, expected, "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_lease_that_ran_out_passes_and_a_disabled_webhook_cancels_on_both_backends() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            let hook = webhook(&space);
            store.create_webhook(&hook, None).await.unwrap();
            failed_deliveries(store.as_ref(), &space, 2).await;
            let asked = recovery(&space, &hook.id, T0, T0 + 10 * SECOND);
            store.create_recovery(&asked, None).await.unwrap();
            let now = at(T0 + 200 * SECOND);
            store
                .claim_recovery("node-a", now, now.plus_micros(SECOND))
                .await
                .unwrap();
            let later = now.plus_micros(2 * SECOND);
            let taken = store
                .claim_recovery("node-b", later, later.plus_micros(SECOND))
                .await
                .unwrap();
            assert_eq!(taken, Some(asked.id.clone()), "{backend}: a lease that ran out passes");
            let stale = store.recover_batch(&asked.id, "node-a", later, later, 1).await.unwrap();
            assert_eq!(stale, None, "{backend}: the old owner's batch does nothing");

            let patch = hookrelay_core::WebhookPatch {
                enabled: Some(false),
                ..Default::default()
            };
            store.update_webhook(&space, &hook.id, &patch, later).await.unwrap();
            let stopped = store.recover_batch(&asked.id, "node-b", later, later, 1).await.unwrap();
            assert_eq!(
                stopped.map(|p| (p.status, p.counts)),
                Some((RecoveryStatus::Cancelled, counts(0, 0))),
                "{backend}"
            );
        }
    })
    .await;
}
