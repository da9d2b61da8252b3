//! Ordered delivery per object (`ordering: "object"`) through the real binary: per
//! object, the order of first successful receipt is the publish order and attempts never
//! overlap, while different objects go out at once; a given-up delivery lets the next
//! one go; turning ordering on or off applies to pending deliveries; and on a cluster of
//! PostgreSQL nodes, one of them killed, each object's order still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode as HttpStatus;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::cluster::cluster;
use crate::support::*;

/// One request the receiver got: which event (object, number), when, and its answer.
#[derive(Clone, Debug)]
struct Hit {
    object: String,
    n: u64,
    arrived: Instant,
    answered: Option<Instant>,
    status: u16,
}

/// How the receiver answers an attempt of event `n` of `object`, given how many
/// attempts of that event it saw before.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// This status, after this long.
    Status(u16, Duration),
    /// 200 once the test releases held requests.
    Held,
}

type Policy = Arc<dyn Fn(&str, u64, usize) -> Answer + Send + Sync>;

/// A receiver that reads each delivery's object id and its `data.n`, answers by a
/// policy, and records every request.
#[derive(Clone)]
struct ObjectReceiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    arrived: Arc<Notify>,
    released: watch::Sender<bool>,
}

impl ObjectReceiver {
    async fn start(policy: impl Fn(&str, u64, usize) -> Answer + Send + Sync + 'static) -> Self {
        let receiver = Self {
            url: String::new(),
            hits: Arc::default(),
            arrived: Arc::default(),
            released: watch::channel(false).0,
        };
        let (state, policy): (Self, Policy) = (receiver.clone(), Arc::new(policy));
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let (state, policy) = (state.clone(), policy.clone());
            async move { state.answer(&policy, body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, ..receiver }
    }

    async fn answer(&self, policy: &Policy, body: Bytes) -> (HttpStatus, &'static str) {
        let body: Value = serde_json::from_slice(&body).expect("a JSON body");
        let object = body["object"]["id"].as_str().expect("object.id").to_owned();
        let n = body["data"]["n"].as_u64().expect("data.n");
        let (index, answer) = {
            let mut hits = self.hits.lock().unwrap();
            let before = hits.iter().filter(|h| h.object == object && h.n == n).count();
            let answer = policy(&object, n, before);
            let status = match answer {
                Answer::Status(status, _) => status,
                Answer::Held => 200,
            };
            hits.push(Hit {
                object,
                n,
                arrived: Instant::now(),
                answered: None,
                status,
            });
            (hits.len() - 1, answer)
        };
        self.arrived.notify_waiters();
        let status = match answer {
            Answer::Status(status, delay) => {
                tokio::time::sleep(delay).await;
                status
            }
            Answer::Held => {
                let _ = self.released.subscribe().wait_for(|released| *released).await;
                200
            }
        };
        self.hits.lock().unwrap()[index].answered = Some(Instant::now());
        (HttpStatus::from_u16(status).unwrap(), "")
    }

    fn release(&self) {
        self.released.send_replace(true);
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits until `done(hits)` holds; panics after `within`.
    async fn wait(&self, within: Duration, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what} not within {within:?}; {} requests", hits.len());
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }

    /// Waits until every event in `published` has been answered 2xx at least once.
    async fn wait_all_succeeded(&self, published: &HashMap<String, Vec<u64>>, within: Duration) -> Vec<Hit> {
        let total: usize = published.values().map(Vec::len).sum();
        self.wait(within, "every event answered 2xx", |hits| {
            first_successes(hits).values().map(Vec::len).sum::<usize>() == total
        })
        .await
    }
}

/// Per object, its events' numbers in the order each was first answered 2xx (and the
/// answer finished: the sender may have read it).
fn first_successes(hits: &[Hit]) -> HashMap<String, Vec<u64>> {
    let mut order: HashMap<String, Vec<u64>> = HashMap::new();
    for hit in hits
        .iter()
        .filter(|h| (200..300).contains(&h.status) && h.answered.is_some())
    {
        let seen = order.entry(hit.object.clone()).or_default();
        if !seen.contains(&hit.n) {
            seen.push(hit.n);
        }
    }
    order
}

/// Per object, no request arrived before the one before it was answered.
fn assert_one_at_a_time(hits: &[Hit]) {
    let mut last: HashMap<&str, &Hit> = HashMap::new();
    for hit in hits {
        if let Some(before) = last.get(hit.object.as_str()) {
            let answered = before.answered.expect("an earlier request of the object was answered");
            assert!(
                hit.arrived >= answered,
                "{} event {} arrived while event {} was in flight",
                hit.object,
                hit.n,
                before.n
            );
        }
        last.insert(&hit.object, hit);
    }
}

/// The most requests in flight at one moment, over every object.
fn most_at_once(hits: &[Hit]) -> usize {
    hits.iter()
        .map(|hit| {
            hits.iter()
                .filter(|other| other.arrived <= hit.arrived && other.answered.is_none_or(|a| a > hit.arrived))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// A server delivering to loopback with fast retries.
async fn ordering_server(retry_schedule: &str) -> TestServer {
    let args = [
        "--allow-private-targets",
        "--retry-schedule",
        retry_schedule,
        "--attempt-timeout",
        "5s",
    ];
    TestServer::launch(Launch {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Launch::default()
    })
    .await
}

/// A webhook to `url`, with `ordering` set through the settings resource.
async fn webhook(server: &TestServer, url: &str, ordering: &str) -> String {
    let created = server
        .must_create(&json!({"name": "ordered", "url": url, "events": ["payment.completed"]}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    set_ordering(server, &id, ordering).await;
    id
}

async fn set_ordering(server: &TestServer, webhook: &str, ordering: &str) {
    let path = format!("/v1/webhooks/{webhook}/settings");
    let (status, body) = send(server.request(Method::PUT, &path).json(&json!({"ordering": ordering}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Publishes event `n` of `object` and records it in `published`, answered before the
/// next publish starts (so publish order is defined).
async fn publish(server: &TestServer, published: &mut HashMap<String, Vec<u64>>, object: &str, n: u64) {
    server.publish("payment.completed", object, json!({"n": n})).await;
    published.entry(object.to_owned()).or_default().push(n);
}

#[tokio::test]
async fn per_object_first_receipts_follow_publish_order_while_objects_go_out_at_once() {
    let server = ordering_server("0s,200ms,200ms,200ms,200ms").await;
    // The first attempt of every third event fails; answers take a little while, longer
    // for some objects, so that objects interleave.
    let receiver = ObjectReceiver::start(|_, n, before| {
        // Event n is of object n % 20.
        let slow = Duration::from_millis(5 + (n % 20 % 3) * 10 + n % 7);
        if n % 3 == 0 && before == 0 {
            Answer::Status(500, slow)
        } else {
            Answer::Status(200, slow)
        }
    })
    .await;
    webhook(&server, &receiver.url, "object").await;
    let mut published = HashMap::new();
    for n in 0..300u64 {
        publish(&server, &mut published, &format!("pmt-{}", n % 20), n).await;
    }
    let hits = receiver.wait_all_succeeded(&published, Duration::from_secs(90)).await;
    assert_eq!(first_successes(&hits), published);
    assert_one_at_a_time(&hits);
    assert!(
        most_at_once(&hits) >= 3,
        "objects went out one after another: {}",
        most_at_once(&hits)
    );
    let failed_first: usize = hits.iter().filter(|h| h.status == 500).count();
    assert_eq!(failed_first, 100, "every third event failed once");
    server.wait_until_idle().await;
}

#[tokio::test]
async fn a_stuck_object_does_not_hold_up_another() {
    let server = ordering_server("0s,1s").await;
    let receiver = ObjectReceiver::start(|object, _, _| match object {
        "slow" => Answer::Held,
        _ => Answer::Status(200, Duration::ZERO),
    })
    .await;
    webhook(&server, &receiver.url, "object").await;
    let mut published = HashMap::new();
    for n in 0..3 {
        publish(&server, &mut published, "slow", n).await;
    }
    for n in 3..23 {
        publish(&server, &mut published, "fast", n).await;
    }
    // Every event of the fast object arrives while the slow object's first is held.
    let hits = receiver
        .wait(Duration::from_secs(30), "the fast object's 20 events", |hits| {
            hits.iter().filter(|h| h.object == "fast").count() == 20
        })
        .await;
    let slow: Vec<u64> = hits.iter().filter(|h| h.object == "slow").map(|h| h.n).collect();
    assert_eq!(
        slow,
        [0],
        "only the slow object's first event went out while it was held"
    );
    receiver.release();
    let hits = receiver.wait_all_succeeded(&published, Duration::from_secs(30)).await;
    assert_eq!(first_successes(&hits), published);
    assert_one_at_a_time(&hits);
}

#[tokio::test]
async fn a_delivery_given_up_lets_the_next_of_its_object_go_and_a_manual_retry_holds_later_ones() {
    let server = ordering_server("0s,100ms").await;
    // Event 0 fails both its scheduled attempts; a third (by hand) is held until released.
    let receiver = ObjectReceiver::start(|_, n, before| match (n, before) {
        (0, 0 | 1) => Answer::Status(500, Duration::ZERO),
        (0, _) => Answer::Held,
        _ => Answer::Status(200, Duration::ZERO),
    })
    .await;
    let id = webhook(&server, &receiver.url, "object").await;
    let mut published = HashMap::new();
    for n in 0..3 {
        publish(&server, &mut published, "pmt-1", n).await;
    }
    let hits = receiver
        .wait(Duration::from_secs(30), "events 1 and 2", |hits| {
            first_successes(hits).get("pmt-1").is_some_and(|s| s.len() == 2)
        })
        .await;
    assert_eq!(first_successes(&hits)["pmt-1"], [1, 2]);
    let numbers: Vec<u64> = hits.iter().map(|h| h.n).collect();
    assert_eq!(
        numbers,
        [0, 0, 1, 2],
        "both attempts of the first, then the next in order"
    );
    assert_one_at_a_time(&hits);
    server.wait_until_idle().await;
    let failed = server.get(&format!("/v1/webhooks/{id}/deliveries?status=failed")).await;
    let failed = failed["result"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");

    // Retried by hand, event 0 is pending again at its publish-order place: event 3,
    // published after, waits until it is answered.
    let path = format!(
        "/v1/webhooks/{id}/deliveries/{}/retry",
        failed[0]["id"].as_str().unwrap()
    );
    let (status, body) = send(server.request(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    receiver
        .wait(Duration::from_secs(10), "the manual retry", |hits| hits.len() == 5)
        .await;
    publish(&server, &mut published, "pmt-1", 3).await;
    // Another object's event, published after event 3, arrives: event 3 was due first
    // and was passed over.
    publish(&server, &mut published, "pmt-2", 4).await;
    receiver
        .wait(Duration::from_secs(10), "the other object's event", |hits| {
            hits.iter().any(|h| h.n == 4)
        })
        .await;
    receiver.release();
    let hits = receiver.wait_all_succeeded(&published, Duration::from_secs(10)).await;
    let numbers: Vec<u64> = hits.iter().map(|h| h.n).collect();
    assert_eq!(numbers, [0, 0, 1, 2, 0, 4, 3]);
    assert_one_at_a_time(&hits);
}

#[tokio::test]
async fn turning_ordering_on_or_off_applies_to_pending_deliveries() {
    // Every first attempt fails; the retry comes 2 s later.
    let server = ordering_server("0s,2s").await;
    let fail_first = |_: &str, _: u64, before: usize| match before {
        0 => Answer::Status(500, Duration::ZERO),
        _ => Answer::Status(200, Duration::from_millis(100)),
    };
    let receiver = ObjectReceiver::start(fail_first).await;
    let on = webhook(&server, &receiver.url, "none").await;
    let mut published = HashMap::new();
    for n in 0..3 {
        publish(&server, &mut published, "turned-on", n).await;
    }
    // Unordered: all three went out at once and wait for their retries.
    receiver
        .wait(Duration::from_secs(10), "three first attempts", |hits| hits.len() == 3)
        .await;
    set_ordering(&server, &on, "object").await;
    let hits = receiver.wait_all_succeeded(&published, Duration::from_secs(30)).await;
    let retries: Vec<Hit> = hits.iter().filter(|h| h.status == 200).cloned().collect();
    assert_one_at_a_time(&retries);
    assert_eq!(first_successes(&hits)["turned-on"], [0, 1, 2]);

    // Ordered: only the first went out; turning ordering off frees the other two before
    // the first one's retry is due. (The first webhook gets these events too, at the
    // first receiver.)
    let receiver = ObjectReceiver::start(fail_first).await;
    let off = webhook(&server, &receiver.url, "object").await;
    let mut published = HashMap::new();
    for n in 10..13 {
        publish(&server, &mut published, "turned-off", n).await;
    }
    receiver
        .wait(Duration::from_secs(10), "the first attempt", |hits| {
            hits.iter().any(|h| h.object == "turned-off")
        })
        .await;
    set_ordering(&server, &off, "none").await;
    let hits = receiver.wait_all_succeeded(&published, Duration::from_secs(30)).await;
    let of = |n: u64| -> Vec<Instant> { hits.iter().filter(|h| h.n == n).map(|h| h.arrived).collect() };
    let retry_of_first = of(10)[1];
    assert!(of(11)[0] < retry_of_first && of(12)[0] < retry_of_first, "{hits:?}");
}

#[tokio::test]
async fn a_cluster_with_a_node_killed_keeps_each_objects_order() {
    let args = [
        "--database-max-connections",
        "5",
        "--allow-private-targets",
        "--retry-schedule",
        "0s,300ms,300ms,300ms,300ms,300ms",
        "--attempt-timeout",
        "5s",
    ];
    let (mut nodes, _dirs) = cluster(3, &args).await;
    let receiver = ObjectReceiver::start(|_, n, before| {
        if n % 3 == 0 && before == 0 {
            Answer::Status(500, Duration::from_millis(20))
        } else {
            Answer::Status(200, Duration::from_millis(20))
        }
    })
    .await;
    webhook(&nodes[0], &receiver.url, "object").await;
    let mut published = HashMap::new();
    for n in 0..120u64 {
        publish(&nodes[(n % 2) as usize], &mut published, &format!("pmt-{}", n % 10), n).await;
    }
    receiver
        .wait(Duration::from_secs(30), "40 requests", |hits| hits.len() >= 40)
        .await;
    nodes.pop().expect("three nodes").kill().await;
    for n in 120..200u64 {
        publish(&nodes[(n % 2) as usize], &mut published, &format!("pmt-{}", n % 10), n).await;
    }
    let hits = receiver.wait_all_succeeded(&published, Duration::from_secs(90)).await;
    assert_eq!(first_successes(&hits), published);
    for node in &nodes {
        node.wait_until_idle().await;
    }
}
