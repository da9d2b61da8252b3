//! Key rotation from the CLI: `webhook rotate` (the secret read from standard input),
//! `rotation`, `end-rotation`, and `listen` holding both secrets or following a JWKS,
//! or verifying the Standard Webhooks format.

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::cli::{cli, cli_json, next_line, serving};
use crate::support::*;

const OLD: &str = "cli-old-secret-0123456789abcdef012345";
const NEW: &str = "cli-new-secret-0123456789abcdef012345";

/// `hookrelay listen` with `args` and `env` (secrets go through the environment).
async fn listen_with(
    server: &TestServer,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut command = command(&server.dir);
    command.args(["listen", "--port", "0"]).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.stdout(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("listen prints its address");
    let url = first.strip_prefix("listening on ").expect("address line").to_owned();
    (child, url, lines)
}

/// `hookrelay webhook rotate ID …` with `secret` on standard input.
async fn rotate_with_stdin(server: &TestServer, id: &str, secret: &str, overlap: &str) -> Value {
    let mut child = command(&server.dir)
        .env("HOOKRELAY_URL", &server.base)
        .env("HOOKRELAY_SPACE_ID", SPACE)
        .env("HOOKRELAY_TOKEN", TOKEN)
        .args([
            "webhook",
            "rotate",
            id,
            "--secret-stdin",
            "--overlap",
            overlap,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{secret}\n").as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn publish(server: &TestServer, object: &str) -> String {
    let event = server.publish("payment.completed", object, json!({})).await;
    event["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rotate_from_the_cli_and_listen_accepts_either_secret_during_the_overlap() {
    let server = serving().await;
    let env = [("HOOKRELAY_LISTEN_SECRET", OLD)];
    let (_old_only, old_url, mut old_lines) = listen_with(&server, &[], &env).await;
    let env = [
        ("HOOKRELAY_LISTEN_SECRET", NEW),
        ("HOOKRELAY_LISTEN_PREVIOUS_SECRET", OLD),
    ];
    let (_both, both_url, mut both_lines) = listen_with(&server, &[], &env).await;
    let mut ids = Vec::new();
    for url in [&old_url, &both_url] {
        let body = json!({"name": "cli", "url": format!("{url}/hooks"), "events": ["payment.completed"],
            "verificationMethod": {"type": "HS256", "secret": OLD}});
        ids.push(server.must_create(&body).await["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let rotated = rotate_with_stdin(&server, id, NEW, "1h").await;
        assert_eq!(rotated["result"]["webhook"]["verificationMethod"]["secret"], json!(NEW));
        assert!(rotated["result"]["rotation"]["previousKeyId"].is_string(), "{rotated}");
    }
    let (ok, shown, _) = cli(&server, &["webhook", "rotation", &ids[0]]).await;
    assert!(
        ok && shown.contains("previousKeyId:") && shown.contains("key-"),
        "{shown}"
    );

    // During the overlap: the old secret alone verifies, and so do both together.
    let event = publish(&server, "pmt-1").await;
    for lines in [&mut old_lines, &mut both_lines] {
        let line = next_line(lines).await;
        assert!(line.contains(&format!("{event}  attempt=1  verified")), "{line}");
    }

    // Ended: the old secret alone no longer verifies; the pair still does.
    for id in &ids {
        let ended = cli_json(&server, &["webhook", "end-rotation", id]).await;
        assert_eq!(ended["result"]["previousKeyId"], Value::Null, "{ended}");
    }
    let event = publish(&server, "pmt-2").await;
    let line = next_line(&mut old_lines).await;
    assert!(
        line.contains(&format!("{event}  attempt=1  rejected: signature_mismatch")),
        "{line}"
    );
    let line = next_line(&mut both_lines).await;
    assert!(line.contains(&format!("{event}  attempt=1  verified")), "{line}");
}

#[tokio::test]
async fn listen_follows_a_jwks_across_an_es256_rotation() {
    let server = serving().await;
    let body = json!({"name": "ec", "url": "https://example.com/later", "events": ["payment.completed"],
        "verificationMethod": {"type": "ES256"}});
    let id = server.must_create(&body).await["id"].as_str().unwrap().to_owned();
    let jwks = format!("{}/v1/webhooks/{id}/jwks.json", server.base);
    let (_listen, url, mut lines) = listen_with(&server, &["--jwks-url", &jwks], &[]).await;
    let pointed = cli_json(&server, &["webhook", "update", &id, "--url", &format!("{url}/hooks")]).await;
    assert_eq!(pointed["result"]["url"], json!(format!("{url}/hooks")));

    // No overlap: the delivery names only a key listen's cached set lacks.
    let rotated = cli_json(&server, &["webhook", "rotate", &id, "--overlap", "0s"]).await;
    assert_eq!(rotated["result"]["rotation"]["previousKeyId"], Value::Null);
    let event = publish(&server, "pmt-1").await;
    let line = next_line(&mut lines).await;
    assert!(line.contains(&format!("{event}  attempt=1  verified")), "{line}");
}

#[tokio::test]
async fn listen_verifies_standard_webhooks_deliveries_with_the_secret() {
    let server = serving().await;
    let (_right, right_url, mut right_lines) = listen_with(&server, &[], &[("HOOKRELAY_LISTEN_SECRET", OLD)]).await;
    let (_wrong, wrong_url, mut wrong_lines) = listen_with(&server, &[], &[("HOOKRELAY_LISTEN_SECRET", NEW)]).await;
    for url in [&right_url, &wrong_url] {
        let body = json!({"name": "standard", "url": format!("{url}/hooks"), "events": ["payment.completed"],
            "verificationMethod": {"type": "HS256", "secret": OLD}});
        let id = server.must_create(&body).await["id"].as_str().unwrap().to_owned();
        let set = cli_json(&server, &["webhook", "settings", &id, "--format", "standard-webhooks"]).await;
        assert_eq!(set["result"]["format"], "standard-webhooks", "{set}");
    }
    let event = publish(&server, "pmt-standard").await;
    let line = next_line(&mut right_lines).await;
    assert!(line.contains(&format!("{event}  attempt=1  verified")), "{line}");
    let line = next_line(&mut wrong_lines).await;
    assert!(line.contains("rejected: signature_mismatch"), "{line}");
}
