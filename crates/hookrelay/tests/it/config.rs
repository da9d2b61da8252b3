//! Settings through the real binary: `serve --help` as the complete reference, flags over
//! variables over the config file over defaults, the file's unknown keys and mistyped
//! values, and secret-bearing settings kept out of help, errors and logs.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

const EXAMPLE: &str = include_str!("../../../../hookrelay.example.toml");
const PASSWORD: &str = "pw-secret";

/// The example file's keys: those it sets (with their values) and those commented out.
fn example_settings() -> Vec<(String, Option<String>)> {
    EXAMPLE
        .lines()
        .filter_map(|line| {
            let (commented, rest) = match line.strip_prefix("# ") {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (key, value) = rest.split_once(" = ")?;
            let key_like = key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            let value = value.trim_matches('"').to_owned();
            key_like.then(|| (key.to_owned(), (!commented).then_some(value)))
        })
        .collect()
}

/// Runs `hookrelay ARGS` to its end in `dir` with `env` added; one still running after
/// 30 s (a `serve` that should have refused its settings) is killed.
async fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(dir);
    command.args(args).kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("hookrelay {args:?} {env:?} still runs after 30 s"))
        .unwrap()
}

fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts `serve` with `args` and `env` on the test database in `dir`, and returns the
/// address it says it listens on, having stopped it.
async fn listening_address(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = command(dir);
    command
        .arg("serve")
        .args(["--database", &database_url(dir).await])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("hookrelay listening on http://") {
                return address.to_owned();
            }
        }
        let mut log = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut log)
            .await
            .unwrap();
        panic!("serve {args:?} {env:?} did not start: {log}");
    })
    .await
    .expect("serve did not listen within 30 s");
    child.kill().await.unwrap();
    address
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("hookrelay.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn serve_help_lists_every_setting_and_hides_secret_values() {
    let dir = tempfile::TempDir::new().unwrap();
    let token = format!("token-{PASSWORD}-0123456789");
    let output = run(
        dir.path(),
        &["serve", "--help"],
        &[
            (
                "HOOKRELAY_MASTER_KEY",
                "cHctc2VjcmV0LXB3LXNlY3JldC1wdy1zZWNyZXQtcHctcw==",
            ),
            (
                "HOOKRELAY_DATABASE_URL",
                &format!("postgres://u:{PASSWORD}@db.example/x"),
            ),
            ("HOOKRELAY_SMTP_URL", &format!("smtp://u:{PASSWORD}@mail.example:2525")),
            ("HOOKRELAY_BOOTSTRAP_TOKEN", &token),
            ("HOOKRELAY_LISTEN", "127.0.0.9:7000"),
        ],
    )
    .await;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for secret in [PASSWORD, "cHctc2VjcmV0", "db.example", "mail.example"] {
        assert!(!help.contains(secret), "serve --help shows {secret:?}:\n{help}");
    }
    // Variables that hold no secret still show their value.
    assert!(help.contains("[env: HOOKRELAY_LISTEN=127.0.0.9:7000]"), "{help}");

    let settings = example_settings();
    assert!(settings.len() >= 22, "{settings:?}");
    // clap separates options by a blank line; each block holds the option's env and default.
    let blocks: Vec<&str> = help.split("\n\n").collect();
    for (key, default) in settings {
        let env = format!("[env: HOOKRELAY_{}", key.to_uppercase());
        let block = blocks
            .iter()
            .find(|block| block.contains(&format!("{env}]")) || block.contains(&format!("{env}=")))
            .unwrap_or_else(|| panic!("serve --help does not list `{key}`:\n{help}"));
        if let Some(default) = default {
            let shown = [format!("[default: {default}]"), format!("[default: \"{default}\"]")];
            assert!(
                shown.iter().any(|s| block.contains(s)),
                "`{key}` default {default}:\n{block}"
            );
        }
    }
}

#[tokio::test]
async fn invalid_secret_settings_are_named_without_their_password() {
    let dir = tempfile::TempDir::new().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("x.db").display());
    let key = "0000000000000000000000000000000000000000000000000000000000000001";
    type Case<'a> = (Vec<String>, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec!["--database".into(), sqlite.clone()],
            vec![("HOOKRELAY_SMTP_URL", format!("smtps://u:{PASSWORD}@host:notaport"))],
            "`smtp_url`",
        ),
        (
            vec!["--smtp-url".into(), format!("smtp://u:{PASSWORD}@host?tls=maybe")],
            vec![],
            "`smtp_url`",
        ),
        // Cannot connect: the host does not resolve.
        (
            vec![
                "--database".into(),
                format!("postgres://u:{PASSWORD}@nowhere.invalid/x"),
            ],
            vec![("HOOKRELAY_MASTER_KEY", key.into())],
            "`database_url`",
        ),
        (
            vec![],
            vec![
                (
                    "HOOKRELAY_DATABASE_URL",
                    format!("postgres://u:{PASSWORD}@127.0.0.1:port/x"),
                ),
                ("HOOKRELAY_MASTER_KEY", key.into()),
            ],
            "`database_url`",
        ),
        (
            vec!["--database".into(), format!("mysql://u:{PASSWORD}@db/x")],
            vec![],
            "`database_url`",
        ),
        (
            vec!["--database".into(), sqlite.clone()],
            vec![("HOOKRELAY_MASTER_KEY", PASSWORD.into())],
            "`master_key`",
        ),
        (
            vec![
                "--database".into(),
                sqlite.clone(),
                "--bootstrap-space-id".into(),
                "spc-x".into(),
            ],
            vec![("HOOKRELAY_BOOTSTRAP_TOKEN", format!("{PASSWORD} with spaces"))],
            "`bootstrap_token`",
        ),
    ];
    for (args, env, expected) in cases {
        let args: Vec<&str> = ["serve"].into_iter().chain(args.iter().map(String::as_str)).collect();
        let env: Vec<(&str, &str)> = [("HOOKRELAY_LOG", "debug")]
            .into_iter()
            .chain(env.iter().map(|(key, value)| (*key, value.as_str())))
            .collect();
        let output = run(dir.path(), &args, &env).await;
        let text = all_output(&output);
        assert!(!output.status.success(), "{args:?} {env:?} should fail");
        assert!(text.contains(expected), "{expected} not named: {text}");
        assert!(!text.contains(PASSWORD), "{args:?} {env:?} shows the password: {text}");
    }
}

