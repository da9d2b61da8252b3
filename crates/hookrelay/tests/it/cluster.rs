//! Several `hookrelay serve` nodes on one PostgreSQL database share the API and the
//! delivery work, and losing one loses nothing. SQLite serves one node, so these run on
//! PostgreSQL whatever the suite's backend (`support::required_postgres_url`), and fail
//! when it cannot be reached.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::receiver::{Receiver, Reply};
use crate::support::*;

/// `n` nodes on one fresh database, each in its own directory.
async fn cluster(n: usize, args: &[&str]) -> (Vec<TestServer>, Vec<tempfile::TempDir>) {
    let first_dir = tempfile::TempDir::new().unwrap();
    let database = postgres_database(&required_postgres_url(), first_dir.path()).await;
    let mut nodes = Vec::new();
    let mut dirs = vec![first_dir];
    for i in 0..n {
        if i > 0 {
            dirs.push(tempfile::TempDir::new().unwrap());
        }
        let mut launch_args: Vec<String> = vec!["--database".into(), database.clone()];
        launch_args.extend(args.iter().map(|s| s.to_string()));
        nodes.push(
            TestServer::launch_in(
                dirs[i].path(),
                Launch {
                    args: launch_args,
                    ..Launch::default()
                },
            )
            .await,
        );
    }
    (nodes, dirs)
}

#[tokio::test]
async fn api_requests_spread_over_three_nodes_behave_as_on_one() {
    let (nodes, _dirs) = cluster(3, &[]).await;
    // Creates round-robin; an idempotent retry lands on another node.
    let mut ids = Vec::new();
    for i in 0..12 {
        let node = &nodes[i % 3];
        let (status, body) = send(
            node.request(Method::POST, "/v1/webhooks")
                .header("Idempotency-Key", format!("spread-{i}"))
                .json(&simple_webhook(&format!("w{i}"))),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, replay) = send(
            nodes[(i + 1) % 3]
                .request(Method::POST, "/v1/webhooks")
                .header("Idempotency-Key", format!("spread-{i}"))
                .json(&simple_webhook(&format!("w{i}"))),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(replay, body, "a replay on another node answers the first response");
        ids.push(body["result"]["id"].as_str().unwrap().to_owned());
    }
    let (status, conflict) = send(
        nodes[2]
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "spread-0")
            .json(&simple_webhook("different")),
    )
    .await;
    assert_error(status, &conflict, StatusCode::CONFLICT, "idempotency_conflict", None);

    // Paging across nodes: each page from a different node, cursors are portable.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut turn = 0;
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/webhooks?limit=5&after={cursor}"),
            None => "/v1/webhooks?limit=5".to_owned(),
        };
        let page = nodes[turn % 3].get(&path).await;
        turn += 1;
        seen.extend(
            page["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["id"].as_str().unwrap().to_owned()),
        );
        match page["pagination"]["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    // A change on one node is seen by the others.
    let path = format!("/v1/webhooks/{}", ids[0]);
    let (status, _) = send(nodes[0].request(Method::PATCH, &path).json(&json!({"enabled": false}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nodes[1].get(&path).await["result"]["enabled"], json!(false));
    let (status, _) = send(nodes[1].request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(nodes[2].request(Method::GET, &path)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    for node in &nodes {
        let (status, health) = send(node.bare(Method::GET, "/healthz")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(health["database"], "ok");
    }
}

#[tokio::test]
async fn three_nodes_lose_nothing_when_one_is_killed() {
    const EVENTS: usize = 3_000;
    let args = [
        "--allow-private-targets",
        "--retry-schedule",
        "0s,1s,1s,1s,1s,1s",
        "--attempt-timeout",
        "2s",
        "--connect-timeout",
        "1s",
        // Pinned, so the bound on repeats below stays tight.
        "--max-in-flight-per-webhook",
        "10",
    ];
    let (mut nodes, _dirs) = cluster(3, &args).await;
    let receivers = [Receiver::start().await, Receiver::start().await];
    for receiver in &receivers {
        receiver.script(|_| Reply::After(Duration::from_millis(3)));
        nodes[0]
            .must_create(&json!({"name": "c", "url": receiver.url, "events": ["payment.completed"]}))
            .await;
    }
    let pairs = |receivers: &[Receiver]| {
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for receiver in receivers {
            for request in receiver.received() {
                let key = (
                    request.header("monime-event-id").to_owned(),
                    request.header("monime-webhook-id").to_owned(),
                );
                *seen.entry(key).or_insert(0) += 1;
            }
        }
        seen
    };
    let mut published = 0;
    let mut killed = false;
    while published < EVENTS {
        let live: Vec<&TestServer> = nodes.iter().collect();
        let ids: Vec<String> = (published..(published + 30).min(EVENTS))
            .map(|i| format!("pmt-{i}"))
            .collect();
        let batch = ids
            .iter()
            .enumerate()
            .map(|(i, id)| live[i % live.len()].publish("payment.completed", id, json!({"id": id})));
        published += futures::future::join_all(batch).await.len();
        if !killed && published >= EVENTS / 3 && pairs(&receivers).len() > 600 {
            nodes.remove(1).kill().await;
            killed = true;
        }
    }
    assert!(killed, "a node was killed mid-way");
    let deadline = Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let seen = pairs(&receivers);
        if seen.len() == EVENTS * 2 {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} pairs arrived",
            seen.len(),
            EVENTS * 2
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= 40,
        "{duplicates} duplicates; the killed node had at most 2 webhooks × 10 attempts in flight, each with at most one more awaiting its record"
    );
    // No two attempts of one delivery ever overlapped in time.
    for receiver in &receivers {
        let mut by_pair: HashMap<String, Vec<(Instant, Instant)>> = HashMap::new();
        for request in receiver.received() {
            let end = request.answered.unwrap_or(request.at + Duration::from_secs(3));
            by_pair
                .entry(request.header("monime-event-id").to_owned())
                .or_default()
                .push((request.at, end));
        }
        for (event, mut spans) in by_pair {
            spans.sort();
            for pair in spans.windows(2) {
                assert!(pair[1].0 >= pair[0].1, "two attempts of {event} overlapped: {pair:?}");
            }
        }
    }
}
