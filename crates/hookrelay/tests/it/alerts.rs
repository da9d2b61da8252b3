//! Alert e-mails over real SMTP: the failing alert, the quiet period, the recovered mail,
//! auto-disable, an SMTP outage, and e-mail switched off.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::smtp::SmtpServer;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "alert-test-secret-0123456789abcdefgh";

async fn alerting_server(smtp: Option<&SmtpServer>, extra: &[&str]) -> TestServer {
    let mut args: Vec<String> = vec!["--allow-private-targets".into()];
    if let Some(smtp) = smtp {
        args.extend([
            "--smtp-url".into(),
            smtp.url(),
            "--smtp-from".into(),
            "Hooks <hooks@example.com>".into(),
        ]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    TestServer::launch(Launch {
        args,
        ..Launch::default()
    })
    .await
}

async fn failing_webhook(server: &TestServer, receiver: &Receiver) -> Value {
    server
        .must_create(&json!({
            "name": "Payments prod",
            "url": receiver.url,
            "events": ["payment.completed"],
            "verificationMethod": {"type": "HS256", "secret": SECRET},
            "headers": {"X-Custom-Auth": "header-value-never-in-mail"},
            "alertEmails": ["oncall@example.com", "cto@example.com"],
        }))
        .await
}

async fn alerts(server: &TestServer, webhook: &Value) -> Vec<Value> {
    let body = server
        .get(&format!(
            "/v1/webhooks/{}/alerts?limit=50",
            webhook["id"].as_str().unwrap()
        ))
        .await;
    body["result"].as_array().unwrap().clone()
}

/// Waits until every attempt made so far is recorded (so every alert it raises is
/// queued) and the alerter has finished with every queued alert of `webhook`: then what
/// the mail server got is all it will get for them.
async fn settle(server: &TestServer, webhook: &Value) {
    server.wait_until_idle().await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let listed = alerts(server, webhook).await;
        if listed.iter().all(|alert| alert["status"] != "pending") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "alerts still pending: {listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish(server: &TestServer, marker: &str) {
    server
        .publish("payment.completed", "pmt-1", json!({"marker": marker}))
        .await;
}

#[tokio::test]
async fn failing_then_quiet_then_recovered() {
    let smtp = SmtpServer::start().await;
    let server = alerting_server(
        Some(&smtp),
        &[
            "--retry-schedule",
            "0s,100ms,100ms,100ms,100ms,100ms,100ms,100ms",
            "--alert-quiet-period",
            "1h",
        ],
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let webhook = failing_webhook(&server, &receiver).await;
    let id = webhook["id"].as_str().unwrap();

    publish(&server, "payload-marker-1").await;
    let mails = smtp.wait_for(1, WAIT).await;
    assert!(receiver.count() >= 5, "the alert follows the fifth failed attempt");
    let failing = &mails[0];
    let mut recipients = failing.recipients.clone();
    recipients.sort();
    assert_eq!(recipients, ["cto@example.com", "oncall@example.com"]);
    assert_eq!(failing.subject(), "[hookrelay] Webhook \"Payments prod\" is failing");
    let content = failing.decoded();
    assert!(content.contains("From: Hooks <hooks@example.com>"), "{content}");
    assert!(
        content.contains("text/plain") && content.contains("text/html"),
        "both parts: {content}"
    );
    for expected in [
        id,
        receiver.url.as_str(),
        "Failing since",
        "Failed attempts",
        "HTTP 500",
        "answer 500",
        &format!("hookrelay deliveries list --webhook {id}"),
    ] {
        assert!(content.contains(expected), "{expected:?} missing from:\n{content}");
    }
    for secret in [SECRET, "header-value-never-in-mail", "payload-marker-1"] {
        assert!(!content.contains(secret), "{secret:?} leaked into the e-mail");
    }

    // Continued failure, including an exhausted delivery and a second event: quiet.
    let deadline = std::time::Instant::now() + WAIT;
    while receiver.count() < 8 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publish(&server, "payload-marker-2").await;
    receiver.wait_for(16, WAIT).await;
    settle(&server, &webhook).await;
    assert_eq!(smtp.mails().len(), 1, "one failing alert per quiet period");

    // Recovery: the first success sends one recovered mail.
    receiver.script(|_| Reply::Status(200));
    publish(&server, "payload-marker-3").await;
    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(
        mails[1].subject(),
        "[hookrelay] Webhook \"Payments prod\" has recovered"
    );
    publish(&server, "payload-marker-4").await;
    receiver.wait_for(18, WAIT).await;
    settle(&server, &webhook).await;
    assert_eq!(smtp.mails().len(), 2, "recovered is sent once");

    let listed = alerts(&server, &webhook).await;
    let kinds: Vec<_> = listed.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["recovered", "failing"], "newest first");
    for alert in &listed {
        assert_eq!(alert["status"], "sent");
        assert_eq!(alert["recipients"], json!(["oncall@example.com", "cto@example.com"]));
        assert!(alert["sentTime"].is_string());
    }
}

#[tokio::test]
async fn a_webhook_failing_for_too_long_is_disabled_and_told() {
    let smtp = SmtpServer::start().await;
    let server = alerting_server(
        Some(&smtp),
        &[
            "--retry-schedule",
            "0s,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
            "--auto-disable-after",
            "2s",
            "--alert-failing-after",
            "100",
        ],
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(503));
    let webhook = failing_webhook(&server, &receiver).await;
    let path = format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    publish(&server, "m").await;
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails[0].subject(), "[hookrelay] Webhook \"Payments prod\" was disabled");
    let content = mails[0].decoded();
    assert!(
        content.contains("re-enable") && content.contains("\"enabled\": true"),
        "{content}"
    );
    assert_eq!(server.get(&path).await["result"]["enabled"], json!(false));
    let sent = receiver.count();
    publish(&server, "m2").await;
    server.wait_until_idle().await;
    assert_eq!(receiver.count(), sent, "no delivery after auto-disable");

    // Re-enabling resets the failure record: it takes another full span to disable it.
    receiver.script(|_| Reply::Status(200));
    let (status, _) = send(server.request(Method::PATCH, &path).json(&json!({"enabled": true}))).await;
    assert!(status.is_success());
    publish(&server, "m3").await;
    receiver.wait_for(sent + 1, WAIT).await;
    settle(&server, &webhook).await;
    assert_eq!(server.get(&path).await["result"]["enabled"], json!(true));
    assert_eq!(
        smtp.mails().len(),
        1,
        "no recovered mail: the record was reset when re-enabled"
    );
}

#[tokio::test]
async fn an_smtp_outage_delays_the_alert_and_it_arrives_once() {
    let mut smtp = SmtpServer::start().await;
    smtp.stop();
    let server = alerting_server(
        Some(&smtp),
        &["--retry-schedule", "0s", "--alert-retry-schedule", "300ms"],
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let webhook = failing_webhook(&server, &receiver).await;
    publish(&server, "m").await;

    // The exhausted delivery raises the alert; sending it fails while the server is down.
    let deadline = std::time::Instant::now() + WAIT;
    let pending = loop {
        let listed = alerts(&server, &webhook).await;
        if let Some(alert) = listed.first().filter(|a| a["attempts"].as_u64() >= Some(2)) {
            break alert.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert was never tried: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["lastError"], "the mail server could not be reached");

    smtp.restart().await;
    let mails = smtp.wait_for(1, WAIT).await;
    assert!(mails[0].subject().ends_with("is failing"));
    settle(&server, &webhook).await;
    assert_eq!(smtp.mails().len(), 1, "sent exactly once");
    let listed = alerts(&server, &webhook).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "sent");
}

/// The operator's mail setup, as a refusing mail server might name it.
const MAIL_SETUP_MARKER: &str = "mx-internal-7.corp.example";

#[tokio::test]
async fn a_refusing_mail_server_reaches_tenants_as_a_generic_reason_and_the_log_in_full() {
    let cases = [
        (
            "550 5.7.1 relay denied by mx-internal-7.corp.example for account ops-mailer",
            "the mail server refused the message",
        ),
        (
            "451 4.7.0 mx-internal-7.corp.example: try again later",
            "the mail server refused the message for now",
        ),
    ];
    for (reply, reason) in cases {
        let smtp = SmtpServer::refusing(reply).await;
        let server = alerting_server(
            Some(&smtp),
            &["--retry-schedule", "0s", "--alert-retry-schedule", "300ms"],
        )
        .await;
        let receiver = Receiver::start().await;
        receiver.script(|_| Reply::Status(500));
        let webhook = failing_webhook(&server, &receiver).await;
        publish(&server, "m").await;

        let deadline = std::time::Instant::now() + WAIT;
        let listed = loop {
            let listed = alerts(&server, &webhook).await;
            if listed.first().is_some_and(|a| a["lastError"].is_string()) {
                break listed;
            }
            assert!(std::time::Instant::now() < deadline, "never tried: {listed:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(listed[0]["status"], "pending", "{reply}");
        assert_eq!(listed[0]["lastError"], reason, "{reply}");
        let answer = Value::from(listed).to_string();
        assert!(!answer.contains(MAIL_SETUP_MARKER), "{answer}");
        assert!(!answer.contains("ops-mailer"), "{answer}");
        // The alert was recorded after its failure was logged.
        let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains("sending an alert failed") && l.contains(MAIL_SETUP_MARKER)),
            "{log}"
        );
        assert!(smtp.mails().is_empty());
    }
}

#[tokio::test]
async fn without_smtp_alerts_are_recorded_and_serve_says_email_is_off() {
    let server = alerting_server(None, &["--retry-schedule", "0s"]).await;
    assert!(
        server.stdout_lines.iter().any(|l| l.starts_with("E-mail is off")),
        "{:?}",
        server.stdout_lines
    );
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let webhook = failing_webhook(&server, &receiver).await;
    publish(&server, "m").await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let listed = alerts(&server, &webhook).await;
        if listed.first().is_some_and(|a| a["status"] == "skipped") {
            assert_eq!(listed[0]["kind"], "failing");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = send(server.request(Method::GET, "/v1/webhooks/whk-nope/alerts")).await;
    assert_error(status, &body, reqwest::StatusCode::NOT_FOUND, "not_found", None);
}
