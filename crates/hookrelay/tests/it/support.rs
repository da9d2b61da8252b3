//! Test harness: start `hookrelay serve` on a free port in a fresh directory, call it,
//! and check error envelopes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SPACE: &str = "spc-test";
pub const TOKEN: &str = "test-token-0123456789abcdef";
/// The master key tests use on PostgreSQL (which has no key file beside it).
pub const TEST_MASTER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// The PostgreSQL server tests run against instead of SQLite, when set:
/// `HOOKRELAY_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test`. Each server gets a
/// database of its own on it.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("HOOKRELAY_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Where tests that need PostgreSQL whatever the backend (several nodes on one
/// database) find it: `HOOKRELAY_TEST_POSTGRES`, or the project machines' server.
pub const DEFAULT_TEST_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server for tests that cannot run on SQLite. They fail rather than
/// skip when it is missing: a skipped test passes, and would hide that it never ran.
pub fn required_postgres_url() -> String {
    postgres_admin_url().unwrap_or_else(|| DEFAULT_TEST_POSTGRES.to_owned())
}

/// The database a test directory uses: SQLite beside it, or (under
/// `HOOKRELAY_TEST_POSTGRES`) a PostgreSQL database made for it, remembered in the
/// directory so that a restarted server finds the same data.
pub async fn database_url(dir: &Path) -> String {
    match postgres_admin_url() {
        Some(admin) => postgres_database(&admin, dir).await,
        None => format!("sqlite://{}", dir.join("hookrelay.db").display()),
    }
}

/// A PostgreSQL database of its own for a test directory, made on the server `admin`
/// names (or the one made before, remembered in the directory).
pub async fn postgres_database(admin: &str, dir: &Path) -> String {
    let remembered = dir.join("database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return url;
    }
    use sqlx::{Connection, Executor};
    let name = format!("hr_test_{}", unique_key().replace('-', "_"));
    let mut connection = sqlx::PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {admin} is not reachable: {e}. These tests need it: start it (.ci/run does), \
             or set HOOKRELAY_TEST_POSTGRES to a server that runs"
        )
    });
    connection
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    let url = format!("{base}/{name}");
    std::fs::write(&remembered, &url).unwrap();
    url
}

/// A running server and the directory holding its database.
pub struct TestServer {
    child: Child,
    pub base: String,
    /// The database URL the server was given (unless the test gave its own).
    pub database: String,
    pub dir: PathBuf,
    pub stdout_lines: Vec<String>,
    pub client: reqwest::Client,
    _tempdir: Option<TempDir>,
}

/// How to start a server.
#[derive(Default, Clone)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Skip the default bootstrap space and token.
    pub no_bootstrap: bool,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_hookrelay")
}

/// A `Command` for the binary with no HOOKRELAY_* variables leaking in from outside.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("HOOKRELAY_") {
            command.env_remove(key);
        }
    }
    command.current_dir(dir).env("HOOKRELAY_LOG", "warn");
    if postgres_admin_url().is_some() {
        command.env("HOOKRELAY_MASTER_KEY", TEST_MASTER_KEY);
    }
    command
}

impl TestServer {
    /// A server with the test space and token, in a new directory.
    pub async fn start() -> Self {
        Self::launch(Launch::default()).await
    }

    pub async fn launch(launch: Launch) -> Self {
        let tempdir = TempDir::new().expect("temp dir");
        let dir = tempdir.path().to_owned();
        let mut server = Self::launch_in(&dir, launch).await;
        server._tempdir = Some(tempdir);
        server
    }

