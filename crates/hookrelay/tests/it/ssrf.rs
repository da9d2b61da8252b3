//! Address safety at both ends: a webhook URL on a special-purpose address is refused
//! when it is created or updated, and a server that may not reach private targets does
//! not connect to such an address stored while it could.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

/// An IETF protocol assignment (192.0.0.0/24) and NAT64's well-known prefix leading to
/// 10.0.0.1: both passed the address check once.
const SPECIAL_PURPOSE_URLS: [&str; 2] = ["https://192.0.0.8/x", "https://[64:ff9b::a00:1]/x"];

#[tokio::test]
async fn webhooks_to_special_purpose_addresses_are_refused_on_create_and_update() {
    let server = TestServer::start().await;
    let created = server.must_create(&simple_webhook("public")).await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    for url in SPECIAL_PURPOSE_URLS {
        let (status, answer) = server
            .create_webhook(&json!({"name": "w", "url": url, "events": ["payment.completed"]}))
            .await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(("url", "private_address")),
        );
        let (status, answer) = send(server.request(Method::PATCH, &path).json(&json!({"url": url}))).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(("url", "private_address")),
        );
    }
    let list = server.get("/v1/webhooks").await;
    assert_eq!(list["pagination"]["count"], json!(1), "{list}");
    assert_eq!(
        server.get(&path).await["result"],
        created,
        "a refused update changed the webhook"
    );
}

/// A webhook stored while private targets were allowed is not delivered to once they
/// are not: the literal address is checked again before connecting.
#[tokio::test]
async fn a_stored_special_purpose_address_is_not_connected_to() {
    let dir = tempfile::TempDir::new().unwrap();
    let allowing = TestServer::launch_in(
        dir.path(),
        Launch {
            args: vec!["--allow-private-targets".into()],
            ..Launch::default()
        },
    )
    .await;
    let mut webhooks = Vec::new();
    for url in SPECIAL_PURPOSE_URLS {
        let url = url.replacen("https://", "http://", 1).replacen("/x", ":9/x", 1);
        webhooks.push(
            allowing
                .must_create(&json!({"name": "w", "url": url, "events": ["payment.completed"]}))
                .await,
        );
    }
    allowing.stop().await;

    // Timeouts long enough that an attempt that did connect could not finish inside the
    // wait below, so only a refusal before connecting passes.
    let guarded = TestServer::launch_in(
        dir.path(),
        Launch {
            args: vec![
                "--retry-schedule".into(),
                "0s".into(),
                "--connect-timeout".into(),
                "60s".into(),
                "--attempt-timeout".into(),
                "60s".into(),
            ],
            ..Launch::default()
        },
    )
    .await;
    guarded.publish("payment.completed", "pmt-1", json!({})).await;
    for webhook in &webhooks {
        let attempt = first_attempt(&guarded, webhook).await;
        assert_eq!(attempt["errorKind"], "blocked_address", "{webhook}: {attempt}");
        assert_eq!(attempt["statusCode"], Value::Null, "{attempt}");
    }
}

async fn first_attempt(server: &TestServer, webhook: &Value) -> Value {
    let id = webhook["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = server.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        if let Some(delivery) = list["result"].as_array().and_then(|l| l.first()) {
            let path = format!("/v1/webhooks/{id}/deliveries/{}", delivery["id"].as_str().unwrap());
            let detail = server.get(&path).await["result"].clone();
            if detail["attemptCount"].as_u64() >= Some(1) {
                return detail["attempts"][0].clone();
            }
        }
        assert!(Instant::now() < deadline, "no attempt on {id} within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
