//! The PostgreSQL backend against a real server: every test gets a fresh database
//! (`hr_<random>`, created through the `test` database and dropped afterwards), so tests
//! run in parallel and leave nothing behind.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/test` unless
//! `HOOKRELAY_TEST_POSTGRES_URL` names another. An unreachable server fails the tests
//! instead of skipping them: CI starts PostgreSQL, and a skipped suite would hide that it
//! did not.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hookrelay_core::access::{AccessToken, Scopes, TokenDraft};
use hookrelay_core::alert::{AlertKind, AlertPolicy, AlertStatus};
use hookrelay_core::delivery::{DeliveryAttempt, DeliveryStatus, ErrorKind, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::{
    ApiRelease, DeliveryId, EventId, SpaceId, Timestamp, TokenId, VerificationMethod, Webhook, WebhookId, WebhookPatch,
};
use hookrelay_store::traits::*;
use hookrelay_store::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DatabaseLocation, IdempotencyRecord, NodeBeat, OpenOptions,
    PostgresStore, SqliteStore, Store, StoreError,
};
use serde_json::json;
use serde_json::value::RawValue;
use sqlx::{Connection, Executor, PgConnection, Row};

/// A fixed "now" (2023-11-14), so due times and leases are exact.
const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;
const LEASE: i64 = 60 * SECOND;
/// Failing after three failed attempts, one failing alert an hour, disabled after a day.
const POLICY: AlertPolicy = AlertPolicy {
    failing_after_attempts: 3,
    quiet_period: Duration::from_secs(3600),
    disable_after: Duration::from_secs(24 * 3600),
};

// ---- a database per test ----------------------------------------------------------

