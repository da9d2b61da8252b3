use serde_json::{json, Map};

use super::*;
use crate::id::{SpaceId, WebhookId};
use crate::webhook::ApiRelease;

fn webhook(verification: VerificationMethod) -> Webhook {
    Webhook {
        id: WebhookId::generate(),
        space_id: SpaceId::parse("spc-1").unwrap(),
        name: "n".into(),
        url: "https://example.com/h".into(),
        enabled: true,
        events: vec![],
        api_release: ApiRelease::Caph,
        verification,
        key_id: KeyId::generate(),
        previous_key: None,
        settings: Default::default(),
        headers: Default::default(),
        alert_emails: vec![],
        metadata: Map::new(),
        create_time: Timestamp::from_micros(0),
        update_time: Timestamp::from_micros(0),
    }
}

fn hs256() -> VerificationMethod {
    VerificationMethod::Hs256 { secret: "s".repeat(32) }
}

fn rules(errors: ValidationErrors) -> Vec<(String, &'static str)> {
    errors.0.into_iter().map(|e| (e.field, e.rule)).collect()
}

#[test]
fn an_empty_request_generates_a_secret_with_the_default_overlap() {
    let request = RotationRequest::parse(&json!({}), &hs256()).unwrap();
    assert_eq!(
        request,
        RotationRequest {
            secret: None,
            overlap: DEFAULT_OVERLAP
        }
    );
    assert_eq!(RotationRequest::parse(&Value::Null, &hs256()).unwrap(), request);
}

#[test]
fn broken_rules_are_named() {
    let es256 = VerificationMethod::Es256 {
        private_key: vec![1; 32],
        public_key_pem: "pem".into(),
    };
    let secret = "t".repeat(40);
    let cases = [
        (
            json!({"secret": secret}),
            es256.clone(),
            vec![("secret".to_owned(), "not_allowed")],
        ),
        (
            json!({"secret": "short"}),
            hs256(),
            vec![("secret".to_owned(), "min_length")],
        ),
        (
            json!({"secret": "s".repeat(32)}),
            hs256(),
            vec![("secret".to_owned(), "unchanged")],
        ),
        (
            json!({"overlap": "soon"}),
            hs256(),
            vec![("overlap".to_owned(), "format")],
        ),
        (json!({"overlap": 5}), hs256(), vec![("overlap".to_owned(), "type")]),
        (json!({"overlap": "8d"}), es256, vec![("overlap".to_owned(), "maximum")]),
        (json!({"kid": "x"}), hs256(), vec![("kid".to_owned(), "unknown_field")]),
        (json!([]), hs256(), vec![("body".to_owned(), "type")]),
    ];
    for (body, method, expected) in cases {
        assert_eq!(
            rules(RotationRequest::parse(&body, &method).unwrap_err()),
            expected,
            "{body}"
        );
    }
}

#[test]
fn a_rotation_keeps_the_retired_key_for_the_overlap_and_drops_an_older_one() {
    let original = webhook(hs256());
    let now = Timestamp::from_micros(10_000_000);
    let request = |overlap: u64| RotationRequest {
        secret: Some("n".repeat(32)),
        overlap: Duration::from_secs(overlap),
    };
    let first = original.rotated(request(60), now);
    assert_eq!(first.verification, VerificationMethod::Hs256 { secret: "n".repeat(32) });
    assert_ne!(first.key_id, original.key_id);
    let previous = first.live_previous_key(now).unwrap();
    assert_eq!(
        (&previous.key_id, &previous.verification),
        (&original.key_id, &original.verification)
    );
    assert_eq!(previous.until, now.plus(Duration::from_secs(60)));
    assert!(
        first.live_previous_key(previous.until).is_none(),
        "the overlap ends by time alone"
    );

    let second = first.rotated(
        RotationRequest {
            secret: None,
            overlap: DEFAULT_OVERLAP,
        },
        now,
    );
    assert_eq!(
        second.previous_key.as_ref().unwrap().key_id,
        first.key_id,
        "the oldest key is dropped"
    );
    assert_eq!(second.key_ring().unwrap().live(now).count(), 2);
    assert!(second.overlap_ended(now).previous_key.is_none());
    assert!(
        first.rotated(request(0), now).previous_key.is_none(),
        "0s is no overlap"
    );
}

#[test]
fn an_es256_rotation_makes_a_new_key_pair() {
    let (private_key, public_key_pem) = signing::generate_es256();
    let original = webhook(VerificationMethod::Es256 {
        private_key,
        public_key_pem,
    });
    let rotated = original.rotated(
        RotationRequest {
            secret: None,
            overlap: DEFAULT_OVERLAP,
        },
        Timestamp::from_micros(0),
    );
    assert_eq!(rotated.verification.type_name(), "ES256");
    assert_ne!(rotated.verification, original.verification);
    assert!(rotated.key_ring().is_some());
}

#[test]
fn a_request_never_prints_its_secret() {
    let request = RotationRequest {
        secret: Some("do-not-print".repeat(4)),
        overlap: DEFAULT_OVERLAP,
    };
    assert!(!format!("{request:?}").contains("do-not-print"));
}
