//! Alert e-mail limits per address on both backends, against the same script: a real
//! SQLite file and a fresh database on a real PostgreSQL server
//! (`HOOKRELAY_TEST_POSTGRES_URL`, or the `test` database on 127.0.0.1), which must be
//! reachable: a skipped test would hide that it never ran. Then two PostgreSQL nodes
//! admitting alerts for one address at once share its count.

mod common;

use common::{both, with_databases};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::alert::{Alert, AlertKind, AlertPolicy};
use hookrelay_core::alert_limit::EmailLimit;
use hookrelay_core::delivery::{DeliveryAttempt, ErrorKind, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::{ApiRelease, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
use hookrelay_store::{AttemptResult, ClaimRequest, PostgresStore, Store};
use serde_json::value::RawValue;

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3600 * SECOND;
const LIMIT: EmailLimit = EmailLimit {
    per_window: 2,
    window: Duration::from_secs(3600),
};

fn webhook(space: &SpaceId, alert_emails: &[&str]) -> Webhook {
    let id = WebhookId::generate();
    Webhook {
        space_id: space.clone(),
        name: format!("Orders {id}"),
        url: "https://receiver.example.com/hooks".into(),
        enabled: true,
        events: vec!["payment.completed".into()],
        api_release: ApiRelease::Caph,
        verification: VerificationMethod::Hs256 {
            secret: format!("whsec_{}", &id.as_str()[4..]),
        },
        headers: BTreeMap::new(),
        alert_emails: alert_emails.iter().map(|a| a.to_string()).collect(),
        metadata: Default::default(),
        create_time: Timestamp::from_micros(T0),
        update_time: Timestamp::from_micros(T0),
        settings: Default::default(),
        id,
    }
}

/// `count` webhooks alerting `alert_emails`, each with one failing alert queued (its
/// one delivery ran out of attempts), claimed: oldest first.
async fn failing_alerts(store: &dyn Store, count: usize, alert_emails: &[&str]) -> Vec<Alert> {
    let space = SpaceId::generate();
    store.ensure_space(&space).await.unwrap();
    for _ in 0..count {
        store
            .create_webhook(&webhook(&space, alert_emails), None)
            .await
            .unwrap();
    }
    let event = Event {
        id: EventId::generate(),
        space_id: space.clone(),
        name: "payment.completed".into(),
        object: EventObject {
            id: "pmt-1".into(),
            object_type: "payment".into(),
        },
        data: RawValue::from_string("{}".into()).unwrap(),
        create_time: Timestamp::from_micros(T0),
        trace_parent: None,
    };
    store.publish_event(&event, None).await.unwrap();
    let claimed = store
        .claim_deliveries(&ClaimRequest {
            now: Timestamp::from_micros(T0 + SECOND),
            lease_until: Timestamp::from_micros(T0 + 60 * SECOND),
            owner: "n".into(),
            limit: count as u32,
            per_webhook: 1,
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap();
    let finish = Timestamp::from_micros(T0 + 2 * SECOND);
    let results: Vec<AttemptResult> = claimed
        .iter()
        .map(|claimed| AttemptResult {
            delivery_id: claimed.delivery_id.clone(),
            webhook_id: claimed.webhook.id.clone(),
            attempt: DeliveryAttempt {
                attempt: claimed.attempt,
                start_time: finish,
                duration_ms: 1,
                status_code: Some(500),
                error_kind: Some(ErrorKind::HttpStatus),
                response_body: None,
            },
            next: NextStep::Failed { disable_webhook: false },
            finish_time: finish,
            claimed_update_time: claimed.update_time,
            lease: claimed.lease.clone(),
        })
        .collect();
    store.record_attempts(&results, &AlertPolicy::default()).await.unwrap();
    let now = Timestamp::from_micros(T0 + 3 * SECOND);
    let alerts = store
        .claim_alerts(now, now.plus(Duration::from_secs(300)), 100)
        .await
        .unwrap();
    assert_eq!(alerts.len(), count, "one failing alert per webhook");
    alerts
}

async fn admit(store: &dyn Store, alert: &Alert, now: i64) -> Result<Vec<String>, hookrelay_store::StoreError> {
    store.admit_alert_recipients(alert, &LIMIT, at(now)).await
}

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

#[tokio::test]
async fn admission_digests_and_their_leases_match_on_both_backends() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let store = &*store;
            let alerts = failing_alerts(store, 3, &["ops@example.com", "Dev@Example.com"]).await;
            let both_addresses = ["Dev@Example.com", "ops@example.com"];
            assert_eq!(admit(store, &alerts[0], T0).await.unwrap(), both_addresses, "{backend}");
            // Decided once: asking again neither changes the answer nor counts again.
            assert_eq!(
                admit(store, &alerts[0], T0 + SECOND).await.unwrap(),
                both_addresses,
                "{backend}"
            );
            assert_eq!(
                admit(store, &alerts[1], T0 + 2 * SECOND).await.unwrap(),
                both_addresses,
                "{backend}"
            );
            assert!(
                admit(store, &alerts[2], T0 + 3 * SECOND).await.unwrap().is_empty(),
                "{backend}"
            );
            assert!(
                admit(store, &alerts[2], T0 + 2 * HOUR).await.unwrap().is_empty(),
                "{backend}: decided once"
            );

            let lease = at(T0 + 2 * HOUR);
            assert!(
                store
                    .claim_digests(at(T0 + HOUR - 1), lease, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "{backend}"
            );
            let digests = store.claim_digests(at(T0 + HOUR), lease, 10).await.unwrap();
            let recipients: Vec<&str> = digests.iter().map(|d| d.recipient.as_str()).collect();
            assert_eq!(recipients, ["dev@example.com", "ops@example.com"], "{backend}");
            for digest in &digests {
                assert_eq!(digest.lease_until, lease);
                assert_eq!(digest.held.len(), 1, "{backend}");
                let held = &digest.held[0];
                assert_eq!(held.alert_id, alerts[2].id.as_str(), "{backend}");
                assert_eq!(held.webhook_id, alerts[2].webhook_id.as_str(), "{backend}");
                assert_eq!(held.kind, AlertKind::Failing);
                assert_eq!(held.subject, alerts[2].message.subject);
                assert_eq!(held.create_time, alerts[2].create_time);
            }
            assert!(
                store.claim_digests(at(T0 + HOUR), lease, 10).await.unwrap().is_empty(),
                "{backend}: leased"
            );
            // Sent to one address: forgotten; failed for the other: claimed again from the retry time.
            store.finish_digest(&digests[1], None).await.unwrap();
            store.finish_digest(&digests[0], Some(at(T0 + 3 * HOUR))).await.unwrap();
            let again = at(T0 + 3 * HOUR + 1);
            assert!(store
                .claim_digests(at(T0 + 3 * HOUR - 1), again, 10)
                .await
                .unwrap()
                .is_empty());
            let retried = store.claim_digests(again, at(T0 + 4 * HOUR), 10).await.unwrap();
            assert_eq!(retried.len(), 1, "{backend}");
            assert_eq!(retried[0].recipient, "dev@example.com", "{backend}");
            store.finish_digest(&retried[0], None).await.unwrap();
            assert!(store
                .claim_digests(at(T0 + 9 * HOUR), at(T0 + 10 * HOUR), 10)
                .await
                .unwrap()
                .is_empty());
            // Windows that opened before the given time are forgotten (both opened at T0).
            assert_eq!(store.prune_alert_email_windows(at(T0)).await.unwrap(), 0, "{backend}");
            assert_eq!(
                store.prune_alert_email_windows(at(T0 + 1)).await.unwrap(),
                2,
                "{backend}"
            );
            // A pruned window counts as none: a new alert to those addresses is sent.
            let later = failing_alerts(store, 1, &["OPS@example.com"]).await;
            assert_eq!(
                admit(store, &later[0], T0 + 2 * HOUR).await.unwrap(),
                ["OPS@example.com"],
                "{backend}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn two_postgres_nodes_admitting_at_once_share_the_count() {
    with_databases(|url, _dir| async move {
        let cipher = SecretCipher::new(&MasterKey::generate());
        let first: Arc<dyn Store> = Arc::new(PostgresStore::open(&url, cipher.clone(), 4).await.unwrap());
        let second: Arc<dyn Store> = Arc::new(PostgresStore::open(&url, cipher, 4).await.unwrap());
        let alerts = failing_alerts(first.as_ref(), 12, &["ops@example.com"]).await;
        let limit = EmailLimit { per_window: 3, ..LIMIT };
        let tasks: Vec<_> = alerts
            .into_iter()
            .enumerate()
            .map(|(i, alert)| {
                let node = if i % 2 == 0 { first.clone() } else { second.clone() };
                tokio::spawn(async move { node.admit_alert_recipients(&alert, &limit, at(T0)).await.unwrap() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap().len();
        }
        assert_eq!(admitted, 3, "the limit holds across nodes");
        let digests = first.claim_digests(at(T0 + HOUR), at(T0 + 2 * HOUR), 10).await.unwrap();
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].held.len(), 9);
    })
    .await;
}
