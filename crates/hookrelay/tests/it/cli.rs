//! The `hookrelay` CLI as a new user drives it: serve, create a webhook pointing at
//! `listen`, publish, and watch `listen` verify the delivery.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::support::*;

/// Runs a CLI command against `server`; returns (success, stdout, stderr).
pub(crate) async fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = command(&server.dir)
        .env("HOOKRELAY_URL", &server.base)
        .env("HOOKRELAY_SPACE_ID", SPACE)
        .env("HOOKRELAY_TOKEN", TOKEN)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

pub(crate) async fn cli_json(server: &TestServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (ok, stdout, stderr) = cli(server, &args).await;
    assert!(ok, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{args:?} printed no JSON: {stdout}"))
}

/// Starts `hookrelay listen` on a free port; returns it, its URL and its output lines.
pub(crate) async fn listen(
    server: &TestServer,
    verify_with: &[&str],
) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut child = command(&server.dir)
        .args(["listen", "--port", "0"])
        .args(verify_with)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("listen prints its address");
    let url = first.strip_prefix("listening on ").expect("address line").to_owned();
    (child, url, lines)
}

pub(crate) async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .expect("listen printed a line in time")
        .unwrap()
        .expect("listen still running")
}

pub(crate) async fn serving() -> TestServer {
    TestServer::launch(Launch {
        args: vec!["--allow-private-targets".into()],
        ..Launch::default()
    })
    .await
}

#[tokio::test]
async fn an_hs256_delivery_shows_up_verified_in_listen() {
    let server = serving().await;
    let secret = "cli-secret-0123456789abcdef0123456789";
    let (_listen, url, mut lines) = listen(&server, &["--secret", secret]).await;
    let created = cli_json(
        &server,
        &[
            "webhook",
            "create",
            "--name",
            "local dev",
            "--url",
            &format!("{url}/webhooks"),
            "--event",
            "payment.completed",
            "--hs256-secret",
            secret,
            "--header",
            "X-Env=dev",
            "--metadata",
            "team=payments",
            "--alert-email",
            "ops@example.com",
        ],
    )
    .await;
    assert_eq!(created["result"]["headers"]["X-Env"], "dev");
    assert_eq!(created["result"]["metadata"]["team"], "payments");
    assert_eq!(created["result"]["alertEmails"][0], "ops@example.com");

    let data = server.dir.join("payment.json");
    std::fs::write(
        &data,
        r#"{"id": "pmt-1", "amount": {"currency": "SLE", "value": 1000}}"#,
    )
    .unwrap();
    let published = cli_json(
        &server,
        &[
            "events",
            "publish",
            "payment.completed",
            "--object-id",
            "pmt-1",
            "--object-type",
            "payment",
            "--data",
            &format!("@{}", data.display()),
        ],
    )
    .await;
    let event_id = published["result"]["id"].as_str().unwrap();
    assert_eq!(published["result"]["data"]["amount"]["value"], 1000);
    let line = next_line(&mut lines).await;
    assert!(
        line.contains(&format!("payment.completed  {event_id}  attempt=1  verified")),
        "{line}"
    );
}

