//! The Rust SDK against a live server: every seed example, the receiver example, and
//! the client's own behaviour (pagination stream, errors, idempotency, retries, alerts).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use hookrelay_client::{
    Alert, ApiRelease, Client, CreateWebhook, DeliveryListParams, Error, EventObject, ListParams,
    NewVerificationMethod, PublishEvent, UpdateWebhook, VerificationMethod,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::receiver::{Receiver, Reply};
use crate::support::*;

/// A compiled example of the SDK crate (`cargo test --workspace` builds them).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or `cargo build -p hookrelay-client --examples`)",
        path.display()
    );
    path
}

async fn run_example(server: &TestServer, name: &str, webhook_id: Option<&str>) -> Value {
    let mut command = tokio::process::Command::new(example(name));
    command
        .env("HOOKRELAY_URL", &server.base)
        .env("HOOKRELAY_SPACE_ID", SPACE)
        .env("HOOKRELAY_TOKEN", TOKEN);
    if let Some(id) = webhook_id {
        command.env("WEBHOOK_ID", id);
    }
    let output = command.output().await.unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{name} printed no JSON"));
    assert_eq!(answer["success"], json!(true), "{name}: {answer}");
    answer
}

fn client(server: &TestServer) -> Client {
    Client::builder(SPACE, TOKEN).base_url(&server.base).build().unwrap()
}

