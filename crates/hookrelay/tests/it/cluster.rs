//! Several `hookrelay serve` nodes on one PostgreSQL database share the API and the
//! delivery work, and losing one loses nothing. SQLite serves one node, so these run on
//! PostgreSQL whatever the suite's backend (`support::required_postgres_url`), and fail
//! when it cannot be reached.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::receiver::{Received, Receiver, Reply};
use crate::support::*;

/// `n` nodes on one fresh database, each in its own directory.
pub(crate) async fn cluster(n: usize, args: &[&str]) -> (Vec<TestServer>, Vec<tempfile::TempDir>) {
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

/// Delivery flags for the takeover tests. Leases stay long, 4 × (5 s + 1 s) + 5 s =
/// 29 s, so that a takeover within seconds can only be the heartbeat's (1 s interval,
/// 5 s timeout, the defaults). Few connections each: the suite's other tests share the
/// PostgreSQL server.
const TAKEOVER_ARGS: [&str; 11] = [
    "--database-max-connections",
    "5",
    "--allow-private-targets",
    "--retry-schedule",
    "0s,1s,1s,1s,1s,1s",
    "--attempt-timeout",
    "5s",
    "--connect-timeout",
    "1s",
    // Pinned, so the bounds on what was in flight stay tight.
    "--max-in-flight-per-webhook",
    "10",
];

/// How long receivers hold each request: long enough that a node has many in flight.
const HOLD: Duration = Duration::from_millis(300);

/// Every request the receivers got, by (event, webhook), in the order they arrived.
fn arrivals(receivers: &[Receiver]) -> HashMap<(String, String), Vec<Received>> {
    let mut seen: HashMap<(String, String), Vec<Received>> = HashMap::new();
    for receiver in receivers {
        for request in receiver.received() {
            let key = (
                request.header("monime-event-id").to_owned(),
                request.header("monime-webhook-id").to_owned(),
            );
            seen.entry(key).or_default().push(request);
        }
    }
    for requests in seen.values_mut() {
        requests.sort_by_key(|r| r.at);
    }
    seen
}

/// Waits until all `pairs` (event, webhook) have arrived; panics after `within`.
async fn all_arrive(
    receivers: &[Receiver],
    pairs: usize,
    within: Duration,
) -> HashMap<(String, String), Vec<Received>> {
    let deadline = Instant::now() + within;
    loop {
        let seen = arrivals(receivers);
        if seen.len() == pairs {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {pairs} pairs arrived",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No two attempts of one delivery overlapped in time (an attempt whose answer never
/// went out, its sender killed, counts as lasting three seconds).
fn assert_no_overlap(seen: &HashMap<(String, String), Vec<Received>>) {
    for (pair, requests) in seen {
        let spans: Vec<(Instant, Instant)> = requests
            .iter()
            .map(|r| (r.at, r.answered.unwrap_or(r.at + Duration::from_secs(3))))
            .collect();
        for two in spans.windows(2) {
            assert!(two[1].0 >= two[0].1, "two attempts of {pair:?} overlapped: {two:?}");
        }
    }
}

/// A node's id, as its `/healthz` and its leases name it.
async fn node_id(node: &TestServer) -> String {
    let (_, health) = node.health().await;
    health["delivery"]["node"].as_str().expect("a node id").to_owned()
}

/// The (event, webhook) pairs of the deliveries `owner` holds leased.
async fn leased_by(database: &str, owner: &str) -> HashSet<(String, String)> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(database).await.unwrap();
    sqlx::query_as("SELECT event_id, webhook_id FROM deliveries WHERE lease_owner = $1 AND status = 'pending'")
        .bind(owner)
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Three nodes, receivers and two webhooks, ready for the takeover tests.
async fn takeover_cluster() -> (Vec<TestServer>, Vec<tempfile::TempDir>, Vec<Receiver>) {
    let (nodes, dirs) = cluster(3, &TAKEOVER_ARGS).await;
    let receivers = vec![Receiver::start().await, Receiver::start().await];
    for receiver in &receivers {
        receiver.script(|_| Reply::After(HOLD));
        nodes[0]
            .must_create(&json!({"name": "c", "url": receiver.url, "events": ["payment.completed"]}))
            .await;
    }
    (nodes, dirs, receivers)
}

/// Publishes events `from..to` round-robin over `nodes`, thirty at a time.
async fn publish_range(nodes: &[&TestServer], from: usize, to: usize) {
    for start in (from..to).step_by(30) {
        let ids: Vec<(usize, String)> = (start..(start + 30).min(to)).map(|i| (i, format!("pmt-{i}"))).collect();
        let batch = ids
            .iter()
            .map(|(i, id)| nodes[i % nodes.len()].publish("payment.completed", id, json!({"id": id})));
        futures::future::join_all(batch).await;
    }
}

/// A node killed mid-way: the others take over its deliveries within seconds, by its
/// heartbeat going stale (not by its leases running out), every (event, webhook) pair
/// arrives, and only what the dead node had in flight or unrecorded arrives twice.
#[tokio::test]
async fn a_killed_nodes_deliveries_are_taken_over_within_seconds() {
    const EVENTS: usize = 600;
    let (mut nodes, _dirs, receivers) = takeover_cluster().await;
    let database = nodes[0].database.clone();
    let victim = node_id(&nodes[1]).await;
    let mut published = 0;
    let mut held = HashSet::new();
    while held.len() < 20 {
        assert!(published < EVENTS, "the victim never held 20 deliveries at once");
        let live: Vec<&TestServer> = nodes.iter().collect();
        publish_range(&live, published, published + 30).await;
        published += 30;
        if published >= EVENTS / 3 {
            held = leased_by(&database, &victim).await;
        }
    }
    let killed_at = Instant::now();
    nodes.remove(1).kill().await;
    // Read at once: nobody may take them over for seconds.
    let held = leased_by(&database, &victim).await;
    let live: Vec<&TestServer> = nodes.iter().collect();
    publish_range(&live, published, EVENTS).await;

    let seen = all_arrive(&receivers, EVENTS * 2, Duration::from_secs(120)).await;
    // The last request of each delivery the dead node held is another node's: the dead
    // node sent any earlier one, just before it died or earlier.
    let taken_over_after = held
        .iter()
        .map(|pair| {
            seen[pair]
                .last()
                .expect("arrived")
                .at
                .saturating_duration_since(killed_at)
        })
        .max()
        .expect("the dead node held deliveries");
    eprintln!(
        "{} deliveries held by the killed node; the last attempted by another node {taken_over_after:?} after the kill",
        held.len()
    );
    assert!(
        taken_over_after <= Duration::from_secs(10),
        "the last of the dead node's deliveries was attempted {taken_over_after:?} after the kill"
    );
    // Only what the dead node had sent (in flight, or awaiting its record) arrives twice:
    // once from it, before it died, and once from the node that took it over.
    let mut duplicates = 0;
    for (pair, requests) in &seen {
        if requests.len() > 1 {
            let offsets: Vec<f64> = requests
                .iter()
                .map(|r| r.at.saturating_duration_since(killed_at).as_secs_f64())
                .collect();
            assert!(
                held.contains(pair) && requests.len() == 2 && offsets[0] < 1.0 && offsets[1] > 1.0,
                "{pair:?} arrived at {offsets:?} s after the kill (0: before it); held by the dead node: {}",
                held.contains(pair)
            );
            duplicates += 1;
        }
    }
    assert!(
        duplicates <= 40,
        "{duplicates} duplicates; the dead node had at most 2 webhooks × 10 attempts in flight, each with at most one more awaiting its record"
    );
    assert_no_overlap(&seen);
}

/// Waits until `node`'s `/healthz` says it is (or is not) fenced; panics after `within`.
async fn fenced_becomes(node: &TestServer, fenced: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (_, health) = node.health().await;
        if health["delivery"]["fenced"] == json!(fenced) {
            return;
        }
        assert!(Instant::now() < deadline, "fenced never became {fenced}: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node that cannot write its heartbeat while it runs on (here its row is held
/// locked, as a database too slow for it would) stops starting attempts before the
/// others judge it dead and take its deliveries over: no delivery is attempted by two
/// nodes at once, though all of them live. Once its heartbeat is written again it works
/// on.
#[tokio::test]
async fn a_node_that_loses_its_heartbeat_stops_before_the_others_take_over() {
    use sqlx::{Connection, Executor};
    const EVENTS: usize = 450;
    let (mut nodes, _dirs, receivers) = takeover_cluster().await;
    let database = nodes[0].database.clone();
    let victim = node_id(&nodes[1]).await;
    let all: Vec<&TestServer> = nodes.iter().collect();
    publish_range(&all, 0, EVENTS / 3).await;

    let mut blocker = sqlx::PgConnection::connect(&database).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT id FROM nodes WHERE id = $1 FOR UPDATE")
        .bind(&victim)
        .fetch_one(&mut blocker)
        .await
        .unwrap();
    // The victim still answers the API: publishing needs no heartbeat.
    publish_range(&all, EVENTS / 3, 2 * EVENTS / 3).await;
    fenced_becomes(&nodes[1], true, Duration::from_secs(10)).await;
    // The others take over what it held (its leases run for 29 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !leased_by(&database, &victim).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the fenced node's deliveries were not taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish_range(&all, 2 * EVENTS / 3, EVENTS).await;
    blocker.execute("ROLLBACK").await.unwrap();
    fenced_becomes(&nodes[1], false, Duration::from_secs(10)).await;

    let seen = all_arrive(&receivers, EVENTS * 2, Duration::from_secs(120)).await;
    assert_no_overlap(&seen);
    let duplicates: usize = seen.values().map(|requests| requests.len() - 1).sum();
    assert!(
        duplicates <= 40,
        "{duplicates} duplicates; the fenced node had at most 2 webhooks × 10 attempts in flight, each with at most one more awaiting its record"
    );

    // It works on: alone, it delivers what is published to it.
    for node in [nodes.remove(2), nodes.remove(0)] {
        assert!(node.stop().await.success());
    }
    publish_range(&[&nodes[0]], EVENTS, EVENTS + 20).await;
    all_arrive(&receivers, (EVENTS + 20) * 2, Duration::from_secs(30)).await;
}
