//! The `ordered` workload: one webhook with `ordering: "object"`, many objects (1,000
//! by default), many events (20,000), published by concurrent publishers in turn over
//! the objects; its throughput, publish-to-receipt latency and whether each object's
//! events arrived in publish order. The same shape runs first on an unordered webhook,
//! on a server of its own, as the baseline the ordered figures are read against.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::api::{self, Api, Published};
use crate::receiver::{Pair, Receipt, Receiver};
use crate::server::{self, Server};
use crate::stats::{ms, rate, Percentiles};
use crate::workload::{RunConfig, Target};

/// The workload's shape.
#[derive(Args, Clone, Copy, Debug, Serialize)]
pub struct OrderedSpec {
    /// Distinct object ids; event n is of object n mod this.
    #[arg(long, default_value_t = 1_000)]
    pub objects: usize,
    /// Events published.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Concurrent publishers (fewer than `objects`, so one object's events never
    /// overlap in publishing and their publish order is defined).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// The figures of one phase (unordered or ordered).
#[derive(Clone, Debug, Serialize)]
pub struct PhaseFigures {
    pub ordering: &'static str,
    pub published: usize,
    pub publish_failures: usize,
    pub publish_per_sec: f64,
    pub publish_latency_ms: Option<Percentiles>,
    pub delivered: usize,
    pub missing: usize,
    pub duplicates: usize,
    /// From the first publish to the last receipt.
    pub end_to_end_secs: f64,
    pub deliveries_per_sec: f64,
    /// Publish start to first receipt, per event.
    pub latency_ms: Option<Percentiles>,
    /// Events first received before an event of their object published (and answered)
    /// before them.
    pub out_of_order: usize,
    /// The server's user + system CPU seconds during the phase.
    pub cpu_secs: Option<f64>,
    pub timed_out: bool,
}

/// What the workload measured.
#[derive(Clone, Debug, Serialize)]
pub struct OrderedResult {
    pub spec: OrderedSpec,
    pub phases: Vec<PhaseFigures>,
}

impl OrderedResult {
    /// Everything delivered exactly once; the ordered phase in order.
    pub fn ok(&self) -> bool {
        self.phases
            .iter()
            .all(|p| p.missing == 0 && p.duplicates == 0 && p.publish_failures == 0)
            && self
                .phases
                .iter()
                .filter(|p| p.ordering == "object")
                .all(|p| p.out_of_order == 0)
    }
}

/// Runs the unordered baseline, then the ordered phase, each on a server of its own.
pub async fn run(spec: OrderedSpec, config: &RunConfig) -> Result<OrderedResult> {
    let Target::Spawn(launch) = &config.target else {
        bail!("the ordered workload compares two fresh servers: it runs on servers it starts, not --target-url");
    };
    let mut phases = Vec::new();
    for ordering in ["none", "object"] {
        println!(
            "  ordering {ordering}: {} events over {} objects",
            spec.events, spec.objects
        );
        let receiver = Receiver::start(config.verify_every).await?;
        let server = Server::spawn(launch).await?;
        let outcome = phase(spec, config, ordering, &receiver, &server).await;
        let stopped = server.stop().await;
        let figures = outcome?;
        stopped?;
        println!("{}", line(&figures));
        phases.push(figures);
    }
    Ok(OrderedResult { spec, phases })
}

async fn phase(
    spec: OrderedSpec,
    config: &RunConfig,
    ordering: &'static str,
    receiver: &Receiver,
    server: &Server,
) -> Result<PhaseFigures> {
    let tag = format!("{}-ordered-{ordering}", config.run_id);
    let api = Api::new(&server.base, &server.space, &server.token)?;
    let secret = api::random_text(40);
    let url = format!("{}/hook/{tag}", receiver.base_url);
    let webhook = api
        .create_webhook("ordered", &url, &secret, &format!("bench-{tag}-webhook"))
        .await?;
    api.put_settings(&webhook, &json!({ "ordering": ordering })).await?;
    receiver.add_secret(&webhook, &secret);
    let pid = server.pid();
    let cpu_start = pid.and_then(server::cpu_ticks);

    let started = Instant::now();
    let (published, publish_failures) = publish_all(spec, &api, &tag).await;
    let publish_secs = started.elapsed().as_secs_f64();
    let events: HashSet<String> = published.iter().flatten().map(|p| p.event_id.clone()).collect();
    let hooks = HashSet::from([webhook.clone()]);
    let deadline = Instant::now() + config.deadline;
    let mut timed_out = false;
    while receiver.arrived(&events, &hooks) < events.len() {
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let receipts = receiver.receipts();
    let cpu_secs = match (pid, cpu_start) {
        (Some(pid), Some(start)) => {
            server::cpu_ticks(pid).map(|end| end.saturating_sub(start) as f64 / server::clock_ticks() as f64)
        }
        _ => None,
    };
    if !server.fresh_database() {
        api.delete_webhook(&webhook).await?;
    }
    let first = |p: &Published| receipts.get(&(p.event_id.clone(), webhook.clone())).copied();
    let last_receipt = published.iter().flatten().filter_map(first).map(|r| r.first).max();
    let end_to_end_secs = last_receipt.map_or(0.0, |last| last.saturating_duration_since(started).as_secs_f64());
    let delivered = receiver.arrived(&events, &hooks);
    Ok(PhaseFigures {
        ordering,
        published: events.len(),
        publish_failures,
        publish_per_sec: rate(events.len(), publish_secs),
        publish_latency_ms: Percentiles::of(published.iter().flatten().map(|p| ms(p.latency)).collect()),
        delivered,
        missing: spec.events - delivered,
        duplicates: duplicates(&receipts, &hooks),
        end_to_end_secs,
        deliveries_per_sec: rate(delivered, end_to_end_secs),
        latency_ms: Percentiles::of(
            published
                .iter()
                .flatten()
                .filter_map(|p| first(p).map(|r| ms(r.first.saturating_duration_since(p.start))))
                .collect(),
        ),
        out_of_order: out_of_order(spec, &published, first),
        cpu_secs,
        timed_out,
    })
}

/// Publishes every event, `concurrency` at a time, taking them in index order; each
/// event's publish (None if it failed) by index, and how many failed.
async fn publish_all(spec: OrderedSpec, api: &Api, tag: &str) -> (Vec<Option<Published>>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|_| {
            let (api, tag, next) = (api.clone(), tag.to_owned(), next.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= spec.events {
                        return done;
                    }
                    let body = api::payment_event_of(&tag, n, &format!("obj-{tag}-{}", n % spec.objects));
                    done.push((n, api.publish(&format!("bench-{tag}-{n}"), body).await.ok()));
                }
            })
        })
        .collect();
    let mut published = vec![None; spec.events];
    for worker in workers {
        for (n, outcome) in worker.await.unwrap_or_default() {
            published[n] = outcome;
        }
    }
    let failures = published.iter().filter(|p| p.is_none()).count();
    (published, failures)
}

