//! `POST/GET /v1/erasures` through the real binary: an object's events lose their data
//! and response bodies, their pending deliveries are cancelled, other objects and
//! spaces are untouched; idempotency, validation, scope; the SDK and the CLI.

use std::time::{Duration, Instant};

use hookrelay_client::{Client, CreateErasure, ListParams};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::support::*;
use crate::tenancy::{create_token, with_token};

const WAIT: Duration = Duration::from_secs(20);

/// A server delivering to loopback receivers, retrying a failure only after an hour.
async fn server() -> TestServer {
    TestServer::launch(Launch {
        args: ["--allow-private-targets", "--retry-schedule", "0s,1h"]
            .map(str::to_owned)
            .to_vec(),
        ..Launch::default()
    })
    .await
}

async fn erase(server: &TestServer, key: &str, body: &Value) -> (StatusCode, Value) {
    send(
        server
            .request(Method::POST, "/v1/erasures")
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

async fn event(server: &TestServer, id: &Value) -> Value {
    server.get(&format!("/v1/events/{}", id.as_str().unwrap())).await["result"].clone()
}

/// The webhook's deliveries, newest first, each with its attempts.
async fn deliveries(server: &TestServer, webhook: &Value) -> Vec<Value> {
    let webhook = webhook["id"].as_str().unwrap();
    let list = server.get(&format!("/v1/webhooks/{webhook}/deliveries")).await;
    let mut detailed = Vec::new();
    for delivery in list["result"].as_array().unwrap() {
        let id = delivery["id"].as_str().unwrap();
        detailed.push(server.get(&format!("/v1/webhooks/{webhook}/deliveries/{id}")).await["result"].clone());
    }
    detailed
}

/// Waits until every delivery of the webhook has had an attempt recorded.
async fn wait_for_attempts(server: &TestServer, webhook: &Value, deliveries_expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = deliveries(server, webhook).await;
        if list.len() == deliveries_expected && list.iter().all(|d| d["attemptCount"] == 1) {
            return list;
        }
        assert!(Instant::now() < deadline, "attempts never recorded: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn erasure_removes_the_objects_data_only_and_cancels_its_pending_deliveries() {
    let server = server().await;
    let down = Receiver::start().await;
    down.script(|_| Reply::Status(500));
    let failing = server
        .must_create(&json!({"name": "down", "url": down.url, "events": ["payment.completed"]}))
        .await;
    let a1 = server
        .publish("payment.completed", "cus_a", json!({"email": "a@x"}))
        .await;
    let a2 = server
        .publish("payment.completed", "cus_a", json!({"email": "a@y"}))
        .await;
    let b = server
        .publish("payment.completed", "cus_b", json!({"email": "b@x"}))
        .await;
    let other_token = cli_token(&server, "spc-other").await;
    let (status, other) = send(
        server
            .bare(Method::POST, "/v1/events")
            .bearer_auth(&other_token)
            .header("Monime-Space-Id", "spc-other")
            .header("Idempotency-Key", unique_key())
            .json(
                &json!({"name": "payment.completed", "object": {"id": "cus_a", "type": "customer"}, "data": {"k": 1}}),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let before = wait_for_attempts(&server, &failing, 3).await;
    assert!(before
        .iter()
        .all(|d| d["status"] == "pending" && d["attempts"][0]["responseBody"] == "answer 500"));

    let key = unique_key();
    let (status, body) = erase(&server, &key, &json!({"objectId": "cus_a"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record = body["result"].clone();
    assert!(record["id"].as_str().unwrap().starts_with("ers-"), "{body}");
    assert_eq!(record["objectId"], "cus_a");
    assert_eq!(
        (record["from"].clone(), record["to"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(record["eventsErased"], 2, "{body}");
    assert_eq!(record["deliveriesCancelled"], 2, "{body}");

    for erased in [&a1, &a2] {
        let shown = event(&server, &erased["id"]).await;
        assert_eq!(shown["dataRemoved"], true, "{shown}");
        assert!(shown.get("data").is_none(), "{shown}");
        assert_eq!(shown["object"]["id"], "cus_a");
    }
    assert_eq!(event(&server, &b["id"]).await["data"], json!({"email": "b@x"}));
    let in_other = send(
        server
            .bare(
                Method::GET,
                &format!("/v1/events/{}", other["result"]["id"].as_str().unwrap()),
            )
            .bearer_auth(&other_token)
            .header("Monime-Space-Id", "spc-other"),
    )
    .await;
    assert_eq!(
        in_other.1["result"]["data"],
        json!({"k": 1}),
        "another space's object is untouched"
    );

    let after = deliveries(&server, &failing).await;
    for delivery in &after {
        let erased = delivery["eventId"] != b["id"];
        let expected = if erased { "cancelled" } else { "pending" };
        assert_eq!(delivery["status"], expected, "{delivery}");
        let body = &delivery["attempts"][0]["responseBody"];
        assert_eq!(body.is_null(), erased, "{delivery}");
    }

    // The same key answers the first result; a new one finds nothing left to erase.
    let (status, again) = erase(&server, &key, &json!({"objectId": "cus_a"})).await;
    assert_eq!((status, &again["result"]), (StatusCode::OK, &record));
    let (status, conflict) = erase(&server, &key, &json!({"objectId": "cus_b"})).await;
    assert_error(status, &conflict, StatusCode::CONFLICT, "idempotency_conflict", None);
    let (_, second) = erase(&server, &unique_key(), &json!({"objectId": "cus_a"})).await;
    assert_eq!(
        (
            second["result"]["eventsErased"].clone(),
            second["result"]["deliveriesCancelled"].clone()
        ),
        (json!(0), json!(0))
    );

    let fetched = server
        .get(&format!("/v1/erasures/{}", record["id"].as_str().unwrap()))
        .await;
    assert_eq!(fetched["result"], record);
    let listed = server.get("/v1/erasures").await;
    assert_eq!(listed["result"][1], record, "newest first: {listed}");
    let (status, hidden) = send(
        server
            .bare(Method::GET, &format!("/v1/erasures/{}", record["id"].as_str().unwrap()))
            .bearer_auth(&other_token)
            .header("Monime-Space-Id", "spc-other"),
    )
    .await;
    assert_error(status, &hidden, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn a_time_range_limits_the_erasure() {
    let server = server().await;
    let old = server.publish("payment.completed", "cus_t", json!({"n": 1})).await;
    let boundary = server.publish("payment.completed", "cus_x", json!({})).await["createTime"].clone();
    let new = server.publish("payment.completed", "cus_t", json!({"n": 2})).await;
    let (status, body) = erase(&server, &unique_key(), &json!({"objectId": "cus_t", "from": boundary})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["eventsErased"], 1, "{body}");
    assert_eq!(body["result"]["from"], boundary);
    assert_eq!(event(&server, &old["id"]).await["data"], json!({"n": 1}));
    assert_eq!(event(&server, &new["id"]).await["dataRemoved"], true);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_the_scope_is_required() {
    let server = server().await;
    for (body, field, rule) in [
        (json!({}), "objectId", "required"),
        (json!({"objectId": ""}), "objectId", "min_length"),
        (json!({"objectId": "x", "from": "monday"}), "from", "format"),
        (
            json!({"objectId": "x", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            "to",
            "after_from",
        ),
        (json!({"objectId": "x", "reason": "gdpr"}), "reason", "unknown_field"),
    ] {
        let (status, answer) = erase(&server, &unique_key(), &body).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
    }
    let (status, answer) = send(
        server
            .request(Method::POST, "/v1/erasures")
            .json(&json!({"objectId": "x"})),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "required")),
    );

    let reader = create_token(&server, "reader", &["events:read", "events:publish"]).await;
    let token = reader["token"].as_str().unwrap();
    let published = server.publish("payment.completed", "cus_s", json!({"n": 1})).await;
    let request = with_token(&server, token, Method::POST, "/v1/erasures")
        .header("Idempotency-Key", unique_key())
        .json(&json!({"objectId": "cus_s"}));
    let (status, answer) = send(request).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "insufficient_scope", None);
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("events:erase"),
        "{answer}"
    );
    let (status, answer) = send(with_token(&server, token, Method::GET, "/v1/erasures")).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "insufficient_scope", None);
    assert_eq!(
        event(&server, &published["id"]).await["data"],
        json!({"n": 1}),
        "nothing erased"
    );
}

#[tokio::test]
async fn the_sdk_and_the_cli_erase_list_and_get() {
    let server = server().await;
    server.publish("payment.completed", "cus_sdk", json!({"n": 1})).await;
    let client = Client::builder(SPACE, TOKEN).base_url(&server.base).build().unwrap();
    let created = client
        .erasures()
        .create(&CreateErasure {
            object_id: "cus_sdk".to_owned(),
            ..CreateErasure::default()
        })
        .await
        .unwrap()
        .result;
    assert_eq!((created.events_erased, created.deliveries_cancelled), (1, 0));
    assert_eq!(client.erasures().get(&created.id).await.unwrap().result, created);
    let page = client.erasures().list(ListParams::default()).await.unwrap();
    assert_eq!(page.result, vec![created.clone()]);
    let events = client.events().list(ListParams::default()).await.unwrap().result;
    assert!(events[0].data_removed && events[0].data.is_null(), "{events:?}");

    server.publish("payment.completed", "cus_cli", json!({"n": 2})).await;
    let cli = |args: &[&str]| {
        let mut command = command(&server.dir);
        command
            .env("HOOKRELAY_URL", &server.base)
            .env("HOOKRELAY_SPACE_ID", SPACE)
            .env("HOOKRELAY_TOKEN", TOKEN)
            .args(args);
        command
    };
    let output = cli(&["erasures", "create", "--object-id", "cus_cli", "--json"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["result"]["eventsErased"], 1, "{answer}");
    let id = answer["result"]["id"].as_str().unwrap();
    let output = cli(&["erasures", "get", id]).output().await.unwrap();
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success() && shown.contains(id) && shown.contains("cus_cli"),
        "{shown}"
    );
    let output = cli(&["erasures", "list"]).output().await.unwrap();
    let listed = String::from_utf8(output.stdout).unwrap();
    assert!(listed.contains(id) && listed.contains(&created.id), "{listed}");
}