fn admin_url() -> String {
    std::env::var("HOOKRELAY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn admin_connection() -> PgConnection {
    let url = admin_url();
    let hint = "the PostgreSQL tests need a running server (CI starts one; locally \
                `pg_ctlcluster 15 main start`), or HOOKRELAY_TEST_POSTGRES_URL naming one";
    match tokio::time::timeout(Duration::from_secs(15), PgConnection::connect(&url)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => panic!("PostgreSQL is not reachable at {url}: {error}; {hint}"),
        Err(_) => panic!("PostgreSQL at {url} did not answer within 15 s; {hint}"),
    }
}

/// `base` (a URL naming any database) with its database replaced by `name`.
fn database_url(base: &str, name: &str) -> String {
    let (address, query) = base.split_once('?').map_or((base, None), |(a, q)| (a, Some(q)));
    let scheme_end = address.find("://").map_or(0, |i| i + 3);
    let root = match address[scheme_end..].find('/') {
        Some(slash) => &address[..scheme_end + slash],
        None => address,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

/// Runs `test` with the URL of a new, empty database, then drops the database whether
/// the test passed or panicked (and re-raises its panic).
///
/// The test runs in place rather than spawned: a spawned future must be `Send` for every
/// lifetime, which the compiler cannot prove of some sqlx futures (SQLite's migrator).
async fn with_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let suffix = DeliveryId::generate().as_str()[DeliveryId::PREFIX.len()..].to_ascii_lowercase();
    let name = format!("hr_{suffix}");
    let mut admin = admin_connection().await;
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let outcome = AssertUnwindSafe(test(database_url(&admin_url(), &name)))
        .catch_unwind()
        .await;
    // FORCE: pools of stores the test leaked (or panicked holding) must not keep it alive.
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn open(url: &str, cipher: &SecretCipher) -> PostgresStore {
    PostgresStore::open(url, cipher.clone(), 4)
        .await
        .expect("open the store")
}

fn new_cipher() -> SecretCipher {
    SecretCipher::new(&MasterKey::generate())
}

// ---- fixtures -----------------------------------------------------------------------

fn webhook(space: &SpaceId, events: &[&str], created: i64) -> Webhook {
    let id = WebhookId::generate();
    Webhook {
        space_id: space.clone(),
        name: format!("Orders {id}"),
        url: "https://receiver.example.com/hooks?a=1".into(),
        enabled: true,
        events: events.iter().map(|e| e.to_string()).collect(),
        api_release: ApiRelease::Caph,
        verification: VerificationMethod::Hs256 {
            secret: format!("whsec_{}", &id.as_str()[4..]),
        },
        headers: BTreeMap::from([("Authorization".into(), "Bearer header-credential-9f2c".into())]),
        alert_emails: vec!["ops@example.com".into(), "Dev@Example.com".into()],
        metadata: json!({"z": 1, "a": {"nested": [1, 2.5, "ü"]}, "big": 12345678901234567_i64})
            .as_object()
            .unwrap()
            .clone(),
        create_time: Timestamp::from_micros(created),
        update_time: Timestamp::from_micros(created),
        settings: Default::default(),
        id,
    }
}

fn event(space: &SpaceId, name: &str, at: i64) -> Event {
    Event {
        id: EventId::generate(),
        space_id: space.clone(),
        name: name.into(),
        object: EventObject {
            id: "pmt-42".into(),
            object_type: "payment".into(),
        },
        // Kept as published: key order and spacing included.
        data: RawValue::from_string(r#"{"z": 1,  "amount": {"value": 100, "currency": "SLE"}}"#.into()).unwrap(),
        create_time: Timestamp::from_micros(at),
        trace_parent: None,
    }
}

async fn publish(store: &dyn Store, event: &Event) -> u32 {
    store.publish_event(event, None).await.expect("publish")
}

fn claim_at(now: i64, limit: u32, per_webhook: u32, skip: &[&WebhookId], owner: &str) -> ClaimRequest {
    ClaimRequest {
        now: Timestamp::from_micros(now),
        lease_until: Timestamp::from_micros(now + LEASE),
        owner: owner.into(),
        limit,
        per_webhook,
        skip_webhooks: skip.iter().map(|w| (*w).clone()).collect(),
    }
}

fn result(claimed: &ClaimedDelivery, next: NextStep, status: Option<u16>, finish: i64) -> AttemptResult {
    AttemptResult {
        delivery_id: claimed.delivery_id.clone(),
        webhook_id: claimed.webhook.id.clone(),
        attempt: DeliveryAttempt {
            attempt: claimed.attempt,
            start_time: Timestamp::from_micros(finish - 1_000),
            duration_ms: 1,
            status_code: status,
            error_kind: match status {
                Some(200..=299) => None,
                Some(_) => Some(ErrorKind::HttpStatus),
                None => Some(ErrorKind::Timeout),
            },
            response_body: status.map(|s| format!("status {s}")),
        },
        next,
        finish_time: Timestamp::from_micros(finish),
        claimed_update_time: claimed.update_time,
        lease: claimed.lease.clone(),
    }
}

/// Every delivery of a webhook by event, with its status, attempts and due time.
async fn states(
    store: &dyn Store,
    space: &SpaceId,
    webhook: &WebhookId,
) -> HashMap<EventId, (DeliveryStatus, u32, Option<i64>)> {
    let page = store.list_deliveries(space, webhook, None, None, 1000).await.unwrap();
    page.items
        .into_iter()
        .map(|d| {
            (
                d.event_id,
                (d.status, d.attempt_count, d.next_attempt_time.map(Timestamp::as_micros)),
            )
        })
        .collect()
}

async fn new_space(store: &dyn Store) -> SpaceId {
    let space = SpaceId::generate();
    store.ensure_space(&space).await.unwrap();
    space
}

/// A new space with one webhook subscribed to `payment.completed`.
async fn space_with_webhook(store: &dyn Store) -> (SpaceId, Webhook) {
    let space = new_space(store).await;
    let w = webhook(&space, &["payment.completed"], T0);
    store.create_webhook(&w, None).await.unwrap();
    (space, w)
}

// ---- tests --------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_round_trip_with_sealed_secrets() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let store = open(&url, &cipher).await;
        assert!(!store.has_spaces().await.unwrap());
        let space = new_space(&store).await;
        store.ensure_space(&space).await.unwrap();
        assert!(store.has_spaces().await.unwrap());

        let digest = [7u8; 32];
        let token = AccessToken::of_secret(
            "hrt_secret",
            space.clone(),
            TokenDraft {
                name: "first".into(),
                scopes: Scopes::all(),
                expire_time: None,
            },
            Timestamp::from_micros(T0),
        );
        assert!(store.add_token(&token, &digest, None).await.unwrap());
        let again = AccessToken {
            id: TokenId::generate(),
            ..token.clone()
        };
        assert!(
            !store.add_token(&again, &digest, None).await.unwrap(),
            "a digest is kept once"
        );
        let (grant, stored) = store.find_access_token(&digest).await.unwrap().unwrap();
        assert_eq!(
            (grant.token_id, grant.space_id, stored),
            (token.id, space.clone(), digest.to_vec())
        );
        assert_eq!(store.find_access_token(&[8u8; 32]).await.unwrap(), None);

        let hs = webhook(&space, &["payment.completed", "payout.failed"], T0);
        let mut es = webhook(&space, &["payment.created"], T0 + 1);
        es.verification = VerificationMethod::Es256 {
            private_key: vec![0xAB; 32],
            public_key_pem: "-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n".into(),
        };
        store.create_webhook(&hs, None).await.unwrap();
        store.create_webhook(&es, None).await.unwrap();
        assert_eq!(store.get_webhook(&space, &hs.id).await.unwrap().as_ref(), Some(&hs));
        assert_eq!(store.get_webhook(&space, &es.id).await.unwrap().as_ref(), Some(&es));
        assert_eq!(store.get_webhook(&SpaceId::generate(), &hs.id).await.unwrap(), None);

        // Nothing secret is in the table in clear, and another key cannot open it.
        let mut db = PgConnection::connect(&url).await.unwrap();
        let row = sqlx::query("SELECT secret_sealed, headers_sealed FROM webhooks WHERE id = $1")
            .bind(hs.id.as_str())
            .fetch_one(&mut db)
            .await
            .unwrap();
        let contains = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
        let VerificationMethod::Hs256 { secret } = &hs.verification else {
            unreachable!()
        };
        assert!(!contains(&row.get::<Vec<u8>, _>("secret_sealed"), secret.as_bytes()));
        assert!(!contains(
            &row.get::<Vec<u8>, _>("headers_sealed"),
            b"header-credential-9f2c"
        ));
        let stranger = open(&url, &new_cipher()).await;
        assert!(matches!(
            stranger.get_webhook(&space, &hs.id).await,
            Err(StoreError::Unseal(_))
        ));

        // Pages of two, newest first, through every webhook.
        let mut more = Vec::new();
        for i in 0..3 {
            let w = webhook(&space, &["payment.completed"], T0 + 10 + i);
            store.create_webhook(&w, None).await.unwrap();
            more.push(w.id);
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_webhooks(&space, after, 2).await.unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.into_iter().map(|w| w.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let expected: Vec<WebhookId> = more
            .iter()
            .rev()
            .cloned()
            .chain([es.id.clone(), hs.id.clone()])
            .collect();
        assert_eq!(seen, expected);

        // A patch replaces what it names and moves update_time forward.
        let patch = WebhookPatch {
            name: Some("Renamed".into()),
            events: Some(vec!["payout.completed".into()]),
            headers: Some(BTreeMap::new()),
            ..WebhookPatch::default()
        };
        let now = Timestamp::from_micros(T0 + 5 * SECOND);
        let updated = store
            .update_webhook(&space, &hs.id, &patch, now)
            .await
            .unwrap()
            .unwrap();
        let mut expected = hs.clone();
        patch.apply(&mut expected, now);
        assert_eq!(updated, expected);
        assert_eq!(store.get_webhook(&space, &hs.id).await.unwrap(), Some(expected));
        assert_eq!(
            store
                .update_webhook(&space, &WebhookId::generate(), &patch, now)
                .await
                .unwrap(),
            None
        );

        assert!(store.delete_webhook(&space, &hs.id).await.unwrap());
        assert!(!store.delete_webhook(&space, &hs.id).await.unwrap());
        assert_eq!(store.get_webhook(&space, &hs.id).await.unwrap(), None);
    })
    .await;
}

/// How long the records of the idempotency test are live (the server's default).
const WINDOW: i64 = 24 * 3600 * SECOND;

#[tokio::test]
async fn idempotency_keys_conflict_and_expire() {
    with_database(|url| async move {
        let store = open(&url, &new_cipher()).await;
        let space = new_space(&store).await;
        let record = |status: u16, body: &str, at: i64| IdempotencyRecord {
            space_id: space.clone(),
            key: "key-1".into(),
            fingerprint: vec![1, 2, 3],
            status,
            body: body.as_bytes().to_vec(),
            create_time: Timestamp::from_micros(at),
            expire_time: Timestamp::from_micros(at + WINDOW),
        };
        let first = webhook(&space, &["payment.completed"], T0);
        store
            .create_webhook(&first, Some(&record(201, "secret-body", T0)))
            .await
            .unwrap();

        // The key is taken: nothing of the second request is written.
        let second = webhook(&space, &["payment.completed"], T0);
        assert!(matches!(
            store.create_webhook(&second, Some(&record(201, "other", T0 + 1))).await,
            Err(StoreError::IdempotencyKeyTaken)
        ));
        assert_eq!(store.get_webhook(&space, &second.id).await.unwrap(), None);
        let published = event(&space, "payment.completed", T0 + 2);
        assert!(matches!(
            store.publish_event(&published, Some(record(202, "", T0 + 2))).await,
            Err(StoreError::IdempotencyKeyTaken)
        ));
        assert!(store.get_event(&space, &published.id).await.unwrap().is_none());

        let saved = store
            .find_idempotency_record(&space, "key-1", Timestamp::from_micros(T0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(saved, record(201, "secret-body", T0));
        let mut db = PgConnection::connect(&url).await.unwrap();
        let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM idempotency_keys")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert!(!body.windows(11).any(|w| w == b"secret-body"));
        // Live until its expire time, not at it.
        for (at, live) in [(T0 + WINDOW - 1, true), (T0 + WINDOW, false)] {
            let found = store
                .find_idempotency_record(&space, "key-1", Timestamp::from_micros(at))
                .await
                .unwrap();
            assert_eq!(found.is_some(), live, "at {at}");
        }

        // An expired key is reused by a publish, whose record is saved with its event.
        let later = T0 + WINDOW + SECOND;
        let published = event(&space, "payment.completed", later);
        let publish_record = record(202, published.id.as_str(), later);
        assert_eq!(
            store
                .publish_event(&published, Some(publish_record.clone()))
                .await
                .unwrap(),
            1
        );
        let saved = store
            .find_idempotency_record(&space, "key-1", Timestamp::from_micros(later))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(saved, publish_record);

        // Racing requests with one key: exactly one wins.
        let store = Arc::new(store);
        let racers = (0..6).map(|i| {
            let store = store.clone();
            let space = space.clone();
            tokio::spawn(async move {
                let w = webhook(&space, &["payment.completed"], T0);
                let record = IdempotencyRecord {
                    space_id: space,
                    key: "race".into(),
                    fingerprint: vec![i],
                    status: 201,
                    body: vec![i],
                    create_time: Timestamp::from_micros(T0),
                    expire_time: Timestamp::from_micros(T0 + WINDOW),
                };
                store.create_webhook(&w, Some(&record)).await
            })
        });
        let mut won = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(()) => won += 1,
                Err(StoreError::IdempotencyKeyTaken) => {}
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!(won, 1);

        assert_eq!(
            store
                .prune_idempotency_records(Timestamp::from_micros(later))
                .await
                .unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn publishing_fans_out_to_enabled_subscribers() {
    with_database(|url| async move {
        let store = open(&url, &new_cipher()).await;
        let space = new_space(&store).await;
        let other_space = new_space(&store).await;
        let a = webhook(&space, &["payment.completed", "payout.failed"], T0);
        let b = webhook(&space, &["payment.completed"], T0);
        let mut disabled = webhook(&space, &["payment.completed"], T0);
        disabled.enabled = false;
        let elsewhere = webhook(&space, &["payment.created"], T0);
        // A name that contains the other as a prefix must not match it.
        let prefix = webhook(&space, &["payment.completed_extra"], T0);
        let foreign = webhook(&other_space, &["payment.completed"], T0);
        for w in [&a, &b, &disabled, &elsewhere, &prefix, &foreign] {
            store.create_webhook(w, None).await.unwrap();
        }

        let completed = event(&space, "payment.completed", T0 + 1);
        assert_eq!(publish(&store, &completed).await, 2);
        let failed = event(&space, "payout.failed", T0 + 2);
        assert_eq!(publish(&store, &failed).await, 1);
        let nobody = event(&space, "payout.created", T0 + 3);
        assert_eq!(publish(&store, &nobody).await, 0);

        let stored = store.get_event(&space, &completed.id).await.unwrap().unwrap();
        assert_eq!(stored.delivery_count, 2);
        assert_eq!(stored.event.data.get(), completed.data.get());
        assert_eq!(stored.event.object, completed.object);
        assert_eq!(stored.event.create_time, completed.create_time);
        assert!(store.get_event(&other_space, &completed.id).await.unwrap().is_none());

        let page = store.list_events(&space, None, 2).await.unwrap();
        let ids: Vec<_> = page.items.iter().map(|e| e.event.id.clone()).collect();
        assert_eq!(ids, [nobody.id.clone(), failed.id.clone()]);
        let rest = store.list_events(&space, page.next, 2).await.unwrap();
        assert_eq!(rest.items.len(), 1);
        assert_eq!(rest.items[0].event.id, completed.id);
        assert!(rest.next.is_none());

        let of_a = store
            .list_deliveries(&space, &a.id, None, None, 10)
            .await
            .unwrap()
            .items;
        assert_eq!(of_a.len(), 2);
        assert_eq!(of_a[0].event_id, failed.id);
        assert_eq!(of_a[0].event_name, "payout.failed");
        assert_eq!(of_a[1].status, DeliveryStatus::Pending);
        assert_eq!(of_a[1].next_attempt_time, Some(completed.create_time));
        for w in [&disabled, &elsewhere, &prefix] {
            assert!(store
                .list_deliveries(&space, &w.id, None, None, 10)
                .await
                .unwrap()
                .items
                .is_empty());
        }
        assert!(store
            .list_deliveries(&other_space, &foreign.id, None, None, 10)
            .await
            .unwrap()
            .items
            .is_empty());

        let test = event(&space, "webhook.test", T0 + 4);
        let delivery = store.publish_test_event(&test, &elsewhere.id).await.unwrap();
        let detail = store
            .get_delivery(&space, &elsewhere.id, &delivery.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.delivery, delivery);
        assert!(detail.attempts.is_empty());
        assert_eq!(
            store.get_event(&space, &test.id).await.unwrap().unwrap().delivery_count,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn claims_oldest_first_per_webhook_and_skipping() {
    with_database(|url| async move {
        let store = open(&url, &new_cipher()).await;
        let space = new_space(&store).await;
        let hooks: Vec<Webhook> = ["payment.created", "payment.completed", "payment.failed"]
            .iter()
            .map(|name| webhook(&space, &[*name], T0))
            .collect();
        for w in &hooks {
            store.create_webhook(w, None).await.unwrap();
        }
        // Interleaved due times: w0 at 0,3,6,9; w1 at 1,4,7,10; w2 at 2,5,8,11 (seconds).
        let mut due = HashMap::new();
        for i in 0..12 {
            let w = &hooks[i % 3];
            let e = event(&space, &w.events[0], T0 + i as i64 * SECOND);
            publish(&store, &e).await;
            due.insert(e.id.clone(), i);
        }
        // Not yet due: never claimed before its time.
        let future = event(&space, "payment.created", T0 + 3600 * SECOND);
        publish(&store, &future).await;

        let now = T0 + 100 * SECOND;
        let order = |claimed: &[ClaimedDelivery]| claimed.iter().map(|c| due[&c.event.id]).collect::<Vec<_>>();
        let first = store
            .claim_deliveries(&claim_at(now, 10, 2, &[&hooks[2].id], "n1"))
            .await
            .unwrap();
        assert_eq!(order(&first), [0, 1, 3, 4]);
        assert!(first.iter().all(|c| c.attempt == 1));
        assert_eq!(*first[0].webhook, hooks[0]);
        assert_eq!(
            first[0].event.data.get(),
            r#"{"z": 1,  "amount": {"value": 100, "currency": "SLE"}}"#
        );

        // Leased ones are not claimed again; the limit cuts oldest first.
        let second = store.claim_deliveries(&claim_at(now, 3, 2, &[], "n2")).await.unwrap();
        assert_eq!(order(&second), [2, 5, 6]);
        let third = store
            .claim_deliveries(&claim_at(now, 100, 100, &[], "n3"))
            .await
            .unwrap();
        assert_eq!(order(&third), [7, 8, 9, 10, 11]);
        assert!(store
            .claim_deliveries(&claim_at(now, 100, 100, &[], "n3"))
            .await
            .unwrap()
            .is_empty());

        assert_eq!(
            store.next_due_time(Timestamp::from_micros(now), &[]).await.unwrap(),
            Some(future.create_time)
        );
        assert_eq!(
            store
                .next_due_time(Timestamp::from_micros(now), &[hooks[0].id.clone()])
                .await
                .unwrap(),
            None
        );
        let mut db = PgConnection::connect(&url).await.unwrap();
        let owners: Vec<(String, i64)> = sqlx::query_as(
            "SELECT lease_owner, count(*) FROM deliveries WHERE lease_owner IS NOT NULL GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(owners, [("n1".into(), 4), ("n2".into(), 3), ("n3".into(), 5)]);
    })
    .await;
}

#[tokio::test]
async fn claims_take_turns_between_spaces() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in stores {
            // Space A fans out to six webhooks first; space B publishes one event later.
            let wide = new_space(store.as_ref()).await;
            let other = new_space(store.as_ref()).await;
            let wide_hooks: Vec<Webhook> = (0..6).map(|_| webhook(&wide, &["payment.completed"], T0)).collect();
            for w in &wide_hooks {
                store.create_webhook(w, None).await.unwrap();
            }
            let other_hook = webhook(&other, &["payment.completed"], T0);
            store.create_webhook(&other_hook, None).await.unwrap();
            let fan_out = event(&wide, "payment.completed", T0);
            assert_eq!(publish(store.as_ref(), &fan_out).await, 6);
            let later = event(&other, "payment.completed", T0 + 10 * SECOND);
            assert_eq!(publish(store.as_ref(), &later).await, 1);

            let now = T0 + 100 * SECOND;
            let first = store.claim_deliveries(&claim_at(now, 2, 1, &[], "n1")).await.unwrap();
            let spaces: HashSet<&SpaceId> = first.iter().map(|c| &c.event.space_id).collect();
            assert_eq!(first.len(), 2, "{backend}");
            assert_eq!(
                spaces,
                HashSet::from([&wide, &other]),
                "{backend}: B's delivery waits behind A's fan-out"
            );
            let rest = store.claim_deliveries(&claim_at(now, 100, 1, &[], "n1")).await.unwrap();
            assert_eq!(rest.len(), 5, "{backend}");
            assert!(rest.iter().all(|c| c.event.space_id == wide), "{backend}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_delivery() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let setup = open(&url, &cipher).await;
        let space = new_space(&setup).await;
        for _ in 0..10 {
            setup
                .create_webhook(&webhook(&space, &["payment.completed"], T0), None)
                .await
                .unwrap();
        }
        for i in 0..50 {
            assert_eq!(publish(&setup, &event(&space, "payment.completed", T0 + i)).await, 10);
        }
        const TOTAL: usize = 500;

        // Four nodes, each with its own pool, claiming until everything is leased.
        let claimed_so_far = Arc::new(AtomicUsize::new(0));
        let all = Arc::new(Mutex::new(Vec::new()));
        let mut nodes = Vec::new();
        for node in 0..4 {
            let node_store = open(&url, &cipher).await;
            let claimed_so_far = claimed_so_far.clone();
            let all = all.clone();
            nodes.push(tokio::spawn(async move {
                let started = Instant::now();
                let owner = format!("node-{node}");
                let mut mine = 0;
                loop {
                    let claimed = node_store
                        .claim_deliveries(&claim_at(T0 + 100 * SECOND, 7, 3, &[], &owner))
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        if claimed_so_far.load(Ordering::SeqCst) >= TOTAL {
                            return mine;
                        }
                        assert!(started.elapsed() < Duration::from_secs(60), "claiming stalled");
                        tokio::task::yield_now().await;
                        continue;
                    }
                    mine += claimed.len();
                    claimed_so_far.fetch_add(claimed.len(), Ordering::SeqCst);
                    all.lock()
                        .unwrap()
                        .extend(claimed.into_iter().map(|c| (c.delivery_id, owner.clone())));
                }
            }));
        }
        let mut per_node = Vec::new();
        for node in nodes {
            per_node.push(node.await.unwrap());
        }
        let all = all.lock().unwrap().clone();
        let distinct: HashSet<&DeliveryId> = all.iter().map(|(id, _)| id).collect();
        assert_eq!(all.len(), TOTAL, "claims per node: {per_node:?}");
        assert_eq!(distinct.len(), TOTAL, "a delivery was claimed twice");

        // The table agrees: every delivery leased once, to the node that returned it.
        let mut db = PgConnection::connect(&url).await.unwrap();
        let leased: Vec<(String, String)> =
            sqlx::query_as("SELECT id, lease_owner FROM deliveries WHERE lease_owner IS NOT NULL")
                .fetch_all(&mut db)
                .await
                .unwrap();
        let leased: HashMap<String, String> = leased.into_iter().collect();
        assert_eq!(leased.len(), TOTAL);
        for (id, owner) in &all {
            assert_eq!(&leased[id.as_str()], owner);
        }
    })
    .await;
}

#[tokio::test]
async fn expired_and_released_leases_are_claimable_again() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let store = open(&url, &cipher).await;
        let space = new_space(&store).await;
        let w = webhook(&space, &["payment.completed"], T0);
        store.create_webhook(&w, None).await.unwrap();
        publish(&store, &event(&space, "payment.completed", T0)).await;
        publish(&store, &event(&space, "payment.completed", T0 + 1)).await;

        let first = store.claim_deliveries(&claim_at(T0, 1, 1, &[], "a")).await.unwrap();
        assert_eq!(first.len(), 1);
        // While the lease holds, only the other delivery is claimable.
        let other = store
            .claim_deliveries(&claim_at(T0 + 10, 5, 5, &[], "b"))
            .await
            .unwrap();
        assert_eq!(other.len(), 1);
        assert_ne!(other[0].delivery_id, first[0].delivery_id);
        assert!(store
            .claim_deliveries(&claim_at(T0 + LEASE - 1, 5, 5, &[], "b"))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.next_due_time(Timestamp::from_micros(T0 + 20), &[]).await.unwrap(),
            None
        );

        // Opening the store (a node starting) does not take leases away, and neither
        // does a node's start: other nodes' leases are not orphaned.
        let starting = open(&url, &cipher).await;
        assert_eq!(starting.release_orphaned_claims().await.unwrap(), 0);
        drop(starting);
        assert!(store
            .claim_deliveries(&claim_at(T0 + 20, 5, 5, &[], "c"))
            .await
            .unwrap()
            .is_empty());

        // Once the lease has run out, another node takes it over as the same attempt.
        let taken = store
            .claim_deliveries(&claim_at(T0 + LEASE + 1, 1, 1, &[], "c"))
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].delivery_id, first[0].delivery_id);
        assert_eq!(taken[0].attempt, 1);

        // Released deliveries are claimable at once.
        store
            .release_deliveries(
                &[other[0].delivery_id.clone()],
                "b",
                Timestamp::from_micros(T0 + 10 + LEASE),
            )
            .await
            .unwrap();
        assert_eq!(
            store.next_due_time(Timestamp::from_micros(T0 + 20), &[]).await.unwrap(),
            Some(Timestamp::from_micros(T0 + 1))
        );
        let again = store
            .claim_deliveries(&claim_at(T0 + 20, 5, 5, &[], "d"))
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery_id, other[0].delivery_id);
    })
    .await;
}

#[tokio::test]
async fn recorded_attempts_move_deliveries_on() {
    with_database(|url| async move {
        let store = open(&url, &new_cipher()).await;
        let space = new_space(&store).await;
        let w = webhook(&space, &["payment.completed"], T0);
        let bystander = webhook(&space, &["payment.completed"], T0);
        store.create_webhook(&w, None).await.unwrap();
        store.create_webhook(&bystander, None).await.unwrap();
        let events: Vec<Event> = (0..5).map(|i| event(&space, "payment.completed", T0 + i)).collect();
        for e in &events {
            publish(&store, e).await;
        }
        let now = T0 + SECOND;
        let claimed = store
            .claim_deliveries(&claim_at(now, 3, 3, &[&bystander.id], "n"))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        let (ok, retry, fail) = (&claimed[0], &claimed[1], &claimed[2]);
        let retry_at = now + 30 * SECOND;
        let mut retried = result(
            retry,
            NextStep::RetryAt(Timestamp::from_micros(retry_at)),
            Some(503),
            now + 5,
        );
        // Receivers may answer anything, NUL bytes included.
        retried.attempt.response_body = Some("busy\0\u{fffd}é".into());
        store
            .record_attempts(
                &[
                    result(ok, NextStep::Succeeded, Some(204), now + 5),
                    retried.clone(),
                    result(fail, NextStep::Failed { disable_webhook: false }, None, now + 5),
                ],
                &POLICY,
            )
            .await
            .unwrap();
        let s = states(&store, &space, &w.id).await;
        assert_eq!(s[&events[0].id], (DeliveryStatus::Succeeded, 1, None));
        assert_eq!(s[&events[1].id], (DeliveryStatus::Pending, 1, Some(retry_at)));
        assert_eq!(s[&events[2].id], (DeliveryStatus::Failed, 1, None));
        let detail = store
            .get_delivery(&space, &w.id, &retry.delivery_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.attempts, [retried.attempt.clone()]);
        assert_eq!(detail.delivery.update_time, Timestamp::from_micros(now + 5));

        // The same attempt recorded again changes nothing; another attempt made under
        // the lease that was recorded (a node that lost it) is kept as history only.
        store.record_attempts(&[retried.clone()], &POLICY).await.unwrap();
        let late = result(retry, NextStep::Succeeded, Some(200), now + 9);
        store
            .record_attempts(std::slice::from_ref(&late), &POLICY)
            .await
            .unwrap();
        assert_eq!(
            states(&store, &space, &w.id).await[&events[1].id],
            (DeliveryStatus::Pending, 1, Some(retry_at))
        );
        let attempts = store
            .get_delivery(&space, &w.id, &retry.delivery_id)
            .await
            .unwrap()
            .unwrap()
            .attempts;
        assert_eq!(attempts, [retried.attempt.clone(), late.attempt]);

        // Not due before its retry time; then it is attempt 2.
        let in_flight = store
            .claim_deliveries(&claim_at(retry_at - 1, 10, 10, &[&bystander.id], "n"))
            .await
            .unwrap();
        let in_flight_events: Vec<_> = in_flight.iter().map(|c| c.event.id.clone()).collect();
        assert_eq!(in_flight_events, [events[3].id.clone(), events[4].id.clone()]);
        let later = store
            .claim_deliveries(&claim_at(retry_at, 10, 10, &[&bystander.id], "n"))
            .await
            .unwrap();
        assert_eq!(later.len(), 1);
        let second = &later[0];
        assert_eq!(second.delivery_id, retry.delivery_id);
        assert_eq!(second.attempt, 2);

        // 410: the delivery fails, the webhook is disabled and its other pending
        // deliveries (the two in flight included) are cancelled.
        let gone_at = retry_at + 7;
        store
            .record_attempts(
                &[result(
                    second,
                    NextStep::Failed { disable_webhook: true },
                    Some(410),
                    gone_at,
                )],
                &POLICY,
            )
            .await
            .unwrap();
        let s = states(&store, &space, &w.id).await;
        assert_eq!(s[&events[1].id], (DeliveryStatus::Failed, 2, None));
        assert_eq!(s[&events[3].id], (DeliveryStatus::Cancelled, 0, None));
        assert_eq!(s[&events[4].id], (DeliveryStatus::Cancelled, 0, None));
        assert_eq!(s[&events[0].id].0, DeliveryStatus::Succeeded);
        let disabled = store.get_webhook(&space, &w.id).await.unwrap().unwrap();
        assert!(!disabled.enabled);
        assert_eq!(disabled.update_time, Timestamp::from_micros(gone_at));
        let untouched = states(&store, &space, &bystander.id).await;
        assert!(untouched.values().all(|s| s.0 == DeliveryStatus::Pending));

        // In-flight attempts of cancelled deliveries: a retry keeps them cancelled, a
        // success settles them.
        store
            .record_attempts(
                &[
                    result(
                        &in_flight[0],
                        NextStep::RetryAt(Timestamp::from_micros(gone_at + SECOND)),
                        Some(500),
                        gone_at + 1,
                    ),
                    result(&in_flight[1], NextStep::Succeeded, Some(200), gone_at + 1),
                ],
                &POLICY,
            )
            .await
            .unwrap();
        let s = states(&store, &space, &w.id).await;
        assert_eq!(s[&events[3].id], (DeliveryStatus::Cancelled, 1, None));
        assert_eq!(s[&events[4].id], (DeliveryStatus::Succeeded, 1, None));

        // Leases are cleared by recording: nothing of this webhook stays leased.
        let mut db = PgConnection::connect(&url).await.unwrap();
        let leased: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND lease_until IS NOT NULL")
                .bind(w.id.as_str())
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!(leased, 0);
    })
    .await;
}

#[tokio::test]
async fn disabling_and_deleting_cancel_pending_deliveries() {
    with_database(|url| async move {
        let store = open(&url, &new_cipher()).await;
        let space = new_space(&store).await;
        let disabled = webhook(&space, &["payment.completed"], T0);
        let deleted = webhook(&space, &["payment.completed"], T0);
        let behind_our_back = webhook(&space, &["payment.completed"], T0);
        let gone_behind_our_back = webhook(&space, &["payment.completed"], T0);
        for w in [&disabled, &deleted, &behind_our_back, &gone_behind_our_back] {
            store.create_webhook(w, None).await.unwrap();
        }
        let e = event(&space, "payment.completed", T0);
        assert_eq!(publish(&store, &e).await, 4);

        let off = WebhookPatch {
            enabled: Some(false),
            ..WebhookPatch::default()
        };
        let on = WebhookPatch {
            enabled: Some(true),
            ..WebhookPatch::default()
        };
        let now = Timestamp::from_micros(T0 + SECOND);
        store
            .update_webhook(&space, &disabled.id, &off, now)
            .await
            .unwrap()
            .unwrap();
        let cancelled = (DeliveryStatus::Cancelled, 0, None);
        assert_eq!(states(&store, &space, &disabled.id).await[&e.id], cancelled);
        // Re-enabling does not revive it.
        store
            .update_webhook(&space, &disabled.id, &on, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(states(&store, &space, &disabled.id).await[&e.id], cancelled);
        let of_status = store
            .list_deliveries(&space, &disabled.id, Some(DeliveryStatus::Cancelled), None, 10)
            .await
            .unwrap();
        assert_eq!(of_status.items.len(), 1);
        assert!(store
            .list_deliveries(&space, &disabled.id, Some(DeliveryStatus::Pending), None, 10)
            .await
            .unwrap()
            .items
            .is_empty());

        // A deleted webhook's history stays, cancelled.
        assert!(store.delete_webhook(&space, &deleted.id).await.unwrap());
        assert_eq!(states(&store, &space, &deleted.id).await[&e.id], cancelled);

        // Changed without the store (as by another path): claiming cancels instead of returning.
        let mut db = PgConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE webhooks SET enabled = FALSE WHERE id = $1")
            .bind(behind_our_back.id.as_str())
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(gone_behind_our_back.id.as_str())
            .execute(&mut db)
            .await
            .unwrap();
        let claim = claim_at(T0 + 2 * SECOND, 10, 10, &[], "n");
        assert!(store.claim_deliveries(&claim).await.unwrap().is_empty());
        for w in [&behind_our_back, &gone_behind_our_back] {
            let d = &store
                .list_deliveries(&space, &w.id, None, None, 10)
                .await
                .unwrap()
                .items[0];
            assert_eq!(d.status, DeliveryStatus::Cancelled);
            assert_eq!(d.update_time, claim.now);
        }
        let leased: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE lease_until IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(leased, 0);

        // A manual retry makes a cancelled delivery pending and due now.
        let d = store
            .list_deliveries(&space, &disabled.id, None, None, 10)
            .await
            .unwrap()
            .items[0]
            .clone();
        let retry_now = Timestamp::from_micros(T0 + 3 * SECOND);
        let retried = store
            .retry_delivery(&space, &disabled.id, &d.id, retry_now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retried.status, DeliveryStatus::Pending);
        assert_eq!(retried.next_attempt_time, Some(retry_now));
        assert_eq!(retried.update_time, retry_now);
        assert!(store
            .retry_delivery(&space, &deleted.id, &d.id, retry_now)
            .await
            .unwrap()
            .is_none());
        let claimed = store
            .claim_deliveries(&claim_at(T0 + 3 * SECOND, 10, 10, &[], "n"))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].delivery_id, d.id);
    })
    .await;
}

/// One attempt twice in a batch (its lease ran out and it was claimed again before either
/// result was recorded) counts once, as an attempt recorded already does: the first wins.
#[tokio::test]
async fn an_attempt_twice_in_one_batch_counts_once() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = store.as_ref();
            let (space, w) = space_with_webhook(store).await;
            let e = event(&space, "payment.completed", T0);
            publish(store, &e).await;
            let claimed = store
                .claim_deliveries(&claim_at(T0 + SECOND, 10, 10, &[], "n"))
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{backend}");
            let first = result(&claimed[0], NextStep::Succeeded, Some(200), T0 + 2 * SECOND);
            // Were it counted, this exhausted delivery would raise a failing alert at once.
            let again = result(
                &claimed[0],
                NextStep::Failed { disable_webhook: false },
                Some(500),
                T0 + 3 * SECOND,
            );
            store.record_attempts(&[first.clone(), again], &POLICY).await.unwrap();
            let state = states(store, &space, &w.id).await[&e.id];
            assert_eq!(state, (DeliveryStatus::Succeeded, 1, None), "{backend}");
            let detail = store
                .get_delivery(&space, &w.id, &claimed[0].delivery_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(detail.attempts, [first.attempt], "{backend}");
            assert!(
                store
                    .list_alerts(&space, &w.id, None, 10)
                    .await
                    .unwrap()
                    .items
                    .is_empty(),
                "{backend}: the ignored failure raised nothing"
            );
        }
    })
    .await;
}

/// The same script against both backends gives the same claims, the same states and the
/// same alerts: the PostgreSQL claim query makes SQLite's choice.
#[tokio::test]
async fn claims_and_outcomes_match_sqlite() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let space = SpaceId::generate();
        let hooks: Vec<Webhook> = (0..5)
            .map(|i| webhook(&space, &["payment.completed", "payout.failed"][..1 + i % 2], T0))
            .collect();
        // Deliberately uneven: webhook 0 has a long backlog, due times collide.
        let mut events = Vec::new();
        for i in 0..40_i64 {
            let name = if i % 3 == 0 {
                "payout.failed"
            } else {
                "payment.completed"
            };
            events.push(event(&space, name, T0 + (i / 4) * SECOND));
        }
        let dir = tempfile::tempdir().unwrap();
        let sqlite: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("hr.db"), cipher.clone())
                .await
                .unwrap(),
        );
        let postgres: Arc<dyn Store> = hookrelay_store::open_with(
            &DatabaseLocation::parse(&url).unwrap(),
            cipher.clone(),
            &OpenOptions {
                max_connections: 3,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
        let a = script(sqlite, &space, &hooks, &events).await;
        let b = script(postgres, &space, &hooks, &events).await;
        assert_eq!(a.len(), b.len());
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a, b, "step {i} differs (left SQLite, right PostgreSQL)");
        }
    })
    .await;
}

