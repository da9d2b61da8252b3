//! The fixed workloads of issue #5 and how one is run: a receiver and a server of its
//! own (so workloads never see each other's backlog), webhooks, publishing at a given
//! concurrency or rate, waiting for every (event, webhook) pair, and the figures.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::api::{self, Api, Published};
use crate::receiver::Receiver;
use crate::server::{self, Launch, RssSampler, Server};
use crate::stats::{ms, rate, Percentiles};

/// How long W5 waits for its slow webhooks once the fast ones are done.
const SLOW_EXTRA_WAIT: Duration = Duration::from_secs(5);
/// Lets a fresh server settle before its idle RSS is read.
const SETTLE: Duration = Duration::from_millis(300);

/// How events are published.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// As fast as this many concurrent publishers can.
    Concurrent(usize),
    /// A steady rate, one event every 1/`per_sec` s, whatever the answers take.
    Rate { per_sec: u32 },
}

/// One workload.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `W1` … `W5`, `S1`, `S2`.
    pub key: &'static str,
    pub title: &'static str,
    pub webhooks: usize,
    /// How many of `webhooks` answer after 2 s (W5); they are not waited for.
    pub slow_webhooks: usize,
    pub events: usize,
    pub pace: Pace,
}

pub const W1: Spec = Spec {
    key: "W1",
    title: "throughput, 1 webhook",
    webhooks: 1,
    slow_webhooks: 0,
    events: 20_000,
    pace: Pace::Concurrent(32),
};
pub const W2: Spec = Spec {
    key: "W2",
    title: "fan-out to 10 webhooks",
    webhooks: 10,
    slow_webhooks: 0,
    events: 2_000,
    pace: Pace::Concurrent(32),
};
pub const W3: Spec = Spec {
    key: "W3",
    title: "fan-out to 100 webhooks",
    webhooks: 100,
    slow_webhooks: 0,
    events: 200,
    pace: Pace::Concurrent(32),
};
pub const W4: Spec = Spec {
    key: "W4",
    title: "latency at a steady 200 events/s for 30 s",
    webhooks: 1,
    slow_webhooks: 0,
    events: 6_000,
    pace: Pace::Rate { per_sec: 200 },
};
pub const W5: Spec = Spec {
    key: "W5",
    title: "W2 with 2 of the 10 webhooks answering after 2 s",
    webhooks: 10,
    slow_webhooks: 2,
    events: 2_000,
    pace: Pace::Concurrent(32),
};
pub const SMOKE: [Spec; 2] = [
    Spec {
        key: "S1",
        title: "smoke, 1 webhook",
        webhooks: 1,
        slow_webhooks: 0,
        events: 300,
        pace: Pace::Concurrent(32),
    },
    Spec {
        key: "S2",
        title: "smoke, fan-out to 3 webhooks",
        webhooks: 3,
        slow_webhooks: 0,
        events: 100,
        pace: Pace::Concurrent(32),
    },
];

impl Spec {
    pub fn describe(&self) -> String {
        let pace = match self.pace {
            Pace::Concurrent(n) => format!("concurrency {n}"),
            Pace::Rate { per_sec } => format!("{per_sec} events/s"),
        };
        let slow = if self.slow_webhooks > 0 {
            format!(" ({} slow)", self.slow_webhooks)
        } else {
            String::new()
        };
        let plural = if self.webhooks == 1 { "" } else { "s" };
        format!(
            "{} webhook{plural}{slow} × {} events, {pace}",
            self.webhooks, self.events
        )
    }
}

/// Where and how workloads run.
#[derive(Clone, Debug)]
pub enum Target {
    Spawn(Launch),
    Remote { url: String, space: String, token: String },
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub target: Target,
    /// How long to wait for deliveries after the last publish.
    pub deadline: Duration,
    pub verify_every: u64,
    /// Random per invocation: keeps idempotency keys unique on a shared server.
    pub run_id: String,
}

