//! Webhook signing keys on both backends, against the same script: a rotation saved with
//! its idempotency record, the previous key sealed and read back, a rotation that read a
//! key another rotation replaced saving nothing, and the published ES256 keys.

mod common;

use common::{both, with_databases};

use std::time::Duration;

use hookrelay_core::webhook::RotationRequest;
use hookrelay_core::{ApiRelease, KeyId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
use hookrelay_store::{IdempotencyRecord, KeyOwner, StoreError};

fn webhook(space: &SpaceId, verification: VerificationMethod) -> Webhook {
    let now = Timestamp::now();
    Webhook {
        id: WebhookId::generate(),
        space_id: space.clone(),
        name: "keys".into(),
        url: "https://receiver.example.com/hook".into(),
        enabled: true,
        events: vec!["payment.completed".into()],
        api_release: ApiRelease::Caph,
        verification,
        key_id: KeyId::generate(),
        previous_key: None,
        settings: Default::default(),
        headers: Default::default(),
        alert_emails: Vec::new(),
        metadata: serde_json::Map::new(),
        create_time: now,
        update_time: now,
    }
}

fn es256() -> VerificationMethod {
    let (private_key, public_key_pem) = hookrelay_core::signing::generate_es256();
    VerificationMethod::Es256 {
        private_key,
        public_key_pem,
    }
}

fn record(space: &SpaceId, key: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        space_id: space.clone(),
        key: key.into(),
        fingerprint: vec![7; 32],
        status: 200,
        body: b"{}".to_vec(),
        create_time: Timestamp::now(),
        expire_time: Timestamp::now().plus(Duration::from_secs(3600)),
    }
}

fn rotation(overlap: Duration) -> RotationRequest {
    RotationRequest { secret: None, overlap }
}

#[tokio::test]
async fn a_rotation_saves_both_keys_once_and_publishes_them_until_the_overlap_ends() {
    with_databases(|url, dir| async move {
        for (backend, store) in both(&url, dir.path(), 4).await {
            let space = SpaceId::generate();
            store.ensure_space(&space).await.unwrap();
            let original = webhook(&space, es256());
            store.create_webhook(&original, None).await.unwrap();
            let shared = webhook(&space, VerificationMethod::Hs256 { secret: "s".repeat(32) });
            store.create_webhook(&shared, None).await.unwrap();
            let read = store.get_webhook(&space, &original.id).await.unwrap();
            assert_eq!(read.as_ref(), Some(&original), "{backend}");

            let now = Timestamp::now();
            let rotated = original.rotated(rotation(Duration::from_secs(3600)), now);
            let (r1, r2) = (record(&space, "r1"), record(&space, "r2"));
            let saved = store.save_webhook_keys(&rotated, &original.key_id, Some(&r1));
            assert!(saved.await.unwrap(), "{backend}");
            let read = store.get_webhook(&space, &original.id).await.unwrap().unwrap();
            assert_eq!(read, rotated, "{backend}: the previous key reads back as sealed");
            let found = store.find_idempotency_record(&space, "r1", Timestamp::now()).await;
            assert!(found.unwrap().is_some(), "{backend}");

            // A rotation that read the replaced key saves nothing, its record neither.
            let late = original.rotated(rotation(Duration::ZERO), now);
            let saved = store.save_webhook_keys(&late, &original.key_id, Some(&r2));
            assert!(!saved.await.unwrap(), "{backend}");
            assert_eq!(
                store.get_webhook(&space, &original.id).await.unwrap(),
                Some(rotated.clone())
            );
            let found = store.find_idempotency_record(&space, "r2", Timestamp::now()).await;
            assert!(found.unwrap().is_none(), "{backend}");
            // A taken idempotency key undoes the change it came with.
            let again = rotated.rotated(rotation(Duration::ZERO), now);
            let taken = store.save_webhook_keys(&again, &rotated.key_id, Some(&r1));
            assert!(matches!(taken.await, Err(StoreError::IdempotencyKeyTaken)), "{backend}");
            assert_eq!(
                store.get_webhook(&space, &original.id).await.unwrap(),
                Some(rotated.clone())
            );

            let previous = rotated.previous_key.as_ref().unwrap();
            for owner in [KeyOwner::Webhook(&original.id), KeyOwner::Space(&space)] {
                let keys = store.published_keys(owner, now).await.unwrap();
                let ids: Vec<_> = keys.iter().map(|k| (&k.key_id, k.until)).collect();
                assert_eq!(
                    ids,
                    vec![(&rotated.key_id, None), (&previous.key_id, Some(previous.until))],
                    "{backend}"
                );
                let after = store.published_keys(owner, previous.until).await.unwrap();
                assert_eq!(after.len(), 1, "{backend}: an overlap ends by time alone");
            }
            let none = store.published_keys(KeyOwner::Webhook(&shared.id), now).await.unwrap();
            assert!(none.is_empty(), "{backend}: an HS256 webhook publishes nothing");

            let ended = rotated.overlap_ended(now);
            assert!(
                store.save_webhook_keys(&ended, &rotated.key_id, None).await.unwrap(),
                "{backend}"
            );
            assert_eq!(
                store.get_webhook(&space, &original.id).await.unwrap(),
                Some(ended),
                "{backend}"
            );
        }
    })
    .await;
}
