//! On a cluster, a token revoked or expired on one node, or its space disabled, is
//! refused by every node within a second, whatever they remembered of it. Two nodes on
//! one PostgreSQL database (`support::required_postgres_url`), whatever the suite's
//! backend.

use std::time::{Duration, Instant};

use hookrelay_core::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{create_token, operate, with_token};
use crate::support::*;

/// Two nodes on one fresh PostgreSQL database.
async fn two_nodes() -> (TestServer, TestServer, tempfile::TempDir) {
    let dir = tempfile::TempDir::new().unwrap();
    let database = postgres_database(&required_postgres_url(), dir.path()).await;
    let launch = Launch {
        args: vec!["--database".into(), database],
        ..Launch::default()
    };
    let a = TestServer::launch(launch.clone()).await;
    let b = TestServer::launch(launch).await;
    (a, b, dir)
}

/// Calls `GET /v1/events` on `node` with `token` until it is refused with `status`;
/// the time from `since` until then. Panics after 10 s.
async fn refused_after(node: &TestServer, token: &str, status: StatusCode, since: Instant) -> Duration {
    loop {
        let (got, body) = send(with_token(node, token, Method::GET, "/v1/events")).await;
        if got == status {
            return since.elapsed();
        }
        assert_eq!(got, StatusCode::OK, "{body}");
        assert!(since.elapsed() < Duration::from_secs(10), "never refused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_token_revoked_on_one_node_is_refused_on_the_other_within_a_second() {
    let (a, b, _dir) = two_nodes().await;
    let created = create_token(&a, "short-lived", &["events:read"]).await;
    let token = created["token"].as_str().unwrap();
    // Node B has the token's grant in memory: it was just used there.
    for _ in 0..3 {
        let (status, _) = send(with_token(&b, token, Method::GET, "/v1/events")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let path = format!("/v1/tokens/{}", created["id"].as_str().unwrap());
    let (status, body) = send(a.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revoked = Instant::now();
    let took = refused_after(&b, token, StatusCode::UNAUTHORIZED, revoked).await;
    assert!(
        took < Duration::from_secs(1),
        "node B refused the revoked token after {took:?}"
    );
    let (status, _) = send(with_token(&a, token, Method::GET, "/v1/events")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "node A at once");
}

#[tokio::test]
async fn a_token_expiring_or_a_space_disabled_is_refused_on_every_node_within_a_second() {
    let (a, b, _dir) = two_nodes().await;
    let expiry = Timestamp::now().plus(Duration::from_millis(1_500));
    let (status, created) = send(
        a.request(Method::POST, "/v1/tokens")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "brief", "scopes": ["events:read"], "expireTime": expiry.to_rfc3339()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["result"]["token"].as_str().unwrap();
    let (status, _) = send(with_token(&b, token, Method::GET, "/v1/events")).await;
    assert_eq!(status, StatusCode::OK);
    let until_expiry = expiry.duration_since(Timestamp::now());
    let expires = Instant::now() + until_expiry;
    let took = refused_after(&b, token, StatusCode::UNAUTHORIZED, Instant::now()).await;
    let late = Instant::now().saturating_duration_since(expires);
    assert!(
        took >= until_expiry.saturating_sub(Duration::from_millis(50)),
        "refused before it expired"
    );
    assert!(late < Duration::from_secs(1), "refused {late:?} after it expired");

    // The bootstrap token, remembered by both nodes, once its space is disabled.
    let full = create_token(&a, "full", &["events:read"]).await;
    let token = full["token"].as_str().unwrap();
    for node in [&a, &b] {
        let (status, _) = send(with_token(node, token, Method::GET, "/v1/events")).await;
        assert_eq!(status, StatusCode::OK);
    }
    operate(&a, &["space", "disable", "--space", SPACE]).await;
    let disabled = Instant::now();
    for node in [&a, &b] {
        let took = refused_after(node, token, StatusCode::FORBIDDEN, disabled).await;
        assert!(took < Duration::from_secs(1), "refused after {took:?}");
    }
}