#[tokio::test]
async fn flags_beat_variables_which_beat_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = write_config(dir.path(), "listen = \"127.0.0.2:0\"\n");
    let file = ["--config", config.as_str()];
    let variable = [("HOOKRELAY_LISTEN", "127.0.0.3:0")];
    let flag = ["--listen", "127.0.0.4:0"];
    let with_flag = [&file[..], &flag[..]].concat();
    for (args, env, winner) in [
        (&file[..], &[][..], "127.0.0.2:"),
        (&file[..], &variable[..], "127.0.0.3:"),
        (&with_flag[..], &variable[..], "127.0.0.4:"),
        (&with_flag[..], &[][..], "127.0.0.4:"),
        (&flag[..], &variable[..], "127.0.0.4:"),
    ] {
        let address = listening_address(dir.path(), args, env).await;
        assert!(address.starts_with(winner), "{args:?} {env:?}: listening on {address}");
    }
}

#[tokio::test]
async fn events_come_from_a_variable_as_from_the_file() {
    let plain = TestServer::start().await;
    let body = json!({"name": "custom", "url": "https://example.com/x", "events": ["invoice.paid"]});
    let (status, _) = plain.create_webhook(&body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let server = TestServer::launch(Launch {
        env: vec![("HOOKRELAY_EVENTS".into(), "invoice.paid,invoice.voided".into())],
        ..Launch::default()
    })
    .await;
    let webhook = server.must_create(&body).await;
    assert_eq!(webhook["events"], json!(["invoice.paid"]));
}

#[tokio::test]
async fn the_file_refuses_unknown_keys_and_mistyped_values_by_name() {
    let dir = tempfile::TempDir::new().unwrap();
    let unterminated = format!("smtp_url = \"smtps://u:{PASSWORD}@mail.example\nlisten = 1");
    // The last column: whether `migrate`, which reads only the database settings, refuses it too.
    for (text, expected, migrate_too) in [
        ("lisen = \"127.0.0.1:0\"\n", "`lisen` is not a setting", true),
        (
            "max_in_flight = \"many\"\n",
            "invalid setting `max_in_flight` in config file",
            false,
        ),
        (
            "attempt_timeout = 15\n",
            "invalid setting `attempt_timeout` in config file",
            false,
        ),
        (
            "retry_schedule = \"0s,later\"\n",
            "invalid setting `retry_schedule` in config file",
            false,
        ),
        (
            "bootstrap_token = 4567891234567\n",
            "invalid setting `bootstrap_token` in config file",
            false,
        ),
        (
            "database_max_connections = 0\n",
            "invalid setting `database_max_connections`",
            true,
        ),
        (unterminated.as_str(), "line 1, column", true),
    ] {
        let config = write_config(dir.path(), text);
        let commands: &[&str] = if migrate_too { &["serve", "migrate"] } else { &["serve"] };
        for command in commands {
            let output = run(dir.path(), &[command, "--config", &config], &[]).await;
            let text = all_output(&output);
            assert!(!output.status.success(), "{command} with {text}");
            assert!(text.contains(expected) && text.contains(&config), "{expected}: {text}");
            assert!(!text.contains(PASSWORD) && !text.contains("4567891234567"), "{text}");
        }
    }
}

#[tokio::test]
async fn migrate_and_token_create_read_their_settings_from_a_serve_config_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let database = match postgres_admin_url() {
        Some(_) => database_url(dir.path()).await,
        None => format!("sqlite://{}", dir.path().join("from-file.db").display()),
    };
    let config = write_config(
        dir.path(),
        &format!("database_url = \"{database}\"\nlisten = \"127.0.0.1:0\"\nattempt_timeout = \"2s\"\n"),
    );
    let output = run(dir.path(), &["migrate", "--config", &config], &[]).await;
    assert!(output.status.success(), "{}", all_output(&output));
    let output = run(
        dir.path(),
        &["token", "create", "--space", "spc-file", "--config", &config],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", all_output(&output));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(
        !dir.path().join("hookrelay.db").exists(),
        "the default database was used"
    );
    // With no settings at all, the default database, in the working directory.
    let fresh = tempfile::TempDir::new().unwrap();
    let output = run(fresh.path(), &["migrate"], &[]).await;
    assert!(output.status.success(), "{}", all_output(&output));
    assert!(fresh.path().join("hookrelay.db").exists());

    // The token is in the file's database.
    let server = TestServer::launch_in(
        dir.path(),
        Launch {
            args: vec!["--database".into(), database],
            ..Launch::default()
        },
    )
    .await;
    let answer = server
        .bare(reqwest::Method::GET, "/v1/webhooks")
        .bearer_auth(&token)
        .header("Monime-Space-Id", "spc-file")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}
