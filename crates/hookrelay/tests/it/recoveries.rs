//! Bulk recovery (`/v1/webhooks/{id}/recoveries`) through the real binary: failed
//! deliveries in the window are retried and arrive, the rest are left alone; progress,
//! replays, a restart mid-recovery, other webhooks' deliveries meanwhile, and errors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::support::*;
use crate::tenancy::{create_token, with_token};

const WAIT: Duration = Duration::from_secs(30);

/// Deliver to loopback receivers, one attempt each, so a failure is final at once.
fn launch(extra_env: &[(&str, &str)], extra_args: &[&str]) -> Launch {
    let mut args = [
        "--allow-private-targets",
        "--retry-schedule",
        "0s",
        "--attempt-timeout",
        "2s",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra_args.iter().map(|a| a.to_string()));
    Launch {
        args,
        env: extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Launch::default()
    }
}

async fn webhook_to(server: &TestServer, url: &str, event: &str) -> String {
    let body = json!({"name": "recovered", "url": url, "events": [event]});
    server.must_create(&body).await["id"].as_str().unwrap().to_owned()
}

async fn publish_as(server: &TestServer, name: &str, object: &str) -> Value {
    server.publish(name, object, json!({"n": object})).await
}

async fn recover(server: &TestServer, webhook: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    send(
        server
            .request(Method::POST, &format!("/v1/webhooks/{webhook}/recoveries"))
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

async fn recovery(server: &TestServer, webhook: &str, id: &str) -> Value {
    server.get(&format!("/v1/webhooks/{webhook}/recoveries/{id}")).await["result"].clone()
}

/// Polls the recovery until `done` holds of it.
async fn wait_for_recovery(server: &TestServer, webhook: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = recovery(server, webhook, id).await;
        if done(&found) {
            return found;
        }
        assert!(Instant::now() < deadline, "the recovery never got there: {found}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every delivery of the webhook, by id.
async fn deliveries(server: &TestServer, webhook: &str) -> HashMap<String, Value> {
    let mut found = HashMap::new();
    let mut after = String::new();
    loop {
        let page = server
            .get(&format!("/v1/webhooks/{webhook}/deliveries?limit=50&after={after}"))
            .await;
        for delivery in page["result"].as_array().unwrap() {
            found.insert(delivery["id"].as_str().unwrap().to_owned(), delivery.clone());
        }
        match page["pagination"]["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => return found,
        }
    }
}

fn statuses(deliveries: &HashMap<String, Value>, event_ids: &[String]) -> Vec<(String, u64)> {
    let by_event: HashMap<&str, &Value> = deliveries
        .values()
        .map(|d| (d["eventId"].as_str().unwrap(), d))
        .collect();
    event_ids
        .iter()
        .map(|e| {
            let d = by_event[e.as_str()];
            (
                d["status"].as_str().unwrap().to_owned(),
                d["attemptCount"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn failed_deliveries_in_the_window_are_retried_and_arrive_the_rest_left_alone() {
    let server = TestServer::launch(launch(&[], &[])).await;
    let receiver = Receiver::start().await;
    // Requests 0-2 fail (before the window), 3 succeeds, 4-7 fail, later ones succeed.
    receiver.script(|n| {
        if n == 3 || n >= 8 {
            Reply::Status(200)
        } else {
            Reply::Status(500)
        }
    });
    let webhook = webhook_to(&server, &receiver.url, "payment.completed").await;
    let mut before = Vec::new();
    for n in 0..3 {
        before.push(publish_as(&server, "payment.completed", &format!("before-{n}")).await);
        server.wait_until_idle().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = time_now();
    let mut inside = Vec::new();
    for n in 0..5 {
        inside.push(publish_as(&server, "payment.completed", &format!("inside-{n}")).await);
        server.wait_until_idle().await;
    }
    assert_eq!(receiver.count(), 8);
    // The last one's data is erased: it is matched but has nothing to send.
    let (status, body) = send(
        server
            .request(Method::POST, "/v1/erasures")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"objectId": "inside-4"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let request = json!({"since": since});
    let key = unique_key();
    let (status, created) = recover(&server, &webhook, &key, &request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let created = created["result"].clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rcv-"), "{created}");
    assert_eq!(created["webhookId"], json!(webhook));
    assert_eq!(created["statuses"], json!(["failed", "cancelled"]));
    assert_eq!(created["status"], json!("running"));
    assert_eq!(created["matched"], json!(0));

    let done = wait_for_recovery(&server, &webhook, &id, |r| r["status"] != "running").await;
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(
        (
            done["matched"].clone(),
            done["requeued"].clone(),
            done["skipped"].clone()
        ),
        (json!(4), json!(3), json!(1))
    );
    assert!(done["finishTime"].is_string(), "{done}");
    receiver.wait_for(11, WAIT).await;
    server.wait_until_idle().await;
    assert_eq!(receiver.count(), 11, "three recovered deliveries, each once");
    let all = deliveries(&server, &webhook).await;
    let expected_before = vec![("failed".to_owned(), 1); 3];
    assert_eq!(statuses(&all, &ids(&before)), expected_before);
    let expected_inside = vec![
        ("succeeded".to_owned(), 1),
        ("succeeded".to_owned(), 2),
        ("succeeded".to_owned(), 2),
        ("succeeded".to_owned(), 2),
        ("failed".to_owned(), 1),
    ];
    assert_eq!(statuses(&all, &ids(&inside)), expected_inside);

    // The same request under the same key answers the same recovery; another body is a conflict.
    let response = server
        .request(Method::POST, &format!("/v1/webhooks/{webhook}/recoveries"))
        .header("Idempotency-Key", &key)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let replayed: Value = response.json().await.unwrap();
    assert_eq!(replayed["result"]["id"], json!(id));
    let (status, body) = recover(
        &server,
        &webhook,
        &key,
        &json!({"since": since, "statuses": ["failed"]}),
    )
    .await;
    assert_error(status, &body, StatusCode::CONFLICT, "idempotency_conflict", None);

    // A second recovery of the same window finds nothing left to retry.
    let (_, again) = recover(&server, &webhook, &unique_key(), &request).await;
    let again_id = again["result"]["id"].as_str().unwrap().to_owned();
    let again = wait_for_recovery(&server, &webhook, &again_id, |r| r["status"] != "running").await;
    assert_eq!(
        (again["matched"].clone(), again["skipped"].clone()),
        (json!(1), json!(1)),
        "{again}"
    );
    let list = server.get(&format!("/v1/webhooks/{webhook}/recoveries?limit=1")).await;
    assert_eq!(list["result"][0]["id"], json!(again_id));
    let next = list["pagination"]["next"].as_str().unwrap();
    let list = server
        .get(&format!("/v1/webhooks/{webhook}/recoveries?limit=1&after={next}"))
        .await;
    assert_eq!(list["result"][0]["id"], json!(id));
}

fn time_now() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let seconds = micros.div_euclid(1_000_000);
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        micros.rem_euclid(1_000_000)
    )
}

/// Publishes `count` events named `name`, a few at a time.
async fn publish_many(server: &TestServer, name: &str, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(16) {
        let objects: Vec<String> = chunk.iter().map(|n| format!("obj-{n}")).collect();
        join_all(objects.iter().map(|object| publish_as(server, name, object))).await;
    }
}

#[tokio::test]
async fn a_recovery_cut_short_by_a_kill_resumes_without_retrying_twice() {
    let dir = tempfile::TempDir::new().unwrap();
    let env = [
        ("HOOKRELAY_RECOVERY_BATCH_SIZE", "2"),
        ("HOOKRELAY_RECOVERY_BATCH_PAUSE", "300ms"),
    ];
    let server = TestServer::launch_in(dir.path(), launch(&env, &[])).await;
    let receiver = Receiver::start().await;
    receiver.script(|n| if n < 12 { Reply::Status(500) } else { Reply::Status(200) });
    let webhook = webhook_to(&server, &receiver.url, "payment.completed").await;
    let since = time_now();
    publish_many(&server, "payment.completed", 12).await;
    server.wait_until_idle().await;
    assert_eq!(receiver.count(), 12);

    let (status, created) = recover(&server, &webhook, &unique_key(), &json!({"since": since})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["result"]["id"].as_str().unwrap().to_owned();
    let partial = wait_for_recovery(&server, &webhook, &id, |r| r["requeued"].as_u64().unwrap() >= 2).await;
    assert_eq!(
        partial["status"],
        json!("running"),
        "batches of 2, 300 ms apart: {partial}"
    );
    server.kill().await;

    let server = TestServer::launch_in(dir.path(), launch(&env, &[])).await;
    let done = wait_for_recovery(&server, &webhook, &id, |r| r["status"] != "running").await;
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(
        (
            done["matched"].clone(),
            done["requeued"].clone(),
            done["skipped"].clone()
        ),
        (json!(12), json!(12), json!(0))
    );
    receiver.wait_for(24, WAIT).await;
    server.wait_until_idle().await;
    let all = deliveries(&server, &webhook).await;
    assert_eq!(all.len(), 12);
    for delivery in all.values() {
        assert_eq!(delivery["status"], json!("succeeded"), "{delivery}");
        assert_eq!(delivery["attemptCount"], json!(2), "retried once: {delivery}");
    }
    // The server stops (it is killed on drop) before its directory goes.
    drop(server);
    drop(dir);
}

#[tokio::test]
async fn a_webhook_being_recovered_does_not_hold_back_another_webhooks_deliveries() {
    const BACKLOG: usize = 2_000;
    let server = TestServer::launch(launch(&[], &["--max-in-flight-per-webhook", "8"])).await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    slow.script(|n| {
        if n < BACKLOG {
            Reply::Status(500)
        } else {
            Reply::StatusAfter(200, Duration::from_millis(50))
        }
    });
    let recovered = webhook_to(&server, &slow.url, "payment.completed").await;
    webhook_to(&server, &fast.url, "payment.failed").await;
    let since = time_now();
    publish_many(&server, "payment.completed", BACKLOG).await;
    // Every one attempted and failed (a slow machine takes a while), then recorded.
    slow.wait_for(BACKLOG, Duration::from_secs(120)).await;
    server.wait_until_idle().await;
    assert_eq!(slow.count(), BACKLOG);

    let (status, created) = recover(&server, &recovered, &unique_key(), &json!({"since": since})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["result"]["id"].as_str().unwrap().to_owned();
    wait_for_recovery(&server, &recovered, &id, |r| r["status"] == "completed").await;
    // The whole backlog is due now; the other webhook's fresh events go out meanwhile.
    let mut latencies = Vec::new();
    for n in 0..10 {
        let published = Instant::now();
        publish_as(&server, "payment.failed", &format!("fresh-{n}")).await;
        fast.wait_for(n + 1, WAIT).await;
        latencies.push(published.elapsed());
    }
    let backlog_left = 2 * BACKLOG - slow.count();
    assert!(
        backlog_left > 0,
        "the backlog drained before the other webhook was served: no contention measured"
    );
    let worst = latencies.iter().max().unwrap();
    assert!(
        *worst < Duration::from_secs(2),
        "another webhook waited {worst:?} behind a recovery of {BACKLOG} ({backlog_left} still queued)"
    );
    slow.wait_for(2 * BACKLOG, Duration::from_secs(120)).await;
}

#[tokio::test]
async fn broken_requests_get_the_error_envelope() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("w")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases = [
        (json!({}), ("since", "required")),
        (json!({"since": "yesterday"}), ("since", "format")),
        (
            json!({"since": "2020-01-02T00:00:00Z", "until": "2020-01-01T00:00:00Z"}),
            ("until", "after_since"),
        ),
        (
            json!({"since": "2020-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"}),
            ("until", "not_future"),
        ),
        (
            json!({"since": "2020-01-01T00:00:00Z", "statuses": ["pending"]}),
            ("statuses[0]", "enum"),
        ),
        (
            json!({"since": "2020-01-01T00:00:00Z", "statuses": ["lost"]}),
            ("statuses[0]", "enum"),
        ),
        (
            json!({"since": "2020-01-01T00:00:00Z", "webhookId": webhook}),
            ("webhookId", "unknown_field"),
        ),
    ];
    for (body, rule) in cases {
        let (status, answer) = recover(&server, &webhook, &unique_key(), &body).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(rule),
        );
    }
    let body = json!({"since": "2020-01-01T00:00:00Z"});
    let (status, answer) = send(
        server
            .request(Method::POST, &format!("/v1/webhooks/{webhook}/recoveries"))
            .json(&body),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "required")),
    );
    for unknown in ["whk-unknown", "nothing"] {
        let (status, answer) = recover(&server, unknown, &unique_key(), &body).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found", None);
    }
    let (status, answer) =
        send(server.request(Method::GET, &format!("/v1/webhooks/{webhook}/recoveries/rcv-unknown"))).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found", None);

    let reader = create_token(&server, "reader", &["deliveries:read"]).await;
    let reader = reader["token"].as_str().unwrap();
    let (status, answer) = send(
        with_token(
            &server,
            reader,
            Method::POST,
            &format!("/v1/webhooks/{webhook}/recoveries"),
        )
        .header("Idempotency-Key", unique_key())
        .json(&body),
    )
    .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "insufficient_scope", None);
    let (status, _) = send(with_token(
        &server,
        reader,
        Method::GET,
        &format!("/v1/webhooks/{webhook}/recoveries"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, answer) = send(
        server
            .request(Method::PATCH, &format!("/v1/webhooks/{webhook}"))
            .json(&json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = recover(&server, &webhook, &unique_key(), &body).await;
    assert_error(status, &answer, StatusCode::CONFLICT, "webhook_disabled", None);
}

#[tokio::test]
async fn the_sdk_and_the_cli_recover_and_follow() {
    use hookrelay_client::{Client, CreateRecovery, ListParams};

    let server = TestServer::launch(launch(&[], &[])).await;
    let receiver = Receiver::start().await;
    receiver.script(|n| if n < 2 { Reply::Status(500) } else { Reply::Status(200) });
    let webhook = webhook_to(&server, &receiver.url, "payment.completed").await;
    let since = time_now();
    publish_many(&server, "payment.completed", 2).await;
    server.wait_until_idle().await;

    let client = Client::builder(SPACE, TOKEN).base_url(&server.base).build().unwrap();
    let request = CreateRecovery {
        since: since.clone(),
        statuses: Some(vec!["failed".to_owned()]),
        ..CreateRecovery::default()
    };
    let created = client.recoveries().create(&webhook, &request).await.unwrap().result;
    assert_eq!(
        (created.status.as_str(), created.statuses.clone()),
        ("running", vec!["failed".to_owned()])
    );
    wait_for_recovery(&server, &webhook, &created.id, |r| r["status"] == "completed").await;
    let done = client.recoveries().get(&webhook, &created.id).await.unwrap().result;
    assert_eq!((done.matched, done.requeued, done.skipped), (2, 2, 0), "{done:?}");
    let page = client.recoveries().list(&webhook, ListParams::default()).await.unwrap();
    assert_eq!(page.result, vec![done.clone()]);
    receiver.wait_for(4, WAIT).await;

    let cli = |args: &[&str]| {
        let mut command = command(&server.dir);
        command
            .env("HOOKRELAY_URL", &server.base)
            .env("HOOKRELAY_SPACE_ID", SPACE)
            .env("HOOKRELAY_TOKEN", TOKEN)
            .args(args);
        command
    };
    let output = cli(&[
        "webhook",
        "recover",
        &webhook,
        "--since",
        &since,
        "--status",
        "cancelled",
        "--json",
    ])
    .output()
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["result"]["statuses"], json!(["cancelled"]), "{answer}");
    let id = answer["result"]["id"].as_str().unwrap().to_owned();
    wait_for_recovery(&server, &webhook, &id, |r| r["status"] == "completed").await;
    let output = cli(&["webhook", "recovery", &webhook, &id]).output().await.unwrap();
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success() && shown.contains(&id) && shown.contains("completed"),
        "{shown}"
    );
    let output = cli(&["webhook", "recoveries", &webhook]).output().await.unwrap();
    let listed = String::from_utf8(output.stdout).unwrap();
    assert!(listed.contains(&id) && listed.contains(&created.id), "{listed}");
    let output = cli(&["webhook", "recover", &webhook, "--since", "soon"])
        .output()
        .await
        .unwrap();
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success() && error.contains("since"), "{error}");
}
