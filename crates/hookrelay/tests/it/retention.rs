//! Retention through the real binary: the cleaner deletes finished history past its
//! period and leaves deliveries still being retried alone; payload expiry drops data and
//! response bodies and keeps the history; a space's own retention set with the CLI.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::metrics::scrape::scrape;
use crate::receiver::{Receiver, Reply};
use crate::support::*;
use crate::tenancy::operate;

const WAIT: Duration = Duration::from_secs(20);

/// A server delivering to loopback receivers, retrying a failure only after an hour
/// (so a failing delivery stays pending), its cleaner running every 200 ms.
async fn cleaning_server(retention: &[&str]) -> TestServer {
    let mut args: Vec<String> = [
        "--allow-private-targets",
        "--retry-schedule",
        "0s,1h",
        "--cleaner-interval",
        "200ms",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(retention.iter().map(|s| s.to_string()));
    TestServer::launch(Launch {
        args,
        ..Launch::default()
    })
    .await
}

/// A webhook to `url` subscribed to `event`.
async fn webhook_for(server: &TestServer, url: &str, event: &str) -> Value {
    server
        .must_create(&json!({"name": event, "url": url, "events": [event]}))
        .await
}

/// The status of `GET /v1/events/{id}` and its body.
async fn event(server: &TestServer, id: &str) -> (StatusCode, Value) {
    send(server.request(Method::GET, &format!("/v1/events/{id}"))).await
}

/// Polls until `done` holds for the event's answer.
async fn wait_for_event(server: &TestServer, id: &str, done: impl Fn(StatusCode, &Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = event(server, id).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "event {id} never reached the state: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The webhook's deliveries, each with its attempts.
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

async fn wait_for_delivery(server: &TestServer, webhook: &Value, status: &str, attempts: u32) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = deliveries(server, webhook).await;
        if let Some(found) = list
            .iter()
            .find(|d| d["status"] == status && d["attemptCount"] == json!(attempts))
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {status} delivery with {attempts} attempts: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

#[tokio::test]
async fn finished_history_is_deleted_after_retention_and_deliveries_still_retried_survive() {
    let server = cleaning_server(&["--retention", "2s"]).await;
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.script(|_| Reply::Status(500));
    let delivered = webhook_for(&server, &ok.url, "payment.completed").await;
    let failing = webhook_for(&server, &down.url, "payment.failed").await;

    // Published first, so the cleaner has passed its cutoff once the later ones are gone.
    let retried = server.publish("payment.failed", "pmt-down", json!({"n": 1})).await;
    let sent = server.publish("payment.completed", "pmt-ok", json!({"n": 2})).await;
    let unsubscribed = server.publish("payout.completed", "pay-1", json!({"n": 3})).await;
    wait_for_delivery(&server, &delivered, "succeeded", 1).await;
    wait_for_delivery(&server, &failing, "pending", 1).await;

    for gone in [&sent, &unsubscribed] {
        wait_for_event(&server, id(gone), |status, _| status == StatusCode::NOT_FOUND).await;
    }
    assert!(deliveries(&server, &delivered).await.is_empty());
    let attempts = "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id";
    let (_, kept) = event(&server, id(&retried)).await;
    assert_eq!(kept["result"]["data"], json!({"n": 1}), "{kept}");
    let still = deliveries(&server, &failing).await;
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(still[0]["status"], "pending");
    assert_eq!(still[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(
        db_count(&server.database, attempts).await,
        1,
        "only the retried delivery's attempt"
    );
    assert_eq!(db_count(&server.database, "SELECT COUNT(*) FROM events").await, 1);

    // The metrics count what the cleaner deleted, once its run has ended.
    let deadline = Instant::now() + Duration::from_secs(20);
    let scraped = loop {
        let scraped = scrape(&format!("{}/metrics", server.base)).await;
        if scraped.value("hookrelay_retention_last_run_timestamp_seconds", &[]) > 0.0
            && scraped.value("hookrelay_retention_deleted_total", &[("kind", "events")]) >= 2.0
        {
            break scraped;
        }
        assert!(Instant::now() < deadline, "the cleaner's run was not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deleted = |kind: &str| scraped.value("hookrelay_retention_deleted_total", &[("kind", kind)]);
    assert_eq!(deleted("events"), 2.0);
    assert_eq!(deleted("deliveries"), 1.0);
    assert_eq!(deleted("attempts"), 1.0);
    assert!(scraped.value("hookrelay_retention_last_run_timestamp_seconds", &[]) > 1.6e9);
}

#[tokio::test]
async fn payload_expiry_drops_data_and_response_bodies_and_keeps_the_history() {
    let server = cleaning_server(&["--retention", "1h", "--payload-retention", "2s"]).await;
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.script(|_| Reply::Status(500));
    let delivered = webhook_for(&server, &ok.url, "payment.completed").await;
    let failing = webhook_for(&server, &down.url, "payment.failed").await;
    let retried = server
        .publish("payment.failed", "pmt-down", json!({"card": "4242"}))
        .await;
    let sent = server
        .publish("payment.completed", "pmt-ok", json!({"card": "4242"}))
        .await;
    let before = wait_for_delivery(&server, &delivered, "succeeded", 1).await;
    assert_eq!(before["attempts"][0]["responseBody"], "answer 200", "{before}");
    wait_for_delivery(&server, &failing, "pending", 1).await;

    let expired = wait_for_event(&server, id(&sent), |_, body| body["result"]["dataRemoved"] == true).await;
    let result = &expired["result"];
    assert!(result.get("data").is_none(), "{expired}");
    assert!(
        result["dataRemoveTime"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{expired}"
    );
    assert_eq!(result["object"]["id"], "pmt-ok");
    assert_eq!(result["deliveryCount"], 1);
    let after = wait_for_delivery(&server, &delivered, "succeeded", 1).await;
    assert_eq!(after["attempts"][0]["statusCode"], 200, "{after}");
    assert_eq!(after["attempts"][0]["responseBody"], Value::Null, "{after}");

    // Nothing to send any more: a retry is refused and changes nothing.
    let path = format!("/v1/webhooks/{}/deliveries/{}/retry", id(&delivered), id(&after));
    let (status, body) = send(server.request(Method::POST, &path)).await;
    assert_error(status, &body, StatusCode::CONFLICT, "event_data_removed", None);
    assert_eq!(
        wait_for_delivery(&server, &delivered, "succeeded", 1).await["status"],
        "succeeded"
    );

    // Published before the expired one and still being retried: its data stays.
    let (_, kept) = event(&server, id(&retried)).await;
    assert_eq!(kept["result"]["data"], json!({"card": "4242"}), "{kept}");
    assert_eq!(kept["result"]["dataRemoved"], false, "{kept}");
    let listed = server.get("/v1/events").await;
    let shown: Vec<bool> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.get("data").is_some())
        .collect();
    assert_eq!(shown, [false, true], "newest first: {listed}");
}

#[tokio::test]
async fn a_space_retention_set_with_the_cli_overrides_the_server() {
    let server = cleaning_server(&["--retention", "1h"]).await;
    let other = cli_token(&server, "spc-other").await;
    operate(
        &server,
        &["space", "set-retention", "--space", SPACE, "--retention", "2s"],
    )
    .await;
    let listed = operate(&server, &["space", "list"]).await;
    let line = listed.lines().find(|l| l.starts_with(SPACE)).expect("listed");
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[columns.len() - 2..], ["2s", "-"], "{listed}");

    let publish_in_other = || {
        server
            .bare(Method::POST, "/v1/events")
            .bearer_auth(&other)
            .header("Monime-Space-Id", "spc-other")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "payment.completed", "object": {"id": "o", "type": "payment"}, "data": {}}))
    };
    let (status, kept) = send(publish_in_other()).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let short = server.publish("payment.completed", "pmt-1", json!({})).await;
    wait_for_event(&server, id(&short), |status, _| status == StatusCode::NOT_FOUND).await;
    let in_other = format!("SELECT COUNT(*) FROM events WHERE id = '{}'", id(&kept["result"]));
    assert_eq!(
        db_count(&server.database, &in_other).await,
        1,
        "the server's hour applies there"
    );

    for (args, says) in [
        (
            vec!["--retention", "1d", "--payload-retention", "2d"],
            "must be shorter",
        ),
        (vec!["--retention", "soon"], "duration"),
        (vec![], "give at least one"),
    ] {
        let mut all = vec!["space", "set-retention", "--space", SPACE];
        all.extend(args);
        let (ok, _, stderr) = crate::tenancy::operator(&server, &all).await;
        assert!(!ok && stderr.contains(says), "{all:?}: {stderr}");
    }
}

#[tokio::test]
async fn payload_retention_not_shorter_than_retention_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .args(["serve", "--retention", "1d", "--payload-retention", "1d"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("payload_retention") && stderr.contains("must be shorter than retention"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_event_delivered_after_its_payload_period_loses_its_data_once_delivered() {
    let server = TestServer::launch(Launch {
        args: [
            "--allow-private-targets",
            "--retry-schedule",
            "0s,4s",
            "--cleaner-interval",
            "200ms",
            "--retention",
            "1h",
            "--payload-retention",
            "1s",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Launch::default()
    })
    .await;
    let late = Receiver::start().await;
    late.script(|n| if n == 0 { Reply::Status(500) } else { Reply::Status(204) });
    let webhook = webhook_for(&server, &late.url, "payment.completed").await;
    let retried = server.publish("payment.completed", "pmt-late", json!({"n": 1})).await;
    let after = server.publish("payout.completed", "pay-1", json!({"n": 2})).await;
    wait_for_delivery(&server, &webhook, "pending", 1).await;

    // The cleaner went past the retried event (the later one lost its data) and kept
    // its data while its delivery was still to be made.
    wait_for_event(&server, id(&after), |_, body| body["result"]["dataRemoved"] == true).await;
    let (_, kept) = event(&server, id(&retried)).await;
    assert_eq!(kept["result"]["data"], json!({"n": 1}), "{kept}");
    assert_eq!(deliveries(&server, &webhook).await[0]["status"], "pending");

    wait_for_delivery(&server, &webhook, "succeeded", 2).await;
    wait_for_event(&server, id(&retried), |_, body| body["result"]["dataRemoved"] == true).await;
}

#[tokio::test]
async fn alerts_no_longer_pending_are_deleted_past_the_retention() {
    // One failed attempt fails the delivery and raises a failing alert; without a mail
    // server it is recorded as skipped, which the cleaner may delete.
    let server = cleaning_server(&["--retention", "2s", "--alert-failing-after", "1"]).await;
    let down = Receiver::start().await;
    down.script(|_| Reply::Status(500));
    let webhook = server
        .must_create(&json!({"name": "down", "url": down.url, "events": ["payment.completed"], "alertEmails": ["ops@example.com"]}))
        .await;
    let path = format!("/v1/webhooks/{}/alerts", id(&webhook));
    server.publish("payment.completed", "pmt-1", json!({})).await;
    let deadline = Instant::now() + WAIT;
    while server.get(&path).await["result"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no alert was raised");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = server.get(&path).await;
        if listed["result"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the alert was never deleted: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(db_count(&server.database, "SELECT COUNT(*) FROM alerts").await, 0);
}
