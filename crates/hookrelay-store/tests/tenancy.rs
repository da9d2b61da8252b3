//! Spaces, tokens and quotas on both backends, against the same scripts: a real SQLite
//! file and a fresh database on a real PostgreSQL server (`HOOKRELAY_TEST_POSTGRES_URL`,
//! or the `test` database on 127.0.0.1), which must be reachable: a skipped test would
//! hide that it never ran.

mod common;

use common::{both, with_databases};

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use hookrelay_core::access::{AccessToken, Scope, Scopes, TokenDraft};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::quota::{Quota, QuotaOverrides};
use hookrelay_core::{ApiRelease, EventId, SpaceId, Timestamp, TokenId, VerificationMethod, Webhook, WebhookId};
use hookrelay_store::{ClaimRequest, IdempotencyRecord, QuotaChange, StoreError};
use serde_json::value::RawValue;
use sqlx::{Connection, Executor, PgConnection};

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;

fn token(space: &SpaceId, name: &str, scopes: &[Scope], at: i64) -> (AccessToken, [u8; 32]) {
    let secret = hookrelay_core::token::generate();
    let draft = TokenDraft {
        name: name.into(),
        scopes: scopes.iter().copied().collect(),
        expire_time: Some(Timestamp::from_micros(at + 3600 * SECOND)),
    };
    let record = AccessToken::of_secret(&secret, space.clone(), draft, Timestamp::from_micros(at));
    (record, hookrelay_core::token::digest(&secret))
}

fn webhook(space: &SpaceId) -> Webhook {
    Webhook {
        id: WebhookId::generate(),
        space_id: space.clone(),
        name: "w".into(),
        url: "https://receiver.example.com/hook".into(),
        enabled: true,
        events: vec!["payment.completed".into()],
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
    }
}

fn event(space: &SpaceId) -> Event {
    Event {
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
    }
}

fn key(space: &SpaceId, key: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        space_id: space.clone(),
        key: key.into(),
        fingerprint: vec![1; 32],
        status: 200,
        body: b"{}".to_vec(),
        create_time: Timestamp::now(),
        expire_time: Timestamp::now().plus(std::time::Duration::from_secs(3600)),
    }
}

fn claim(now: i64) -> ClaimRequest {
    ClaimRequest {
        now: Timestamp::from_micros(now),
        lease_until: Timestamp::from_micros(now + 60 * SECOND),
        owner: "test".into(),
        limit: 100,
        per_webhook: 100,
        skip_webhooks: Vec::new(),
    }
}

