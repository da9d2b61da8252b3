//! The delivery engine against real receivers: signatures, retries, the attempt log,
//! disable/update/delete, Retry-After and 410, isolation, address safety, crashes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::receiver::{Receiver, Reply};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(15);

/// A server that may deliver to the test receivers on loopback, with fast retries.
/// Flags in `overrides` replace the defaults of the same name.
async fn delivering_server(overrides: &[&str]) -> TestServer {
    let mut args = vec!["--allow-private-targets".to_owned()];
    for (flag, default) in [("--retry-schedule", "0s,1s,1s"), ("--attempt-timeout", "1s")] {
        if !overrides.contains(&flag) {
            args.extend([flag.to_owned(), default.to_owned()]);
        }
    }
    args.extend(overrides.iter().map(|s| s.to_string()));
    TestServer::launch(Launch {
        args,
        ..Launch::default()
    })
    .await
}

fn with_url(mut body: Value, url: &str) -> Value {
    body["url"] = json!(url);
    body
}

/// The protocol's body for `event` as the API returned it, built independently here.
fn expected_body(event: &Value) -> String {
    format!(
        r#"{{"apiVersion":"caph","event":{{"id":{},"name":{},"timestamp":{}}},"object":{},"data":{}}}"#,
        event["id"], event["name"], event["createTime"], event["object"], event["data"]
    )
}

