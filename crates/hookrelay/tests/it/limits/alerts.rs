//! Alert e-mails per recipient address over real SMTP: past the limit, alerts are held
//! and reach the address in one plain-text digest when its window closes; other
//! addresses are unaffected; the count is stored, so a restart does not reset it.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::smtp::{Mail, SmtpServer};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(30);
const FLOOD: &str = "flood@example.com";
const OTHER: &str = "other@example.com";

fn launch(smtp: &SmtpServer, per_window: &str, window: &str) -> Launch {
    let args = [
        "--allow-private-targets",
        "--smtp-url",
        &smtp.url(),
        "--smtp-from",
        "Hooks <hooks@example.com>",
        // One attempt, which fails, raises one failing alert per webhook.
        "--retry-schedule",
        "0s",
        "--alert-failing-after",
        "1",
        "--alert-emails-per-hour",
        per_window,
        "--alert-email-window",
        window,
    ];
    Launch {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Launch::default()
    }
}

async fn failing_webhook(server: &TestServer, receiver: &Receiver, name: &str, emails: &[&str]) -> Value {
    server
        .must_create(&json!({
            "name": name,
            "url": receiver.url,
            "events": ["payment.completed"],
            "verificationMethod": {"type": "HS256", "secret": "limit-test-secret-0123456789abcdef"},
            "alertEmails": emails,
        }))
        .await
}

/// The webhook's alerts once it has one and none is pending.
async fn settled_alert(server: &TestServer, webhook: &Value) -> Value {
    let path = format!("/v1/webhooks/{}/alerts", webhook["id"].as_str().unwrap());
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = server.get(&path).await["result"].as_array().unwrap().clone();
        if listed.len() == 1 && listed[0]["status"] != "pending" {
            return listed[0].clone();
        }
        assert!(listed.len() <= 1, "one alert per webhook: {listed:?}");
        assert!(Instant::now() < deadline, "alert still pending: {listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn to(mails: &[Mail], address: &str) -> Vec<Mail> {
    mails
        .iter()
        .filter(|mail| mail.recipients.iter().any(|r| r == address))
        .cloned()
        .collect()
}

async fn wait_for_mails_to(smtp: &SmtpServer, address: &str, n: usize) -> Vec<Mail> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mails = to(&smtp.mails(), address);
        if mails.len() >= n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} e-mails to {address}, got {mails:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn five_alerts_to_one_address_make_two_emails_then_one_digest_naming_the_rest() {
    let smtp = SmtpServer::start().await;
    let server = TestServer::launch(launch(&smtp, "2", "3s")).await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let mut webhooks = Vec::new();
    for i in 1..=4 {
        webhooks.push(failing_webhook(&server, &receiver, &format!("Flood {i}"), &[FLOOD]).await);
    }
    // The fifth alert to FLOOD also goes to OTHER, which is far from its limit.
    webhooks.push(failing_webhook(&server, &receiver, "Shared", &[FLOOD, OTHER]).await);
    server.publish("payment.completed", "pmt-1", json!({})).await;

    let mut alerts = Vec::new();
    for webhook in &webhooks {
        alerts.push(settled_alert(&server, webhook).await);
    }
    let flood = wait_for_mails_to(&smtp, FLOOD, 3).await;
    let (digests, sent): (Vec<Mail>, Vec<Mail>) = flood.into_iter().partition(|m| m.subject().contains("held back"));
    assert_eq!((sent.len(), digests.len()), (2, 1), "two alerts, then one digest");
    let digest = digests[0].decoded();
    assert_eq!(digests[0].recipients, [FLOOD], "the digest goes to its address only");
    assert_eq!(digests[0].subject(), "[hookrelay] 3 alerts held back");
    assert!(
        digest.contains("text/plain") && !digest.contains("text/html"),
        "{digest}"
    );

    let sent_subjects: Vec<String> = sent.iter().map(Mail::subject).collect();
    for (webhook, alert) in webhooks.iter().zip(&alerts) {
        let name = webhook["name"].as_str().unwrap();
        let was_sent_to_flood = sent_subjects.iter().any(|s| s.contains(&format!("\"{name}\"")));
        let (alert_id, webhook_id) = (alert["id"].as_str().unwrap(), webhook["id"].as_str().unwrap());
        assert_eq!(digest.contains(alert_id), !was_sent_to_flood, "{name}: {digest}");
        if !was_sent_to_flood {
            assert!(digest.contains(webhook_id), "{digest}");
        }
        // Held from every recipient: suppressed; sent to anyone: sent.
        let expected = if was_sent_to_flood || name == "Shared" {
            "sent"
        } else {
            "suppressed"
        };
        assert_eq!(alert["status"], expected, "{name}: {alert}");
    }
    // OTHER got the shared alert, untouched by FLOOD's limit.
    let other = to(&smtp.mails(), OTHER);
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(other[0].subject(), "[hookrelay] Webhook \"Shared\" is failing");
    // Each held alert is in one digest: the digest's window has closed and every alert
    // is settled, so nothing more is owed to FLOOD.
    assert_eq!(to(&smtp.mails(), FLOOD).len(), 3);
}

async fn alert_for_new_webhook(server: &TestServer, receiver: &Receiver, name: &str) -> Value {
    let webhook = failing_webhook(server, receiver, name, &[FLOOD]).await;
    let id = webhook["id"].as_str().unwrap();
    // Test events reach this webhook only.
    let (status, body) = send(
        server
            .request(Method::POST, &format!("/v1/webhooks/{id}/test"))
            .header("Idempotency-Key", unique_key()),
    )
    .await;
    assert!(status.is_success(), "{body}");
    settled_alert(server, &webhook).await
}

async fn restart(server: TestServer, dir: &Path, launch: Launch) -> TestServer {
    assert!(server.stop().await.success());
    TestServer::launch_in(dir, launch).await
}

#[tokio::test]
async fn the_count_is_stored_so_a_restart_does_not_reset_it() {
    let smtp = SmtpServer::start().await;
    let dir = tempfile::TempDir::new().unwrap();
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let server = TestServer::launch_in(dir.path(), launch(&smtp, "1", "1h")).await;
    let first = alert_for_new_webhook(&server, &receiver, "Before").await;
    assert_eq!(first["status"], "sent");
    assert_eq!(wait_for_mails_to(&smtp, FLOOD, 1).await.len(), 1);

    let server = restart(server, dir.path(), launch(&smtp, "1", "1h")).await;
    let second = alert_for_new_webhook(&server, &receiver, "After").await;
    assert_eq!(second["status"], "suppressed", "{second}");
    assert_eq!(smtp.mails().len(), 1, "held, not e-mailed");
}