/// The figures of one workload.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: String,
    pub title: String,
    pub shape: String,
    pub webhooks: usize,
    pub slow_webhooks: usize,
    pub events: usize,
    /// Deliveries waited for: events × the webhooks that are not slow.
    pub expected_deliveries: usize,
    pub published: usize,
    pub publish_failures: usize,
    pub publish_secs: f64,
    pub publish_per_sec: f64,
    pub publish_latency_ms: Option<Percentiles>,
    /// Distinct expected (event, webhook) pairs received.
    pub delivered: usize,
    pub missing: usize,
    /// Receipts beyond the first of a pair.
    pub duplicates: usize,
    /// Receipts for events this workload did not publish or webhooks it did not create.
    pub unexpected: usize,
    pub signatures_checked: u64,
    pub bad_signatures: u64,
    /// From the first publish to the last receipt (of non-slow webhooks).
    pub end_to_end_secs: f64,
    pub deliveries_per_sec: f64,
    /// Publish start to first receipt, per pair.
    pub latency_ms: Option<Percentiles>,
    pub timed_out: bool,
    pub slow: Option<SlowFigures>,
    pub server: Option<ServerFigures>,
    pub first_publish_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SlowFigures {
    pub webhooks: usize,
    /// events × slow webhooks.
    pub expected: usize,
    /// How many of those arrived before the run stopped waiting.
    pub arrived: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerFigures {
    pub idle_rss_mib: Option<f64>,
    /// Highest VmRSS seen by polling every 100 ms.
    pub peak_rss_mib: f64,
    /// VmHWM at the end: the kernel's peak, catching spikes between polls.
    pub hwm_rss_mib: Option<f64>,
    /// utime + stime spent during the workload.
    pub cpu_secs: Option<f64>,
}

impl WorkloadResult {
    /// Correct, whatever the speed: everything published and delivered exactly once.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.publish_failures == 0 && self.bad_signatures == 0
    }
}

/// Runs one workload on a server of its own (or the remote one).
pub async fn run(spec: &Spec, config: &RunConfig) -> Result<WorkloadResult> {
    let receiver = Receiver::start(config.verify_every).await?;
    let mut server = match &config.target {
        Target::Spawn(launch) => Server::spawn(launch).await?,
        Target::Remote { url, space, token } => Server::remote(url, space, token),
    };
    let mut created = Vec::new();
    let outcome = measure(spec, config, &receiver, &mut server, &mut created).await;
    if !server.fresh_database() {
        // The database outlives this workload: take its webhooks (and their pending
        // deliveries) away so the next workload does not pay for them.
        let api = Api::new(&server.base, &server.space, &server.token)?;
        for id in &created {
            if let Err(error) = api.delete_webhook(id).await {
                eprintln!("  could not delete webhook {id}: {error:#}");
            }
        }
    }
    let stopped = server.stop().await;
    let result = outcome?;
    stopped?;
    Ok(result)
}

/// Runs the workload against a started server; `created` collects the webhook ids.
async fn measure(
    spec: &Spec,
    config: &RunConfig,
    receiver: &Receiver,
    server: &mut Server,
    created: &mut Vec<String>,
) -> Result<WorkloadResult> {
    let pid = server.pid();
    if pid.is_some() {
        tokio::time::sleep(SETTLE).await;
    }
    let idle_rss = pid.and_then(server::rss_kib);
    let cpu_start = pid.and_then(server::cpu_ticks);
    let sampler = pid.map(RssSampler::start);
    let api = Api::new(&server.base, &server.space, &server.token)?;
    let tag = format!("{}-{}", config.run_id, spec.key.to_lowercase());

    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for i in 0..spec.webhooks {
        let is_slow = i < spec.slow_webhooks;
        let path = if is_slow { "slow" } else { "hook" };
        let url = format!("{}/{path}/{i}", receiver.base_url);
        let secret = api::random_text(40);
        let name = format!("bench {} #{i}", spec.key);
        let id = api
            .create_webhook(&name, &url, &secret, &format!("bench-{tag}-webhook-{i}"))
            .await?;
        receiver.add_secret(&id, &secret);
        created.push(id.clone());
        if is_slow {
            slow.push(id);
        } else {
            fast.push(id);
        }
    }

    let publishing = publish_all(spec, &api, &tag).await;
    let published = &publishing.published;
    let events: HashSet<String> = published.iter().map(|p| p.event_id.clone()).collect();
    let fast_set: HashSet<String> = fast.iter().cloned().collect();
    let slow_set: HashSet<String> = slow.iter().cloned().collect();
    let expected = events.len() * fast.len();
    let deadline = Instant::now() + config.deadline;
    let timed_out = !wait_for(receiver, server, &events, &fast_set, expected, deadline).await?;
    if !slow.is_empty() && !timed_out {
        let extra = Instant::now() + SLOW_EXTRA_WAIT;
        wait_for(receiver, server, &events, &slow_set, events.len() * slow.len(), extra).await?;
    }

    let server_figures = match (pid, sampler) {
        (Some(pid), Some(sampler)) => {
            let cpu_end = server::cpu_ticks(pid);
            let ticks = server::clock_ticks() as f64;
            Some(ServerFigures {
                idle_rss_mib: idle_rss.map(mib),
                peak_rss_mib: mib(sampler.finish()),
                hwm_rss_mib: server::hwm_kib(pid).map(mib),
                cpu_secs: cpu_start.zip(cpu_end).map(|(a, b)| b.saturating_sub(a) as f64 / ticks),
            })
        }
        _ => None,
    };

    // Pairs are judged against what this workload published and created.
    let receipts = receiver.receipts();
    let start_of: HashMap<&str, Instant> = published.iter().map(|p| (p.event_id.as_str(), p.start)).collect();
    let (mut delivered, mut duplicates, mut unexpected, mut slow_arrived) = (0, 0, 0, 0);
    let mut latencies = Vec::with_capacity(expected);
    let mut last_receipt: Option<Instant> = None;
    for ((event, webhook), receipt) in &receipts {
        let count = receipt.count as usize;
        let Some(start) = start_of.get(event.as_str()) else {
            unexpected += count;
            continue;
        };
        if fast_set.contains(webhook) {
            delivered += 1;
            latencies.push(ms(receipt.first.saturating_duration_since(*start)));
            last_receipt = last_receipt.max(Some(receipt.first));
        } else if slow_set.contains(webhook) {
            slow_arrived += 1;
        } else {
            unexpected += count;
            continue;
        }
        duplicates += count - 1;
    }
    let first_publish = published.iter().map(|p| p.start).min();
    let last_answer = published.iter().map(|p| p.start + p.latency).max();
    let publish_secs = first_publish
        .zip(last_answer)
        .map_or(0.0, |(a, b)| (b - a).as_secs_f64());
    let end_to_end_secs = first_publish
        .zip(last_receipt)
        .map_or(0.0, |(a, b)| b.saturating_duration_since(a).as_secs_f64());
    let signatures = receiver.signatures();

    Ok(WorkloadResult {
        workload: spec.key.to_owned(),
        title: spec.title.to_owned(),
        shape: spec.describe(),
        webhooks: spec.webhooks,
        slow_webhooks: spec.slow_webhooks,
        events: spec.events,
        expected_deliveries: spec.events * fast.len(),
        published: published.len(),
        publish_failures: publishing.failures,
        publish_secs,
        publish_per_sec: rate(published.len(), publish_secs),
        publish_latency_ms: Percentiles::of(published.iter().map(|p| ms(p.latency)).collect()),
        delivered,
        // Events that failed to publish count as missing too: they were never delivered.
        missing: spec.events * fast.len() - delivered,
        duplicates,
        unexpected: unexpected + signatures.malformed as usize,
        signatures_checked: signatures.checked,
        bad_signatures: signatures.bad,
        end_to_end_secs,
        deliveries_per_sec: rate(delivered, end_to_end_secs),
        latency_ms: Percentiles::of(latencies),
        timed_out,
        slow: (!slow.is_empty()).then(|| SlowFigures {
            webhooks: slow.len(),
            expected: events.len() * slow.len(),
            arrived: slow_arrived,
        }),
        server: server_figures,
        first_publish_error: publishing.first_error,
    })
}

