//! Things every route shares: configuration layering, unknown routes, the OpenAPI
//! document, health, and help text.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let server = TestServer::start().await;
    let (status, body) = send(server.request(Method::GET, "/v1/nothing")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    let (status, body) = send(server.request(Method::PUT, "/v1/webhooks")).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
}

#[tokio::test]
async fn health_and_openapi_are_served() {
    let server = TestServer::start().await;
    let (status, body) = send(server.bare(Method::GET, "/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["status"], &body["database"]),
        (&json!("ok"), &json!("ok")),
        "{body}"
    );
    let delivery = &body["delivery"];
    assert!(delivery["idle"].is_boolean(), "{body}");
    for count in ["attemptsInFlight", "queued", "unrecorded"] {
        assert_eq!(delivery[count], json!(0), "nothing to deliver yet: {body}");
    }
    let (status, doc) = send(server.bare(Method::GET, "/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    for (path, method) in [
        ("/v1/webhooks", "get"),
        ("/v1/webhooks", "post"),
        ("/v1/webhooks/{id}", "get"),
        ("/v1/webhooks/{id}", "patch"),
        ("/v1/webhooks/{id}", "delete"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} documented");
    }
    assert!(doc["components"]["schemas"]["Webhook"].is_object());
}

#[tokio::test]
async fn serve_help_documents_every_setting() {
    let output = std::process::Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "--listen",
        "HOOKRELAY_LISTEN",
        "--database",
        "HOOKRELAY_DATABASE_URL",
        "--config",
        "--master-key",
        "HOOKRELAY_MASTER_KEY",
        "HOOKRELAY_MASTER_KEY_FILE",
        "HOOKRELAY_BOOTSTRAP_SPACE_ID",
        "HOOKRELAY_BOOTSTRAP_TOKEN",
        "--allow-private-targets",
        "HOOKRELAY_ALLOW_PRIVATE_TARGETS",
        "events",
    ] {
        assert!(
            help.contains(setting),
            "serve --help does not mention {setting}:\n{help}"
        );
    }
}

#[tokio::test]
async fn flags_beat_environment_which_beats_the_config_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("hookrelay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\ndatabase_url = \"sqlite://{}\"\nevents = [\"invoice.paid\"]\nallow_private_targets = true\n",
            dir.path().join("from-file.db").display()
        ),
    )
    .unwrap();
    // --listen (flag) overrides the file's unusable port; HOOKRELAY_DATABASE_URL (env)
    // overrides the file's database; events and allow_private_targets come from the file.
    let server = TestServer::launch_in(
        dir.path(),
        Launch {
            args: vec![
                "--config".into(),
                config.display().to_string(),
                "--database".into(),
                format!("sqlite://{}", dir.path().join("from-flag.db").display()),
            ],
            env: vec![(
                "HOOKRELAY_DATABASE_URL".into(),
                format!("sqlite://{}", dir.path().join("from-env.db").display()),
            )],
            ..Launch::default()
        },
    )
    .await;
    assert!(dir.path().join("from-flag.db").exists());
    assert!(!dir.path().join("from-env.db").exists());
    assert!(!dir.path().join("from-file.db").exists());
    let webhook = server
        .must_create(&json!({"name": "custom", "url": "http://127.0.0.1:9/x", "events": ["invoice.paid"]}))
        .await;
    assert_eq!(webhook["events"], json!(["invoice.paid"]));
    drop(server);

    let server = TestServer::launch_in(
        dir.path(),
        Launch {
            args: vec!["--config".into(), config.display().to_string()],
            env: vec![(
                "HOOKRELAY_DATABASE_URL".into(),
                format!("sqlite://{}", dir.path().join("from-env.db").display()),
            )],
            ..Launch::default()
        },
    )
    .await;
    assert!(dir.path().join("from-env.db").exists());
    assert!(!dir.path().join("from-file.db").exists());
    drop(server);
}

#[tokio::test]
async fn bad_settings_stop_the_server_with_a_clear_message() {
    let dir = tempfile::TempDir::new().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 4] = [
        (&["--listen", "nowhere"], &[], "listen"),
        (&["--database", "mysql://x"], &[], "database_url"),
        (&[], &[("HOOKRELAY_MASTER_KEY", "short")], "master_key"),
        (&[], &[("HOOKRELAY_BOOTSTRAP_SPACE_ID", "spc-x")], "bootstrap"),
    ];
    for (args, env, expected) in cases {
        let mut command = command(dir.path());
        command.arg("serve").args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().await.unwrap();
        assert!(!output.status.success(), "{args:?} {env:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
}

#[tokio::test]
async fn migrate_prepares_the_database_and_serve_refuses_a_newer_schema() {
    let dir = tempfile::TempDir::new().unwrap();
    let database = database_url(dir.path()).await;
    let output = command(dir.path())
        .args(["migrate", "--database", &database])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "database is up to date");
    let server = TestServer::launch_in(dir.path(), Launch::default()).await;
    assert!(server.stop().await.success());

    // A migration this binary does not know: the database belongs to a newer hookrelay.
    let future = if database.starts_with("sqlite:") {
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', 1, X'00', 0)"
    } else {
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', true, '\\x00'::bytea, 0)"
    };
    db_execute(&database, future).await;
    for args in [
        &["serve", "--listen", "127.0.0.1:0", "--database", database.as_str()][..],
        &["migrate", "--database", database.as_str()],
    ] {
        let output = command(dir.path()).args(args).output().await.unwrap();
        assert!(!output.status.success(), "{args:?} must refuse a newer schema");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("newer than this hookrelay"), "{stderr}");
    }
}

#[tokio::test]
async fn a_second_serve_on_one_sqlite_file_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let database = format!("sqlite://{}", dir.path().join("single.db").display());
    let launch = Launch {
        args: vec!["--database".into(), database.clone()],
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), launch.clone()).await;
    let output = command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another hookrelay serve is using"), "{stderr}");
    // The CLI's own commands still open it, and a restart after a clean stop works.
    let token = command(dir.path())
        .args(["token", "create", "--space", "spc-more", "--database", &database])
        .output()
        .await
        .unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    assert!(server.stop().await.success());
    let again = TestServer::launch_in(dir.path(), launch).await;
    assert!(again.stop().await.success());
}
