//! `/v1/events`: publishing, validation, idempotency, and reading events back.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

fn payment_event() -> serde_json::Value {
    json!({"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {"amount": {"currency": "SLE", "value": 1000}}})
}

#[tokio::test]
async fn publishing_counts_the_deliveries_it_creates() {
    let server = TestServer::start().await;
    let subscribed = server.must_create(&simple_webhook("subscribed")).await;
    server.must_create(&simple_webhook("also subscribed")).await;
    let disabled = server.must_create(&simple_webhook("disabled")).await;
    send(
        server
            .request(
                Method::PATCH,
                &format!("/v1/webhooks/{}", disabled["id"].as_str().unwrap()),
            )
            .json(&json!({"enabled": false})),
    )
    .await;
    server
        .must_create(&json!({"name": "other", "url": "https://a.example/x", "events": ["payout.failed"]}))
        .await;

    let event = server.publish("payment.completed", "pmt-7", json!({"amount": 5})).await;
    assert!(event["id"].as_str().unwrap().starts_with("evt-"));
    assert_eq!(event["name"], "payment.completed");
    assert_eq!(event["object"], json!({"id": "pmt-7", "type": "payment"}));
    assert_eq!(event["data"], json!({"amount": 5}));
    assert_eq!(event["deliveryCount"], json!(2), "two enabled subscribers");

    let fetched = server
        .get(&format!("/v1/events/{}", event["id"].as_str().unwrap()))
        .await;
    assert_eq!(fetched["result"], event);
    let list = server.get("/v1/events").await;
    assert_eq!(list["result"], json!([event]));
    let deliveries = server
        .get(&format!(
            "/v1/webhooks/{}/deliveries",
            subscribed["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(deliveries["pagination"]["count"], json!(1));
    assert_eq!(deliveries["result"][0]["eventId"], event["id"]);
    let none = server
        .get(&format!("/v1/webhooks/{}/deliveries", disabled["id"].as_str().unwrap()))
        .await;
    assert_eq!(none["result"], json!([]), "no delivery for a disabled webhook");
}

#[tokio::test]
async fn publish_rules() {
    let server = TestServer::start().await;
    let rows = [
        (
            json!({"object": {"id": "p", "type": "payment"}, "data": {}}),
            "name",
            "required",
        ),
        (
            json!({"name": "payment.exploded", "object": {"id": "p", "type": "payment"}, "data": {}}),
            "name",
            "unknown_event",
        ),
        (
            json!({"name": "webhook.test", "object": {"id": "p", "type": "payment"}, "data": {}}),
            "name",
            "unknown_event",
        ),
        (json!({"name": "payment.completed", "data": {}}), "object", "required"),
        (
            json!({"name": "payment.completed", "object": {"type": "payment"}, "data": {}}),
            "object.id",
            "required",
        ),
        (
            json!({"name": "payment.completed", "object": {"id": "p"}, "data": {}}),
            "object.type",
            "required",
        ),
        (
            json!({"name": "payment.completed", "object": {"id": "p", "type": "payment", "x": 1}, "data": {}}),
            "object.x",
            "unknown_field",
        ),
        (
            json!({"name": "payment.completed", "object": {"id": "p\u{0}", "type": "payment"}, "data": {}}),
            "object.id",
            "format",
        ),
        (
            json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}}),
            "data",
            "required",
        ),
        (
            json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": "x"}),
            "data",
            "type",
        ),
        (
            json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {}, "x": 1}),
            "x",
            "unknown_field",
        ),
    ];
    for (body, field, rule) in rows {
        let (status, answer) = send(
            server
                .request(Method::POST, "/v1/events")
                .header("Idempotency-Key", unique_key())
                .json(&body),
        )
        .await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
    }
    // Shapes a struct reader would take (arrays for objects), and `data` that is not
    // JSON a parser keeps (a lone surrogate, a number out of range).
    let raw_rows = [
        (r#"["payment.completed", ["p", "payment"], {}]"#, "validation_failed"),
        (
            r#"{"name": "payment.completed", "object": ["p", "payment"], "data": {}}"#,
            "validation_failed",
        ),
        (
            r#"{"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {"s": "\ud800"}}"#,
            "invalid_json",
        ),
        (
            r#"{"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {"n": 1e400}}"#,
            "invalid_json",
        ),
    ];
    for (body, code) in raw_rows {
        let (status, answer) = send(server.publish_text(body)).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, code, None);
    }
    let (status, answer) = send(server.request(Method::POST, "/v1/events").json(&payment_event())).await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "required")),
    );
    let huge = json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {"x": "y".repeat(1 << 20)}});
    let (status, answer) = send(
        server
            .request(Method::POST, "/v1/events")
            .header("Idempotency-Key", unique_key())
            .json(&huge),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    let (status, answer) = send(server.bare(Method::POST, "/v1/events").json(&payment_event())).await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthenticated", None);
    let list = server.get("/v1/events").await;
    assert_eq!(list["result"], json!([]), "rejected events are not stored");
    let (status, answer) = send(server.request(Method::GET, "/v1/events/evt-unknown")).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn a_retried_publish_creates_one_event() {
    let server = TestServer::start().await;
    server.must_create(&simple_webhook("subscribed")).await;
    let post = || {
        server
            .request(Method::POST, "/v1/events")
            .header("Idempotency-Key", "evt-key-1")
    };
    let (status, first) = send(post().json(&payment_event())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["result"]["deliveryCount"], json!(1));
    // The replay is the first answer, as it was then: a webhook subscribed since does not
    // change its delivery count.
    server.must_create(&simple_webhook("subscribed later")).await;
    let (status, again) = send(post().json(&payment_event())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // The same request serialised again (other key order, whitespace and escapes) is a
    // retry; the answer keeps the first request's text of `data`.
    let reserialised = r#"{ "data": {"amount": {"value": 1000, "currency": "S\u004cE"}},
        "object": {"type": "payment", "id": "pmt-1"}, "name": "payment.completed" }"#;
    let (status, again) = send(post().header("Content-Type", "application/json").body(reserialised)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // Any other request under the key is a conflict: another name, object or data.
    let others = [
        json!({"name": "payment.failed", "object": {"id": "pmt-1", "type": "payment"}, "data": {"amount": {"currency": "SLE", "value": 1000}}}),
        json!({"name": "payment.completed", "object": {"id": "pmt-2", "type": "payment"}, "data": {"amount": {"currency": "SLE", "value": 1000}}}),
        json!({"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {"amount": {"currency": "SLE", "value": 1001}}}),
        json!({"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {"amount": {"currency": "SLE", "value": 1000}, "x": 1}}),
    ];
    for other in others {
        let (status, answer) = send(post().json(&other)).await;
        assert_error(status, &answer, StatusCode::CONFLICT, "idempotency_conflict", None);
    }
    // A key a webhook was created with is taken for publishing too.
    let key_of_a_create = unique_key();
    let (status, _) = send(
        server
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", &key_of_a_create)
            .json(&simple_webhook("created with a key")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = send(
        server
            .request(Method::POST, "/v1/events")
            .header("Idempotency-Key", &key_of_a_create)
            .json(&payment_event()),
    )
    .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "idempotency_conflict", None);
    let list = server.get("/v1/events").await;
    assert_eq!(list["pagination"]["count"], json!(1));
    // The same key on another endpoint is another request.
    let (status, answer) = send(
        server
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "evt-key-1")
            .json(&simple_webhook("x")),
    )
    .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "idempotency_conflict", None);
}

/// A publish's record as versions before the stored-event comparison saved it: the
/// fingerprint a digest of method, path and the body as parsed JSON (keys sorted).
fn digest_fingerprint(body: &serde_json::Value) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("POST\n/v1/events\n{body}")).to_vec()
}

#[tokio::test]
async fn publishes_recorded_by_earlier_versions_still_replay() {
    use hookrelay_core::event::EventDraft;
    use hookrelay_core::seal::{MasterKey, SecretCipher};
    use hookrelay_core::{SpaceId, Timestamp};
    use hookrelay_store::{DatabaseLocation, IdempotencyRecord};

    let dir = tempfile::TempDir::new().unwrap();
    let master = "33".repeat(32);
    let launch = Launch {
        env: vec![("HOOKRELAY_MASTER_KEY".into(), master.clone())],
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), launch.clone()).await;
    server.must_create(&simple_webhook("subscribed")).await;
    let database = server.database.clone();
    assert!(server.stop().await.success());

    // Two publishes saved the way earlier versions saved them: one record holding the
    // event's id, one holding the whole answer.
    let store = hookrelay_store::open(
        &DatabaseLocation::parse(&database).unwrap(),
        SecretCipher::new(&MasterKey::parse(&master).unwrap()),
    )
    .await
    .unwrap();
    let space = SpaceId::parse(SPACE).unwrap();
    let body = payment_event();
    let draft = EventDraft::parse(&body, &Default::default()).unwrap();
    let record = |key: &str, answer: Vec<u8>| IdempotencyRecord {
        space_id: space.clone(),
        key: key.to_owned(),
        fingerprint: digest_fingerprint(&body),
        status: 200,
        body: answer,
        create_time: Timestamp::now(),
        expire_time: Timestamp::now().plus(std::time::Duration::from_secs(3600)),
    };
    let by_id = draft.clone().into_event(space.clone(), Timestamp::now());
    let id_record = record("old-id-record", by_id.id.as_str().as_bytes().to_vec());
    store.publish_event(&by_id, Some(id_record)).await.unwrap();
    let old_answer = br#"{"success":true,"messages":[],"result":{"id":"evt-saved-whole"}}"#.to_vec();
    let by_answer = draft.into_event(space.clone(), Timestamp::now());
    store
        .publish_event(&by_answer, Some(record("old-answer-record", old_answer.clone())))
        .await
        .unwrap();
    drop(store);

    let server = TestServer::launch_in(dir.path(), launch).await;
    let publish = |key: &str, body: &serde_json::Value| {
        server
            .request(Method::POST, "/v1/events")
            .header("Idempotency-Key", key)
            .json(body)
    };
    let (status, replayed) = send(publish("old-id-record", &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["result"]["id"], json!(by_id.id.as_str()));
    assert_eq!(replayed["result"]["deliveryCount"], json!(1));
    let response = publish("old-answer-record", &body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.bytes().await.unwrap().as_ref(), old_answer.as_slice());
    // Another request under those keys is still a conflict.
    let mut other = payment_event();
    other["data"]["amount"]["value"] = json!(1001);
    for key in ["old-id-record", "old-answer-record"] {
        let (status, answer) = send(publish(key, &other)).await;
        assert_error(status, &answer, StatusCode::CONFLICT, "idempotency_conflict", None);
    }
    let list = server.get("/v1/events").await;
    assert_eq!(list["pagination"]["count"], json!(2), "no event was published twice");
}
