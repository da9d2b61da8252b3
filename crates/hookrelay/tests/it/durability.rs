//! An answered publish survives a power cut, not only a killed process.
//!
//! SQLite: the real binary runs under `strace`, which logs every write to and sync of
//! the write-ahead log and every answer written to a socket. With the default
//! `sqlite_synchronous = full`, the writer thread syncs the log after writing each
//! commit's frames and before the publishes it holds are answered; with `normal` it does
//! not, which shows the test can tell. `strace` must be installed (`.ci/run` installs
//! it): without it the test fails rather than skip.
//!
//! PostgreSQL: hookrelay's sessions run with `synchronous_commit` on even where the
//! database turns it off, unless the URL's `options` say otherwise; the server says at
//! start what its sessions use.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

/// Publishes made one after another, each answered before the next is sent.
const PUBLISHES: usize = 20;

/// `hookrelay serve` on a SQLite file in `dir`, under `strace` writing to `trace`.
async fn serve_under_strace(dir: &Path, trace: &Path, extra: &[&str]) -> (Child, String) {
    let mut command = Command::new("strace");
    command.args(["-f", "-tt", "-s", "48", "-o"]).arg(trace).args([
        "-e",
        "trace=openat,close,pwrite64,write,writev,sendto,fsync,fdatasync",
        "--",
        binary(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
    ]);
    command.arg(format!("sqlite://{}", dir.join("hookrelay.db").display()));
    command.args(extra);
    for (key, _) in std::env::vars() {
        if key.starts_with("HOOKRELAY_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .env("HOOKRELAY_LOG", "warn")
        .env("HOOKRELAY_BOOTSTRAP_SPACE_ID", SPACE)
        .env("HOOKRELAY_BOOTSTRAP_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|error| {
        panic!("strace is needed to watch the writer sync (apt-get install -y strace): {error}")
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(address) = line.strip_prefix("hookrelay listening on ") {
                return address.to_owned();
            }
        }
        panic!("hookrelay under strace exited before listening");
    })
    .await
    .expect("hookrelay under strace did not start within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

/// Stops the server (not strace, which would let it go on untraced) and waits for
/// strace to finish its log.
async fn stop_traced(mut strace: Child) {
    let pid = strace.id().expect("strace runs");
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).expect("strace's children");
    let server = children.split_whitespace().next().expect("the traced server");
    let stopped = std::process::Command::new("kill").args(["-TERM", server]).status();
    assert!(stopped.expect("kill").success());
    tokio::time::timeout(Duration::from_secs(30), strace.wait())
        .await
        .expect("the traced server stopped within 30 s")
        .expect("wait for strace");
}

/// Publishes [`PUBLISHES`] events one after another.
async fn publish_one_by_one(base: &str) {
    let client = reqwest::Client::new();
    for i in 0..PUBLISHES {
        let (status, body) = send(
            client
                .post(format!("{base}/v1/events"))
                .bearer_auth(TOKEN)
                .header("Monime-Space-Id", SPACE)
                .header("Idempotency-Key", unique_key())
                .json(&json!({"name": "payment.completed", "object": {"id": format!("pmt-{i}"), "type": "payment"}, "data": {}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// One system call in strace's log: the thread that made it, the lines (0-based) where
/// it began and ended, and its text from its name to its result.
#[derive(Debug)]
struct Call {
    thread: String,
    began: usize,
    ended: usize,
    text: String,
}

impl Call {
    fn name(&self) -> &str {
        self.text.split('(').next().unwrap_or_default()
    }

    /// The first argument, a file descriptor for the calls watched here.
    fn fd(&self) -> Option<u32> {
        let args = self.text.split_once('(')?.1;
        args.split([',', ')']).next()?.trim().parse().ok()
    }

    /// What it returned.
    fn result(&self) -> Option<i64> {
        self.text.rsplit_once(" = ")?.1.split_whitespace().next()?.parse().ok()
    }
}

/// The calls of strace's log `text` (`-f -tt`), an interrupted one joined with its end.
fn calls(text: &str) -> Vec<Call> {
    let mut unfinished: HashMap<String, (usize, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (line_number, line) in text.lines().enumerate() {
        // `TID  HH:MM:SS.micros call...` (the TID padded to a width).
        let Some((thread, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let thread = thread.to_owned();
        if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            unfinished.insert(thread, (line_number, start.to_owned()));
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let tail = resumed.split_once(" resumed>").map_or("", |(_, tail)| tail);
            if let Some((began, start)) = unfinished.remove(&thread) {
                calls.push(Call {
                    thread,
                    began,
                    ended: line_number,
                    text: format!("{start}{tail}"),
                });
            }
        } else if !rest.starts_with("+++") && !rest.starts_with("---") {
            calls.push(Call {
                thread,
                began: line_number,
                ended: line_number,
                text: rest.to_owned(),
            });
        }
    }
    calls
}

/// What the log shows of the publishes' answers: for each answer, whether the writer
/// synced the write-ahead log after writing its last frames before it and before the
/// answer went out.
struct Durability {
    /// The threads that wrote to the log while publishes were answered.
    writers: HashSet<String>,
    /// Per answer: whether it waited for a sync.
    synced_before_answer: Vec<bool>,
}

fn durability(text: &str) -> Durability {
    let calls = calls(text);
    let mut wal_fds: HashSet<u32> = HashSet::new();
    let (mut frames, mut syncs, mut answers) = (Vec::new(), Vec::new(), Vec::new());
    for call in &calls {
        match call.name() {
            "openat" if call.text.contains("-wal\"") => {
                if let Some(fd) = call.result().and_then(|fd| u32::try_from(fd).ok()) {
                    wal_fds.insert(fd);
                }
            }
            "close" => {
                call.fd().map(|fd| wal_fds.remove(&fd));
            }
            "pwrite64" if call.fd().is_some_and(|fd| wal_fds.contains(&fd)) => frames.push(call),
            "fsync" | "fdatasync" if call.fd().is_some_and(|fd| wal_fds.contains(&fd)) => syncs.push(call),
            "write" | "writev" | "sendto" if call.text.contains("\"HTTP/1.1 200") => answers.push(call),
            _ => {}
        }
    }
    // The writer: whoever writes frames between the first answer and the last
    // (migrations, before the server listens, write from a thread of their own).
    let (first, last) = match (answers.first(), answers.last()) {
        (Some(first), Some(last)) => (first.began, last.began),
        _ => (0, 0),
    };
    let writers: HashSet<String> = frames
        .iter()
        .filter(|f| f.began > first && f.ended < last)
        .map(|f| f.thread.clone())
        .collect();
    let synced_before_answer = answers
        .iter()
        .map(|answer| {
            let last_frame = frames
                .iter()
                .filter(|f| f.ended < answer.began)
                .map(|f| f.ended)
                .max()
                .unwrap_or(0);
            syncs
                .iter()
                .any(|s| writers.contains(&s.thread) && s.began > last_frame && s.ended < answer.began)
        })
        .collect();
    Durability {
        writers,
        synced_before_answer,
    }
}

/// Runs [`PUBLISHES`] publishes against a traced server started with `extra` flags.
async fn traced_publishes(extra: &[&str]) -> Durability {
    let dir = tempfile::TempDir::new().unwrap();
    let trace = dir.path().join("strace.log");
    let (strace, base) = serve_under_strace(dir.path(), &trace, extra).await;
    publish_one_by_one(&base).await;
    stop_traced(strace).await;
    let text = std::fs::read_to_string(&trace).expect("strace's log");
    let durability = durability(&text);
    assert_eq!(
        durability.synced_before_answer.len(),
        PUBLISHES,
        "every publish's answer is in the trace"
    );
    assert_eq!(
        durability.writers.len(),
        1,
        "one writer thread: {:?}",
        durability.writers
    );
    durability
}

#[tokio::test]
async fn by_default_no_publish_is_answered_before_its_commit_is_synced() {
    let durability = traced_publishes(&[]).await;
    assert!(
        durability.synced_before_answer.iter().all(|synced| *synced),
        "answers sent before the log was synced: {:?}",
        durability.synced_before_answer
    );
}

#[tokio::test]
async fn with_sqlite_synchronous_normal_answers_do_not_wait_for_a_sync() {
    let durability = traced_publishes(&["--sqlite-synchronous", "normal"]).await;
    assert!(
        durability.synced_before_answer.iter().all(|synced| !synced),
        "the writer synced the log before answering: {:?}",
        durability.synced_before_answer
    );
}

/// `serve` on a fresh PostgreSQL database whose default is `synchronous_commit = off`,
/// at `url_suffix` (URL parameters); answers what it logged at start.
async fn postgres_start_log(url_suffix: &str) -> String {
    use sqlx::{Connection, Executor};
    let dir = tempfile::TempDir::new().unwrap();
    let admin = required_postgres_url();
    let url = postgres_database(&admin, dir.path()).await;
    let name = url.rsplit('/').next().expect("a database name");
    let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
    connection
        .execute(format!("ALTER DATABASE {name} SET synchronous_commit = off").as_str())
        .await
        .unwrap();
    let server = TestServer::launch_in(
        dir.path(),
        Launch {
            args: vec!["--database".into(), format!("{url}{url_suffix}")],
            env: vec![("HOOKRELAY_LOG".into(), "info".into()), ("NO_COLOR".into(), "1".into())],
            ..Launch::default()
        },
    )
    .await;
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    server.stop().await;
    log
}

#[tokio::test]
async fn postgres_sessions_commit_synchronously_unless_the_url_says_otherwise() {
    let log = postgres_start_log("").await;
    assert!(
        log.contains("synchronous_commit=on") && !log.contains("synchronous_commit=off"),
        "a database default of off is overruled:\n{log}"
    );
    let log = postgres_start_log("?options=-c%20synchronous_commit%3Doff").await;
    let warning = log
        .lines()
        .find(|line| line.contains("synchronous_commit=off"))
        .unwrap_or_else(|| panic!("the URL's choice is kept, and said:\n{log}"));
    assert!(warning.contains("WARN") && warning.contains("may lose"), "{warning}");
}