#[tokio::test]
async fn an_es256_delivery_shows_up_verified_in_listen() {
    let server = serving().await;
    // Create first to learn the public key, then point the webhook at listen.
    let created = cli_json(
        &server,
        &[
            "webhook",
            "create",
            "--name",
            "ecdsa",
            "--url",
            "https://example.com/placeholder",
            "--event",
            "payout.failed",
            "--es256",
        ],
    )
    .await;
    let id = created["result"]["id"].as_str().unwrap().to_owned();
    let key_file = server.dir.join("webhook.pem");
    std::fs::write(
        &key_file,
        created["result"]["verificationMethod"]["publicKey"].as_str().unwrap(),
    )
    .unwrap();
    let (_listen, url, mut lines) = listen(&server, &["--public-key-file", key_file.to_str().unwrap()]).await;
    let updated = cli_json(&server, &["webhook", "update", &id, "--url", &format!("{url}/hooks")]).await;
    assert_eq!(updated["result"]["url"], format!("{url}/hooks"));

    let (ok, stdout, stderr) = cli(
        &server,
        &[
            "events",
            "publish",
            "payout.failed",
            "--object-id",
            "po-1",
            "--object-type",
            "payout",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("published evt-") && stdout.contains("to 1 webhook(s)"),
        "{stdout}"
    );
    let line = next_line(&mut lines).await;
    assert!(
        line.contains("payout.failed") && line.ends_with("attempt=1  verified"),
        "{line}"
    );

    // A listen with the wrong key rejects, and says why.
    let other = cli_json(
        &server,
        &[
            "webhook",
            "create",
            "--name",
            "wrong key",
            "--url",
            &format!("{url}/x"),
            "--event",
            "payout.failed",
            "--hs256-secret",
            "another-secret-0123456789abcdef012345",
        ],
    )
    .await;
    assert!(other["success"].as_bool().unwrap());
    cli(
        &server,
        &[
            "events",
            "publish",
            "payout.failed",
            "--object-id",
            "po-2",
            "--object-type",
            "payout",
        ],
    )
    .await;
    let mut saw = Vec::new();
    for _ in 0..2 {
        saw.push(next_line(&mut lines).await);
    }
    assert!(saw.iter().any(|l| l.ends_with("verified")), "{saw:?}");
    assert!(
        saw.iter().any(|l| l.contains("rejected: signature_mismatch")),
        "{saw:?}"
    );
}

#[tokio::test]
async fn human_output_lists_and_shows() {
    let server = serving().await;
    for name in ["alpha", "beta", "gamma"] {
        let (ok, stdout, stderr) = cli(
            &server,
            &[
                "webhook",
                "create",
                "--name",
                name,
                "--url",
                "https://example.com/h",
                "--event",
                "payment.completed",
            ],
        )
        .await;
        assert!(ok, "{stderr}");
        assert!(stdout.contains(&format!("name:         {name}")), "{stdout}");
        assert!(stdout.contains("verification: HS256"), "{stdout}");
    }
    let (ok, stdout, _) = cli(&server, &["webhook", "list", "--limit", "2"]).await;
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME") && lines[0].contains("URL"),
        "{stdout}"
    );
    assert!(lines[1].contains("gamma") && lines[2].contains("beta"), "{stdout}");
    assert!(stdout.contains("more: --after "), "{stdout}");
    let all = cli_json(&server, &["webhook", "list", "--all"]).await;
    assert_eq!(all.as_array().unwrap().len(), 3);

    let id = all[2]["id"].as_str().unwrap();
    let (ok, stdout, _) = cli(&server, &["webhook", "update", id, "--disabled"]).await;
    assert!(ok && stdout.contains("enabled:      false"), "{stdout}");
    let (ok, stdout, _) = cli(&server, &["webhook", "delete", id]).await;
    assert!(ok && stdout.trim() == format!("deleted {id}"), "{stdout}");
}

