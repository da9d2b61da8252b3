//! Tokens through the SDK's `tokens()` and the CLI's `hookrelay tokens`, and the help of
//! every tenancy command.

use futures_util::TryStreamExt;
use hookrelay_client::{Client, CreateToken, Error, ListParams};

use super::operator;
use crate::support::*;

fn client(server: &TestServer, token: &str) -> Client {
    Client::builder(SPACE, token)
        .base_url(&server.base)
        .max_retries(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_sdk_creates_lists_and_revokes_tokens() {
    let server = TestServer::start().await;
    let admin = client(&server, TOKEN);
    let wanted = CreateToken {
        name: "publisher".into(),
        scopes: vec!["events:publish".into()],
        expire_time: Some("2099-01-01T00:00:00.000Z".into()),
    };
    let created = admin
        .tokens()
        .create_with_idempotency_key(&wanted, "sdk-1")
        .await
        .unwrap();
    let again = admin
        .tokens()
        .create_with_idempotency_key(&wanted, "sdk-1")
        .await
        .unwrap();
    assert_eq!(created, again, "a retry answers the first creation, token included");
    let record = &created.result.record;
    assert_eq!(
        (record.name.as_str(), record.scopes.as_slice()),
        ("publisher", &["events:publish".to_owned()][..])
    );
    assert_eq!(record.expire_time.as_deref(), Some("2099-01-01T00:00:00.000Z"));
    assert!(
        !format!("{created:?}").contains(&created.result.token),
        "Debug shows the token"
    );

    let publisher = client(&server, &created.result.token);
    let refused = publisher.tokens().list(ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Api { code: 403, reason, message, .. }
            if reason == "insufficient_scope" && message.contains("tokens:manage")),
        "{refused:?}"
    );

    let listed: Vec<_> = admin.tokens().list_all().try_collect().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(&listed[0], record);
    admin.tokens().revoke(&record.id).await.unwrap();
    let refused = publisher.events().list(ListParams::default()).await.unwrap_err();
    assert!(matches!(&refused, Error::Api { code: 401, .. }), "{refused:?}");
    let again = admin.tokens().revoke(&record.id).await.unwrap_err();
    assert!(matches!(&again, Error::Api { code: 404, .. }), "{again:?}");
}

/// Runs `hookrelay <args>` as a space's user: the server and the bootstrap credentials
/// from the environment.
async fn user(server: &TestServer, args: &[&str]) -> (bool, String, String) {
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

#[tokio::test]
async fn users_create_list_and_revoke_tokens_with_the_cli() {
    let server = TestServer::start().await;
    let args = ["tokens", "create", "--name", "deploy", "--scope", "webhooks:read"];
    let (ok, stdout, stderr) = user(&server, &args).await;
    assert!(ok, "{stderr}");
    let token = stdout.trim();
    assert!(token.starts_with("hrt_") && token.len() == 44, "{stdout}");
    assert!(
        stderr.contains("shown only once") && !stderr.contains(token),
        "{stderr}"
    );

    let (ok, listed, stderr) = user(&server, &["tokens", "list"]).await;
    assert!(ok, "{stderr}");
    let line = listed
        .lines()
        .find(|l| l.contains("deploy"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains(&token[4..12]) && !listed.contains(&token[4..]),
        "{listed}"
    );
    let id = line.split_whitespace().next().unwrap();

    let (ok, _, stderr) = user(&server, &["tokens", "create", "--name", "x", "--scope", "admin"]).await;
    assert!(
        !ok && stderr.contains("possible values") && stderr.contains("events:publish"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = user(&server, &["tokens", "revoke", id]).await;
    assert!(ok && stdout.contains(id), "{stderr}");
    let (ok, listed, _) = user(&server, &["tokens", "list", "--json"]).await;
    assert!(ok && !listed.contains(id), "{listed}");
}

#[tokio::test]
async fn every_tenancy_command_has_help() {
    let server = TestServer::start().await;
    for path in [
        &["token"][..],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["space"],
        &["space", "create"],
        &["space", "list"],
        &["space", "disable"],
        &["space", "enable"],
        &["space", "set-quota"],
        &["tokens"],
        &["tokens", "create"],
        &["tokens", "list"],
        &["tokens", "revoke"],
    ] {
        let mut args = path.to_vec();
        args.push("--help");
        let (ok, help, stderr) = operator(&server, &args).await;
        assert!(ok && help.contains("Usage:"), "{path:?}: {stderr}");
    }
    let (ok, help, _) = operator(&server, &["serve", "--help"]).await;
    for setting in ["--max-webhooks-per-space", "--max-publish-rate", "--max-fan-out"] {
        assert!(ok && help.contains(setting), "serve --help lacks {setting}");
    }
}
