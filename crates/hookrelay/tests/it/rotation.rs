//! Key rotation with overlap through the real server: deliveries signed by both keys
//! during the overlap and by the new one after it, the rotation's state, ES256 keys
//! published as JWK Sets (read with `jsonwebtoken`, an independent JWK library), the
//! SDK's verifiers, idempotent replays, and the errors.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use hookrelay_client::verify::{Verifier, VerifyErrorKind};
use hookrelay_client::JwksVerifier;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::receiver::{Receiver, Reply};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(15);
const OLD: &str = "old-secret-0123456789abcdef0123456789";
const NEW: &str = "new-secret-0123456789abcdef0123456789";

async fn delivering_server(retry_schedule: &str) -> TestServer {
    TestServer::launch(Launch {
        args: [
            "--allow-private-targets",
            "--retry-schedule",
            retry_schedule,
            "--attempt-timeout",
            "2s",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Launch::default()
    })
    .await
}

async fn webhook_at(server: &TestServer, url: &str, method: Value) -> Value {
    server
        .must_create(&json!({
            "name": "rotating", "url": url, "events": ["payment.completed"], "verificationMethod": method,
        }))
        .await
}

fn rotate(server: &TestServer, id: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
    server
        .request(Method::POST, &format!("/v1/webhooks/{id}/rotate"))
        .header("Idempotency-Key", key)
        .json(body)
}

async fn must_rotate(server: &TestServer, id: &str, body: Value) -> Value {
    let (status, answer) = send(rotate(server, id, &unique_key(), &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["result"].clone()
}

async fn rotation(server: &TestServer, id: &str) -> Value {
    server.get(&format!("/v1/webhooks/{id}/rotation")).await["result"].clone()
}

/// `t` and every `v1` of a `Monime-Signature` value, decoded.
fn signatures(header: &str) -> (i64, Vec<Vec<u8>>) {
    let mut parts = header.split(',');
    let t = parts.next().unwrap().strip_prefix("t=").unwrap().parse().unwrap();
    let v1 = parts.map(|part| STANDARD.decode(part.strip_prefix("v1=").unwrap()).unwrap());
    (t, v1.collect())
}

/// The HMAC a receiver computes by hand, independently of our signing code.
fn hmac(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}_").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

async fn publish_and_receive(server: &TestServer, receiver: &Receiver, n: usize) -> crate::receiver::Received {
    server
        .publish("payment.completed", &format!("pmt-{n}"), json!({"n": n}))
        .await;
    receiver.wait_for(n, WAIT).await[n - 1].clone()
}

#[tokio::test]
async fn hs256_rotation_signs_with_both_secrets_during_the_overlap_and_the_new_one_after() {
    let server = delivering_server("0s,1s").await;
    let receiver = Receiver::start().await;
    let webhook = webhook_at(&server, &receiver.url, json!({"type": "HS256", "secret": OLD})).await;
    let id = webhook["id"].as_str().unwrap();
    let before = rotation(&server, id).await;
    let old_key = before["currentKeyId"].as_str().unwrap().to_owned();
    assert!(old_key.starts_with("key-"), "{before}");
    assert_eq!(
        (&before["previousKeyId"], &before["overlapEndTime"]),
        (&Value::Null, &Value::Null)
    );
    let first = publish_and_receive(&server, &receiver, 1).await;
    assert_eq!(first.header("Monime-Signature-Key-Id"), old_key);

    let rotated = must_rotate(&server, id, json!({"secret": NEW, "overlap": "1h"})).await;
    assert_eq!(
        rotated["webhook"]["verificationMethod"],
        json!({"type": "HS256", "secret": NEW})
    );
    assert_eq!(rotated["webhook"]["id"], json!(id));
    let state = &rotated["rotation"];
    let new_key = state["currentKeyId"].as_str().unwrap().to_owned();
    assert!(new_key.starts_with("key-") && new_key != old_key, "{state}");
    assert_eq!(state["previousKeyId"], json!(old_key));
    let end = time::OffsetDateTime::parse(
        state["overlapEndTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = end - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(59) && left <= time::Duration::hours(1),
        "{state}"
    );
    assert_eq!(&rotation(&server, id).await, state);
    assert_eq!(
        server.get(&format!("/v1/webhooks/{id}")).await["result"]["verificationMethod"]["secret"],
        json!(NEW)
    );

    // During the overlap: both signatures, newest first, each named.
    let during = publish_and_receive(&server, &receiver, 2).await;
    assert_eq!(during.header("Monime-Signature-Key-Id"), format!("{new_key},{old_key}"));
    let (t, v1) = signatures(during.header("Monime-Signature"));
    assert_eq!(v1, vec![hmac(NEW, t, &during.body), hmac(OLD, t, &during.body)]);
    for secret in [OLD, NEW] {
        let event = Verifier::hs256(secret).verify(&during.body, during.header("Monime-Signature"));
        assert_eq!(event.expect(secret).event.name, "payment.completed");
    }
    let stranger = Verifier::hs256("another-secret-0123456789abcdef0123456");
    let refused = stranger
        .verify(&during.body, during.header("Monime-Signature"))
        .unwrap_err();
    assert_eq!(refused.kind(), VerifyErrorKind::SignatureMismatch);

    // Ended early: only the new secret signs, and the old one no longer verifies.
    let (status, ended) = send(server.request(Method::DELETE, &format!("/v1/webhooks/{id}/rotation"))).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["result"]["currentKeyId"], json!(new_key));
    assert_eq!(
        (&ended["result"]["previousKeyId"], &ended["result"]["overlapEndTime"]),
        (&Value::Null, &Value::Null)
    );
    let after = publish_and_receive(&server, &receiver, 3).await;
    assert_eq!(after.header("Monime-Signature-Key-Id"), new_key);
    let (t, v1) = signatures(after.header("Monime-Signature"));
    assert_eq!(v1, vec![hmac(NEW, t, &after.body)]);
    let old = Verifier::hs256(OLD).verify(&after.body, after.header("Monime-Signature"));
    assert_eq!(old.unwrap_err().kind(), VerifyErrorKind::SignatureMismatch);
    assert!(Verifier::hs256(OLD)
        .or_hs256(NEW)
        .verify(&after.body, after.header("Monime-Signature"))
        .is_ok());
}

#[tokio::test]
async fn in_the_standard_webhooks_format_the_official_library_accepts_either_secret_during_the_overlap() {
    use crate::standard_webhooks::{official_verdicts, set_format, whsec};
    let server = delivering_server("0s,1s").await;
    let receiver = Receiver::start().await;
    let webhook = webhook_at(&server, &receiver.url, json!({"type": "HS256", "secret": OLD})).await;
    let id = webhook["id"].as_str().unwrap();
    set_format(&server, id, "standard-webhooks").await;
    let rotated = must_rotate(&server, id, json!({"secret": NEW, "overlap": "1h"})).await;
    let during = publish_and_receive(&server, &receiver, 1).await;
    let state = &rotated["rotation"];
    let named = format!(
        "{},{}",
        state["currentKeyId"].as_str().unwrap(),
        state["previousKeyId"].as_str().unwrap()
    );
    assert_eq!(during.header("Monime-Signature-Key-Id"), named);
    assert_eq!(during.header("webhook-signature").split(' ').count(), 2);
    let (old, new, stranger) = (whsec(OLD), whsec(NEW), whsec("another-secret-0123456789abcdef0123456"));
    let body = during.body.to_vec();
    let cases = [
        (old.as_str(), &during, body.as_slice()),
        (new.as_str(), &during, &body),
        (stranger.as_str(), &during, &body),
    ];
    let verdicts: Vec<Value> = official_verdicts(&cases)
        .await
        .iter()
        .map(|v| v["verified"].clone())
        .collect();
    assert_eq!(verdicts, [json!(true), json!(true), json!(false)]);
}

#[tokio::test]
async fn a_rotation_during_an_overlap_drops_the_oldest_key_and_0s_keeps_none() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("twice")).await;
    let id = webhook["id"].as_str().unwrap();
    let first = rotation(&server, id).await["currentKeyId"].clone();
    let second = must_rotate(&server, id, json!({})).await["rotation"].clone();
    let third = must_rotate(&server, id, json!({"overlap": "30m"})).await["rotation"].clone();
    assert_eq!(third["previousKeyId"], second["currentKeyId"], "{third}");
    assert_ne!(third["previousKeyId"], first);
    let generated = must_rotate(&server, id, json!({"overlap": "0s"})).await;
    assert_eq!(generated["rotation"]["previousKeyId"], Value::Null);
    let secret = generated["webhook"]["verificationMethod"]["secret"].as_str().unwrap();
    assert!(
        secret.len() >= 32 && secret != webhook["verificationMethod"]["secret"],
        "{generated}"
    );
}

#[tokio::test]
async fn an_es256_rotation_publishes_both_keys_and_a_jwks_verifier_follows_it() {
    let server = delivering_server("0s,1s").await;
    let receiver = Receiver::start().await;
    let webhook = webhook_at(&server, &receiver.url, json!({"type": "ES256"})).await;
    let id = webhook["id"].as_str().unwrap();
    let url = format!("{}/v1/webhooks/{id}/jwks.json", server.base);
    let old_key = rotation(&server, id).await["currentKeyId"].as_str().unwrap().to_owned();
    let verifier = JwksVerifier::new(&url).await.unwrap();

    let rotated = must_rotate(&server, id, json!({"overlap": "2h"})).await;
    let new_key = rotated["rotation"]["currentKeyId"].as_str().unwrap().to_owned();
    let public_key = rotated["webhook"]["verificationMethod"]["publicKey"].as_str().unwrap();
    assert_ne!(public_key, webhook["verificationMethod"]["publicKey"].as_str().unwrap());

    // Without a token, cacheable, and readable by an independent JWK library.
    let response = server
        .bare(Method::GET, &format!("/v1/webhooks/{id}/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    let set: JwkSet = serde_json::from_str(&text).unwrap();
    let kids: Vec<_> = set.keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect();
    assert_eq!(kids, vec![new_key.clone(), old_key.clone()], "{text}");
    let raw: Value = serde_json::from_str(&text).unwrap();
    for jwk in raw["keys"].as_array().unwrap() {
        assert_eq!(
            (&jwk["kty"], &jwk["crv"], &jwk["use"], &jwk["alg"]),
            (&json!("EC"), &json!("P-256"), &json!("sig"), &json!("ES256"))
        );
    }
    let unchanged = server
        .bare(Method::GET, &format!("/v1/webhooks/{id}/jwks.json"))
        .header("If-None-Match", &etag);
    assert_eq!(unchanged.send().await.unwrap().status(), StatusCode::NOT_MODIFIED);
    let space = server
        .bare(Method::GET, &format!("/v1/spaces/{SPACE}/jwks.json"))
        .send()
        .await
        .unwrap();
    let space: JwkSet = serde_json::from_str(&space.text().await.unwrap()).unwrap();
    assert!(space.find(&new_key).is_some() && space.find(&old_key).is_some());

    // During the overlap each v1 verifies with the JWK its key id names.
    let during = publish_and_receive(&server, &receiver, 1).await;
    assert_eq!(during.header("Monime-Signature-Key-Id"), format!("{new_key},{old_key}"));
    let (t, v1) = signatures(during.header("Monime-Signature"));
    let message = format!("{t}_{}", String::from_utf8(during.body.to_vec()).unwrap());
    for (kid, signature) in [&new_key, &old_key].into_iter().zip(&v1) {
        let key = DecodingKey::from_jwk(set.find(kid).unwrap()).unwrap();
        let jws_signature = URL_SAFE_NO_PAD.encode(signature);
        assert!(
            jsonwebtoken::crypto::verify(&jws_signature, message.as_bytes(), &key, Algorithm::ES256).unwrap(),
            "{kid}"
        );
    }

    // After the overlap only the new key signs: the verifier, which fetched the set
    // before the rotation, meets an unknown key id, fetches again, and verifies.
    let (status, _) = send(server.request(Method::DELETE, &format!("/v1/webhooks/{id}/rotation"))).await;
    assert_eq!(status, StatusCode::OK);
    let after = publish_and_receive(&server, &receiver, 2).await;
    assert_eq!(after.header("Monime-Signature-Key-Id"), new_key);
    let event = verifier
        .verify(&after.body, after.header("Monime-Signature"), Some(&new_key))
        .await;
    assert_eq!(event.unwrap().event.name, "payment.completed");
    let forged = verifier
        .verify(&after.body, after.header("Monime-Signature"), Some("key-unknown"))
        .await;
    assert_eq!(forged.unwrap_err().kind(), VerifyErrorKind::UnknownKey);
    let only_new: JwkSet = serde_json::from_str(&reqwest::get(&url).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(only_new.keys.len(), 1);
}

#[tokio::test]
async fn jwks_of_an_hs256_or_unknown_webhook_is_404_and_of_an_unknown_space_empty() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("shared secret")).await;
    for id in [webhook["id"].as_str().unwrap(), "whk-unknown", "nope"] {
        let (status, body) = send(server.bare(Method::GET, &format!("/v1/webhooks/{id}/jwks.json"))).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    }
    for space in ["spc-unknown", "nope"] {
        let (status, body) = send(server.bare(Method::GET, &format!("/v1/spaces/{space}/jwks.json"))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"keys": []})));
    }
}

