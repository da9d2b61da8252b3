//! Spaces and their tokens as an operator manages them, with the CLI on the database of
//! a running server.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{operate, operator};
use crate::receiver::{Receiver, Reply};
use crate::support::*;

/// A request with `token` in `space`.
fn in_space(server: &TestServer, space: &str, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    server
        .bare(method, path)
        .bearer_auth(token)
        .header("Monime-Space-Id", space)
}

/// Polls `request` until it answers `status`; how long that took. Panics after 10 s.
async fn until_answered(status: StatusCode, request: impl Fn() -> reqwest::RequestBuilder) -> (Duration, Value) {
    let start = Instant::now();
    loop {
        let (got, body) = send(request()).await;
        if got == status {
            return (start.elapsed(), body);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {got} after 10 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The row of `id` in a table the CLI printed.
fn row<'a>(table: &'a str, id: &str) -> Vec<&'a str> {
    let line = table.lines().find(|line| line.starts_with(id));
    line.unwrap_or_else(|| panic!("{id} is not listed:\n{table}"))
        .split_whitespace()
        .collect()
}

#[tokio::test]
async fn operators_create_spaces_and_their_tokens_and_revoke_them() {
    let server = TestServer::start().await;
    assert_eq!(
        operate(&server, &["space", "create", "--id", "spc-cli"]).await.trim(),
        "spc-cli"
    );
    let (ok, _, stderr) = operator(&server, &["space", "create", "--id", "spc-cli"]).await;
    assert!(!ok && stderr.contains("exists"), "{stderr}");
    let generated = operate(&server, &["space", "create"]).await;
    assert!(generated.trim().starts_with("spc-"), "{generated}");
    let listed = operate(&server, &["space", "list"]).await;
    // ID, CREATED, DISABLED, WEBHOOKS, TOKENS, three quotas and two retentions (the
    // server's: `-`).
    assert_eq!(
        row(&listed, "spc-cli")[2..],
        ["no", "0", "0", "-", "-", "-", "-", "-"],
        "{listed}"
    );

    let args = [
        "token",
        "create",
        "--space",
        "spc-cli",
        "--name",
        "ci",
        "--scope",
        "webhooks:read",
        "--scope",
        "events:read",
        "--expires",
        "30d",
    ];
    let token = operate(&server, &args).await.trim().to_owned();
    assert!(token.starts_with("hrt_") && token.len() == 44, "{token}");
    let (status, body) = send(in_space(&server, "spc-cli", &token, Method::GET, "/v1/webhooks")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(in_space(&server, "spc-cli", &token, Method::GET, "/v1/tokens")).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope", None);

    let listed = operate(&server, &["token", "list", "--space", "spc-cli"]).await;
    assert!(!listed.contains(&token[4..]), "the token is listed: {listed}");
    let line = listed.lines().nth(1).expect("one token");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[1..4],
        ["ci", &token[4..12], "webhooks:read,events:read"],
        "{listed}"
    );
    let id = cells[0];
    assert!(id.starts_with("tok-"), "{listed}");
    assert_eq!(row(&operate(&server, &["space", "list"]).await, "spc-cli")[4], "1");

    for (args, says) in [
        (
            vec!["token", "create", "--space", "spc-cli", "--scope", "webhooks:admin"],
            "possible values",
        ),
        (
            vec!["token", "create", "--space", "spc-cli", "--expires", "0s"],
            "positive duration",
        ),
        (vec!["token", "create", "--space", "cli"], "not a space id"),
        (
            vec!["token", "revoke", "--space", "spc-cli", "--id", "tok-unknown"],
            "no token",
        ),
        (vec!["token", "revoke", "--space", SPACE, "--id", id], "no token"),
    ] {
        let (ok, _, stderr) = operator(&server, &args).await;
        assert!(!ok && stderr.contains(says), "{args:?}: {stderr}");
    }

    operate(&server, &["token", "revoke", "--space", "spc-cli", "--id", id]).await;
    let call = || in_space(&server, "spc-cli", &token, Method::GET, "/v1/webhooks");
    let (took, body) = until_answered(StatusCode::UNAUTHORIZED, call).await;
    assert!(took < Duration::from_secs(1), "refused after {took:?}: {body}");
}

#[tokio::test]
async fn a_disabled_space_is_refused_and_its_deliveries_wait_until_it_is_enabled() {
    let server = TestServer::launch(Launch {
        args: vec![
            "--allow-private-targets".into(),
            "--retry-schedule".into(),
            "0s,3s,3s".into(),
        ],
        ..Launch::default()
    })
    .await;
    let (ours, theirs) = (Receiver::start().await, Receiver::start().await);
    // Our first attempt fails, so a retry is pending when the space is disabled.
    ours.script(|n| if n == 0 { Reply::Status(500) } else { Reply::Status(200) });
    let mut hook = simple_webhook("ours");
    hook["url"] = json!(ours.url);
    server.must_create(&hook).await;
    let other_token = cli_token(&server, "spc-other").await;
    let other = |method: Method, path: &str| in_space(&server, "spc-other", &other_token, method, path);
    hook["url"] = json!(theirs.url);
    let (status, body) = send(
        other(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "k")
            .json(&hook),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    server.publish("payment.completed", "pmt-1", json!({})).await;
    ours.wait_for(1, Duration::from_secs(10)).await;
    let disabled = Instant::now();
    operate(&server, &["space", "disable", "--space", SPACE]).await;
    let (took, body) = until_answered(StatusCode::FORBIDDEN, || server.request(Method::GET, "/v1/webhooks")).await;
    assert_error(
        StatusCode::FORBIDDEN,
        &body,
        StatusCode::FORBIDDEN,
        "space_disabled",
        None,
    );
    assert!(took < Duration::from_secs(1), "refused after {took:?}");
    assert!(
        row(&operate(&server, &["space", "list"]).await, SPACE)[2] == "yes",
        "listed as disabled"
    );

    // Past the retry's due time (3 s ± 10 % after the first attempt), another space's
    // publish wakes the engine; once it is idle, our retry has not been made.
    tokio::time::sleep(Duration::from_millis(3_500).saturating_sub(disabled.elapsed())).await;
    let publish = other(Method::POST, "/v1/events")
        .header("Idempotency-Key", unique_key())
        .json(&json!({"name": "payment.completed", "object": {"id": "pmt-2", "type": "payment"}, "data": {}}));
    let (status, body) = send(publish).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    theirs.wait_for(1, Duration::from_secs(10)).await;
    server.wait_until_idle().await;
    assert_eq!(ours.count(), 1, "a disabled space's delivery was attempted");
    let pending = "SELECT COUNT(*) FROM deliveries WHERE space_id = 'spc-test' AND status = 'pending'";
    assert_eq!(db_count(&server.database, pending).await, 1, "nothing is cancelled");

    operate(&server, &["space", "enable", "--space", SPACE]).await;
    let received = ours.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(
        received[1].header("monime-event-id"),
        received[0].header("monime-event-id")
    );
    let (status, _) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(status, StatusCode::OK);
}