async fn script(store: Arc<dyn Store>, space: &SpaceId, hooks: &[Webhook], events: &[Event]) -> Vec<String> {
    store.ensure_space(space).await.unwrap();
    for w in hooks {
        store.create_webhook(w, None).await.unwrap();
    }
    let mut trace = Vec::new();
    for e in events {
        trace.push(format!("publish {} -> {}", e.id, publish(&*store, e).await));
    }
    let hook_index = |id: &WebhookId| hooks.iter().position(|w| &w.id == id).unwrap();
    let event_index = |id: &EventId| events.iter().position(|e| &e.id == id).unwrap();
    let mut now = T0 + 3 * SECOND;
    for round in 0..8 {
        let skip: Vec<&WebhookId> = hooks.iter().skip(round % 5).take(1).map(|w| &w.id).collect();
        let claimed = store.claim_deliveries(&claim_at(now, 6, 2, &skip, "n")).await.unwrap();
        trace.push(format!(
            "round {round} at {now}: {:?}",
            claimed
                .iter()
                .map(|c| (event_index(&c.event.id), hook_index(&c.webhook.id), c.attempt))
                .collect::<Vec<_>>()
        ));
        let results: Vec<AttemptResult> = claimed
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let next = match (i + round) % 4 {
                    0 => NextStep::Succeeded,
                    1 => NextStep::RetryAt(Timestamp::from_micros(now + SECOND)),
                    2 if round == 5 => NextStep::Failed { disable_webhook: true },
                    2 => NextStep::RetryAt(Timestamp::from_micros(now + 2 * SECOND)),
                    _ => NextStep::Failed { disable_webhook: false },
                };
                result(c, next, Some(500), now + 10)
            })
            .collect();
        let queued = store.record_attempts(&results, &POLICY).await.unwrap();
        trace.push(format!("alerts queued: {queued}"));
        trace.push(format!(
            "next due: {:?}",
            store.next_due_time(Timestamp::from_micros(now), &[]).await.unwrap()
        ));
        now += SECOND;
    }
    for (i, w) in hooks.iter().enumerate() {
        let mut s: Vec<_> = states(&*store, space, &w.id)
            .await
            .into_iter()
            .map(|(e, state)| (event_index(&e), state))
            .collect();
        s.sort_by_key(|(e, _)| *e);
        trace.push(format!("webhook {i}: {s:?}"));
        let current = store.get_webhook(space, &w.id).await.unwrap().unwrap();
        trace.push(format!(
            "webhook {i} enabled {} updated {:?}",
            current.enabled, current.update_time
        ));
        for alert in store.list_alerts(space, &w.id, None, 100).await.unwrap().items {
            trace.push(format!(
                "webhook {i} alert {:?} {:?} at {:?} to {:?}: {:?} {:?} {:?}",
                alert.kind,
                alert.status,
                alert.create_time,
                alert.recipients,
                alert.message.subject,
                alert.message.text,
                alert.message.html
            ));
        }
    }
    trace
}

