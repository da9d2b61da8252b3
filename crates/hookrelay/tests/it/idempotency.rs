//! `Idempotency-Key`: a retried create replays its first answer and creates nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use futures::future::join_all;

use crate::support::*;

async fn count(server: &TestServer) -> u64 {
    let (_, body) = send(server.request(Method::GET, "/v1/webhooks?limit=50")).await;
    body["pagination"]["count"].as_u64().unwrap()
}

#[tokio::test]
async fn same_key_and_body_replays_the_first_response() {
    let server = TestServer::start().await;
    let post = |body: serde_json::Value| {
        server
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "order-42")
            .json(&body)
    };
    let first = post(hmac_example()).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("Idempotent-Replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();

    // Same request, keys in another order: the same JSON, so the same answer.
    let reordered: serde_json::Value = serde_json::from_str(&{
        let mut fields: Vec<_> = hmac_example().as_object().unwrap().clone().into_iter().collect();
        fields.reverse();
        format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k:?}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    })
    .unwrap();
    for body in [hmac_example(), reordered] {
        let replay = post(body).send().await.unwrap();
        assert_eq!(replay.status(), StatusCode::OK);
        assert_eq!(replay.headers()["Idempotent-Replayed"], "true");
        let replay: serde_json::Value = replay.json().await.unwrap();
        assert_eq!(replay, first);
    }
    assert_eq!(count(&server).await, 1);
}

#[tokio::test]
async fn same_key_with_a_different_body_is_a_conflict() {
    let server = TestServer::start().await;
    let post = |body: serde_json::Value| {
        server
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "order-43")
            .json(&body)
    };
    let (status, _) = send(post(hmac_example())).await;
    assert_eq!(status, StatusCode::OK);
    let mut changed = hmac_example();
    changed["name"] = json!("Another name");
    let (status, body) = send(post(changed)).await;
    assert_error(status, &body, StatusCode::CONFLICT, "idempotency_conflict", None);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("different request"),
        "{body}"
    );
    assert_eq!(count(&server).await, 1);
}

#[tokio::test]
async fn a_rejected_request_does_not_use_up_its_key() {
    let server = TestServer::start().await;
    let post = |body: serde_json::Value| {
        server
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "fix-and-retry")
            .json(&body)
    };
    let mut broken = hmac_example();
    broken["events"] = json!([]);
    let (status, _) = send(post(broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = send(post(hmac_example())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_webhook() {
    let server = TestServer::start().await;
    let requests = (0..10).map(|_| {
        send(
            server
                .request(Method::POST, "/v1/webhooks")
                .header("Idempotency-Key", "burst")
                .json(&hmac_example()),
        )
    });
    let answers = join_all(requests).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["result"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one webhook for one key: {ids:?}");
    assert_eq!(count(&server).await, 1);
}

#[tokio::test]
async fn fifty_concurrent_creates_give_fifty_distinct_webhooks() {
    let server = TestServer::start().await;
    let bodies: Vec<_> = (0..50).map(|i| simple_webhook(&format!("concurrent {i}"))).collect();
    let answers = join_all(bodies.iter().map(|body| server.create_webhook(body))).await;
    let mut ids = std::collections::HashSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        ids.insert(body["result"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 50);
    let (_, list) = send(server.request(Method::GET, "/v1/webhooks?limit=50")).await;
    let listed: std::collections::HashSet<_> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(list["pagination"]["next"], json!(null));
}

#[tokio::test]
async fn a_key_is_held_for_the_idempotency_window_then_forgotten_and_free() {
    let window = std::time::Duration::from_secs(2);
    let server = TestServer::launch(Launch {
        args: ["--idempotency-window", "2s", "--cleaner-interval", "200ms"]
            .map(str::to_owned)
            .to_vec(),
        ..Launch::default()
    })
    .await;
    let post = |name: &str| {
        send(
            server
                .request(Method::POST, "/v1/webhooks")
                .header("Idempotency-Key", "window-key")
                .json(&simple_webhook(name)),
        )
    };
    let saved_at = std::time::Instant::now();
    let (status, first) = post("first").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, body) = post("second").await;
    if saved_at.elapsed() < window {
        assert_error(status, &body, StatusCode::CONFLICT, "idempotency_conflict", None);
    }
    // The cleaner forgets the record once it has expired, and not before.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while db_count(&server.database, "SELECT COUNT(*) FROM idempotency_keys").await > 0 {
        assert!(std::time::Instant::now() < deadline, "the expired key was never pruned");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(saved_at.elapsed() >= window, "pruned after {:?}", saved_at.elapsed());
    let (status, second) = post("second").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["result"]["id"], first["result"]["id"], "a new request under the freed key");
    assert_eq!(count(&server).await, 2);
}