#[tokio::test]
async fn a_replayed_rotation_answers_the_same_and_rotates_once() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("replayed")).await;
    let id = webhook["id"].as_str().unwrap();
    let key = unique_key();
    let (status, first) = send(rotate(&server, id, &key, &json!({"overlap": "1h"}))).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let response = rotate(&server, id, &key, &json!({"overlap": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let replayed: Value = response.json().await.unwrap();
    assert_eq!(replayed, first);
    let state = rotation(&server, id).await;
    assert_eq!(state, first["result"]["rotation"], "rotated once");
    assert_eq!(state["previousKeyId"], rotation_key_before(&first));
    let (status, body) = send(rotate(&server, id, &key, &json!({"overlap": "2h"}))).await;
    assert_error(status, &body, StatusCode::CONFLICT, "idempotency_conflict", None);
}

fn rotation_key_before(answer: &Value) -> Value {
    answer["result"]["rotation"]["previousKeyId"].clone()
}

#[tokio::test]
async fn rotation_errors_are_4xx_envelopes_naming_the_field() {
    let server = TestServer::start().await;
    let es256 = server
        .must_create(&json!({"name": "ec", "url": "https://example.com/h", "events": ["payment.completed"], "verificationMethod": {"type": "ES256"}}))
        .await;
    let hs256 = server.must_create(&simple_webhook("hs")).await;
    let (es, hs) = (es256["id"].as_str().unwrap(), hs256["id"].as_str().unwrap());
    let invalid = [
        (es, json!({"secret": NEW}), "secret", "not_allowed"),
        (hs, json!({"secret": "short"}), "secret", "min_length"),
        (hs, json!({"overlap": "forever"}), "overlap", "format"),
        (hs, json!({"overlap": "8d"}), "overlap", "maximum"),
        (hs, json!({"overlap": 60}), "overlap", "type"),
        (hs, json!({"keyId": "key-mine"}), "keyId", "unknown_field"),
    ];
    for (id, body, field, rule) in invalid {
        let (status, answer) = send(rotate(&server, id, &unique_key(), &body)).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
    }
    let (status, answer) = send(rotate(&server, "whk-unknown", &unique_key(), &json!({}))).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found", None);
    let no_key = server
        .request(Method::POST, &format!("/v1/webhooks/{hs}/rotate"))
        .json(&json!({}));
    let (status, answer) = send(no_key).await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "required")),
    );
    // Nothing above rotated anything.
    assert_eq!(rotation(&server, hs).await["previousKeyId"], Value::Null);

    let (status, created) = send(
        server
            .request(Method::POST, "/v1/tokens")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "reader", "scopes": ["webhooks:read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let reader = created["result"]["token"].as_str().unwrap();
    let as_reader = |method: Method, path: String| {
        server
            .bare(method, &path)
            .bearer_auth(reader)
            .header("Monime-Space-Id", SPACE)
    };
    let attempts = [
        as_reader(Method::POST, format!("/v1/webhooks/{hs}/rotate"))
            .header("Idempotency-Key", unique_key())
            .json(&json!({})),
        as_reader(Method::DELETE, format!("/v1/webhooks/{hs}/rotation")),
    ];
    for attempt in attempts {
        let (status, answer) = send(attempt).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "insufficient_scope", None);
    }
    let (status, _) = send(as_reader(Method::GET, format!("/v1/webhooks/{hs}/rotation"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_delivery_failing_across_a_rotation_is_retried_signed_by_the_new_secret() {
    let server = delivering_server("0s,3s").await;
    let receiver = Receiver::start().await;
    receiver.script(|n| if n == 0 { Reply::Status(500) } else { Reply::Status(200) });
    let webhook = webhook_at(&server, &receiver.url, json!({"type": "HS256", "secret": OLD})).await;
    let id = webhook["id"].as_str().unwrap();
    server.publish("payment.completed", "pmt-1", json!({})).await;
    let failed = receiver.wait_for(1, WAIT).await[0].clone();
    assert!(Verifier::hs256(OLD)
        .verify(&failed.body, failed.header("Monime-Signature"))
        .is_ok());

    // Rotated with no overlap while the retry waits: the retry is signed by the new secret alone.
    let rotated = must_rotate(&server, id, json!({"secret": NEW, "overlap": "0s"})).await;
    let retried = receiver.wait_for(2, WAIT).await[1].clone();
    assert_eq!(retried.header("Monime-Delivery-Attempt"), "2");
    assert_eq!(retried.header("Monime-Event-Id"), failed.header("Monime-Event-Id"));
    assert_eq!(
        retried.header("Monime-Signature-Key-Id"),
        rotated["rotation"]["currentKeyId"].as_str().unwrap()
    );
    assert!(Verifier::hs256(NEW)
        .verify(&retried.body, retried.header("Monime-Signature"))
        .is_ok());
    let old = Verifier::hs256(OLD).verify(&retried.body, retried.header("Monime-Signature"));
    assert_eq!(old.unwrap_err().kind(), VerifyErrorKind::SignatureMismatch);
    server.wait_until_idle().await;
    let deliveries = server.get(&format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(deliveries["result"][0]["status"], json!("succeeded"), "{deliveries}");
}
