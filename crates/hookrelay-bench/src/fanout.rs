//! The `fanout` workload: whether one space's wide fan-out holds back another space.
//! Space A has many webhooks (5,000 by default) and publishes a few events, each fanning
//! out to all of them; space B has one webhook and publishes at a steady rate
//! throughout. B's publish latency and publish-to-receipt latency are measured alone
//! first (the baseline), then while A's deliveries are being written and sent.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::api::{self, Api, Published};
use crate::receiver::Receiver;
use crate::server::{Server, BENCH_SPACE};
use crate::stats::{ms, Percentiles};
use crate::workload::{RunConfig, Target};

/// The second space's id.
const OTHER_SPACE: &str = "spc-bench-other";
/// Webhooks created at once.
const CREATE_CONCURRENCY: usize = 16;

/// The workload's shape.
#[derive(Args, Clone, Copy, Debug, Serialize)]
pub struct FanoutSpec {
    /// Webhooks of space A, each subscribed to every event A publishes.
    #[arg(long, default_value_t = 5_000)]
    pub fanout_webhooks: usize,
    /// Events space A publishes, one after the other.
    #[arg(long, default_value_t = 4)]
    pub fanout_events: usize,
    /// Events space B publishes per second, throughout.
    #[arg(long, default_value_t = 20)]
    pub steady_rate: u32,
    /// Seconds B publishes alone first, for the baseline.
    #[arg(long, default_value_t = 10)]
    pub baseline_secs: u64,
}

/// Space B's figures in one phase.
#[derive(Clone, Debug, Serialize)]
pub struct SteadyFigures {
    pub published: usize,
    pub publish_failures: usize,
    pub publish_latency_ms: Option<Percentiles>,
    /// Publish start to receipt.
    pub delivery_latency_ms: Option<Percentiles>,
    pub missing: usize,
}

/// What the workload measured.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutResult {
    pub spec: FanoutSpec,
    /// Space B publishing alone.
    pub baseline: SteadyFigures,
    /// Space B publishing from A's first publish to A's last receipt.
    pub during_fanout: SteadyFigures,
    /// A's publishes, each writing `fanout_webhooks` deliveries.
    pub fanout_publish_latency_ms: Option<Percentiles>,
    pub fanout_deliveries: usize,
    pub fanout_missing: usize,
    pub duplicates: usize,
    /// From A's first publish to its last receipt.
    pub fanout_secs: f64,
    pub timed_out: bool,
}

impl FanoutResult {
    /// Everything published and delivered exactly once.
    pub fn ok(&self) -> bool {
        self.fanout_missing == 0
            && self.duplicates == 0
            && self.baseline.missing == 0
            && self.during_fanout.missing == 0
            && self.baseline.publish_failures == 0
            && self.during_fanout.publish_failures == 0
    }
}

/// Runs the workload on a server of its own.
pub async fn run(spec: FanoutSpec, config: &RunConfig) -> Result<FanoutResult> {
    let Target::Spawn(launch) = &config.target else {
        bail!("the fanout workload needs two spaces: it runs on a server it starts, not --target-url");
    };
    let receiver = Receiver::start(config.verify_every).await?;
    let server = Server::spawn(launch).await?;
    let outcome = measure(spec, config, &receiver, &server).await;
    let stopped = server.stop().await;
    let result = outcome?;
    stopped?;
    Ok(result)
}

