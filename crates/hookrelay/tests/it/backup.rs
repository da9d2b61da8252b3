//! `hookrelay backup`: a copy of a live SQLite database that a server runs from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn run_backup(server: &TestServer, to: &std::path::Path) -> std::process::Output {
    command(&server.dir)
        .args(["backup", "--database", &server.database, "--to"])
        .arg(to)
        .output()
        .await
        .expect("run hookrelay backup")
}

#[tokio::test]
async fn a_backup_taken_while_publishing_holds_every_answered_publish() {
    let server = Arc::new(TestServer::start().await);
    let copy_dir = tempfile::TempDir::new().unwrap();
    let copy = copy_dir.path().join("copy.db");
    if server.database.starts_with("postgres") {
        let output = run_backup(&server, &copy).await;
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
        return;
    }
    let webhook = server.must_create(&simple_webhook("backed up")).await;
    let before: Vec<Value> = {
        let mut events = Vec::new();
        for i in 0..20 {
            events.push(
                server
                    .publish("payment.completed", &format!("pay-{i}"), json!({"i": i}))
                    .await,
            );
        }
        events
    };
    // Publishing goes on while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn({
        let (server, stop) = (server.clone(), stop.clone());
        async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                server
                    .publish("payment.completed", &format!("during-{i}"), json!({}))
                    .await;
                i += 1;
            }
            i
        }
    });
    let output = run_backup(&server, &copy).await;
    stop.store(true, Ordering::Relaxed);
    let during = publisher.await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(during > 0, "no publish ran alongside the copy");
    assert!(String::from_utf8_lossy(&output.stderr).contains("master key"));

    // A second backup never overwrites a file.
    let again = run_backup(&server, &copy).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // The copy, with the master key kept apart, serves what was answered before it began.
    std::fs::copy(server.dir.join("hookrelay.db.key"), copy_dir.path().join("copy.db.key")).unwrap();
    let restored = TestServer::launch_in(
        copy_dir.path(),
        Launch {
            args: vec!["--database".into(), format!("sqlite://{}", copy.display())],
            ..Launch::default()
        },
    )
    .await;
    let id = webhook["id"].as_str().unwrap();
    let read = restored.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(read["result"]["verificationMethod"], webhook["verificationMethod"]);
    for event in &before {
        let path = format!("/v1/events/{}", event["id"].as_str().unwrap());
        let (status, body) = send(restored.request(Method::GET, &path)).await;
        assert_eq!(status, 200, "{path} is missing from the copy: {body}");
    }
}
