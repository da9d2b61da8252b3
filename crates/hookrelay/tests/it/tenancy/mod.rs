//! Tokens with scopes, spaces operators manage, and per-space quotas: through the API
//! (`tokens`), the SDK and the user's CLI (`clients`), the operator's CLI on the
//! database (`spaces`), the quotas (`quotas`), and on a two-node cluster (`cluster`).

mod clients;
mod cluster;
mod quotas;
mod spaces;
mod tokens;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

/// Runs `hookrelay <args> --database <the server's>`, as an operator does next to a
/// running server; returns (success, stdout, stderr).
pub async fn operator(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let mut command = command(&server.dir);
    if server.database.starts_with("postgres") {
        command.env("HOOKRELAY_MASTER_KEY", TEST_MASTER_KEY);
    }
    let output = command
        .args(args)
        .args(["--database", &server.database])
        .output()
        .await
        .expect("run the CLI");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Like [`operator`], which must succeed: its stdout.
pub async fn operate(server: &TestServer, args: &[&str]) -> String {
    let (ok, stdout, stderr) = operator(server, args).await;
    assert!(ok, "{args:?} failed: {stderr}");
    stdout
}

/// A request to `server` with `token` in the test space.
pub fn with_token(server: &TestServer, token: &str, method: Method, path: &str) -> RequestBuilder {
    server
        .bare(method, path)
        .bearer_auth(token)
        .header("Monime-Space-Id", SPACE)
}

/// Creates a token in the test space through the API with the bootstrap token; returns
/// the answer's `result` (with `token`).
pub async fn create_token(server: &TestServer, name: &str, scopes: &[&str]) -> Value {
    let (status, body) = send(
        server
            .request(Method::POST, "/v1/tokens")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": name, "scopes": scopes})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["result"].clone()
}