async fn measure(spec: FanoutSpec, config: &RunConfig, receiver: &Receiver, server: &Server) -> Result<FanoutResult> {
    let tag = format!("{}-fanout", config.run_id);
    let wide = Api::new(&server.base, BENCH_SPACE, &server.token)?;
    let steady = Api::new(&server.base, OTHER_SPACE, &server.create_token(OTHER_SPACE).await?)?;
    let wide_hooks = create_webhooks(&wide, receiver, spec.fanout_webhooks, &format!("{tag}-a")).await?;
    let steady_hooks = create_webhooks(&steady, receiver, 1, &format!("{tag}-b")).await?;

    println!("  baseline: space B alone for {} s", spec.baseline_secs);
    let stop = Arc::new(AtomicBool::new(false));
    let baseline = tokio::spawn(api::publish_steadily(
        steady.clone(),
        format!("{tag}-base"),
        spec.steady_rate,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(spec.baseline_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let baseline = baseline.await??;

    println!(
        "  fan-out: space A publishes {} events to {} webhooks while B goes on",
        spec.fanout_events, spec.fanout_webhooks
    );
    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(api::publish_steadily(
        steady.clone(),
        format!("{tag}-during"),
        spec.steady_rate,
        stop.clone(),
    ));
    let started = Instant::now();
    let mut wide_published = Vec::new();
    for n in 0..spec.fanout_events {
        let key = format!("bench-{tag}-wide-{n}");
        wide_published.push(
            wide.publish(&key, api::payment_event(&format!("{tag}-wide"), n))
                .await?,
        );
    }
    let wide_events: HashSet<String> = wide_published.iter().map(|p| p.event_id.clone()).collect();
    let expected = wide_events.len() * wide_hooks.len();
    let deadline = Instant::now() + config.deadline;
    let mut timed_out = false;
    while receiver.arrived(&wide_events, &wide_hooks) < expected {
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fanout_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = during.await??;

    let all_steady: Vec<&Published> = baseline.0.iter().chain(&during.0).collect();
    let steady_events: HashSet<String> = all_steady.iter().map(|p| p.event_id.clone()).collect();
    let settle = Instant::now() + Duration::from_secs(10);
    while receiver.arrived(&steady_events, &steady_hooks) < steady_events.len() && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let receipts = receiver.receipts();
    let figures = |(published, failures): &(Vec<Published>, usize)| {
        let mut latencies = Vec::new();
        for p in published {
            let pair = steady_hooks
                .iter()
                .next()
                .map(|hook| (p.event_id.clone(), hook.clone()));
            if let Some(receipt) = pair.and_then(|pair| receipts.get(&pair)) {
                latencies.push(ms(receipt.first.saturating_duration_since(p.start)));
            }
        }
        SteadyFigures {
            published: published.len(),
            publish_failures: *failures,
            publish_latency_ms: Percentiles::of(published.iter().map(|p| ms(p.latency)).collect()),
            missing: published.len() - latencies.len(),
            delivery_latency_ms: Percentiles::of(latencies),
        }
    };
    let duplicates = receipts.values().map(|r| r.count as usize - 1).sum();
    let fanout_deliveries = receiver.arrived(&wide_events, &wide_hooks);
    Ok(FanoutResult {
        spec,
        baseline: figures(&baseline),
        during_fanout: figures(&during),
        fanout_publish_latency_ms: Percentiles::of(wide_published.iter().map(|p| ms(p.latency)).collect()),
        fanout_deliveries,
        fanout_missing: spec.fanout_events * spec.fanout_webhooks - fanout_deliveries,
        duplicates,
        fanout_secs,
        timed_out,
    })
}

/// Creates `count` webhooks of the space `api` acts in, all pointing at `receiver`, a
/// few at a time.
pub(crate) async fn create_webhooks(
    api: &Api,
    receiver: &Receiver,
    count: usize,
    tag: &str,
) -> Result<HashSet<String>> {
    let mut created = HashSet::with_capacity(count);
    let numbers: Vec<usize> = (0..count).collect();
    for chunk in numbers.chunks(CREATE_CONCURRENCY) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let (api, url) = (api.clone(), format!("{}/hook/{tag}-{i}", receiver.base_url));
                let (name, key) = (format!("fanout {tag} #{i}"), format!("bench-{tag}-webhook-{i}"));
                tokio::spawn(async move {
                    let secret = api::random_text(40);
                    let id = api.create_webhook(&name, &url, &secret, &key).await?;
                    anyhow::Ok((id, secret))
                })
            })
            .collect();
        for task in tasks {
            let (id, secret) = task.await??;
            receiver.add_secret(&id, &secret);
            created.insert(id);
        }
    }
    Ok(created)
}