#[tokio::test]
async fn tokens_are_listed_newest_first_revoked_and_their_use_recorded_once_a_minute() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 8).await {
            let (ours, theirs) = (SpaceId::generate(), SpaceId::generate());
            let mut made = Vec::new();
            for i in 0..3 {
                let (record, digest) = token(&ours, &format!("t{i}"), &[Scope::EventsRead], T0 + i * SECOND);
                assert!(store.add_token(&record, &digest, None).await.unwrap(), "{backend}");
                made.push((record, digest));
            }
            let (other, other_digest) = token(&theirs, "other", &[Scope::TokensManage], T0);
            store.add_token(&other, &other_digest, None).await.unwrap();

            let first = store.list_tokens(&ours, None, 2).await.unwrap();
            let second = store.list_tokens(&ours, first.next, 2).await.unwrap();
            assert_eq!(second.next, None, "{backend}");
            let listed: Vec<AccessToken> = first.items.into_iter().chain(second.items).collect();
            let newest_first: Vec<AccessToken> = made.iter().rev().map(|(record, _)| record.clone()).collect();
            assert_eq!(listed, newest_first, "{backend}");

            let (grant, _) = store.find_access_token(&made[0].1).await.unwrap().unwrap();
            assert_eq!(grant.scopes, Scopes::from_names(["events:read"]).unwrap(), "{backend}");
            assert_eq!(grant.expire_time, made[0].0.expire_time, "{backend}");
            assert!(
                !grant.space_disabled && grant.quotas == QuotaOverrides::default(),
                "{backend}"
            );

            // Used: recorded; again within the minute: not; a minute on: recorded.
            let id = &made[0].0.id;
            let digest = made[0].1;
            let last_used = || async {
                let (grant, _) = store.find_access_token(&digest).await.unwrap().unwrap();
                grant.last_used_time.map(Timestamp::as_micros)
            };
            store.record_token_use(id, Timestamp::from_micros(T0)).await.unwrap();
            assert_eq!(last_used().await, Some(T0), "{backend}");
            store
                .record_token_use(id, Timestamp::from_micros(T0 + 59 * SECOND))
                .await
                .unwrap();
            assert_eq!(last_used().await, Some(T0), "{backend}");
            store
                .record_token_use(id, Timestamp::from_micros(T0 + 60 * SECOND))
                .await
                .unwrap();
            assert_eq!(last_used().await, Some(T0 + 60 * SECOND), "{backend}");

            // Revoked only in its own space, and then gone.
            assert!(!store.revoke_token(&theirs, id).await.unwrap(), "{backend}");
            assert!(
                !store.revoke_token(&ours, &TokenId::generate()).await.unwrap(),
                "{backend}"
            );
            assert!(store.revoke_token(&ours, id).await.unwrap(), "{backend}");
            assert!(
                store.find_access_token(&made[0].1).await.unwrap().is_none(),
                "{backend}"
            );
            assert_eq!(
                store.list_tokens(&ours, None, 10).await.unwrap().items.len(),
                2,
                "{backend}"
            );
            assert!(
                store.find_access_token(&other_digest).await.unwrap().is_some(),
                "{backend}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_token_saved_with_its_key_is_saved_once() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 8).await {
            let space = SpaceId::generate();
            let (first, digest) = token(&space, "first", &[Scope::EventsRead], T0);
            store.add_token(&first, &digest, Some(&key(&space, "k"))).await.unwrap();
            let (second, digest) = token(&space, "second", &[Scope::EventsRead], T0);
            let taken = store.add_token(&second, &digest, Some(&key(&space, "k"))).await;
            assert!(
                matches!(taken, Err(StoreError::IdempotencyKeyTaken)),
                "{backend}: {taken:?}"
            );
            assert_eq!(
                store.list_tokens(&space, None, 10).await.unwrap().items,
                [first],
                "{backend}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn spaces_are_created_listed_disabled_and_given_quotas() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 8).await {
            let space = SpaceId::generate();
            assert!(store.create_space(&space).await.unwrap(), "{backend}");
            assert!(!store.create_space(&space).await.unwrap(), "{backend}");
            let (record, digest) = token(&space, "t", &[Scope::WebhooksRead], T0);
            store.add_token(&record, &digest, None).await.unwrap();
            store.create_webhook(&webhook(&space), None).await.unwrap();
            store.create_webhook(&webhook(&space), None).await.unwrap();

            let missing = SpaceId::generate();
            assert!(!store.set_space_disabled(&missing, true).await.unwrap(), "{backend}");
            let change = QuotaChange {
                max_webhooks: Some(Some(5)),
                max_fan_out: Some(Some(7)),
                ..QuotaChange::default()
            };
            assert!(!store.set_space_quotas(&missing, &change).await.unwrap(), "{backend}");

            assert!(store.set_space_disabled(&space, true).await.unwrap(), "{backend}");
            assert!(store.set_space_quotas(&space, &change).await.unwrap(), "{backend}");
            // Only what a change names changes: the fan-out back to the default, the rest kept.
            let reset = QuotaChange {
                max_fan_out: Some(None),
                max_publish_rate: Some(Some(3)),
                ..QuotaChange::default()
            };
            assert!(store.set_space_quotas(&space, &reset).await.unwrap(), "{backend}");
            let expected = QuotaOverrides {
                max_webhooks: Some(5),
                max_publish_rate: Some(3),
                max_fan_out: None,
            };
            let (grant, _) = store.find_access_token(&digest).await.unwrap().unwrap();
            assert!(grant.space_disabled, "{backend}");
            assert_eq!(grant.quotas, expected, "{backend}");

            let listed = store.list_spaces().await.unwrap();
            let ours = listed.iter().find(|s| s.id == space).expect("listed");
            assert_eq!((ours.webhooks, ours.tokens, ours.disabled), (2, 1, true), "{backend}");
            assert_eq!(ours.quotas, expected, "{backend}");
            assert!(store.set_space_disabled(&space, false).await.unwrap(), "{backend}");
            let (grant, _) = store.find_access_token(&digest).await.unwrap().unwrap();
            assert!(!grant.space_disabled, "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_disabled_spaces_deliveries_wait_and_go_out_once_it_is_enabled() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 8).await {
            let (paused, running) = (SpaceId::generate(), SpaceId::generate());
            let mut webhooks = Vec::new();
            for space in [&paused, &running] {
                store.ensure_space(space).await.unwrap();
                let hook = webhook(space);
                store.create_webhook(&hook, None).await.unwrap();
                store.publish_event(&event(space), None).await.unwrap();
                store.publish_event(&event(space), None).await.unwrap();
                webhooks.push(hook.id);
            }
            store.set_space_disabled(&paused, true).await.unwrap();
            let now = Timestamp::now().as_micros() + SECOND;
            let claimed = store.claim_deliveries(&claim(now)).await.unwrap();
            let ids: HashSet<&WebhookId> = claimed.iter().map(|c| &c.webhook.id).collect();
            assert_eq!(
                ids,
                HashSet::from([&webhooks[1]]),
                "{backend}: only the running space's"
            );
            assert_eq!(claimed.len(), 2, "{backend}");
            // Nothing else is due: the paused space's deliveries do not count as work.
            let next = store.next_due_time(Timestamp::from_micros(now), &[]).await.unwrap();
            assert_eq!(next, None, "{backend}");
            assert!(
                store.claim_deliveries(&claim(now)).await.unwrap().is_empty(),
                "{backend}"
            );
            let waiting = store
                .list_deliveries(&paused, &webhooks[0], None, None, 10)
                .await
                .unwrap();
            assert!(
                waiting.items.iter().all(|d| d.status.as_str() == "pending"),
                "{backend}: nothing is cancelled"
            );

            store.set_space_disabled(&paused, false).await.unwrap();
            let due = store.next_due_time(Timestamp::from_micros(now), &[]).await.unwrap();
            assert!(due.is_some(), "{backend}");
            let claimed = store.claim_deliveries(&claim(now)).await.unwrap();
            assert_eq!(claimed.len(), 2, "{backend}");
            assert!(claimed.iter().all(|c| c.webhook.id == webhooks[0]), "{backend}");
        }
    })
    .await;
}