/// Waits until `expected` distinct pairs of `events` × `webhooks` arrived (true) or the
/// deadline passed (false); fails if the server died.
async fn wait_for(
    receiver: &Receiver,
    server: &mut Server,
    events: &HashSet<String>,
    webhooks: &HashSet<String>,
    expected: usize,
    deadline: Instant,
) -> Result<bool> {
    loop {
        // The cheap count first; the exact one only when it could be enough.
        if receiver.distinct() >= expected && receiver.arrived(events, webhooks) >= expected {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        server.check_alive()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Publishing {
    published: Vec<Published>,
    failures: usize,
    first_error: Option<String>,
}

async fn publish_all(spec: &Spec, api: &Api, tag: &str) -> Publishing {
    let mut tasks = Vec::new();
    match spec.pace {
        Pace::Concurrent(concurrency) => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..concurrency {
                let (api, tag, next, events) = (api.clone(), tag.to_owned(), next.clone(), spec.events);
                tasks.push(tokio::spawn(async move {
                    let mut done = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= events {
                            return done;
                        }
                        done.push(publish_one(&api, &tag, n).await);
                    }
                }));
            }
        }
        Pace::Rate { per_sec } => {
            let period = Duration::from_secs(1) / per_sec;
            let start = tokio::time::Instant::now();
            for n in 0..spec.events {
                tokio::time::sleep_until(start + period * n as u32).await;
                let (api, tag) = (api.clone(), tag.to_owned());
                tasks.push(tokio::spawn(async move { vec![publish_one(&api, &tag, n).await] }));
            }
        }
    }
    let mut publishing = Publishing {
        published: Vec::with_capacity(spec.events),
        failures: 0,
        first_error: None,
    };
    for task in tasks {
        let outcomes = task
            .await
            .unwrap_or_else(|error| vec![Err(format!("publisher task failed: {error}"))]);
        for outcome in outcomes {
            match outcome {
                Ok(published) => publishing.published.push(published),
                Err(error) => {
                    publishing.failures += 1;
                    publishing.first_error.get_or_insert(error);
                }
            }
        }
    }
    publishing
}

async fn publish_one(api: &Api, tag: &str, n: usize) -> Result<Published, String> {
    let body = api::payment_event(tag, n);
    api.publish(&format!("bench-{tag}-event-{n}"), body)
        .await
        .map_err(|error| format!("{error:#}"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