#[tokio::test]
async fn every_seed_example_runs_against_a_live_server() {
    let server = TestServer::start().await;
    let hmac = run_example(&server, "create_hmac", None).await["result"].clone();
    assert_eq!(
        hmac["verificationMethod"]["secret"],
        "your-32-character-minimum-secret-key-here"
    );
    assert_eq!(hmac["metadata"], json!({"environment": "production"}));
    let ecdsa = run_example(&server, "create_ecdsa", None).await["result"].clone();
    assert!(ecdsa["verificationMethod"]["publicKey"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let headers = run_example(&server, "create_with_headers", None).await["result"].clone();
    assert_eq!(headers["headers"]["X-Custom-Auth"], "your-auth-token-here");

    let id = hmac["id"].as_str().unwrap();
    assert_eq!(run_example(&server, "get", Some(id)).await["result"], hmac);
    let list = run_example(&server, "list", None).await;
    assert_eq!(list["pagination"]["count"], json!(3));
    assert_eq!(
        run_example(&server, "disable", Some(id)).await["result"]["enabled"],
        json!(false)
    );
    assert_eq!(
        run_example(&server, "enable", Some(id)).await["result"]["enabled"],
        json!(true)
    );
    let updated = run_example(&server, "update_configuration", Some(id)).await["result"].clone();
    assert_eq!(updated["url"], "https://yoursite.com/webhooks/monime-v2");
    assert_eq!(updated["events"].as_array().unwrap().len(), 4);
    run_example(&server, "delete", Some(id)).await;
    let (status, _) = send(server.request(reqwest::Method::GET, &format!("/v1/webhooks/{id}"))).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_receiver_example_verifies_real_deliveries() {
    let server = TestServer::launch(Launch {
        args: vec!["--allow-private-targets".into()],
        ..Launch::default()
    })
    .await;
    let secret = "receiver-example-secret-0123456789abcdef";
    let mut receiver = tokio::process::Command::new(example("receiver"))
        .env("PORT", "0")
        .env("WEBHOOK_SECRET", secret)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let address = first.strip_prefix("listening on ").expect("address line").to_owned();
    let sdk = client(&server);
    sdk.webhook()
        .create(&CreateWebhook {
            name: "receiver example".into(),
            url: format!("{address}/webhooks"),
            events: vec!["payment.completed".into()],
            verification_method: Some(NewVerificationMethod::Hs256 { secret: secret.into() }),
            ..Default::default()
        })
        .await
        .unwrap();
    let event = sdk
        .events()
        .publish(&PublishEvent {
            name: "payment.completed".into(),
            object: EventObject {
                id: "pmt-9".into(),
                object_type: "payment".into(),
            },
            data: json!({"amount": 9}),
        })
        .await
        .unwrap()
        .result;
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(line, format!("verified payment.completed {}", event.id));
}

#[tokio::test]
async fn the_client_pages_maps_errors_and_replays_idempotent_calls() {
    let server = TestServer::start().await;
    let sdk = client(&server);
    for i in 0..60 {
        sdk.webhook()
            .create(&CreateWebhook {
                name: format!("w{i}"),
                url: "https://example.com/hook".into(),
                events: vec!["payment.completed".into()],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let all: Vec<_> = sdk.webhook().list_all().try_collect().await.unwrap();
    assert_eq!(all.len(), 60);
    assert_eq!(all[0].name, "w59", "newest first");
    let ids: std::collections::HashSet<_> = all.iter().map(|w| w.id.clone()).collect();
    assert_eq!(ids.len(), 60);
    let page = sdk
        .webhook()
        .list(ListParams {
            limit: Some(7),
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(page.result.len(), 7);
    assert!(page.pagination.next.is_some());

    // API errors carry code, reason, message and details.
    let error = sdk
        .webhook()
        .create(&CreateWebhook {
            name: "bad".into(),
            url: "https://example.com".into(),
            events: vec!["payment.exploded".into()],
            verification_method: Some(NewVerificationMethod::Hs256 { secret: "short".into() }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    match error {
        Error::Api {
            code,
            reason,
            message,
            details,
        } => {
            assert_eq!((code, reason.as_str()), (400, "validation_failed"));
            assert!(message.contains("payment.exploded"), "{message}");
            let fields: Vec<_> = details.iter().map(|d| (d.field.as_str(), d.rule.as_str())).collect();
            assert!(fields.contains(&("events[0]", "unknown_event")), "{fields:?}");
            assert!(
                fields.contains(&("verificationMethod.secret", "min_length")),
                "{fields:?}"
            );
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let missing = sdk.webhook().get("whk-missing").await.unwrap_err();
    assert!(
        matches!(missing, Error::Api { code: 404, ref reason, .. } if reason == "not_found"),
        "{missing:?}"
    );

    // The caller's idempotency key makes a repeated create a replay.
    let request = CreateWebhook {
        name: "once".into(),
        url: "https://example.com/once".into(),
        api_release: ApiRelease::Siriusb,
        events: vec!["payout.failed".into()],
        verification_method: Some(NewVerificationMethod::Es256),
        ..Default::default()
    };
    let first = sdk
        .webhook()
        .create_with_idempotency_key(&request, "create-once")
        .await
        .unwrap();
    let again = sdk
        .webhook()
        .create_with_idempotency_key(&request, "create-once")
        .await
        .unwrap();
    assert_eq!(first.result.id, again.result.id);
    assert!(matches!(
        first.result.verification_method,
        VerificationMethod::Es256 { .. }
    ));
    assert_eq!(first.result.api_release, ApiRelease::Siriusb);

    let updated = sdk
        .webhook()
        .update(
            &first.result.id,
            &UpdateWebhook {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!updated.result.enabled);
    let deleted = sdk.webhook().delete(&first.result.id).await.unwrap();
    assert!(deleted.success);
}

#[tokio::test]
async fn the_client_reads_events_and_deliveries() {
    let server = TestServer::launch(Launch {
        args: vec!["--allow-private-targets".into()],
        ..Launch::default()
    })
    .await;
    let receiver = crate::receiver::Receiver::start().await;
    let sdk = client(&server);
    let webhook = sdk
        .webhook()
        .create(&CreateWebhook {
            name: "events".into(),
            url: receiver.url.clone(),
            events: vec!["payout.completed".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .result;
    let published = sdk
        .events()
        .publish_with_idempotency_key(
            &PublishEvent {
                name: "payout.completed".into(),
                object: EventObject {
                    id: "po-1".into(),
                    object_type: "payout".into(),
                },
                data: json!({"amount": 1}),
            },
            "payout-po-1-completed",
        )
        .await
        .unwrap()
        .result;
    assert_eq!(published.delivery_count, 1);
    assert_eq!(sdk.events().get(&published.id).await.unwrap().result, published);
    assert_eq!(
        sdk.events().list(ListParams::default()).await.unwrap().result,
        vec![published.clone()]
    );
    receiver.wait_for(1, Duration::from_secs(15)).await;

    let deliveries = sdk
        .deliveries()
        .list(&webhook.id, DeliveryListParams::default())
        .await
        .unwrap();
    assert_eq!(deliveries.result.len(), 1);
    let delivery = &deliveries.result[0];
    assert_eq!(delivery.event_id, published.id);
    // The receiver saw the first attempt before it was recorded: retry once it is, so
    // the retry reopens a settled delivery (a retry during the attempt is tested in
    // `delivery::a_retry_during_an_attempt_sends_once_more_after_it`).
    while sdk
        .deliveries()
        .get(&webhook.id, &delivery.id)
        .await
        .unwrap()
        .result
        .status
        != "succeeded"
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let retried = sdk.deliveries().retry(&webhook.id, &delivery.id).await.unwrap();
    assert_eq!(retried.result.status, "pending");
    receiver.wait_for(2, Duration::from_secs(15)).await;
    let tested = sdk.webhook().test(&webhook.id).await.unwrap();
    assert_eq!(tested.result.event_name, "webhook.test");
    receiver.wait_for(3, Duration::from_secs(15)).await;
    let detail = loop {
        let detail = sdk.deliveries().get(&webhook.id, &delivery.id).await.unwrap().result;
        if detail.status == "succeeded" && detail.attempt_count == 2 {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attempts = detail.attempts.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].status_code, Some(200));
}

/// A stand-in server whose first answers fail, recording each request's idempotency key.
async fn flaky_server(failures: usize, status: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = keys.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let mut keys = seen.lock().unwrap();
            keys.push(headers.get("idempotency-key").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default());
            if keys.len() <= failures {
                let body = json!({"success": false, "messages": ["busy"], "error": {"code": status, "reason": "busy", "message": "busy", "details": []}});
                (StatusCode::from_u16(status).unwrap(), [("retry-after", "0")], axum::Json(body)).into_response()
            } else {
                axum::Json(json!({"success": true, "messages": [], "result": {
                    "id": "evt-1", "name": "payment.completed", "object": {"id": "p", "type": "payment"},
                    "data": {}, "createTime": "2026-01-01T00:00:00.000Z", "deliveryCount": 0}}))
                .into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, keys)
}

fn event() -> PublishEvent {
    PublishEvent {
        name: "payment.completed".into(),
        object: EventObject {
            id: "p".into(),
            object_type: "payment".into(),
        },
        data: json!({}),
    }
}

#[tokio::test]
async fn the_client_retries_transient_failures_with_the_same_idempotency_key() {
    let fast = |url: &str| {
        Client::builder(SPACE, TOKEN)
            .base_url(url)
            .max_retries(3)
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .build()
            .unwrap()
    };
    for status in [503, 429, 500] {
        let (url, keys) = flaky_server(2, status).await;
        let answer = fast(&url).events().publish(&event()).await.unwrap();
        assert_eq!(answer.result.id, "evt-1");
        let keys = keys.lock().unwrap().clone();
        assert_eq!(keys.len(), 3, "two failures, then success");
        assert!(
            keys[0].starts_with("hrc-") && keys.iter().all(|k| k == &keys[0]),
            "{keys:?}"
        );
    }
    // A client error is not retried.
    let (url, keys) = flaky_server(5, 400).await;
    let error = fast(&url).events().publish(&event()).await.unwrap_err();
    assert!(matches!(error, Error::Api { code: 400, .. }));
    assert_eq!(keys.lock().unwrap().len(), 1);
    // Retries give up after max_retries.
    let (url, keys) = flaky_server(10, 503).await;
    fast(&url).events().publish(&event()).await.unwrap_err();
    assert_eq!(keys.lock().unwrap().len(), 4);
    // Nobody listening: a network error after the retries.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let error = fast(&url).webhook().get("whk-x").await.unwrap_err();
    assert!(matches!(error, Error::Network(_)), "{error:?}");
}

/// Polls the webhook's alerts through the SDK until there are `n`, each settled (no
/// mail server: `skipped`).
async fn settled_alerts(sdk: &Client, webhook_id: &str, n: usize) -> Vec<Alert> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = sdk.webhook().alerts(webhook_id, ListParams::default()).await.unwrap();
        if page.result.len() >= n && page.result.iter().all(|a| a.status == "skipped") {
            return page.result;
        }
        assert!(std::time::Instant::now() < deadline, "alerts: {:?}", page.result);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_client_reads_a_webhooks_alerts() {
    // One attempt per delivery and no mail server: a failed delivery raises a `failing`
    // alert at once, the next success a `recovered` one, both recorded as `skipped`.
    let server = TestServer::launch(Launch {
        args: ["--allow-private-targets", "--retry-schedule", "0s"]
            .map(String::from)
            .to_vec(),
        ..Launch::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let sdk = client(&server);
    let webhook = sdk
        .webhook()
        .create(&CreateWebhook {
            name: "Alerting".into(),
            url: receiver.url.clone(),
            events: vec!["payment.completed".into()],
            alert_emails: Some(vec!["oncall@example.com".into()]),
            ..Default::default()
        })
        .await
        .unwrap()
        .result;
    let none = sdk.webhook().alerts(&webhook.id, ListParams::default()).await.unwrap();
    assert!(none.result.is_empty() && none.pagination.next.is_none(), "{none:?}");

    sdk.events().publish(&event()).await.unwrap();
    let failing = settled_alerts(&sdk, &webhook.id, 1).await;
    receiver.script(|_| Reply::Status(200));
    sdk.events().publish(&event()).await.unwrap();
    let alerts = settled_alerts(&sdk, &webhook.id, 2).await;
    assert_eq!(alerts[1], failing[0], "newest first");
    let kinds: Vec<_> = alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["recovered", "failing"]);
    for alert in &alerts {
        assert!(alert.id.starts_with("alr-"), "{alert:?}");
        assert_eq!(alert.webhook_id, webhook.id);
        assert_eq!(alert.recipients, ["oncall@example.com"]);
        assert_eq!(alert.attempts, 1, "{alert:?}");
        assert_eq!(
            (alert.next_attempt_time.as_deref(), alert.sent_time.as_deref()),
            (None, None)
        );
        assert!(!alert.create_time.is_empty());
    }
    assert_eq!(alerts[1].subject, "[hookrelay] Webhook \"Alerting\" is failing");

    // A page of one, then the next from its cursor; the stream follows every page.
    let first = sdk
        .webhook()
        .alerts(
            &webhook.id,
            ListParams {
                limit: Some(1),
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((first.result.len(), first.pagination.count), (1, 1));
    let after = first.pagination.next.clone().expect("a next page");
    let second = sdk
        .webhook()
        .alerts(
            &webhook.id,
            ListParams {
                limit: Some(1),
                after: Some(after),
            },
        )
        .await
        .unwrap();
    assert_eq!([first.result, second.result].concat(), alerts);
    let streamed: Vec<Alert> = sdk
        .webhook()
        .alerts_all(webhook.id.clone())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, alerts);

    let missing = sdk
        .webhook()
        .alerts("whk-missing", ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, Error::Api { code: 404, reason, .. } if reason == "not_found"),
        "{missing:?}"
    );
    let too_many = ListParams {
        limit: Some(51),
        after: None,
    };
    match sdk.webhook().alerts(&webhook.id, too_many).await.unwrap_err() {
        Error::Api { code: 400, details, .. } => assert_eq!(details[0].field, "limit"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
