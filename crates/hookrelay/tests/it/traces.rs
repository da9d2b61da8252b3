//! OpenTelemetry trace export: the real binary sends OTLP/HTTP JSON to a collector run
//! here, and one trace runs from a publish to each of its attempts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

/// An OTLP/HTTP collector that keeps every span it is sent (JSON encoding).
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Debug)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: Value,
}

impl Span {
    /// An attribute's value as text (OTLP JSON sends integers as strings or numbers).
    fn attribute(&self, key: &str) -> Option<String> {
        let found = self.attributes.as_array()?.iter().find(|a| a["key"] == key)?;
        let value = &found["value"];
        value["stringValue"].as_str().map(str::to_owned).or_else(|| {
            value
                .get("intValue")
                .map(|v| v.as_str().map_or(v.to_string(), str::to_owned))
        })
    }
}

impl Collector {
    async fn start() -> (Self, String) {
        let collector = Self::default();
        let kept = collector.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    kept.take(&serde_json::from_slice(&body).expect("an OTLP JSON export"));
                    ([("content-type", "application/json")], "{}")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (collector, endpoint)
    }

    fn take(&self, export: &Value) {
        for resource in export["resourceSpans"].as_array().into_iter().flatten() {
            for attribute in resource["resource"]["attributes"].as_array().into_iter().flatten() {
                if attribute["key"] == "service.name" {
                    let name = attribute["value"]["stringValue"].as_str().unwrap_or_default();
                    self.services.lock().unwrap().push(name.to_owned());
                }
            }
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                    self.spans.lock().unwrap().push(Span {
                        trace_id: text("traceId"),
                        span_id: text("spanId"),
                        parent_span_id: text("parentSpanId"),
                        name: text("name"),
                        attributes: span["attributes"].clone(),
                    });
                }
            }
        }
    }

    /// Waits until `publishes` publish spans and `attempts` attempt spans arrived.
    async fn wait_for(&self, publishes: usize, attempts: usize) -> (Vec<Span>, Vec<Span>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let spans = self.spans.lock().unwrap().clone();
            let named = |name: &str| spans.iter().filter(|s| s.name == name).cloned().collect::<Vec<_>>();
            let (publish, attempt) = (named("publish"), named("attempt"));
            if publish.len() >= publishes && attempt.len() >= attempts {
                return (publish, attempt);
            }
            assert!(Instant::now() < deadline, "spans within {WAIT:?}: {spans:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A server exporting traces to `endpoint`, retrying after `retry`.
fn traced(endpoint: &str, retry: &str) -> Launch {
    Launch {
        args: ["--allow-private-targets", "--retry-schedule", &format!("0s,{retry}")]
            .map(str::to_owned)
            .to_vec(),
        env: [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "hookrelay-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
        ..Launch::default()
    }
}

#[tokio::test]
async fn one_trace_runs_from_a_publish_to_each_attempt() {
    let (collector, endpoint) = Collector::start().await;
    let server = TestServer::launch(traced(&endpoint, "100ms")).await;
    let (flaky, ok) = (Receiver::start().await, Receiver::start().await);
    flaky.script(|n| if n == 0 { Reply::Status(503) } else { Reply::Status(204) });
    let mut webhooks = Vec::new();
    for (name, receiver) in [("flaky", &flaky), ("ok", &ok)] {
        let mut body = simple_webhook(name);
        body["url"] = json!(receiver.url);
        webhooks.push(server.must_create(&body).await);
    }

    let event = server
        .publish("payment.completed", "pay-traced", json!({"amount": 1}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    flaky.wait_for(2, WAIT).await;
    ok.wait_for(1, WAIT).await;
    server.wait_until_idle().await;
    let (publishes, attempts) = collector.wait_for(1, 3).await;

    assert_eq!(publishes.len(), 1, "{publishes:?}");
    let publish = &publishes[0];
    assert_eq!(publish.attribute("hookrelay.event_id").as_deref(), Some(event_id));
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for attempt in &attempts {
        assert_eq!(attempt.trace_id, publish.trace_id, "{attempt:?}");
        assert_eq!(attempt.parent_span_id, publish.span_id, "{attempt:?}");
        assert_eq!(attempt.attribute("hookrelay.event_id").as_deref(), Some(event_id));
    }
    for webhook in &webhooks {
        let id = webhook["id"].as_str().unwrap();
        let path = format!("/v1/webhooks/{id}/deliveries");
        let delivery = server.get(&path).await["result"][0]["id"].as_str().unwrap().to_owned();
        let mut statuses: Vec<_> = attempts
            .iter()
            .filter(|a| a.attribute("hookrelay.webhook_id").as_deref() == Some(id))
            .map(|a| {
                assert_eq!(a.attribute("hookrelay.delivery_id"), Some(delivery.clone()), "{a:?}");
                a.attribute("http.response.status_code").unwrap_or_default()
            })
            .collect();
        statuses.sort();
        let expected = if webhook["name"] == "flaky" {
            vec!["204", "503"]
        } else {
            vec!["200"]
        };
        assert_eq!(statuses, expected, "{}", webhook["name"]);
    }
    assert!(
        collector
            .services
            .lock()
            .unwrap()
            .iter()
            .all(|s| s == "hookrelay-under-test"),
        "{:?}",
        collector.services
    );
    let stored = "SELECT COUNT(*) FROM events WHERE trace_parent LIKE '00-%'";
    assert_eq!(db_count(&server.database, stored).await, 1);
}

#[tokio::test]
async fn a_retry_made_by_the_next_process_joins_the_publish_trace() {
    let (collector, endpoint) = Collector::start().await;
    let dir = tempfile::TempDir::new().unwrap();
    let server = TestServer::launch_in(dir.path(), traced(&endpoint, "3s")).await;
    let receiver = Receiver::start().await;
    receiver.script(|n| if n == 0 { Reply::Status(503) } else { Reply::Status(200) });
    let mut body = simple_webhook("retried");
    body["url"] = json!(receiver.url);
    server.must_create(&body).await;
    let event = server.publish("payment.completed", "pay-restart", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    server.wait_until_idle().await;
    assert!(server.stop().await.success());
    // Stopping exported what was buffered: no wait for the batch's schedule.
    let spans = collector.spans.lock().unwrap().clone();
    let publish = spans
        .iter()
        .find(|s| s.name == "publish")
        .expect("the publish span, flushed at exit");
    assert_eq!(spans.iter().filter(|s| s.name == "attempt").count(), 1, "{spans:?}");

    // The retry is made by a new process, which knows the trace only from the database.
    let _server = TestServer::launch_in(dir.path(), traced(&endpoint, "3s")).await;
    receiver.wait_for(2, WAIT).await;
    let (_, attempts) = collector.wait_for(1, 2).await;
    for attempt in &attempts {
        assert_eq!(attempt.trace_id, publish.trace_id, "{attempt:?}");
        assert_eq!(attempt.parent_span_id, publish.span_id, "{attempt:?}");
        assert_eq!(attempt.attribute("hookrelay.event_id").as_deref(), event["id"].as_str());
    }
    let mut numbers: Vec<_> = attempts
        .iter()
        .filter_map(|a| a.attribute("hookrelay.attempt"))
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["1", "2"]);
}

#[tokio::test]
async fn without_an_otlp_endpoint_no_trace_context_is_stored() {
    let server = TestServer::start().await;
    server.publish("payment.completed", "pay-untraced", json!({})).await;
    let events = db_count(&server.database, "SELECT COUNT(*) FROM events").await;
    let traced = db_count(
        &server.database,
        "SELECT COUNT(*) FROM events WHERE trace_parent IS NOT NULL",
    )
    .await;
    assert_eq!((events, traced), (1, 0));
}

#[tokio::test]
async fn a_bad_otel_setting_stops_serve_naming_it() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "ten seconds")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_TIMEOUT must be a whole number of milliseconds"),
        "{stderr}"
    );
}
