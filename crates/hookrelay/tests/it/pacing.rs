//! Per-webhook pacing and retry schedules through the real binary: a webhook's
//! `maxDeliveriesPerSecond` holds over any one-second window within its stated
//! tolerance (at most `rate × W + rate` deliveries start in any `W` seconds) without
//! slowing another webhook of the space; a change of the limit takes effect; two nodes
//! share one webhook's pace; a webhook's own `retrySchedule` replaces the server's.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::cluster;
use crate::receiver::{Received, Receiver, Reply};
use crate::support::*;

/// A server that may deliver to receivers on loopback, retrying by `schedule`.
async fn delivering_server(schedule: &str) -> TestServer {
    TestServer::launch(Launch {
        args: [
            "--allow-private-targets",
            "--retry-schedule",
            schedule,
            "--attempt-timeout",
            "2s",
        ]
        .map(String::from)
        .to_vec(),
        ..Launch::default()
    })
    .await
}

/// A webhook to `receiver` for `event`, with `settings` applied.
async fn webhook(server: &TestServer, receiver: &Receiver, event: &str, settings: Value) -> String {
    let body = json!({"name": event, "url": receiver.url, "events": [event]});
    let id = server.must_create(&body).await["id"].as_str().unwrap().to_owned();
    put_settings(server, &id, &settings).await;
    id
}

async fn put_settings(server: &TestServer, id: &str, settings: &Value) {
    let (status, body) = send(
        server
            .request(Method::PUT, &format!("/v1/webhooks/{id}/settings"))
            .json(settings),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn publish_many(server: &TestServer, event: &str, n: usize) {
    for i in 0..n {
        server
            .publish(event, &format!("obj-{event}-{i}"), json!({"i": i}))
            .await;
    }
}

/// The most requests that arrived within any `window`.
fn most_within(received: &[Received], window: Duration) -> usize {
    let mut at: Vec<Instant> = received.iter().map(|r| r.at).collect();
    at.sort();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| t.duration_since(at[i]) < window).count())
        .max()
        .unwrap_or(0)
}

/// Time from the first arrival to the last.
fn span(received: &[Received]) -> Duration {
    let first = received.iter().map(|r| r.at).min().unwrap();
    let last = received.iter().map(|r| r.at).max().unwrap();
    last - first
}

#[tokio::test]
async fn a_limited_webhook_is_paced_and_an_unlimited_one_beside_it_is_not() {
    let server = delivering_server("0s,1s").await;
    let (paced, free) = (Receiver::start().await, Receiver::start().await);
    webhook(
        &server,
        &paced,
        "payment.completed",
        json!({"maxDeliveriesPerSecond": 5}),
    )
    .await;
    webhook(&server, &free, "payout.completed", json!({})).await;

    publish_many(&server, "payment.completed", 40).await;
    paced.wait_for(1, Duration::from_secs(10)).await;
    // Meanwhile the other webhook's deliveries arrive promptly, one by one.
    for i in 0..5 {
        let published = Instant::now();
        server
            .publish("payout.completed", &format!("free-{i}"), json!({}))
            .await;
        let arrived = free.wait_for(i + 1, Duration::from_secs(10)).await;
        let took = arrived[i].at.duration_since(published);
        assert!(
            took < Duration::from_millis(900),
            "unlimited delivery {i} took {took:?}"
        );
    }
    assert!(paced.count() < 40, "the paced webhook is still being paced");

    let received = paced.wait_for(40, Duration::from_secs(30)).await;
    let most = most_within(&received, Duration::from_secs(1));
    assert!(most <= 10, "{most} deliveries within one second: more than 5 × 1 + 5");
    let span = span(&received);
    // 5 at once, then 35 at 5 a second.
    assert!(
        span >= Duration::from_millis(6_500) && span <= Duration::from_secs(10),
        "40 at 5 a second took {span:?}"
    );
}