// ---- webhook health and alerts ------------------------------------------------------

const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;

/// Both backends, for scenarios whose outcome must not depend on the backend: SQLite in
/// a file of the returned directory (kept as long as it is), PostgreSQL at `url`.
async fn both_backends(url: &str) -> (tempfile::TempDir, Vec<(&'static str, Arc<dyn Store>)>) {
    let cipher = new_cipher();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("hr.db"), cipher.clone())
            .await
            .unwrap(),
    );
    let postgres: Arc<dyn Store> = Arc::new(open(url, &cipher).await);
    (dir, vec![("SQLite", sqlite), ("PostgreSQL", postgres)])
}

fn retry_at(at: i64) -> NextStep {
    NextStep::RetryAt(Timestamp::from_micros(at))
}

const EXHAUSTED: NextStep = NextStep::Failed { disable_webhook: false };
const GONE: NextStep = NextStep::Failed { disable_webhook: true };

/// Claims the one delivery due first at `now` and records an attempt of it, answered
/// with `status`, that finishes at `now` and ends as `next`. Returns the alerts queued.
async fn attempt(store: &dyn Store, now: i64, status: Option<u16>, next: NextStep) -> u32 {
    let claimed = store.claim_deliveries(&claim_at(now, 1, 1, &[], "n")).await.unwrap();
    assert_eq!(claimed.len(), 1, "a delivery is due at {now}");
    store
        .record_attempts(&[result(&claimed[0], next, status, now)], &POLICY)
        .await
        .unwrap()
}

async fn alert_kinds(store: &dyn Store, space: &SpaceId, webhook: &WebhookId) -> Vec<AlertKind> {
    let page = store.list_alerts(space, webhook, None, 100).await.unwrap();
    page.items.iter().map(|a| a.kind).collect()
}