/// Per object, consecutive events where the earlier was answered before the later was
/// published, yet the later was received first.
fn out_of_order(
    spec: OrderedSpec,
    published: &[Option<Published>],
    first: impl Fn(&Published) -> Option<Receipt>,
) -> usize {
    let mut count = 0;
    for n in spec.objects..published.len() {
        let (Some(earlier), Some(later)) = (&published[n - spec.objects], &published[n]) else {
            continue;
        };
        let (Some(a), Some(b)) = (first(earlier), first(later)) else {
            continue;
        };
        if earlier.start + earlier.latency <= later.start && b.first < a.first {
            count += 1;
        }
    }
    count
}

fn duplicates(receipts: &HashMap<Pair, Receipt>, hooks: &HashSet<String>) -> usize {
    receipts
        .iter()
        .filter(|((_, hook), _)| hooks.contains(hook))
        .map(|(_, r)| r.count as usize - 1)
        .sum()
}

/// One phase's figures on a line.
pub fn line(p: &PhaseFigures) -> String {
    let pct = |p: &Option<Percentiles>| p.map_or("-".to_owned(), |p| format!("{:.1}/{:.1}/{:.1}", p.p50, p.p90, p.p99));
    format!(
        "  ordering {:<6} publish/s {:>7.0}  deliveries/s {:>7.0}  publish-to-receipt p50/p90/p99 ms {}  \
         publish p50/p90/p99 ms {}  CPU s {}  missing {} duplicates {} out of order {}{}",
        p.ordering,
        p.publish_per_sec,
        p.deliveries_per_sec,
        pct(&p.latency_ms),
        pct(&p.publish_latency_ms),
        p.cpu_secs.map_or("-".to_owned(), |s| format!("{s:.1}")),
        p.missing,
        p.duplicates,
        p.out_of_order,
        if p.timed_out { " (timed out)" } else { "" }
    )
}