#[tokio::test]
async fn deliveries_and_test_events_from_the_cli() {
    let server = serving().await;
    let receiver = crate::receiver::Receiver::start().await;
    let created = cli_json(
        &server,
        &[
            "webhook",
            "create",
            "--name",
            "r",
            "--url",
            &receiver.url,
            "--event",
            "payment.completed",
        ],
    )
    .await;
    let id = created["result"]["id"].as_str().unwrap();
    let tested = cli_json(&server, &["webhook", "test", id]).await;
    assert_eq!(tested["result"]["eventName"], "webhook.test");
    receiver.wait_for(1, Duration::from_secs(15)).await;
    let delivery = tested["result"]["id"].as_str().unwrap();
    let detail = loop {
        let detail = cli_json(&server, &["deliveries", "get", "--webhook", id, delivery]).await;
        if detail["result"]["status"] == "succeeded" {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(detail["result"]["attempts"][0]["statusCode"], 200);
    let (ok, stdout, _) = cli(
        &server,
        &["deliveries", "list", "--webhook", id, "--status", "succeeded"],
    )
    .await;
    assert!(
        ok && stdout.contains(delivery) && stdout.contains("webhook.test"),
        "{stdout}"
    );
    let (ok, stdout, _) = cli(&server, &["deliveries", "retry", "--webhook", id, delivery]).await;
    assert!(ok && stdout.contains("status:      pending"), "{stdout}");
    receiver.wait_for(2, Duration::from_secs(15)).await;
}

/// Polls `webhook alerts --json` until the webhook has `n` alerts, each settled (no mail
/// server: `skipped`); returns them.
async fn settled_alerts(server: &TestServer, id: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = cli_json(server, &["webhook", "alerts", id]).await;
        let alerts = page["result"].as_array().unwrap().clone();
        if alerts.len() >= n && alerts.iter().all(|a| a["status"] == "skipped") {
            return alerts;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn webhook_alerts_lists_them_as_a_table_or_json() {
    // One attempt per delivery and no mail server: a failed delivery raises a `failing`
    // alert at once, the next success a `recovered` one, both recorded as `skipped`.
    let server = TestServer::launch(Launch {
        args: ["--allow-private-targets", "--retry-schedule", "0s"]
            .map(String::from)
            .to_vec(),
        ..Launch::default()
    })
    .await;
    let receiver = crate::receiver::Receiver::start().await;
    receiver.script(|_| crate::receiver::Reply::Status(500));
    let created = cli_json(
        &server,
        &[
            "webhook",
            "create",
            "--name",
            "alerting",
            "--url",
            &receiver.url,
            "--event",
            "payment.completed",
            "--alert-email",
            "oncall@example.com",
        ],
    )
    .await;
    let id = created["result"]["id"].as_str().unwrap();
    let publish = [
        "events",
        "publish",
        "payment.completed",
        "--object-id",
        "p",
        "--object-type",
        "payment",
    ];
    assert!(cli(&server, &publish).await.0);
    let failing = settled_alerts(&server, id, 1).await;
    receiver.script(|_| crate::receiver::Reply::Status(200));
    assert!(cli(&server, &publish).await.0);
    let alerts = settled_alerts(&server, id, 2).await;
    assert_eq!(alerts[1], failing[0], "newest first");
    let answer = cli_json(&server, &["webhook", "alerts", id]).await;
    assert_eq!(
        answer["pagination"]["count"], 2,
        "--json prints the API's answer: {answer}"
    );
    assert_eq!(answer["result"][0]["kind"], "recovered");

    let (ok, stdout, stderr) = cli(&server, &["webhook", "alerts", id, "--limit", "1"]).await;
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    for column in ["ID", "KIND", "STATUS", "ATTEMPTS", "CREATED", "RECIPIENTS"] {
        assert!(lines[0].contains(column), "{stdout}");
    }
    let recovered = alerts[0]["id"].as_str().unwrap();
    assert!(
        lines[1].starts_with(recovered) && lines[1].contains("recovered") && lines[1].contains("skipped"),
        "{stdout}"
    );
    assert!(lines[1].contains("oncall@example.com"), "{stdout}");
    let next = stdout.split("more: --after ").nth(1).expect("a next page").trim();
    let (ok, stdout, _) = cli(&server, &["webhook", "alerts", id, "--limit", "1", "--after", next]).await;
    let failing_id = failing[0]["id"].as_str().unwrap();
    assert!(
        ok && stdout.contains(failing_id) && stdout.contains("failing"),
        "{stdout}"
    );
    assert!(!stdout.contains("more: --after"), "the last page: {stdout}");

    let (ok, _, stderr) = cli(&server, &["webhook", "alerts", "whk-nope"]).await;
    assert!(
        !ok && stderr.contains("webhook whk-nope was not found (404 not_found)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn api_errors_print_the_server_message_and_exit_non_zero() {
    let server = serving().await;
    let (ok, _, stderr) = cli(&server, &["webhook", "get", "whk-nope"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("webhook whk-nope was not found (404 not_found)"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(
        &server,
        &[
            "webhook",
            "create",
            "--name",
            "x",
            "--url",
            "ftp://x",
            "--event",
            "payment.exploded",
        ],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("400 validation_failed"), "{stderr}");
    assert!(
        stderr.contains("events[0]: \"payment.exploded\" is not a known event [unknown_event]"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(&server, &["webhook", "update", "whk-x"]).await;
    assert!(!ok && stderr.contains("nothing to change"), "{stderr}");
    let output = command(&server.dir)
        .env("HOOKRELAY_URL", &server.base)
        .args(["webhook", "list"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("HOOKRELAY_SPACE_ID"));
    let (ok, _, stderr) = cli(&server, &["--help"]).await;
    assert!(ok, "{stderr}");
}

/// The subcommands `--help` lists under "Commands:" (without `help` itself).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        // A command's line starts two spaces in; its description's wrapped lines further.
        .filter(|line| line.starts_with("  ") && !line[2..].starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Walks the whole command tree from `hookrelay --help` down, so a new command is
/// covered without being listed here.
#[tokio::test]
async fn every_command_has_help() {
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        let output = std::process::Command::new(binary())
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success(), "{path:?} --help failed");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Usage:"), "{path:?}: {help}");
        for name in subcommands(&help) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        seen.push(path.join(" "));
    }
    for expected in [
        "serve",
        "backup",
        "space set-quota",
        "token revoke",
        "tokens create",
        "webhook alerts",
        "listen",
    ] {
        assert!(seen.iter().any(|s| s == expected), "{expected} not reached: {seen:?}");
    }
}