#[tokio::test]
async fn failing_alerts_follow_the_policy_and_recovery_is_told() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = &**store;
            let space = new_space(store).await;
            let w = webhook(&space, &["payment.completed"], T0);
            let mut silent = webhook(&space, &["payout.failed"], T0);
            silent.alert_emails.clear();
            store.create_webhook(&w, None).await.unwrap();
            store.create_webhook(&silent, None).await.unwrap();
            publish(store, &event(&space, "payment.completed", T0)).await;

            // POLICY: failing after three failed attempts in a row.
            let t = T0 + SECOND;
            assert_eq!(attempt(store, t, Some(500), retry_at(t + SECOND)).await, 0, "{backend}");
            assert_eq!(
                attempt(store, t + SECOND, Some(500), retry_at(t + 2 * SECOND)).await,
                0,
                "{backend}"
            );
            let alerted_at = t + 2 * SECOND;
            assert_eq!(
                attempt(store, alerted_at, Some(500), retry_at(t + 3 * SECOND)).await,
                1,
                "{backend}"
            );
            let listed = store.list_alerts(&space, &w.id, None, 10).await.unwrap();
            assert_eq!(listed.items.len(), 1, "{backend}");
            assert!(listed.next.is_none(), "{backend}");
            let failing = &listed.items[0];
            assert_eq!(failing.kind, AlertKind::Failing, "{backend}");
            assert_eq!(failing.status, AlertStatus::Pending, "{backend}");
            assert_eq!((&failing.space_id, &failing.webhook_id), (&space, &w.id), "{backend}");
            assert_eq!(failing.recipients, w.alert_emails, "{backend}");
            assert_eq!(failing.attempts, 0, "{backend}");
            assert_eq!(failing.next_attempt_time, Some(Timestamp::from_micros(alerted_at)));
            assert_eq!(failing.create_time, Timestamp::from_micros(alerted_at));
            assert_eq!((failing.sent_time, failing.last_error.as_deref()), (None, None));
            assert_eq!(
                failing.message.subject,
                format!("[hookrelay] Webhook \"{}\" is failing", w.name)
            );
            for expected in ["Failed attempts: 3", "HTTP 500", "status 500", w.id.as_str()] {
                assert!(
                    failing.message.text.contains(expected),
                    "{backend}: {expected:?} missing from {:?}",
                    failing.message.text
                );
            }
            assert!(failing.message.html.contains("HTTP 500"), "{backend}");
            // Alerts are the space's own.
            assert!(store
                .list_alerts(&SpaceId::generate(), &w.id, None, 10)
                .await
                .unwrap()
                .items
                .is_empty());

            // Within the quiet period more failures raise nothing, an exhausted delivery
            // included; the first failure after it raises the next alert.
            assert_eq!(
                attempt(store, t + 3 * SECOND, Some(502), EXHAUSTED).await,
                0,
                "{backend}"
            );
            publish(store, &event(&space, "payment.completed", t + 4 * SECOND)).await;
            let quiet_until = alerted_at + HOUR;
            assert_eq!(
                attempt(store, quiet_until - 1, Some(500), retry_at(quiet_until)).await,
                0,
                "{backend}"
            );
            assert_eq!(
                attempt(store, quiet_until, Some(500), retry_at(quiet_until + 1)).await,
                1,
                "{backend}"
            );

            // The first success after a failing alert tells of the recovery, once.
            assert_eq!(
                attempt(store, quiet_until + 1, Some(200), NextStep::Succeeded).await,
                1,
                "{backend}"
            );
            publish(store, &event(&space, "payment.completed", quiet_until + 2)).await;
            assert_eq!(
                attempt(store, quiet_until + 3, Some(200), NextStep::Succeeded).await,
                0,
                "{backend}"
            );
            let listed = store.list_alerts(&space, &w.id, None, 10).await.unwrap().items;
            let kinds: Vec<_> = listed.iter().map(|a| a.kind).collect();
            assert_eq!(
                kinds,
                [AlertKind::Recovered, AlertKind::Failing, AlertKind::Failing],
                "{backend}: newest first"
            );
            assert_eq!(
                listed[0].message.subject,
                format!("[hookrelay] Webhook \"{}\" has recovered", w.name)
            );
            assert!(!listed[0].message.text.contains("status 500"), "{backend}");

            // Without alertEmails nothing is queued, but health is still kept: once
            // addresses are set, the recovery of the failure it went through is told.
            let at = quiet_until + HOUR;
            publish(store, &event(&space, "payout.failed", at)).await;
            for i in 0..4 {
                let n = attempt(store, at + i, Some(500), retry_at(at + i + 1)).await;
                assert_eq!(n, 0, "{backend}: failure {i} of a webhook without alertEmails");
            }
            assert!(alert_kinds(store, &space, &silent.id).await.is_empty(), "{backend}");
            let patch = WebhookPatch {
                alert_emails: Some(vec!["new@example.com".into()]),
                ..WebhookPatch::default()
            };
            store
                .update_webhook(&space, &silent.id, &patch, Timestamp::from_micros(at + 4))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                attempt(store, at + 4, Some(204), NextStep::Succeeded).await,
                1,
                "{backend}"
            );
            let told = store.list_alerts(&space, &silent.id, None, 10).await.unwrap().items;
            assert_eq!(told.len(), 1, "{backend}");
            assert_eq!(told[0].kind, AlertKind::Recovered, "{backend}");
            assert_eq!(told[0].recipients, ["new@example.com"], "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn failing_too_long_or_gone_disables_the_webhook_once() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = &**store;
            let space = new_space(store).await;
            let w = webhook(&space, &["payment.completed"], T0);
            let gone = webhook(&space, &["payout.failed"], T0);
            store.create_webhook(&w, None).await.unwrap();
            store.create_webhook(&gone, None).await.unwrap();
            let events: Vec<Event> = (0..3).map(|i| event(&space, "payment.completed", T0 + i)).collect();
            for e in &events {
                publish(store, e).await;
            }

            // Three attempts in flight at once; the second fails a day after the first
            // failure began (POLICY: disabled after a day).
            let t = T0 + SECOND;
            let claimed = store.claim_deliveries(&claim_at(t, 3, 3, &[], "n")).await.unwrap();
            assert_eq!(claimed.len(), 3, "{backend}");
            let record = |i: usize, next: NextStep, status: u16, finish: i64| {
                let claimed = claimed[i].clone();
                async move {
                    store
                        .record_attempts(&[result(&claimed, next, Some(status), finish)], &POLICY)
                        .await
                        .unwrap()
                }
            };
            assert_eq!(record(0, retry_at(t + 100 * DAY), 500, t).await, 0, "{backend}");
            let disabled_at = t + DAY;
            assert_eq!(
                record(1, retry_at(disabled_at + SECOND), 500, disabled_at).await,
                1,
                "{backend}"
            );
            let current = store.get_webhook(&space, &w.id).await.unwrap().unwrap();
            assert!(!current.enabled, "{backend}");
            assert_eq!(current.update_time, Timestamp::from_micros(disabled_at), "{backend}");
            let cancelled = states(store, &space, &w.id).await;
            assert!(
                cancelled.values().all(|s| s.0 == DeliveryStatus::Cancelled),
                "{backend}: {cancelled:?}"
            );
            let listed = store.list_alerts(&space, &w.id, None, 10).await.unwrap().items;
            assert_eq!(listed.len(), 1, "{backend}");
            assert_eq!(listed[0].kind, AlertKind::Disabled, "{backend}");
            assert_eq!(
                listed[0].message.subject,
                format!("[hookrelay] Webhook \"{}\" was disabled", w.name)
            );

            // The third attempt, still in flight, fails too: the webhook is disabled
            // already, so no second mail and no change to it.
            assert_eq!(
                record(2, retry_at(disabled_at + DAY), 500, disabled_at + SECOND).await,
                0
            );
            assert_eq!(
                alert_kinds(store, &space, &w.id).await,
                [AlertKind::Disabled],
                "{backend}"
            );
            let after = store.get_webhook(&space, &w.id).await.unwrap().unwrap();
            assert_eq!(after.update_time, current.update_time, "{backend}");
            assert_eq!(
                states(store, &space, &w.id).await[&events[2].id].0,
                DeliveryStatus::Cancelled
            );

            // Re-enabling starts the failure record afresh: a failure right after does
            // not disable it again although the first failure began over a day ago.
            let on = WebhookPatch {
                enabled: Some(true),
                ..WebhookPatch::default()
            };
            let reenabled_at = disabled_at + 2 * SECOND;
            store
                .update_webhook(&space, &w.id, &on, Timestamp::from_micros(reenabled_at))
                .await
                .unwrap()
                .unwrap();
            publish(store, &event(&space, "payment.completed", reenabled_at)).await;
            assert_eq!(
                attempt(store, reenabled_at + SECOND, Some(500), retry_at(t + 100 * DAY)).await,
                0,
                "{backend}"
            );
            assert!(
                store.get_webhook(&space, &w.id).await.unwrap().unwrap().enabled,
                "{backend}"
            );
            assert_eq!(
                alert_kinds(store, &space, &w.id).await,
                [AlertKind::Disabled],
                "{backend}"
            );

            // 410 Gone: the webhook is disabled and its owners told, once, even with a
            // second 410 in flight. Its update_time was set ahead of the attempts' clock
            // (a PATCH from a node whose clock runs fast): it still moves forward.
            let patched_at = T0 + 10 * DAY;
            let rename = WebhookPatch {
                name: Some("Gone soon".into()),
                ..WebhookPatch::default()
            };
            store
                .update_webhook(&space, &gone.id, &rename, Timestamp::from_micros(patched_at))
                .await
                .unwrap()
                .unwrap();
            let t2 = reenabled_at + 2 * SECOND;
            for i in 0..2 {
                publish(store, &event(&space, "payout.failed", t2 + i)).await;
            }
            let in_flight = store
                .claim_deliveries(&claim_at(t2 + 2, 10, 10, &[], "n"))
                .await
                .unwrap();
            assert_eq!(in_flight.len(), 2, "{backend}");
            let first = store
                .record_attempts(&[result(&in_flight[0], GONE, Some(410), t2 + 3)], &POLICY)
                .await
                .unwrap();
            // One e-mail: "disabled" says it all, no "failing" beside it.
            assert_eq!(first, 1, "{backend}");
            assert_eq!(
                alert_kinds(store, &space, &gone.id).await,
                [AlertKind::Disabled],
                "{backend}"
            );
            let current = store.get_webhook(&space, &gone.id).await.unwrap().unwrap();
            assert!(!current.enabled, "{backend}");
            assert_eq!(current.name, "Gone soon");
            assert_eq!(
                current.update_time,
                Timestamp::from_micros(patched_at + 1_000),
                "{backend}"
            );
            let second = store
                .record_attempts(&[result(&in_flight[1], GONE, Some(410), t2 + 4)], &POLICY)
                .await
                .unwrap();
            assert_eq!(second, 0, "{backend}");
            assert_eq!(
                store.get_webhook(&space, &gone.id).await.unwrap().unwrap().update_time,
                current.update_time,
                "{backend}"
            );
            let s = states(store, &space, &gone.id).await;
            assert!(s.values().all(|s| s.0 == DeliveryStatus::Failed), "{backend}: {s:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn finishing_alerts_and_listing_them_in_pages() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = &**store;
            let space = new_space(store).await;
            let hooks: Vec<Webhook> = (0..3).map(|_| webhook(&space, &["payment.completed"], T0)).collect();
            for w in &hooks {
                store.create_webhook(w, None).await.unwrap();
            }
            publish(store, &event(&space, "payment.completed", T0)).await;
            // Each webhook's only delivery is exhausted: three failing alerts.
            let t = T0 + SECOND;
            let claimed = store.claim_deliveries(&claim_at(t, 10, 10, &[], "n")).await.unwrap();
            let results: Vec<AttemptResult> = claimed.iter().map(|c| result(c, EXHAUSTED, Some(500), t)).collect();
            assert_eq!(store.record_attempts(&results, &POLICY).await.unwrap(), 3, "{backend}");

            let lease = |now: i64| (Timestamp::from_micros(now), Timestamp::from_micros(now + LEASE));
            let (now, until) = lease(t);
            let alerts = store.claim_alerts(now, until, 10).await.unwrap();
            let order: Vec<&WebhookId> = alerts.iter().map(|a| &a.webhook_id).collect();
            let recorded: Vec<&WebhookId> = claimed.iter().map(|c| &c.webhook.id).collect();
            assert_eq!(order, recorded, "{backend}: raised first, claimed first");
            assert!(
                store.claim_alerts(now, until, 10).await.unwrap().is_empty(),
                "{backend}"
            );
            let (sent, retried, skipped) = (&alerts[0], &alerts[1], &alerts[2]);

            let finished_at = Timestamp::from_micros(t + 5);
            store
                .finish_alert(&sent.id, &hookrelay_store::AlertOutcome::Sent, finished_at)
                .await
                .unwrap();
            let retry = hookrelay_store::AlertOutcome::Retry {
                at: Timestamp::from_micros(t + HOUR),
                error: "421 try again later".into(),
            };
            store.finish_alert(&retried.id, &retry, finished_at).await.unwrap();
            store
                .finish_alert(&skipped.id, &hookrelay_store::AlertOutcome::Skipped, finished_at)
                .await
                .unwrap();
            let read = |alert: &hookrelay_core::alert::Alert| {
                let (space, webhook, id) = (space.clone(), alert.webhook_id.clone(), alert.id.clone());
                async move {
                    let page = store.list_alerts(&space, &webhook, None, 10).await.unwrap();
                    page.items.into_iter().find(|a| a.id == id).unwrap()
                }
            };
            let now_sent = read(sent).await;
            assert_eq!(now_sent.status, AlertStatus::Sent, "{backend}");
            assert_eq!(
                (now_sent.attempts, now_sent.sent_time, now_sent.next_attempt_time),
                (1, Some(finished_at), None),
                "{backend}"
            );
            let now_retried = read(retried).await;
            assert_eq!(now_retried.status, AlertStatus::Pending, "{backend}");
            assert_eq!(now_retried.attempts, 1, "{backend}");
            assert_eq!(now_retried.next_attempt_time, Some(Timestamp::from_micros(t + HOUR)));
            assert_eq!(now_retried.last_error.as_deref(), Some("421 try again later"));
            assert_eq!(now_retried.sent_time, None, "{backend}");
            let now_skipped = read(skipped).await;
            assert_eq!(now_skipped.status, AlertStatus::Skipped, "{backend}");
            assert_eq!((now_skipped.attempts, now_skipped.sent_time), (1, None), "{backend}");

            // Finishing clears the lease: the retried alert is claimable when due, not
            // before, and the settled ones never again.
            let (now, until) = lease(t + HOUR - 1);
            assert!(
                store.claim_alerts(now, until, 10).await.unwrap().is_empty(),
                "{backend}"
            );
            let (now, until) = lease(t + HOUR);
            let again = store.claim_alerts(now, until, 10).await.unwrap();
            assert_eq!(again.len(), 1, "{backend}");
            assert_eq!(again[0].id, retried.id, "{backend}");
            assert_eq!(again[0].attempts, 1, "{backend}");
            store
                .finish_alert(&retried.id, &hookrelay_store::AlertOutcome::Skipped, now)
                .await
                .unwrap();
            let now_retried = read(retried).await;
            assert_eq!(
                (now_retried.status, now_retried.attempts),
                (AlertStatus::Skipped, 2),
                "{backend}"
            );
            assert_eq!(
                now_retried.last_error.as_deref(),
                Some("421 try again later"),
                "{backend}: the last error is kept"
            );
            let (now, until) = lease(t + 100 * DAY);
            assert!(
                store.claim_alerts(now, until, 10).await.unwrap().is_empty(),
                "{backend}"
            );

            // Five alerts of one webhook (exhausted deliveries, a quiet period apart),
            // listed two at a time, newest first.
            let w = &hooks[0];
            for i in 0..5 {
                publish(store, &event(&space, "payment.completed", t + 2 * HOUR * (i + 1))).await;
            }
            for i in 0..5 {
                let at = t + 2 * HOUR * (i + 1) + 1;
                let claimed = store
                    .claim_deliveries(&claim_at(at, 1, 1, &[&hooks[1].id, &hooks[2].id], "n"))
                    .await
                    .unwrap();
                assert_eq!(claimed.len(), 1, "{backend}");
                let n = store
                    .record_attempts(&[result(&claimed[0], EXHAUSTED, Some(500), at)], &POLICY)
                    .await
                    .unwrap();
                assert_eq!(n, 1, "{backend}");
            }
            let all: Vec<_> = store
                .list_alerts(&space, &w.id, None, 100)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|a| (a.id, a.create_time))
                .collect();
            assert_eq!(all.len(), 6, "{backend}");
            assert!(all.windows(2).all(|p| p[0].1 > p[1].1), "{backend}: newest first");
            let mut paged = Vec::new();
            let mut after = None;
            let mut pages = 0;
            loop {
                let page = store.list_alerts(&space, &w.id, after, 2).await.unwrap();
                assert_eq!(page.items.len(), 2, "{backend}");
                pages += 1;
                paged.extend(page.items.into_iter().map(|a| (a.id, a.create_time)));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(pages, 3, "{backend}");
            assert_eq!(paged, all, "{backend}");
            assert_eq!(
                store
                    .list_alerts(&space, &hooks[1].id, None, 100)
                    .await
                    .unwrap()
                    .items
                    .len(),
                1,
                "{backend}"
            );
        }
    })
    .await;
}