#[tokio::test]
async fn quotas_bound_webhooks_per_space_and_deliveries_per_publish() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 8).await {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            // Concurrent creates: exactly the quota's worth succeed.
            let creates = (0..24).map(|i| {
                let (store, space) = (store.clone(), space.clone());
                async move {
                    let record = key(&space, &format!("create-{i}"));
                    store.create_webhook_within(&webhook(&space), Some(&record), Some(10)).await
                }
            });
            let outcomes = futures_util::future::join_all(creates).await;
            let refused: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
            assert_eq!(outcomes.len() - refused.len(), 10, "{backend}: {outcomes:?}");
            for error in refused {
                assert!(
                    matches!(error, StoreError::QuotaExceeded(q) if q.quota == Quota::WebhooksPerSpace && q.limit == 10),
                    "{backend}: {error:?}"
                );
            }
            assert_eq!(store.list_webhooks(&space, None, 50).await.unwrap().items.len(), 10, "{backend}");
            // A refused create kept nothing, not even its key.
            for (i, outcome) in outcomes.iter().enumerate() {
                let kept = store
                    .find_idempotency_record(&space, &format!("create-{i}"), Timestamp::from_micros(0))
                    .await
                    .unwrap();
                assert_eq!(kept.is_some(), outcome.is_ok(), "{backend}: create-{i}");
            }

            // Ten subscribers: a fan-out quota of 9 refuses the publish and stores nothing.
            let refused = store.publish_event_within(&event(&space), Some(key(&space, "p")), Some(9)).await;
            assert!(
                matches!(&refused, Err(StoreError::QuotaExceeded(q)) if q.quota == Quota::FanOut && q.limit == 9),
                "{backend}: {refused:?}"
            );
            assert!(store.list_events(&space, None, 10).await.unwrap().items.is_empty(), "{backend}");
            let key_kept = store.find_idempotency_record(&space, "p", Timestamp::from_micros(0)).await.unwrap();
            assert!(key_kept.is_none(), "{backend}");
            let published = store.publish_event_within(&event(&space), Some(key(&space, "p")), Some(10)).await;
            assert_eq!(published.unwrap(), 10, "{backend}");
        }
    })
    .await;
}

/// The tokens of a database made before scopes existed.
async fn seed_before_scopes(url: &str, sqlite: &Path) {
    let old_token = "INSERT INTO access_tokens (token_digest, space_id, create_time) VALUES ($1, 'spc-old', 5)";
    let space = "INSERT INTO spaces (id, create_time) VALUES ('spc-old', 5)";
    let digest = hookrelay_core::token::digest("an-old-token-0123456789");

    let mut migrator = sqlx::migrate::Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))
        .await
        .unwrap();
    migrator.migrations = migrator.migrations.iter().filter(|m| m.version < 10).cloned().collect();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(sqlite)
        .create_if_missing(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    migrator.run(&mut connection).await.unwrap();
    connection.execute(space).await.unwrap();
    sqlx::query(old_token)
        .bind(&digest[..])
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();

    let mut migrator = sqlx::migrate::Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
        .await
        .unwrap();
    migrator.migrations = migrator.migrations.iter().filter(|m| m.version < 6).cloned().collect();
    let mut connection = PgConnection::connect(url).await.unwrap();
    migrator.run(&mut connection).await.unwrap();
    connection.execute(space).await.unwrap();
    sqlx::query(old_token)
        .bind(&digest[..])
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

#[tokio::test]
async fn tokens_made_before_scopes_keep_every_scope() {
    with_databases(|url, dir| async move {
        seed_before_scopes(&url, &dir.path().join("hr.db")).await;
        let digest = hookrelay_core::token::digest("an-old-token-0123456789");
        for (backend, store) in both(&url, dir.path(), 8).await {
            let (grant, _) = store.find_access_token(&digest).await.unwrap().expect("migrated");
            assert_eq!(grant.scopes, Scopes::all(), "{backend}");
            assert_eq!((grant.expire_time, grant.last_used_time), (None, None), "{backend}");
            let space = SpaceId::parse("spc-old").unwrap();
            let listed = store.list_tokens(&space, None, 10).await.unwrap().items;
            assert_eq!(listed.len(), 1, "{backend}");
            assert_eq!(listed[0].name, "migrated", "{backend}");
            assert_eq!(listed[0].id, grant.token_id, "{backend}");
            assert_eq!(listed[0].create_time, Timestamp::from_micros(5), "{backend}");
            assert!(!store.list_spaces().await.unwrap()[0].disabled, "{backend}");
        }
    })
    .await;
}
