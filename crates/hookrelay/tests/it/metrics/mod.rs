//! `GET /metrics`, scraped and parsed by Prometheus' official Python client
//! (`prometheus_client`), while real receivers take deliveries: the counters move by
//! what happened, histograms are consistent, the backlog gauges follow the work, and
//! `metrics_listen` moves the scrape to its own address.

pub(crate) mod scrape;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::support::*;
use scrape::{scrape, Scrape};

const WAIT: Duration = Duration::from_secs(20);

async fn delivering_server(retry_schedule: &str, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--allow-private-targets".to_owned(),
        "--retry-schedule".to_owned(),
        retry_schedule.to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    TestServer::launch(Launch {
        args,
        ..Launch::default()
    })
    .await
}

async fn webhook_to(server: &TestServer, name: &str, url: &str) -> Value {
    let mut body = simple_webhook(name);
    body["url"] = json!(url);
    body["alertEmails"] = json!(["owner@example.com"]);
    server.must_create(&body).await
}

fn metrics_url(server: &TestServer) -> String {
    format!("{}/metrics", server.base)
}

/// Scrapes until `done` holds for the scrape; panics after [`WAIT`].
async fn scrape_until(url: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let scraped = scrape(url).await;
        if done(&scraped) {
            return scraped;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {WAIT:?}: {scraped:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn counters_move_by_the_deliveries_made() {
    let server = delivering_server("0s,100ms", &[]).await;
    let (ok, failing) = (Receiver::start().await, Receiver::start().await);
    failing.script(|_| Reply::Status(500));
    webhook_to(&server, "ok", &ok.url).await;
    webhook_to(&server, "failing", &failing.url).await;
    let url = metrics_url(&server);
    let before = scrape(&url).await;

    for n in 0..3 {
        server
            .publish("payment.completed", &format!("pay-{n}"), json!({"n": n}))
            .await;
    }
    ok.wait_for(3, WAIT).await;
    failing.wait_for(6, WAIT).await;
    server.wait_until_idle().await;
    let after = scrape(&url).await;

    let moved = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);
    assert_eq!(moved("hookrelay_events_published_total", &[]), 3.0);
    assert_eq!(moved("hookrelay_deliveries_total", &[("outcome", "succeeded")]), 3.0);
    assert_eq!(moved("hookrelay_deliveries_total", &[("outcome", "retried")]), 3.0);
    assert_eq!(moved("hookrelay_deliveries_total", &[("outcome", "failed")]), 3.0);
    assert_eq!(moved("hookrelay_deliveries_total", &[("outcome", "cancelled")]), 0.0);
    let attempts = |result| moved("hookrelay_attempt_duration_seconds_count", &[("result", result)]);
    assert_eq!(attempts("success"), 3.0);
    assert_eq!(attempts("failure"), 6.0);
    assert_eq!(
        moved(
            "hookrelay_db_operation_duration_seconds_count",
            &[("operation", "publish")]
        ),
        3.0
    );
    assert!(
        moved(
            "hookrelay_db_operation_duration_seconds_count",
            &[("operation", "record")]
        ) >= 1.0
    );
    assert!(
        moved(
            "hookrelay_db_operation_duration_seconds_count",
            &[("operation", "claim")]
        ) >= 1.0
    );
    after.assert_histograms_consistent();
    assert_eq!(after.value("hookrelay_deliveries_due", &[]), 0.0);
    assert_eq!(after.value("hookrelay_oldest_due_age_seconds", &[]), 0.0);
    assert_eq!(after.value("hookrelay_attempts_in_flight", &[]), 0.0);
    assert_eq!(after.value("hookrelay_backlog_read_ok", &[]), 1.0);

    // Six failures in a row make the webhook failing: an alert is queued, and with
    // e-mail off the alerter finishes it as skipped.
    assert!(moved("hookrelay_alerts_queued_total", &[]) >= 1.0);
    scrape_until(&url, "every queued alert finished", |s| {
        s.value("hookrelay_alerts_finished_total", &[("result", "skipped")])
            == s.value("hookrelay_alerts_queued_total", &[])
    })
    .await;
}

#[tokio::test]
async fn the_lag_gauges_rise_while_a_delivery_waits_and_fall_after() {
    let server = delivering_server("0s", &[]).await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Held);
    webhook_to(&server, "held", &receiver.url).await;
    let url = metrics_url(&server);

    server.publish("payment.completed", "pay-held", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    // The attempt is held by the receiver: the delivery is due and not delivered.
    let waiting = scrape_until(&url, "the oldest due delivery's age above zero", |s| {
        s.value("hookrelay_oldest_due_age_seconds", &[]) > 0.0
    })
    .await;
    assert_eq!(waiting.value("hookrelay_deliveries_due", &[]), 1.0);
    assert_eq!(waiting.value("hookrelay_attempts_in_flight", &[]), 1.0);

    receiver.release();
    server.wait_until_idle().await;
    let done = scrape(&url).await;
    assert_eq!(done.value("hookrelay_deliveries_due", &[]), 0.0);
    assert_eq!(done.value("hookrelay_oldest_due_age_seconds", &[]), 0.0);
    assert_eq!(done.value("hookrelay_attempts_in_flight", &[]), 0.0);
    assert_eq!(
        done.value("hookrelay_deliveries_total", &[("outcome", "succeeded")]),
        1.0
    );
    done.assert_histograms_consistent();
}

#[tokio::test]
async fn disabled_webhooks_and_cancelled_deliveries_are_counted() {
    // One attempt now, the next an hour later: the failing delivery stays pending.
    let server = delivering_server("0s,1h", &[]).await;
    let (gone, failing) = (Receiver::start().await, Receiver::start().await);
    gone.script(|_| Reply::Status(410));
    failing.script(|_| Reply::Status(500));
    webhook_to(&server, "gone", &gone.url).await;
    let failing_webhook = webhook_to(&server, "failing", &failing.url).await;
    let url = metrics_url(&server);

    server.publish("payment.completed", "pay-1", json!({})).await;
    gone.wait_for(1, WAIT).await;
    failing.wait_for(1, WAIT).await;
    server.wait_until_idle().await;
    let after_attempts = scrape(&url).await;
    // 410 disables its webhook at once and ends the delivery.
    assert_eq!(after_attempts.value("hookrelay_webhooks_auto_disabled_total", &[]), 1.0);
    assert_eq!(after_attempts.value("hookrelay_webhooks_disabled", &[]), 1.0);
    assert_eq!(
        after_attempts.value("hookrelay_deliveries_total", &[("outcome", "failed")]),
        1.0
    );
    assert_eq!(
        after_attempts.value("hookrelay_deliveries_total", &[("outcome", "retried")]),
        1.0
    );
    // The retry is an hour away: pending, but not due.
    assert_eq!(after_attempts.value("hookrelay_deliveries_due", &[]), 0.0);

    // Disabling the failing webhook by hand cancels its pending delivery.
    let path = format!("/v1/webhooks/{}", failing_webhook["id"].as_str().unwrap());
    let (status, body) = send(server.request(Method::PATCH, &path).json(&json!({"enabled": false}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after_disable = scrape(&url).await;
    assert_eq!(
        after_disable.value("hookrelay_deliveries_total", &[("outcome", "cancelled")]),
        1.0
    );
    assert_eq!(after_disable.value("hookrelay_webhooks_disabled", &[]), 2.0);
    assert_eq!(after_disable.value("hookrelay_webhooks_auto_disabled_total", &[]), 1.0);
}

/// PostgreSQL whatever the suite's backend (`cluster`): the backlog is the database's,
/// the counters each node's own.
#[tokio::test]
async fn on_a_cluster_the_backlog_is_the_databases_and_counters_each_nodes() {
    let (nodes, _dirs) = crate::cluster::cluster(2, &["--allow-private-targets", "--retry-schedule", "0s"]).await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Held);
    webhook_to(&nodes[0], "held", &receiver.url).await;
    nodes[0].publish("payment.completed", "pay-cluster", json!({})).await;
    receiver.wait_for(1, WAIT).await;

    let urls: Vec<_> = nodes.iter().map(metrics_url).collect();
    let mut held = Vec::new();
    for url in &urls {
        held.push(scrape(url).await);
    }
    let sum = |scrapes: &[Scrape], name: &str, labels: &[(&str, &str)]| -> f64 {
        scrapes.iter().map(|s| s.value(name, labels)).sum()
    };
    for scraped in &held {
        assert_eq!(scraped.value("hookrelay_deliveries_due", &[]), 1.0);
    }
    assert_eq!(held[0].value("hookrelay_events_published_total", &[]), 1.0);
    assert_eq!(held[1].value("hookrelay_events_published_total", &[]), 0.0);
    assert_eq!(sum(&held, "hookrelay_attempts_in_flight", &[]), 1.0);

    receiver.release();
    for node in &nodes {
        node.wait_until_idle().await;
    }
    let mut done = Vec::new();
    for url in &urls {
        done.push(scrape(url).await);
    }
    for scraped in &done {
        assert_eq!(scraped.value("hookrelay_deliveries_due", &[]), 0.0);
    }
    assert_eq!(
        sum(&done, "hookrelay_deliveries_total", &[("outcome", "succeeded")]),
        1.0
    );
    assert_eq!(sum(&done, "hookrelay_attempts_in_flight", &[]), 0.0);
    // Each node times its own heartbeats.
    for url in &urls {
        scrape_until(url, "a heartbeat timed", |s| {
            s.value(
                "hookrelay_db_operation_duration_seconds_count",
                &[("operation", "heartbeat")],
            ) >= 1.0
        })
        .await;
    }
}

#[tokio::test]
async fn metrics_listen_serves_the_scrape_alone() {
    let server = delivering_server("0s", &["--metrics-listen", "127.0.0.1:0"]).await;
    let own = server
        .stdout_lines
        .iter()
        .find_map(|line| line.strip_prefix("hookrelay metrics on "))
        .unwrap_or_else(|| panic!("no metrics address in {:?}", server.stdout_lines))
        .to_owned();
    let receiver = Receiver::start().await;
    webhook_to(&server, "ok", &receiver.url).await;
    server.publish("payment.completed", "pay-1", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    server.wait_until_idle().await;

    let scraped = scrape(&own).await;
    assert_eq!(scraped.value("hookrelay_events_published_total", &[]), 1.0);
    assert_eq!(
        scraped.value("hookrelay_deliveries_total", &[("outcome", "succeeded")]),
        1.0
    );

    let (status, body) = send(server.bare(Method::GET, "/metrics")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    let api_on_metrics = own.replace("/metrics", "/healthz");
    let (status, body) = send(server.client.get(api_on_metrics)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn the_dashboard_and_alert_rules_use_only_exported_metrics() {
    let server = TestServer::start().await;
    let scraped = scrape(&metrics_url(&server)).await;
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana");

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(docs.join("hookrelay-dashboard.json")).unwrap()).unwrap();
    assert!(
        dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()),
        "no panels"
    );
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("a target's expr").to_owned());
        }
    }
    let rules = scrape::yaml_as_json(&docs.join("alerts.yml"));
    let mut alerts = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            alerts.push(rule["alert"].as_str().expect("an alert name").to_owned());
            exprs.push(rule["expr"].as_str().expect("an alert's expr").to_owned());
        }
    }
    for expected in [
        "HookrelayDeliveryLag",
        "HookrelayDeliveryFailureRate",
        "HookrelayWebhooksAutoDisabled",
    ] {
        assert!(
            alerts.iter().any(|a| a == expected),
            "no {expected} alert in {alerts:?}"
        );
    }
    let guide = std::fs::read_to_string(docs.join("../operations/metrics.md")).unwrap();
    for family in scraped.family_names() {
        assert!(
            guide.contains(family),
            "docs/operations/metrics.md does not describe {family}"
        );
    }
    for expr in &exprs {
        let names = scrape::metric_names_in(expr);
        assert!(!names.is_empty(), "{expr} names no hookrelay metric");
        for name in names {
            assert!(
                scraped.has_sample(&name),
                "{expr} uses {name}, which a scrape does not have"
            );
        }
    }
}