#[tokio::test]
async fn a_changed_limit_takes_effect() {
    let server = delivering_server("0s,1s").await;
    let receiver = Receiver::start().await;
    let id = webhook(
        &server,
        &receiver,
        "payment.completed",
        json!({"maxDeliveriesPerSecond": 2}),
    )
    .await;
    publish_many(&server, "payment.completed", 24).await;
    receiver.wait_for(4, Duration::from_secs(10)).await;
    assert!(receiver.count() < 10, "paced at 2 a second: {}", receiver.count());

    // Lifted: the other 20 go out at once instead of over ten seconds.
    put_settings(&server, &id, &json!({"maxDeliveriesPerSecond": null})).await;
    let lifted = Instant::now();
    receiver.wait_for(24, Duration::from_secs(30)).await;
    let took = lifted.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the rest took {took:?} after the limit was lifted"
    );

    // Set again, lower: 10 more at 1 a second.
    put_settings(&server, &id, &json!({"maxDeliveriesPerSecond": 1})).await;
    publish_many(&server, "payment.completed", 10).await;
    let received = receiver.wait_for(34, Duration::from_secs(30)).await;
    let last = &received[24..];
    assert!(
        most_within(last, Duration::from_secs(1)) <= 2,
        "at most 1 × 1 + 1 within one second"
    );
    let span = span(last);
    assert!(span >= Duration::from_millis(7_500), "10 at 1 a second took {span:?}");
}

#[tokio::test]
async fn a_webhooks_own_retry_schedule_replaces_the_servers() {
    let server = delivering_server("0s,2s").await;
    let (own, servers) = (Receiver::start().await, Receiver::start().await);
    for receiver in [&own, &servers] {
        receiver.script(|_| Reply::Status(500));
    }
    let own_id = webhook(
        &server,
        &own,
        "payment.completed",
        json!({"retrySchedule": ["0s", "1s", "1s"]}),
    )
    .await;
    let servers_id = webhook(&server, &servers, "payout.completed", json!({})).await;
    server.publish("payment.completed", "obj-own", json!({})).await;
    server.publish("payout.completed", "obj-servers", json!({})).await;

    let own_attempts = own.wait_for(3, Duration::from_secs(15)).await;
    let server_attempts = servers.wait_for(2, Duration::from_secs(15)).await;
    server.wait_until_idle().await;
    assert_eq!(own.count(), 3, "the webhook's schedule has three attempts");
    assert_eq!(servers.count(), 2, "the server's schedule has two");
    let gaps = |attempts: &[Received]| -> Vec<Duration> {
        attempts.windows(2).map(|w| w[1].at.duration_since(w[0].at)).collect()
    };
    for gap in gaps(&own_attempts) {
        // 1 s with jitter of ±10 %, plus a claim's delay.
        assert!(
            gap >= Duration::from_millis(880) && gap < Duration::from_millis(1_800),
            "{gap:?}"
        );
    }
    let gap = gaps(&server_attempts)[0];
    assert!(
        gap >= Duration::from_millis(1_780) && gap < Duration::from_millis(3_000),
        "{gap:?}"
    );
    for id in [own_id, servers_id] {
        let listed = server.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        let statuses: Vec<&Value> = listed["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["status"])
            .collect();
        assert_eq!(statuses, [&json!("failed")], "{id}: {listed}");
    }
}

#[tokio::test]
async fn two_nodes_together_keep_one_webhooks_pace() {
    let (nodes, _dirs) = cluster(2, &["--allow-private-targets", "--retry-schedule", "0s,1s"]).await;
    let receiver = Receiver::start().await;
    webhook(
        &nodes[0],
        &receiver,
        "payment.completed",
        json!({"maxDeliveriesPerSecond": 5}),
    )
    .await;
    // Published on both nodes, so both claim.
    for i in 0..30 {
        nodes[i % 2]
            .publish("payment.completed", &format!("obj-{i}"), json!({"i": i}))
            .await;
    }
    let received = receiver.wait_for(30, Duration::from_secs(30)).await;
    let most = most_within(&received, Duration::from_secs(1));
    assert!(most <= 10, "{most} deliveries within one second: more than 5 × 1 + 5");
    let span = span(&received);
    assert!(span >= Duration::from_millis(4_500), "30 at 5 a second took {span:?}");
}