/// Several nodes' alerters claim from one table: every alert is claimed by exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_alert_claimers_never_share_an_alert() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let setup = open(&url, &cipher).await;
        let space = new_space(&setup).await;
        const TOTAL: usize = 60;
        for _ in 0..TOTAL {
            setup
                .create_webhook(&webhook(&space, &["payment.completed"], T0), None)
                .await
                .unwrap();
        }
        publish(&setup, &event(&space, "payment.completed", T0)).await;
        let t = T0 + SECOND;
        let claimed = setup.claim_deliveries(&claim_at(t, 100, 1, &[], "n")).await.unwrap();
        assert_eq!(claimed.len(), TOTAL);
        let results: Vec<AttemptResult> = claimed.iter().map(|c| result(c, EXHAUSTED, Some(500), t)).collect();
        assert_eq!(setup.record_attempts(&results, &POLICY).await.unwrap() as usize, TOTAL);

        let now = Timestamp::from_micros(t + SECOND);
        let until = Timestamp::from_micros(t + SECOND + LEASE);
        let claimed_so_far = Arc::new(AtomicUsize::new(0));
        let all = Arc::new(Mutex::new(Vec::new()));
        let mut nodes = Vec::new();
        for node in 0..4 {
            // Each node with its own pool, as separate processes have.
            let node_store = open(&url, &cipher).await;
            let (claimed_so_far, all) = (claimed_so_far.clone(), all.clone());
            nodes.push(tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    let claimed = node_store.claim_alerts(now, until, 3).await.unwrap();
                    if claimed.is_empty() {
                        if claimed_so_far.load(Ordering::SeqCst) >= TOTAL {
                            return;
                        }
                        assert!(started.elapsed() < Duration::from_secs(60), "claiming stalled");
                        tokio::task::yield_now().await;
                        continue;
                    }
                    claimed_so_far.fetch_add(claimed.len(), Ordering::SeqCst);
                    all.lock().unwrap().extend(claimed.into_iter().map(|a| (a.id, node)));
                }
            }));
        }
        for node in nodes {
            node.await.unwrap();
        }
        let all = all.lock().unwrap().clone();
        let distinct: HashSet<_> = all.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(all.len(), TOTAL);
        assert_eq!(distinct.len(), TOTAL, "an alert was claimed twice");

        // While the leases hold nobody else gets them; after, another node does.
        assert!(setup.claim_alerts(now, until, 100).await.unwrap().is_empty());
        let expired = Timestamp::from_micros(until.as_micros() + 1);
        let taken_over = setup
            .claim_alerts(expired, Timestamp::from_micros(expired.as_micros() + LEASE), 100)
            .await
            .unwrap();
        assert_eq!(taken_over.len(), TOTAL);

        // A mail server's answer may hold a NUL byte, which PostgreSQL's TEXT refuses.
        let retry = hookrelay_store::AlertOutcome::Retry {
            at: Timestamp::from_micros(t + HOUR),
            error: "550 no\0such user".into(),
        };
        let alert = &taken_over[0];
        setup.finish_alert(&alert.id, &retry, expired).await.unwrap();
        let stored = setup
            .list_alerts(&space, &alert.webhook_id, None, 10)
            .await
            .unwrap()
            .items
            .remove(0);
        assert_eq!(stored.last_error.as_deref(), Some("550 no\u{fffd}such user"));
    })
    .await;
}

/// A response body with a NUL byte (stored by PostgreSQL as bytes) reaches the alert.
#[tokio::test]
async fn response_bodies_with_nul_bytes_reach_health_and_alerts() {
    with_database(|url| async move {
        let store = open(&url, &new_cipher()).await;
        let space = new_space(&store).await;
        let w = webhook(&space, &["payment.completed"], T0);
        store.create_webhook(&w, None).await.unwrap();
        publish(&store, &event(&space, "payment.completed", T0)).await;
        let claimed = store.claim_deliveries(&claim_at(T0, 1, 1, &[], "n")).await.unwrap();
        let mut failed = result(&claimed[0], EXHAUSTED, Some(500), T0 + 1);
        failed.attempt.response_body = Some("bad\0gateway é".into());
        assert_eq!(store.record_attempts(&[failed], &POLICY).await.unwrap(), 1);
        let alert = &store.list_alerts(&space, &w.id, None, 10).await.unwrap().items[0];
        assert!(
            alert.message.text.contains("bad\0gateway é"),
            "{:?}",
            alert.message.text
        );
        assert!(alert.message.html.contains("bad\0gateway é"));
        let mut db = PgConnection::connect(&url).await.unwrap();
        let kept: Vec<u8> = sqlx::query_scalar("SELECT last_response_body FROM webhook_health WHERE webhook_id = $1")
            .bind(w.id.as_str())
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(kept, "bad\0gateway é".as_bytes());
    })
    .await;
}