fn signature_parts(header: &str) -> (i64, Vec<u8>) {
    let (t, v1) = header.split_once(",v1=").expect("t=…,v1=…");
    let t: i64 = t.strip_prefix("t=").expect("t=").parse().expect("integer t");
    (t, STANDARD.decode(v1).expect("base64 v1"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn deliveries(server: &TestServer, webhook: &Value) -> Vec<Value> {
    let body = server
        .get(&format!(
            "/v1/webhooks/{}/deliveries?limit=50",
            webhook["id"].as_str().unwrap()
        ))
        .await;
    body["result"].as_array().unwrap().clone()
}

async fn delivery_detail(server: &TestServer, webhook: &Value, delivery_id: &str) -> Value {
    server
        .get(&format!(
            "/v1/webhooks/{}/deliveries/{delivery_id}",
            webhook["id"].as_str().unwrap()
        ))
        .await["result"]
        .clone()
}

/// Polls a webhook's only delivery until its status is `status`.
async fn wait_for_status(server: &TestServer, webhook: &Value, status: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = deliveries(server, webhook).await;
        if let Some(delivery) = list.first() {
            if delivery["status"] == status {
                return delivery_detail(server, webhook, delivery["id"].as_str().unwrap()).await;
            }
        }
        assert!(Instant::now() < deadline, "delivery never became {status}: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /v1/webhooks/{webhook}/deliveries/{delivery}/retry`.
async fn retry(server: &TestServer, webhook: &Value, delivery: &str) -> (StatusCode, Value) {
    let path = format!(
        "/v1/webhooks/{}/deliveries/{delivery}/retry",
        webhook["id"].as_str().unwrap()
    );
    send(server.request(Method::POST, &path)).await
}

/// Waits until the webhook's newest delivery has `n` attempts recorded (an attempt is
/// recorded just after its receiver answers).
async fn wait_for_attempts(server: &TestServer, webhook: &Value, n: u32) {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = deliveries(server, webhook).await;
        if list.first().is_some_and(|d| d["attemptCount"] == json!(n)) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} attempts recorded: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn seed_webhooks_receive_signed_events_with_the_protocol_headers() {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;

    let server = delivering_server(&[]).await;
    let (hmac_rx, ecdsa_rx, headers_rx, other_space_rx) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let hmac = server.must_create(&with_url(hmac_example(), &hmac_rx.url)).await;
    let ecdsa = server
        .must_create(&json!({
            "name": "Secure ECDSA Webhook", "url": ecdsa_rx.url, "apiRelease": "caph",
            "events": ["payment.completed", "payment.failed", "payout.completed", "payout.failed"],
            "verificationMethod": {"type": "ES256"}, "alertEmails": ["security@yoursite.com"]
        }))
        .await;
    let custom = server
        .must_create(&json!({
            "name": "Authenticated Webhook", "url": headers_rx.url, "apiRelease": "caph",
            "events": ["payment.completed", "checkout_session.completed"],
            "verificationMethod": {"type": "HS256", "secret": "minimum-32-character-secret-for-production"},
            "headers": {"X-Custom-Auth": "your-auth-token-here", "X-Environment": "production"}
        }))
        .await;
    // A webhook of another space, subscribed to the same event.
    let other_token = cli_token(&server, "spc-other").await;
    let (status, _) = send(
        server
            .bare(Method::POST, "/v1/webhooks")
            .bearer_auth(&other_token)
            .header("Monime-Space-Id", "spc-other")
            .header("Idempotency-Key", "k")
            .json(&with_url(simple_webhook("other space"), &other_space_rx.url)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let event = server
        .publish(
            "payment.completed",
            "pmt-42",
            json!({"amount": {"currency": "SLE", "value": 1000}, "note": "ünïcode"}),
        )
        .await;
    assert_eq!(event["deliveryCount"], json!(3));
    let body = expected_body(&event);

    for (receiver, webhook) in [(&hmac_rx, &hmac), (&ecdsa_rx, &ecdsa), (&headers_rx, &custom)] {
        let got = receiver.wait_for(1, WAIT).await;
        let request = &got[0];
        assert_eq!(std::str::from_utf8(&request.body).unwrap(), body, "exact body");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(
            request.header("user-agent"),
            concat!("hookrelay/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(request.header("monime-event-id"), event["id"].as_str().unwrap());
        assert_eq!(request.header("monime-webhook-id"), webhook["id"].as_str().unwrap());
        assert_eq!(request.header("monime-delivery-attempt"), "1");
        let (t, signature) = signature_parts(request.header("monime-signature"));
        assert!((unix_now() - t).abs() <= 5, "t is the attempt time");
        let signed = format!("{t}_{body}");
        match webhook["verificationMethod"]["type"].as_str().unwrap() {
            "HS256" => {
                let secret = webhook["verificationMethod"]["secret"].as_str().unwrap();
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(signed.as_bytes());
                mac.verify_slice(&signature).expect("HS256 signature verifies");
            }
            _ => {
                let pem = webhook["verificationMethod"]["publicKey"].as_str().unwrap();
                let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem).unwrap();
                assert_eq!(signature.len(), 64, "P1363 r||s");
                let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
                key.verify(signed.as_bytes(), &signature)
                    .expect("ES256 signature verifies");
            }
        }
    }
    let custom_request = &headers_rx.received()[0];
    assert_eq!(custom_request.header("x-custom-auth"), "your-auth-token-here");
    assert_eq!(custom_request.header("x-environment"), "production");

    // Subscriptions decide who hears what.
    server.publish("checkout_session.completed", "cs-1", json!({})).await;
    server.publish("payout.failed", "po-1", json!({})).await;
    headers_rx.wait_for(2, WAIT).await;
    ecdsa_rx.wait_for(2, WAIT).await;
    // Every delivery of both events made and recorded: nothing more is coming.
    server.wait_until_idle().await;
    assert_eq!(hmac_rx.count(), 1, "HS256 webhook subscribes to neither");
    assert_eq!(
        headers_rx.received()[1].json()["event"]["name"],
        "checkout_session.completed"
    );
    assert_eq!(ecdsa_rx.received()[1].json()["event"]["name"], "payout.failed");
    assert_eq!(ecdsa_rx.count(), 2);
    assert_eq!(headers_rx.count(), 2);
    assert_eq!(
        other_space_rx.count(),
        0,
        "another space's webhook hears nothing of ours"
    );
}

/// The engine's status in `/healthz`, but for the node's id and its heartbeat (it must
/// be free to start attempts).
async fn engine(server: &TestServer) -> Value {
    let (status, health) = server.health().await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let mut delivery = health["delivery"].clone();
    let fields = delivery.as_object_mut().expect("an object");
    assert!(fields.remove("node").is_some_and(|node| node.is_string()), "{health}");
    assert_eq!(fields.remove("fenced"), Some(json!(false)), "{health}");
    delivery
}

#[tokio::test]
async fn the_engine_is_idle_only_once_every_delivery_due_is_attempted_and_recorded() {
    let server = delivering_server(&["--attempt-timeout", "60s"]).await;
    server.wait_until_idle().await;
    assert_eq!(
        engine(&server).await,
        json!({"idle": true, "attemptsInFlight": 0, "queued": 0, "unrecorded": 0}),
        "an empty server is idle"
    );
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Held);
    let webhook = server
        .must_create(&with_url(simple_webhook("held"), &receiver.url))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    // The publish woke the engine before it was answered.
    assert_eq!(
        engine(&server).await["idle"],
        json!(false),
        "busy as soon as a publish is answered"
    );
    receiver.wait_for(1, WAIT).await;
    // Watched for a second, over several claim rounds (the loop looks again within
    // 100 ms of a claim, and after every wake-up), each of which finds nothing due.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(1) {
        let held = engine(&server).await;
        assert_eq!(
            (held["idle"].clone(), held["attemptsInFlight"].clone()),
            (json!(false), json!(1)),
            "busy while the receiver holds the attempt: {held}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.release();
    server.wait_until_idle().await;
    let delivered = deliveries(&server, &webhook).await;
    assert_eq!(
        delivered[0]["status"], "succeeded",
        "idle only once the attempt is recorded"
    );
    assert_eq!(delivered[0]["attemptCount"], json!(1));
    assert_eq!(
        engine(&server).await,
        json!({"idle": true, "attemptsInFlight": 0, "queued": 0, "unrecorded": 0})
    );
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_third_attempt_and_the_log_shows_all_three() {
    let server = delivering_server(&[]).await;
    let receiver = Receiver::start().await;
    receiver.script(|n| match n {
        0 => Reply::Status(500),
        1 => Reply::After(Duration::from_secs(3)),
        _ => Reply::Status(200),
    });
    let webhook = server
        .must_create(&with_url(simple_webhook("flaky"), &receiver.url))
        .await;
    let event = server.publish("payment.completed", "pmt-1", json!({"n": 1})).await;
    let got = receiver.wait_for(3, WAIT).await;
    let detail = wait_for_status(&server, &webhook, "succeeded").await;

    assert_eq!(detail["eventId"], event["id"]);
    assert_eq!(detail["eventName"], "payment.completed");
    assert_eq!(detail["attemptCount"], json!(3));
    assert_eq!(detail["nextAttemptTime"], json!(null));
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        (attempts[0]["attempt"].clone(), attempts[0]["statusCode"].clone()),
        (json!(1), json!(500))
    );
    assert_eq!(attempts[0]["errorKind"], "http_status");
    assert_eq!(attempts[0]["responseBody"], "answer 500");
    assert_eq!(attempts[1]["statusCode"], json!(null));
    assert_eq!(attempts[1]["errorKind"], "timeout");
    assert!(attempts[1]["durationMs"].as_u64().unwrap() >= 950, "{}", attempts[1]);
    assert_eq!(attempts[2]["statusCode"], json!(200));
    assert_eq!(attempts[2]["errorKind"], json!(null));
    // Every attempt is a fresh signature on the same event, after the scheduled delay.
    for (i, request) in got.iter().enumerate() {
        assert_eq!(request.header("monime-delivery-attempt"), (i + 1).to_string());
        assert_eq!(request.header("monime-event-id"), event["id"].as_str().unwrap());
    }
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(850),
        "second attempt waits ~1 s"
    );
    assert!(
        got[2].at - got[1].at >= Duration::from_millis(1_800),
        "third waits for the timeout, then ~1 s"
    );
}

#[tokio::test]
async fn an_exhausted_delivery_fails_and_a_manual_retry_delivers_it() {
    let server = delivering_server(&[]).await;
    let receiver = Receiver::start().await;
    receiver.script(|n| if n < 3 { Reply::Status(503) } else { Reply::Status(204) });
    let webhook = server
        .must_create(&with_url(simple_webhook("down"), &receiver.url))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    let failed = wait_for_status(&server, &webhook, "failed").await;
    assert_eq!(failed["attemptCount"], json!(3));
    assert_eq!(receiver.count(), 3);

    let (status, body) = retry(&server, &webhook, failed["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["status"], "pending");
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].header("monime-delivery-attempt"), "4");
    let done = wait_for_status(&server, &webhook, "succeeded").await;
    assert_eq!(done["attempts"][3]["statusCode"], json!(204));

    let (status, body) = retry(&server, &webhook, "dlv-nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
}

/// A retry asked for while an attempt is in flight is not undone by that attempt's
/// success: the delivery goes out once more, after the attempt, never alongside it.
#[tokio::test]
async fn a_retry_during_an_attempt_sends_once_more_after_it() {
    let server = delivering_server(&["--attempt-timeout", "10s"]).await;
    let receiver = Receiver::start().await;
    let hold = Duration::from_millis(2_000);
    receiver.script(move |n| if n == 0 { Reply::After(hold) } else { Reply::Status(204) });
    let webhook = server
        .must_create(&with_url(simple_webhook("slow"), &receiver.url))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    let delivery = deliveries(&server, &webhook).await[0].clone();
    let (status, body) = retry(&server, &webhook, delivery["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let retried = Instant::now();
    let got = receiver.wait_for(2, WAIT).await;
    assert!(
        retried < got[0].at + hold,
        "the retry was answered after the first attempt's reply: it did not happen in flight"
    );
    assert_eq!(got[1].header("monime-delivery-attempt"), "2");
    assert!(
        got[1].at - got[0].at >= hold,
        "the retry went out while the first attempt was still in flight"
    );
    let done = wait_for_status(&server, &webhook, "succeeded").await;
    assert_eq!(done["attemptCount"], json!(2));
}

#[tokio::test]
async fn the_test_event_goes_to_that_webhook_alone_signed() {
    let server = delivering_server(&[]).await;
    let (target, bystander) = (Receiver::start().await, Receiver::start().await);
    let webhook = server.must_create(&with_url(hmac_example(), &target.url)).await;
    server
        .must_create(&with_url(simple_webhook("bystander"), &bystander.url))
        .await;
    let (status, body) = send(server.request(
        Method::POST,
        &format!("/v1/webhooks/{}/test", webhook["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delivery = &body["result"];
    assert!(delivery["id"].as_str().unwrap().starts_with("dlv-"));
    assert_eq!(delivery["eventName"], "webhook.test");
    let got = target.wait_for(1, WAIT).await;
    let payload = got[0].json();
    assert_eq!(payload["event"]["name"], "webhook.test");
    assert_eq!(payload["object"], json!({"id": webhook["id"], "type": "webhook"}));
    let (t, signature) = signature_parts(got[0].header("monime-signature"));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"your-32-character-minimum-secret-key-here").unwrap();
    mac.update(format!("{t}_").as_bytes());
    mac.update(&got[0].body);
    mac.verify_slice(&signature).expect("test event is signed");
    server.wait_until_idle().await;
    assert_eq!(bystander.count(), 0, "the test event went to its webhook alone");

    send(
        server
            .request(
                Method::PATCH,
                &format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap()),
            )
            .json(&json!({"enabled": false})),
    )
    .await;
    let (status, body) = send(server.request(
        Method::POST,
        &format!("/v1/webhooks/{}/test", webhook["id"].as_str().unwrap()),
    ))
    .await;
    assert_error(status, &body, StatusCode::CONFLICT, "webhook_disabled", None);
}

#[tokio::test]
async fn disable_update_and_delete_take_effect_for_the_next_attempt() {
    let server = delivering_server(&["--retry-schedule", "0s,2s,2s"]).await;
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    first.script(|_| Reply::Status(500));

    // Update: the second attempt uses the new URL and headers.
    let updated = server
        .must_create(&with_url(simple_webhook("moving"), &first.url))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    first.wait_for(1, WAIT).await;
    send(
        server
            .request(
                Method::PATCH,
                &format!("/v1/webhooks/{}", updated["id"].as_str().unwrap()),
            )
            .json(&json!({
                "url": second.url, "headers": {"X-Moved": "yes"}
            })),
    )
    .await;
    let got = second.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("x-moved"), "yes");
    assert_eq!(got[0].header("monime-delivery-attempt"), "2");
    wait_for_status(&server, &updated, "succeeded").await;
    assert_eq!(first.count(), 1);

    // Disable: the pending delivery is cancelled, never sent again.
    let disabled_rx = Receiver::start().await;
    disabled_rx.script(|_| Reply::Status(500));
    let disabled = server
        .must_create(&with_url(simple_webhook("disabled"), &disabled_rx.url))
        .await;
    server.publish("payment.completed", "pmt-2", json!({})).await;
    disabled_rx.wait_for(1, WAIT).await;
    wait_for_attempts(&server, &disabled, 1).await;
    send(
        server
            .request(
                Method::PATCH,
                &format!("/v1/webhooks/{}", disabled["id"].as_str().unwrap()),
            )
            .json(&json!({"enabled": false})),
    )
    .await;
    let cancelled = wait_for_status(&server, &disabled, "cancelled").await;
    assert_eq!(cancelled["attemptCount"], json!(1));

    // Delete: nothing more is sent.
    let deleted_rx = Receiver::start().await;
    deleted_rx.script(|_| Reply::Status(500));
    let deleted = server
        .must_create(&with_url(simple_webhook("deleted"), &deleted_rx.url))
        .await;
    server.publish("payment.completed", "pmt-3", json!({})).await;
    deleted_rx.wait_for(1, WAIT).await;
    send(server.request(
        Method::DELETE,
        &format!("/v1/webhooks/{}", deleted["id"].as_str().unwrap()),
    ))
    .await;

    // Once the deleted webhook's attempt is recorded, no delivery is left to retry
    // (both were cancelled with their webhooks), so nothing more can be sent.
    server.wait_until_idle().await;
    let pending = db_count(
        &server.database,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'",
    )
    .await;
    assert_eq!(pending, 0, "no delivery left to retry");
    assert_eq!(disabled_rx.count(), 1, "a disabled webhook gets no further attempt");
    assert_eq!(deleted_rx.count(), 1, "a deleted webhook gets no further attempt");
}

#[tokio::test]
async fn retry_after_holds_the_next_attempt_back_and_410_disables_the_webhook() {
    let server = delivering_server(&[]).await;
    let slow = Receiver::start().await;
    slow.script(|n| {
        if n == 0 {
            Reply::StatusWith(429, vec![("retry-after", "3".into())])
        } else {
            Reply::Status(200)
        }
    });
    let webhook = server
        .must_create(&with_url(simple_webhook("rate limited"), &slow.url))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    let got = slow.wait_for(2, WAIT).await;
    assert!(
        got[1].at - got[0].at >= Duration::from_secs(3),
        "waited {:?}",
        got[1].at - got[0].at
    );
    wait_for_status(&server, &webhook, "succeeded").await;

    let gone = Receiver::start().await;
    gone.script(|_| Reply::Status(410));
    let webhook = server.must_create(&with_url(simple_webhook("gone"), &gone.url)).await;
    server.publish("payment.completed", "pmt-2", json!({})).await;
    let failed = wait_for_status(&server, &webhook, "failed").await;
    assert_eq!(failed["attemptCount"], json!(1));
    let fetched = server
        .get(&format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap()))
        .await;
    assert_eq!(fetched["result"]["enabled"], json!(false), "410 disables the webhook");
    let event = server.publish("payment.completed", "pmt-3", json!({})).await;
    assert_eq!(event["deliveryCount"], json!(1), "to the enabled webhook alone");
    slow.wait_for(3, WAIT).await;
    server.wait_until_idle().await;
    assert_eq!(gone.count(), 1, "a disabled webhook is not delivered to");
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let server = delivering_server(&["--attempt-timeout", "10s"]).await;
    let (hanging, healthy) = (Receiver::start().await, Receiver::start().await);
    hanging.script(|_| Reply::After(Duration::from_secs(20)));
    server
        .must_create(&json!({"name": "hanging", "url": hanging.url, "events": ["payment.failed"]}))
        .await;
    server
        .must_create(&json!({"name": "healthy", "url": healthy.url, "events": ["payment.completed"]}))
        .await;
    // Fill the hanging webhook's slots and queue, then publish to the healthy one.
    for i in 0..30 {
        server.publish("payment.failed", &format!("pmt-h{i}"), json!({})).await;
    }
    hanging.wait_for(10, WAIT).await;
    let started = Instant::now();
    for i in 0..20 {
        server
            .publish("payment.completed", &format!("pmt-{i}"), json!({}))
            .await;
    }
    healthy.wait_for(20, WAIT).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "healthy deliveries took {took:?} behind a hanging receiver"
    );
    assert_eq!(
        hanging.count(),
        10,
        "a webhook starts at 10 attempts in flight, and no answer raises that"
    );
}

/// How many requests were open at the receiver when each arrived, itself included (an
/// answer counts as closed when it is ready, so this may miss a request being written).
fn open_at_arrival(received: &[crate::receiver::Received]) -> Vec<usize> {
    received
        .iter()
        .map(|request| {
            received
                .iter()
                .filter(|other| other.at <= request.at && other.answered.is_none_or(|done| done > request.at))
                .count()
        })
        .collect()
}

#[tokio::test]
async fn a_receiver_that_keeps_up_gets_more_attempts_at_once_up_to_the_ceiling() {
    // A generous timeout: a request cut off would count as open for ever below.
    let server = delivering_server(&["--max-in-flight-per-webhook", "14", "--attempt-timeout", "5s"]).await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::After(Duration::from_millis(100)));
    server
        .must_create(&with_url(simple_webhook("fast"), &receiver.url))
        .await;
    const EVENTS: usize = 300;
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(20) {
        let ids: Vec<String> = chunk.iter().map(|i| format!("pmt-{i}")).collect();
        futures::future::join_all(ids.iter().map(|id| server.publish("payment.completed", id, json!({})))).await;
    }
    let received = receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    let open = open_at_arrival(&received);
    let most = open.iter().copied().max().unwrap();
    assert!(
        most > 10 && most <= 14,
        "at most {most} requests open at once; a receiver answering in 100 ms should earn more than the initial 10, never more than the ceiling of 14"
    );
    // The limit rises only after a whole round of answers: the first two rounds'
    // requests went out with at most ten open.
    assert!(
        open[..20].iter().all(|&n| n <= 10),
        "the first requests went out above the initial limit: {:?}",
        &open[..20]
    );
}

#[tokio::test]
async fn an_overloaded_receiver_gets_fewer_attempts_at_once() {
    let server = delivering_server(&["--retry-schedule", "1h", "--attempt-timeout", "5s"]).await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::StatusAfter(503, Duration::from_millis(100)));
    server
        .must_create(&with_url(simple_webhook("overloaded"), &receiver.url))
        .await;
    const EVENTS: usize = 40;
    let ids: Vec<String> = (0..EVENTS).map(|i| format!("pmt-{i}")).collect();
    futures::future::join_all(ids.iter().map(|id| server.publish("payment.completed", id, json!({})))).await;
    let received = receiver.wait_for(EVENTS, WAIT).await;
    let open = open_at_arrival(&received);
    assert!(
        open.iter().all(|&n| n <= 10),
        "more than the initial 10 at once to a failing receiver: {open:?}"
    );
    // Ten fail (limit 5), five fail (2), two fail (1): the rest go one at a time.
    assert!(
        open[EVENTS - 15..].iter().all(|&n| n == 1),
        "a receiver answering 503 still got several requests at once: {open:?}"
    );
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_allowed() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let webhook = server
        .must_create(&simple_webhook_at(&format!("http://localhost:{port}/webhooks")))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    let deadline = Instant::now() + WAIT;
    let detail = loop {
        let list = deliveries(&server, &webhook).await;
        let detail = delivery_detail(&server, &webhook, list[0]["id"].as_str().unwrap()).await;
        if detail["attemptCount"].as_u64() >= Some(1) {
            break detail;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(detail["attempts"][0]["errorKind"], "blocked_address");
    assert_eq!(detail["attempts"][0]["statusCode"], json!(null));
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");

    let allowed = delivering_server(&[]).await;
    allowed
        .must_create(&simple_webhook_at(&format!("http://localhost:{port}/webhooks")))
        .await;
    allowed.publish("payment.completed", "pmt-1", json!({})).await;
    receiver.wait_for(1, WAIT).await;
}

fn simple_webhook_at(url: &str) -> Value {
    json!({"name": "w", "url": url, "events": ["payment.completed"]})
}

/// (event id, webhook id) → how many times it arrived.
fn tally(receivers: &[&Receiver]) -> HashMap<(String, String), usize> {
    let mut seen = HashMap::new();
    for receiver in receivers {
        for request in receiver.received() {
            let key = (
                request.header("monime-event-id").to_owned(),
                request.header("monime-webhook-id").to_owned(),
            );
            *seen.entry(key).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test]
async fn a_killed_server_loses_nothing() {
    const EVENTS: usize = 2_000;
    let dir = tempfile::TempDir::new().unwrap();
    // Short timeouts keep leases short: on PostgreSQL the killed process's claims are
    // taken over when they run out (SQLite releases them at restart).
    let args: Vec<String> = [
        "--allow-private-targets",
        "--retry-schedule",
        "0s,1s,1s,1s,1s,1s",
        "--attempt-timeout",
        "2s",
        "--connect-timeout",
        "1s",
        // Pinned, so the bound on repeats below stays tight.
        "--max-in-flight-per-webhook",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let launch = Launch {
        args,
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), launch.clone()).await;
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    for receiver in &receivers {
        receiver.script(|_| Reply::After(Duration::from_millis(2)));
        server
            .must_create(&with_url(simple_webhook("kill"), &receiver.url))
            .await;
    }
    // Publish with some concurrency; kill once deliveries are well under way.
    let mut published = 0;
    let mut killed_at = None;
    let receiver_refs: Vec<&Receiver> = receivers.iter().collect();
    let mut server = Some(server);
    while published < EVENTS {
        let live = server.as_ref().unwrap();
        let ids: Vec<String> = (published..(published + 16).min(EVENTS))
            .map(|i| format!("pmt-{i}"))
            .collect();
        let batch: Vec<_> = ids
            .iter()
            .map(|id| live.publish("payment.completed", id, json!({"id": id})))
            .collect();
        published += futures::future::join_all(batch).await.len();
        if killed_at.is_none() && published >= EVENTS / 2 && tally(&receiver_refs).len() > 500 {
            // In flight at the kill: at most 10 per webhook, and as many awaiting their record.
            killed_at = Some(tally(&receiver_refs).values().sum::<usize>());
            server.take().unwrap().kill().await;
            server = Some(TestServer::launch_in(dir.path(), launch.clone()).await);
        }
    }
    assert!(killed_at.is_some(), "the server was killed mid-way");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = tally(&receiver_refs);
        if seen.len() == EVENTS * 3 {
            let duplicates: usize = seen.values().map(|n| n - 1).sum();
            assert!(
                duplicates <= 60,
                "{duplicates} duplicates; at most 3 webhooks × 10 in flight were cut off, each with at most one more awaiting its record"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} pairs arrived",
            seen.len(),
            EVENTS * 3
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = server.unwrap();
    let events = server.get("/v1/events?limit=1").await;
    assert_eq!(events["result"][0]["deliveryCount"], json!(3));
}

#[tokio::test]
async fn sigterm_under_load_exits_cleanly_with_every_attempt_recorded() {
    let dir = tempfile::TempDir::new().unwrap();
    let launch = Launch {
        args: vec![
            "--allow-private-targets".into(),
            "--shutdown-grace".into(),
            "10s".into(),
        ],
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), launch.clone()).await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::After(Duration::from_millis(300)));
    server
        .must_create(&with_url(simple_webhook("slow"), &receiver.url))
        .await;
    for i in 0..100 {
        server
            .publish("payment.completed", &format!("pmt-{i}"), json!({}))
            .await;
    }
    receiver.wait_for(15, WAIT).await;
    let status = server.stop().await;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    let answered = receiver.count();

    // Every request the receiver saw is recorded as an attempt; nothing is left claimed.
    let database = database_url(dir.path()).await;
    let attempts = db_count(&database, "SELECT COUNT(*) FROM delivery_attempts").await;
    assert_eq!(attempts as usize, answered, "attempts recorded = requests received");
    let leased = db_count(
        &database,
        "SELECT COUNT(*) FROM deliveries WHERE lease_until IS NOT NULL",
    )
    .await;
    assert_eq!(leased, 0, "no delivery left claimed");
    let mismatched = db_count(
        &database,
        "SELECT COUNT(*) FROM deliveries d
         WHERE attempt_count <> (SELECT COUNT(*) FROM delivery_attempts a WHERE a.delivery_id = d.id)",
    )
    .await;
    assert_eq!(mismatched, 0, "attempt counts match the attempt log");

    // The rest go out after a restart.
    let server = TestServer::launch_in(dir.path(), launch).await;
    receiver.script(|_| Reply::Status(200));
    receiver.wait_for(100, Duration::from_secs(30)).await;
    let unique: std::collections::HashSet<_> = receiver
        .received()
        .iter()
        .map(|r| r.header("monime-event-id").to_owned())
        .collect();
    assert_eq!(unique.len(), 100);
    drop(server);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = delivering_server(&["--retry-schedule", "0s"]).await;
    let (redirecting, target) = (Receiver::start().await, Receiver::start().await);
    let location = target.url.clone();
    redirecting.script(move |_| Reply::StatusWith(307, vec![("location", location.clone())]));
    let webhook = server
        .must_create(&with_url(simple_webhook("redirects"), &redirecting.url))
        .await;
    server.publish("payment.completed", "pmt-1", json!({})).await;
    let failed = wait_for_status(&server, &webhook, "failed").await;
    assert_eq!(failed["attempts"][0]["statusCode"], json!(307));
    assert_eq!(failed["attempts"][0]["errorKind"], "http_status");
    server.wait_until_idle().await;
    assert_eq!(target.count(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn delivery_history_filters_by_status_and_pages() {
    let server = delivering_server(&["--retry-schedule", "0s"]).await;
    let receiver = Receiver::start().await;
    // Even-numbered requests fail: with one attempt each, half the deliveries fail.
    receiver.script(|n| {
        if n % 2 == 0 {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let webhook = server
        .must_create(&with_url(simple_webhook("history"), &receiver.url))
        .await;
    let path = format!("/v1/webhooks/{}/deliveries", webhook["id"].as_str().unwrap());
    for i in 0..6 {
        server
            .publish("payment.completed", &format!("pmt-{i}"), json!({}))
            .await;
        receiver.wait_for(i + 1, WAIT).await;
    }
    let deadline = Instant::now() + WAIT;
    while server.get(&format!("{path}?status=pending")).await["pagination"]["count"] != json!(0) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for status in ["succeeded", "failed"] {
        let page = server.get(&format!("{path}?status={status}&limit=50")).await;
        let items = page["result"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{status}: {page}");
        assert!(items.iter().all(|d| d["status"] == status));
    }
    assert_eq!(
        server.get(&format!("{path}?status=cancelled")).await["result"],
        json!([])
    );
    let first = server.get(&format!("{path}?limit=4")).await;
    assert_eq!(first["pagination"]["count"], json!(4));
    let next = first["pagination"]["next"].as_str().unwrap();
    let second = server.get(&format!("{path}?limit=4&after={next}")).await;
    assert_eq!(second["pagination"]["count"], json!(2));
    assert_eq!(second["pagination"]["next"], json!(null));

    let (status, body) = send(server.request(Method::GET, &format!("{path}?status=lost"))).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("status", "enum")),
    );
    let (status, body) = send(server.request(Method::GET, "/v1/webhooks/whk-unknown/deliveries")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn event_data_arrives_exactly_as_published() {
    // The first attempt sends the event as kept in memory since it was published; it
    // fails, and the retry is made by a restarted server, which reads the event back.
    let dir = tempfile::TempDir::new().unwrap();
    let launch = Launch {
        args: [
            "--allow-private-targets",
            "--retry-schedule",
            "0s,1s",
            "--attempt-timeout",
            "1s",
        ]
        .map(String::from)
        .to_vec(),
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), launch.clone()).await;
    let receiver = Receiver::start().await;
    receiver.script(|n| if n == 0 { Reply::Status(500) } else { Reply::Status(200) });
    server
        .must_create(&with_url(simple_webhook("exact"), &receiver.url))
        .await;
    // Keys out of order, a number no f64 holds, a decimal with a trailing zero.
    let body = r#"{"name": "payment.completed", "object": {"id": "pmt-9", "type": "payment"},
                   "data": {"zeta": 1, "amount": 123456789012345678901234567890, "rate": 1.10}}"#;
    let (status, answer) = send(server.publish_text(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    receiver.wait_for(1, WAIT).await;
    server.stop().await;
    let _restarted = TestServer::launch_in(dir.path(), launch).await;
    let got = receiver.wait_for(2, WAIT).await;
    let delivered = std::str::from_utf8(&got[0].body).unwrap();
    assert!(
        delivered.ends_with(r#""data":{"zeta":1,"amount":123456789012345678901234567890,"rate":1.10}}"#),
        "{delivered}"
    );
    assert_eq!(
        std::str::from_utf8(&got[1].body).unwrap(),
        delivered,
        "the retry after the restart sends the same bytes"
    );
}
