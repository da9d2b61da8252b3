//! Quotas: the server's settings, and a space's own set by an operator.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::operate;
use crate::support::*;

async fn with_quota(flag: &str, value: &str) -> TestServer {
    TestServer::launch(Launch {
        args: vec![flag.into(), value.into()],
        ..Launch::default()
    })
    .await
}

/// Creates webhooks until one is refused (at most `most`), for at most 10 s: a quota an
/// operator changed is in force within a second. Returns how many were created.
async fn create_until_refused(server: &TestServer, most: usize) -> (usize, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut created = 0;
    loop {
        let (status, body) = server.create_webhook(&simple_webhook("w")).await;
        match status {
            StatusCode::OK => created += 1,
            _ => return (created, body),
        }
        assert!(
            created <= most && Instant::now() < deadline,
            "{created} created: {body}"
        );
    }
}

#[tokio::test]
async fn a_space_has_at_most_its_quota_of_webhooks() {
    let server = with_quota("--max-webhooks-per-space", "2").await;
    let (created, body) = create_until_refused(&server, 2).await;
    assert_eq!(created, 2);
    assert_error(
        StatusCode::CONFLICT,
        &body,
        StatusCode::CONFLICT,
        "quota_exceeded",
        None,
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_webhooks_per_space = 2"), "{message}");
    // Another space has its own count.
    let other = cli_token(&server, "spc-other").await;
    let (status, body) = send(
        server
            .bare(Method::POST, "/v1/webhooks")
            .bearer_auth(&other)
            .header("Monime-Space-Id", "spc-other")
            .header("Idempotency-Key", "k")
            .json(&simple_webhook("theirs")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    operate(
        &server,
        &["space", "set-quota", "--space", SPACE, "--max-webhooks", "3"],
    )
    .await;
    let start = Instant::now();
    loop {
        let (status, body) = server.create_webhook(&simple_webhook("w")).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(body["error"]["reason"], "quota_exceeded");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the raised quota is not in force"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = server.create_webhook(&simple_webhook("w")).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_webhooks_per_space = 3"),
        "{body}"
    );

    // Back to the server's setting: with three, none more.
    operate(
        &server,
        &["space", "set-quota", "--space", SPACE, "--max-webhooks", "default"],
    )
    .await;
    let listed = operate(&server, &["space", "list"]).await;
    let ours = listed.lines().find(|l| l.starts_with(SPACE)).unwrap();
    assert_eq!(ours.split_whitespace().nth(5), Some("-"), "{listed}");
    let (took, body) = until_refused_with(&server, "max_webhooks_per_space = 2").await;
    assert!(
        took < Duration::from_secs(1),
        "the server's setting is in force after {took:?}: {body}"
    );
}

/// Creates webhooks until one is refused naming `quota`; how long that took.
async fn until_refused_with(server: &TestServer, quota: &str) -> (Duration, serde_json::Value) {
    let start = Instant::now();
    loop {
        let (status, body) = server.create_webhook(&simple_webhook("w")).await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        if status == StatusCode::CONFLICT && message.contains(quota) {
            return (start.elapsed(), body);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{status}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn publishes_beyond_the_rate_are_refused_with_retry_after() {
    // One a second, in bursts of two.
    let server = with_quota("--max-publish-rate", "1").await;
    let other = cli_token(&server, "spc-other").await;
    let publish = |token: &str, space: &str| {
        server
            .bare(Method::POST, "/v1/events")
            .bearer_auth(token)
            .header("Monime-Space-Id", space)
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {}}))
    };
    let start = Instant::now();
    let mut accepted = 0;
    let refused = loop {
        let response = publish(TOKEN, SPACE).send().await.unwrap();
        if response.status() == StatusCode::OK {
            accepted += 1;
            assert!(accepted <= 10, "never refused");
            continue;
        }
        break response;
    };
    // The burst, and what a second brings, at most.
    let allowed = 2 + start.elapsed().as_secs() as usize;
    assert!((2..=allowed).contains(&accepted), "{accepted} accepted");
    assert_eq!(refused.headers()["retry-after"], "1");
    let status = refused.status();
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited", None);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_publish_rate = 1"),
        "{body}"
    );

    // Another space is not held back; this one may publish again after Retry-After.
    let (status, body) = send(publish(&other, "spc-other")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = send(publish(TOKEN, SPACE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_publish_fanning_out_past_its_quota_is_refused_and_stores_nothing() {
    let server = with_quota("--max-fan-out", "2").await;
    for i in 0..3 {
        server.must_create(&simple_webhook(&format!("w{i}"))).await;
    }
    let key = unique_key();
    let publish = || {
        server
            .request(Method::POST, "/v1/events")
            .header("Idempotency-Key", &key)
            .json(&json!({"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {}}))
    };
    let (status, body) = send(publish()).await;
    assert_error(status, &body, StatusCode::CONFLICT, "quota_exceeded", None);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("max_fan_out = 2"),
        "{body}"
    );
    assert_eq!(server.get("/v1/events").await["result"], json!([]));
    assert_eq!(db_count(&server.database, "SELECT COUNT(*) FROM deliveries").await, 0);

    operate(&server, &["space", "set-quota", "--space", SPACE, "--max-fan-out", "3"]).await;
    let start = Instant::now();
    let published = loop {
        let (status, body) = send(publish()).await;
        if status == StatusCode::OK {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the raised quota is not in force: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(published["result"]["deliveryCount"], 3);
    // Lowered again (a new publish is refused), a retry of the publish that went
    // through still gets its answer.
    operate(&server, &["space", "set-quota", "--space", SPACE, "--max-fan-out", "1"]).await;
    let start = Instant::now();
    loop {
        let fresh = server
            .request(Method::POST, "/v1/events")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "payment.completed", "object": {"id": "pmt-2", "type": "payment"}, "data": {}}));
        let (status, body) = send(fresh).await;
        if status == StatusCode::CONFLICT {
            assert!(
                body["error"]["message"].as_str().unwrap().contains("max_fan_out = 1"),
                "{body}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the lowered quota is not in force: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, replayed) = send(publish()).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["result"]["id"], published["result"]["id"]);
}