/// At `serve` start SQLite gives back every claim (its one process died); PostgreSQL
/// gives back none (they may be live nodes'). Opening a store never releases them.
#[tokio::test]
async fn orphaned_claims_are_released_on_sqlite_only() {
    with_database(|url| async move {
        let (dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = &**store;
            let (space, _) = space_with_webhook(store).await;
            publish(store, &event(&space, "payment.completed", T0)).await;
            publish(store, &event(&space, "payment.completed", T0 + 1)).await;
            let t = T0 + SECOND;
            assert_eq!(attempt(store, t, Some(500), EXHAUSTED).await, 1, "{backend}");
            let (now, until) = (Timestamp::from_micros(t), Timestamp::from_micros(t + LEASE));
            assert_eq!(store.claim_alerts(now, until, 10).await.unwrap().len(), 1);
            let leased = store.claim_deliveries(&claim_at(t, 10, 10, &[], "n")).await.unwrap();
            assert_eq!(leased.len(), 1, "{backend}");

            // `hookrelay token create` opens the store while a server runs.
            if *backend == "SQLite" {
                let cipher = new_cipher();
                drop(SqliteStore::open(&dir.path().join("hr.db"), cipher).await.unwrap());
            }
            assert!(store
                .claim_deliveries(&claim_at(t, 10, 10, &[], "n"))
                .await
                .unwrap()
                .is_empty());
            assert!(store.claim_alerts(now, until, 10).await.unwrap().is_empty());

            let released = store.release_orphaned_claims().await.unwrap();
            let expected = if *backend == "SQLite" { 2 } else { 0 };
            assert_eq!(released, expected, "{backend}: one delivery and one alert");
            let deliveries = store.claim_deliveries(&claim_at(t, 10, 10, &[], "n")).await.unwrap();
            assert_eq!(deliveries.len() as u64, expected / 2, "{backend}");
            let alerts = store.claim_alerts(now, until, 10).await.unwrap();
            assert_eq!(alerts.len() as u64, expected / 2, "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_retry_while_an_attempt_is_in_flight_outlives_its_record() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = &**store;
            let (space, w) = space_with_webhook(store).await;
            let e = event(&space, "payment.completed", T0);
            publish(store, &e).await;
            let claimed = store
                .claim_deliveries(&claim_at(T0 + 10, 1, 1, &[], "n"))
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{backend}");
            // Retried while the attempt is out: still leased, so not claimable yet.
            let retried_at = T0 + 20;
            store
                .retry_delivery(
                    &space,
                    &w.id,
                    &claimed[0].delivery_id,
                    Timestamp::from_micros(retried_at),
                )
                .await
                .unwrap()
                .unwrap();
            assert!(
                store
                    .claim_deliveries(&claim_at(T0 + 30, 1, 1, &[], "m"))
                    .await
                    .unwrap()
                    .is_empty(),
                "{backend}: a delivery with an attempt in flight was claimed again"
            );
            // The attempt succeeds; the retry still stands, due when it was asked.
            store
                .record_attempts(&[result(&claimed[0], NextStep::Succeeded, Some(200), T0 + 40)], &POLICY)
                .await
                .unwrap();
            let state = states(store, &space, &w.id).await[&e.id];
            assert_eq!(state, (DeliveryStatus::Pending, 1, Some(retried_at)), "{backend}");
            let again = store
                .claim_deliveries(&claim_at(T0 + 50, 1, 1, &[], "n"))
                .await
                .unwrap();
            assert_eq!(again.len(), 1, "{backend}");
            assert_eq!(again[0].attempt, 2, "{backend}");
            // Its record, with nothing changed meanwhile, settles it.
            store
                .record_attempts(&[result(&again[0], NextStep::Succeeded, Some(200), T0 + 60)], &POLICY)
                .await
                .unwrap();
            let state = states(store, &space, &w.id).await[&e.id];
            assert_eq!(state, (DeliveryStatus::Succeeded, 2, None), "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn work_stored_on_one_node_wakes_the_others() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let publisher = open(&url, &cipher).await;
        let listener = open(&url, &cipher).await;
        let (woken, mut wakes) = tokio::sync::mpsc::unbounded_channel();
        listener
            .watch_for_work(Arc::new(move || {
                let _ = woken.send(());
            }))
            .await
            .unwrap();
        let (space, w) = space_with_webhook(&publisher).await;
        // Publishing: one event, then a burst, each told once it is committed: what woke
        // the other node is there for it to claim.
        assert_eq!(publish(&publisher, &event(&space, "payment.completed", T0)).await, 1);
        tokio::time::timeout(Duration::from_secs(10), wakes.recv())
            .await
            .expect("the other node was not woken after a publish");
        let first = listener
            .claim_deliveries(&claim_at(T0 + 100, 100, 100, &[], "listener"))
            .await
            .unwrap();
        assert_eq!(
            first.len(),
            1,
            "the published delivery is visible when the wake-up arrives"
        );
        settle(&mut wakes).await;
        let burst: Vec<Event> = (0..20).map(|i| event(&space, "payment.completed", T0 + i)).collect();
        let published = futures_util::future::join_all(burst.iter().map(|e| publish(&publisher, e))).await;
        assert_eq!(published, vec![1; 20]);
        woken_by(&mut wakes, "a burst of publishes").await;
        let pending = listener
            .claim_deliveries(&claim_at(T0 + 100, 100, 100, &[], "listener"))
            .await
            .unwrap();
        assert_eq!(pending.len(), 20, "everything published is there for the woken node");

        // A test event and a manual retry store due work too.
        let test = event(&space, "webhook.test", T0 + 200);
        let delivery = publisher.publish_test_event(&test, &w.id).await.unwrap();
        woken_by(&mut wakes, "a test event").await;
        let retried = publisher
            .retry_delivery(&space, &w.id, &delivery.id, Timestamp::from_micros(T0 + 300))
            .await
            .unwrap();
        assert!(retried.is_some());
        woken_by(&mut wakes, "a manual retry").await;
    })
    .await;
}

/// Waits until the other node is woken, then lets the wake-ups of the same burst pass.
async fn woken_by(wakes: &mut tokio::sync::mpsc::UnboundedReceiver<()>, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), wakes.recv())
        .await
        .unwrap_or_else(|_| panic!("the other node was not woken after {what}"));
    settle(wakes).await;
}

/// Lets the rest of a burst's wake-ups arrive and drops them: one burst may be told in one
/// notification or several, and the next step starts from none.
async fn settle(wakes: &mut tokio::sync::mpsc::UnboundedReceiver<()>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    while wakes.try_recv().is_ok() {}
}

/// A claimed delivery whose row cannot be read (here a corrupt attempt count, and a
/// webhook whose sealed secret was tampered with) is set aside for five minutes, and the
/// deliveries due after it go out: one bad row must not stop every claim. Mended, it goes
/// out at its next turn.
#[tokio::test]
async fn an_unreadable_delivery_is_set_aside_and_the_others_go_on() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.db");
        for backend in ["SQLite", "PostgreSQL"] {
            // Opened again after each change made behind its back: SQLite keeps
            // webhooks and fresh events in memory.
            let reopen = || async {
                let store: Arc<dyn Store> = match backend {
                    "SQLite" => Arc::new(SqliteStore::open(&path, cipher.clone()).await.unwrap()),
                    _ => Arc::new(open(&url, &cipher).await),
                };
                store
            };
            let raw = |sql: String| {
                let (path, url) = (path.clone(), url.clone());
                async move {
                    if backend == "SQLite" {
                        let connection = rusqlite::Connection::open(&path).unwrap();
                        connection.busy_timeout(Duration::from_secs(5)).unwrap();
                        connection.execute_batch(&sql).unwrap();
                    } else {
                        let mut connection = PgConnection::connect(&url).await.unwrap();
                        connection.execute(sql.as_str()).await.unwrap();
                    }
                }
            };
            let store = reopen().await;
            let (space, good) = space_with_webhook(store.as_ref()).await;
            let tampered = webhook(&space, &["payout.failed"], T0);
            store.create_webhook(&tampered, None).await.unwrap();
            let broken = event(&space, "payment.completed", T0);
            let sound = event(&space, "payment.completed", T0 + 1);
            let to_tampered = event(&space, "payout.failed", T0 + 2);
            for e in [&broken, &sound, &to_tampered] {
                publish(store.as_ref(), e).await;
            }
            drop(store);
            raw(format!(
                "UPDATE deliveries SET attempt_count = -5 WHERE event_id = '{}'",
                broken.id.as_str()
            ))
            .await;
            raw(format!(
                "UPDATE webhooks SET secret_sealed = headers_sealed WHERE id = '{}'",
                tampered.id.as_str()
            ))
            .await;
            let store = reopen().await;

            let t = T0 + SECOND;
            let claimed = store
                .claim_deliveries(&claim_at(t, 10, 10, &[], "n"))
                .await
                .unwrap_or_else(|e| panic!("{backend}: the claim failed: {e}"));
            let events: Vec<&EventId> = claimed.iter().map(|d| &d.event.id).collect();
            assert_eq!(events, [&sound.id], "{backend}: the readable delivery alone");
            assert_eq!(claimed[0].webhook.id, good.id, "{backend}");

            // Mended at once, it still waits out the five minutes it was set aside for
            // (its claim's own lease was 60 s), then goes out.
            drop(store);
            raw(format!(
                "UPDATE deliveries SET attempt_count = 0 WHERE event_id = '{}'",
                broken.id.as_str()
            ))
            .await;
            let store = reopen().await;
            let within = store
                .claim_deliveries(&claim_at(t + 4 * 60 * SECOND, 10, 10, &[], "n"))
                .await
                .unwrap();
            assert!(
                within.iter().all(|d| d.event.id != broken.id),
                "{backend}: the delivery set aside came back within five minutes"
            );
            let after = store
                .claim_deliveries(&claim_at(t + 6 * 60 * SECOND, 10, 10, &[], "n"))
                .await
                .unwrap_or_else(|e| panic!("{backend}: the claim failed: {e}"));
            // (The sound delivery, never recorded, is due again too.)
            let events: HashSet<&EventId> = after.iter().map(|d| &d.event.id).collect();
            assert_eq!(
                events,
                HashSet::from([&broken.id, &sound.id]),
                "{backend}: the mended delivery goes out; the tampered webhook's stays set aside"
            );
            let states = states(store.as_ref(), &space, &tampered.id).await;
            assert_eq!(
                states[&to_tampered.id].0,
                DeliveryStatus::Pending,
                "{backend}: set aside, not cancelled or failed"
            );
        }
    })
    .await;
}

/// On SQLite the engine keeps each webhook's prepared target under the store's webhook
/// epoch: a failed attempt moves it only when it disables the webhook, so a failing
/// receiver does not make every worker prepare its target again.
#[tokio::test]
async fn the_webhook_epoch_moves_when_a_failure_disables_a_webhook_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hr.db"), new_cipher())
        .await
        .unwrap();
    let store: &dyn Store = &store;
    let (space, w) = space_with_webhook(store).await;
    for i in 0..3 {
        publish(store, &event(&space, "payment.completed", T0 + i)).await;
    }
    let before = store.webhook_epoch();
    attempt(store, T0 + SECOND, Some(500), retry_at(T0 + 10 * SECOND)).await;
    attempt(store, T0 + 2 * SECOND, Some(503), EXHAUSTED).await;
    assert_eq!(store.webhook_epoch(), before, "failures that disable nothing");
    attempt(
        store,
        T0 + 3 * SECOND,
        Some(410),
        NextStep::Failed { disable_webhook: true },
    )
    .await;
    assert!(store.webhook_epoch() > before, "410 disabled the webhook");
    let disabled = store.get_webhook(&space, &w.id).await.unwrap().unwrap();
    assert!(!disabled.enabled, "read back as disabled, not from a stale cache");
}

/// A delivery is given back only under the lease it was claimed with: not by another
/// owner, and not under a lease of its own owner that ran out and was claimed again (a
/// queued copy giving back what a later claim of the same node holds).
#[tokio::test]
async fn a_release_gives_back_only_the_lease_it_names() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = store.as_ref();
            let (space, _) = space_with_webhook(store).await;
            publish(store, &event(&space, "payment.completed", T0)).await;
            let first = store.claim_deliveries(&claim_at(T0, 1, 1, &[], "a")).await.unwrap();
            assert_eq!(first.len(), 1, "{backend}");
            let id = first[0].delivery_id.clone();
            // The lease ran out; the same node claimed it again.
            let again = store
                .claim_deliveries(&claim_at(T0 + LEASE + 1, 1, 1, &[], "a"))
                .await
                .unwrap();
            assert_eq!(again.len(), 1, "{backend}");
            let now_leased = |at: i64| claim_at(at, 5, 5, &[], "probe");
            store
                .release_deliveries(std::slice::from_ref(&id), "a", Timestamp::from_micros(T0 + LEASE))
                .await
                .unwrap();
            store
                .release_deliveries(
                    std::slice::from_ref(&id),
                    "b",
                    Timestamp::from_micros(T0 + 2 * LEASE + 1),
                )
                .await
                .unwrap();
            assert!(
                store
                    .claim_deliveries(&now_leased(T0 + LEASE + 2))
                    .await
                    .unwrap()
                    .is_empty(),
                "{backend}: a release under an old lease or another owner's took the current lease"
            );
            store
                .release_deliveries(
                    std::slice::from_ref(&id),
                    "a",
                    Timestamp::from_micros(T0 + 2 * LEASE + 1),
                )
                .await
                .unwrap();
            let released = store.claim_deliveries(&now_leased(T0 + LEASE + 3)).await.unwrap();
            assert_eq!(released.len(), 1, "{backend}: released under its own lease");
            assert_eq!(released[0].delivery_id, id, "{backend}");
        }
    })
    .await;
}

// ---- nodes and takeover -----------------------------------------------------------------

fn node(id: &str, timeout_secs: u64) -> NodeBeat {
    NodeBeat {
        id: id.into(),
        host: "test-host".into(),
        pid: 4242,
        started: Timestamp::from_micros(T0),
        timeout: Duration::from_secs(timeout_secs),
    }
}

/// Moves node `id`'s last heartbeat `seconds` into the past, as if it had stopped.
async fn age_heartbeat(url: &str, id: &str, seconds: i64) {
    let mut db = PgConnection::connect(url).await.unwrap();
    let aged = sqlx::query("UPDATE nodes SET heartbeat_time = heartbeat_time - $1 WHERE id = $2")
        .bind(seconds * SECOND)
        .bind(id)
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(aged.rows_affected(), 1, "node {id} has a heartbeat");
}