    /// A server over the database in `dir` (which outlives it).
    pub async fn launch_in(dir: &Path, launch: Launch) -> Self {
        let mut command = command(dir);
        command.arg("serve").arg("--listen").arg("127.0.0.1:0");
        let database_given = launch.args.iter().any(|a| a == "--database")
            || launch.env.iter().any(|(k, _)| k == "HOOKRELAY_DATABASE_URL");
        // A test that names its own database gets it; `database` is then the default
        // it did not use.
        let database = match launch.args.iter().position(|a| a == "--database") {
            Some(i) => launch.args[i + 1].clone(),
            None => database_url(dir).await,
        };
        if !database_given {
            command.arg("--database").arg(&database);
        }
        // PostgreSQL has no key file beside it: a test that chose it without
        // HOOKRELAY_TEST_POSTGRES (several nodes) needs the key `command` did not give.
        if database.starts_with("postgres") {
            command.env("HOOKRELAY_MASTER_KEY", TEST_MASTER_KEY);
        }
        command.args(&launch.args);
        if !launch.no_bootstrap {
            command
                .env("HOOKRELAY_BOOTSTRAP_SPACE_ID", SPACE)
                .env("HOOKRELAY_BOOTSTRAP_TOKEN", TOKEN);
        }
        // Quotas out of the way of tests that are not about them (those set their own).
        command
            .env("HOOKRELAY_MAX_WEBHOOKS_PER_SPACE", "100000")
            .env("HOOKRELAY_MAX_PUBLISH_RATE", "1000000");
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log file");
        command.stdout(Stdio::piped()).stderr(log).kill_on_drop(true);
        let mut child = command.spawn().expect("start hookrelay");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut stdout_lines = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                stdout_lines.push(line.clone());
                if let Some(address) = line.strip_prefix("hookrelay listening on ") {
                    return address.to_owned();
                }
            }
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            panic!("hookrelay exited before listening:\n{log}");
        })
        .await
        .expect("hookrelay did not start within 30 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            base,
            database,
            dir: dir.to_owned(),
            stdout_lines,
            client: reqwest::Client::new(),
            _tempdir: None,
        }
    }

    /// A request with the test space's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(TOKEN)
            .header("Monime-Space-Id", SPACE)
    }

    /// `POST /v1/events` of `body` exactly as written, under a fresh idempotency key.
    pub fn publish_text(&self, body: &'static str) -> RequestBuilder {
        self.request(Method::POST, "/v1/events")
            .header("Idempotency-Key", unique_key())
            .header("Content-Type", "application/json")
            .body(body)
    }

    /// A request with no headers at all.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{}", self.base, path))
    }

    /// POST /v1/webhooks with a fresh idempotency key.
    pub async fn create_webhook(&self, body: &Value) -> (StatusCode, Value) {
        send(
            self.request(Method::POST, "/v1/webhooks")
                .header("Idempotency-Key", unique_key())
                .json(body),
        )
        .await
    }

    /// Creates a webhook that must succeed, returning its `result`.
    pub async fn must_create(&self, body: &Value) -> Value {
        let (status, answer) = self.create_webhook(body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["result"].clone()
    }

    /// POST /v1/events with a fresh idempotency key; the event must be accepted.
    pub async fn publish(&self, name: &str, object_id: &str, data: Value) -> Value {
        let (status, body) = send(
            self.request(Method::POST, "/v1/events")
                .header("Idempotency-Key", unique_key())
                .json(&json!({"name": name, "object": {"id": object_id, "type": "payment"}, "data": data})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["result"].clone()
    }

    /// GET a JSON resource that must exist.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = send(self.request(Method::GET, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// `GET /healthz`: its status and body.
    pub async fn health(&self) -> (StatusCode, Value) {
        send(self.bare(Method::GET, "/healthz")).await
    }

    /// Waits until the delivery engine is idle: every delivery due has been claimed,
    /// attempted and recorded, and a claim after the last wake-up found nothing more (a
    /// retry whose delay has not passed is not due yet). What a test asserts was not
    /// delivered, it asserts after this. Panics after 30 s, naming what was busy.
    pub async fn wait_until_idle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, health) = self.health().await;
            let delivery = &health["delivery"];
            if status == StatusCode::OK && delivery["idle"] == json!(true) {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "the delivery engine was still busy after 30 s: {} attempts in flight, {} deliveries queued, \
                     {} results unrecorded{} (health {status}: {health})",
                    delivery["attemptsInFlight"],
                    delivery["queued"],
                    delivery["unrecorded"],
                    if delivery["attemptsInFlight"] == json!(0)
                        && delivery["queued"] == json!(0)
                        && delivery["unrecorded"] == json!(0)
                    {
                        ", and no claim since the last wake-up has found nothing due"
                    } else {
                        ""
                    },
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill");
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("server did not stop within 20 s")
            .expect("wait")
    }
}

/// Runs a query returning one integer against a test database (SQLite or PostgreSQL).
pub async fn db_count(database: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    if database.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(database).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
    } else {
        let mut db = sqlx::PgConnection::connect(database).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
    }
}

/// Runs one statement against a test database (SQLite or PostgreSQL).
pub async fn db_execute(database: &str, sql: &str) {
    use sqlx::Connection;
    if database.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(database).await.unwrap();
        sqlx::query(sql).execute(&mut db).await.unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(database).await.unwrap();
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
}

/// Creates an access token for `space` with the CLI, against the server's database.
pub async fn cli_token(server: &TestServer, space: &str) -> String {
    let output = command(&server.dir)
        .args(["token", "create", "--space", space, "--database", &server.database])
        .output()
        .await
        .expect("run token create");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("hrt_") && token.len() > 20, "{token}");
    token
}

/// Sends a request and returns the status and JSON body (Null when empty).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, value)
}

pub fn unique_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("key-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Asserts the error envelope: status, reason, and (when given) a detail naming `field`
/// with `rule`.
#[track_caller]
pub fn assert_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    reason: &str,
    field_rule: Option<(&str, &str)>,
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], json!(false), "{body}");
    assert_eq!(body["error"]["code"], json!(expected.as_u16()), "{body}");
    assert_eq!(body["error"]["reason"], json!(reason), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "error message missing: {body}");
    assert_eq!(body["messages"][0], json!(message), "{body}");
    if let Some((field, rule)) = field_rule {
        let details = body["error"]["details"].as_array().expect("details");
        assert!(
            details
                .iter()
                .any(|d| d["field"] == json!(field) && d["rule"] == json!(rule)),
            "expected a detail with field {field:?} and rule {rule:?}: {body}"
        );
        let named = details.iter().find(|d| d["field"] == json!(field)).expect("detail");
        assert!(!named["message"].as_str().unwrap_or_default().is_empty(), "{body}");
    }
}

/// The seed document's first example: an HS256 webhook.
pub fn hmac_example() -> Value {
    json!({
        "name": "Production Webhook",
        "url": "https://yoursite.com/webhooks/monime",
        "apiRelease": "caph",
        "events": ["payment.completed", "payment.failed", "payout.completed"],
        "verificationMethod": {"type": "HS256", "secret": "your-32-character-minimum-secret-key-here"},
        "alertEmails": ["alerts@yoursite.com"],
        "metadata": {"environment": "production"}
    })
}

/// A small valid webhook named `name`.
pub fn simple_webhook(name: &str) -> Value {
    json!({"name": name, "url": "https://example.com/hook", "events": ["payment.completed"]})
}