fn delivery_ids(claimed: &[ClaimedDelivery]) -> Vec<DeliveryId> {
    let mut ids: Vec<DeliveryId> = claimed.iter().map(|c| c.delivery_id.clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids
}

/// A node whose heartbeat is older than its own timeout is dead: the deliveries it
/// leased are claimable at once, long before their leases run out. A live node's are
/// not, and neither are those of an owner that never wrote a heartbeat (a node of an
/// older version): they wait for their leases.
#[tokio::test]
async fn a_dead_nodes_deliveries_are_claimable_before_their_leases_run_out() {
    with_database(|url| async move {
        let cipher = new_cipher();
        let (a, b) = (open(&url, &cipher).await, open(&url, &cipher).await);
        let (space, _) = space_with_webhook(&a).await;
        for i in 0..3 {
            publish(&a, &event(&space, "payment.completed", T0 + i)).await;
        }
        assert!(a.beat(&node("a", 10)).await.unwrap().is_empty());
        assert!(b.beat(&node("b", 5)).await.unwrap().is_empty());
        let held = a
            .claim_deliveries(&claim_at(T0 + SECOND, 2, 2, &[], "a"))
            .await
            .unwrap();
        assert_eq!(held.len(), 2);
        let unknown = b
            .claim_deliveries(&claim_at(T0 + SECOND, 1, 1, &[], "old-version"))
            .await
            .unwrap();
        assert_eq!(unknown.len(), 1);

        let now = T0 + 2 * SECOND;
        let nothing_for = |owner: &'static str| claim_at(now, 10, 10, &[], owner);
        assert!(
            b.claim_deliveries(&nothing_for("b")).await.unwrap().is_empty(),
            "a is alive"
        );
        // Six seconds without a heartbeat: dead for a 5 s timeout, alive for its 10 s.
        age_heartbeat(&url, "a", 6).await;
        assert!(
            b.beat(&node("b", 5)).await.unwrap().is_empty(),
            "a's own timeout counts"
        );
        assert!(b.claim_deliveries(&nothing_for("b")).await.unwrap().is_empty());
        assert_eq!(b.next_due_time(Timestamp::from_micros(now), &[]).await.unwrap(), None);

        age_heartbeat(&url, "a", 5).await;
        assert_eq!(b.beat(&node("b", 5)).await.unwrap(), ["a"]);
        assert_eq!(
            b.next_due_time(Timestamp::from_micros(now), &[]).await.unwrap(),
            Some(Timestamp::from_micros(T0)),
            "the dead node's deliveries are due"
        );
        let taken = b.claim_deliveries(&nothing_for("b")).await.unwrap();
        assert_eq!(
            delivery_ids(&taken),
            delivery_ids(&held),
            "a's, not the unknown owner's"
        );
        assert!(taken.iter().all(|c| c.lease.owner == "b" && c.attempt == 1));
        // Taken under a live node's lease: no one else takes them now, and the dead
        // node's heartbeat coming back does not give them back to it.
        assert!(a.beat(&node("a", 10)).await.unwrap().is_empty());
        assert!(a.claim_deliveries(&nothing_for("a")).await.unwrap().is_empty());

        // Both are listed; a node silent for longer than asked is forgotten.
        let listed: Vec<(String, u32, Duration)> = a
            .nodes()
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.node.id, n.node.pid, n.node.timeout))
            .collect();
        assert_eq!(
            listed,
            [
                ("a".to_owned(), 4242, Duration::from_secs(10)),
                ("b".to_owned(), 4242, Duration::from_secs(5))
            ]
        );
        age_heartbeat(&url, "b", 7200).await;
        assert_eq!(a.forget_nodes(Duration::from_secs(3600)).await.unwrap(), 1);
        let left: Vec<String> = a.nodes().await.unwrap().into_iter().map(|n| n.node.id).collect();
        assert_eq!(left, ["a"]);
    })
    .await;
}

/// A node whose delivery was taken over may still record the attempt it had in flight:
/// kept as history, it changes neither the delivery (still under the new lease) nor the
/// webhook's health; the new holder's record settles the delivery.
#[tokio::test]
async fn a_record_under_a_lease_taken_over_is_history_only() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in &stores {
            let store = store.as_ref();
            let (space, w) = space_with_webhook(store).await;
            let e = event(&space, "payment.completed", T0);
            publish(store, &e).await;
            let old = store.claim_deliveries(&claim_at(T0, 1, 1, &[], "a")).await.unwrap();
            let taken_at = T0 + LEASE + 1;
            let new = store
                .claim_deliveries(&claim_at(taken_at, 1, 1, &[], "b"))
                .await
                .unwrap();
            assert_eq!(delivery_ids(&new), delivery_ids(&old), "{backend}");
            assert_eq!(new[0].attempt, 1, "{backend}");

            // The old holder's 410 arrives while the new holder's attempt is out.
            let gone = result(&old[0], GONE, Some(410), taken_at + 1);
            let alerts = store
                .record_attempts(std::slice::from_ref(&gone), &POLICY)
                .await
                .unwrap();
            assert_eq!(alerts, 0, "{backend}");
            assert!(
                store.get_webhook(&space, &w.id).await.unwrap().unwrap().enabled,
                "{backend}"
            );
            assert_eq!(
                states(store, &space, &w.id).await[&e.id].0,
                DeliveryStatus::Pending,
                "{backend}"
            );
            assert!(
                store
                    .claim_deliveries(&claim_at(taken_at + 2, 1, 1, &[], "c"))
                    .await
                    .unwrap()
                    .is_empty(),
                "{backend}: the new holder's lease stands"
            );

            let delivered = result(&new[0], NextStep::Succeeded, Some(200), taken_at + 3);
            store
                .record_attempts(std::slice::from_ref(&delivered), &POLICY)
                .await
                .unwrap();
            assert_eq!(
                states(store, &space, &w.id).await[&e.id],
                (DeliveryStatus::Succeeded, 1, None),
                "{backend}"
            );
            let attempts = store
                .get_delivery(&space, &w.id, &new[0].delivery_id)
                .await
                .unwrap()
                .unwrap()
                .attempts;
            // PostgreSQL keeps an attempt per start; SQLite, one node's file, one per
            // number, the one that counted.
            let expected = match *backend {
                "PostgreSQL" => vec![gone.attempt, delivered.attempt],
                _ => vec![delivered.attempt],
            };
            assert_eq!(attempts, expected, "{backend}");
            assert!(store
                .list_alerts(&space, &w.id, None, 10)
                .await
                .unwrap()
                .items
                .is_empty());
        }
    })
    .await;
}

/// SQLite serves one node and lists it from its last heartbeat.
#[tokio::test]
async fn sqlite_lists_its_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hr.db"), new_cipher())
        .await
        .unwrap();
    assert!(store.nodes().await.unwrap().is_empty());
    assert!(store.beat(&node("only", 5)).await.unwrap().is_empty());
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node, node("only", 5));
    assert!(nodes[0].alive_at(Timestamp::now()));
    assert_eq!(store.forget_nodes(Duration::ZERO).await.unwrap(), 0);
}

// ---- TLS ------------------------------------------------------------------------------

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

/// The server's own certificate, which (self-signed, as Debian's `ssl-cert-snakeoil`)
/// is also the root it verifies against. Panics unless the server offers TLS.
async fn server_certificate(admin: &mut PgConnection) -> String {
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&mut *admin).await.unwrap();
    assert_eq!(
        ssl, "on",
        "the TLS tests need a server with ssl = on (Debian's PostgreSQL has it, with its snakeoil certificate)"
    );
    sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut *admin)
        .await
        .unwrap()
}

/// Whether each of the server's sessions named `application` is encrypted.
async fn sessions_encrypted(admin: &mut PgConnection, application: &str) -> Vec<bool> {
    sqlx::query_scalar(
        "SELECT s.ssl FROM pg_stat_ssl AS s JOIN pg_stat_activity AS a USING (pid)
         WHERE a.application_name = $1",
    )
    .bind(application)
    .fetch_all(&mut *admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_connection_speaks_tls_as_the_url_asks() {
    with_database(|url| async move {
        let mut admin = admin_connection().await;
        let certificate = server_certificate(&mut admin).await;
        let cases = [
            ("sslmode=disable", false),
            ("sslmode=require", true),
            (&*format!("sslmode=verify-full&sslrootcert={certificate}"), true),
        ];
        // The name the snakeoil certificate of this machine's image is for (Debian makes
        // it for the host name at install time; the image's was localhost). `verify-ca`,
        // which should not check the name, does in sqlx 0.8.6 with this rustls (sqlx
        // issue 3793), so the name must match.
        let url = url.replacen("@127.0.0.1:", "@localhost:", 1);
        for (params, encrypted) in cases {
            let application = format!(
                "hookrelay-tls-{}",
                &DeliveryId::generate().as_str()[DeliveryId::PREFIX.len()..]
            );
            let store = PostgresStore::open(
                &with_params(&url, &format!("{params}&application_name={application}")),
                new_cipher(),
                2,
            )
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{params}: {} (verify-full needs the server's certificate to be for localhost)",
                    hookrelay_core::error_chain(&error)
                )
            });
            // A round trip through the pool, so its connection is in use by now.
            store.list_webhooks(&SpaceId::generate(), None, 1).await.unwrap();
            let sessions = sessions_encrypted(&mut admin, &application).await;
            assert!(!sessions.is_empty(), "{params}: no session of the store found");
            assert!(
                sessions.iter().all(|&ssl| ssl == encrypted),
                "{params}: sessions encrypted {sessions:?}, expected all {encrypted}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_whose_certificate_does_not_verify_is_refused() {
    with_database(|url| async move {
        let mut admin = admin_connection().await;
        server_certificate(&mut admin).await;
        // Checked against the public roots, which did not sign the server's certificate.
        let error = PostgresStore::open(&with_params(&url, "sslmode=verify-full"), new_cipher(), 2)
            .await
            .expect_err("a self-signed server certificate must not pass verify-full against the public roots");
        let message = hookrelay_core::error_chain(&error);
        assert!(message.contains("certificate"), "the error says why: {message}");
    })
    .await;
}

#[tokio::test]
async fn the_backlog_and_trace_context_read_alike_on_both_backends() {
    with_database(|url| async move {
        let (_dir, stores) = both_backends(&url).await;
        for (backend, store) in stores {
            let store = store.as_ref();
            let empty = store.backlog(Timestamp::from_micros(T0)).await.unwrap();
            assert_eq!(
                (empty.due, empty.oldest_due, empty.disabled_webhooks),
                (0, None, 0),
                "{backend}"
            );

            let (space, hook) = space_with_webhook(store).await;
            let mut first = event(&space, "payment.completed", T0);
            first.trace_parent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
            publish(store, &first).await;
            publish(store, &event(&space, "payment.completed", T0 + 10 * SECOND)).await;
            // At T0 + 5 s only the first is due, 5 s late; later both are, the oldest first.
            let early = store.backlog(Timestamp::from_micros(T0 + 5 * SECOND)).await.unwrap();
            assert_eq!(
                (early.due, early.oldest_due),
                (1, Some(Timestamp::from_micros(T0))),
                "{backend}"
            );
            let late = store.backlog(Timestamp::from_micros(T0 + 20 * SECOND)).await.unwrap();
            assert_eq!(
                (late.due, late.oldest_due),
                (2, Some(Timestamp::from_micros(T0))),
                "{backend}"
            );

            // A claimed delivery is still due (in flight, not delivered), and its event
            // carries the trace context it was published with.
            let claimed = store
                .claim_deliveries(&claim_at(T0 + 20 * SECOND, 1, 1, &[], "n"))
                .await
                .unwrap();
            assert_eq!(claimed[0].event.trace_parent, first.trace_parent, "{backend}");
            let claimed_backlog = store.backlog(Timestamp::from_micros(T0 + 20 * SECOND)).await.unwrap();
            assert_eq!(claimed_backlog.due, 2, "{backend}");
            let stored = store.get_event(&space, &first.id).await.unwrap().unwrap();
            assert_eq!(stored.event.trace_parent, first.trace_parent, "{backend}");

            // Succeeded: no longer due. Disabled by hand: counted, its deliveries cancelled.
            let recorded = [result(&claimed[0], NextStep::Succeeded, Some(200), T0 + 21 * SECOND)];
            store.record_attempts(&recorded, &POLICY).await.unwrap();
            let after = store.backlog(Timestamp::from_micros(T0 + 22 * SECOND)).await.unwrap();
            assert_eq!((after.due, after.disabled_webhooks), (1, 0), "{backend}");
            let off = WebhookPatch {
                enabled: Some(false),
                ..WebhookPatch::default()
            };
            let now = Timestamp::from_micros(T0 + 23 * SECOND);
            store
                .update_webhook(&space, &hook.id, &off, now)
                .await
                .unwrap()
                .unwrap();
            let disabled = store.backlog(Timestamp::from_micros(T0 + 24 * SECOND)).await.unwrap();
            assert_eq!(
                (disabled.due, disabled.oldest_due, disabled.disabled_webhooks),
                (0, None, 1),
                "{backend}"
            );
        }
    })
    .await;
}
