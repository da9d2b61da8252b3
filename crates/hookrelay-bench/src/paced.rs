//! The `paced` workload: whether `maxDeliveriesPerSecond` holds a webhook to its rate
//! while a webhook beside it without a limit is not slowed. Ten webhooks limited to 50
//! deliveries a second and one without a limit, all subscribed to every event; events
//! published at a steady rate above the limit, so the limited webhooks' backlogs grow.
//! Reports each limited webhook's achieved rate while publishing (receipts from the
//! second second to the last publish, over that time), the most any of them received
//! within one second, the
//! unlimited webhook's publish-to-receipt latency, and whether everything arrived
//! exactly once in the end.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::api::{self, Api};
use crate::fanout::create_webhooks;
use crate::receiver::Receiver;
use crate::server::{Server, BENCH_SPACE};
use crate::stats::{ms, Percentiles};
use crate::workload::{RunConfig, Target};

/// The workload's shape.
#[derive(Args, Clone, Copy, Debug, Serialize)]
pub struct PacedSpec {
    /// Webhooks limited to `--paced-rate`.
    #[arg(long, default_value_t = 10)]
    pub paced_webhooks: usize,
    /// Their `maxDeliveriesPerSecond`; 0 sets none (a baseline).
    #[arg(long, default_value_t = 50)]
    pub paced_rate: u32,
    /// Events published per second (each to every webhook).
    #[arg(long, default_value_t = 80)]
    pub publish_rate: u32,
    /// Seconds to publish for.
    #[arg(long, default_value_t = 20)]
    pub publish_secs: u64,
}

/// What the workload measured.
#[derive(Clone, Debug, Serialize)]
pub struct PacedResult {
    pub spec: PacedSpec,
    pub published: usize,
    pub publish_failures: usize,
    /// Each limited webhook's receipts per second while publishing, from the second
    /// second on (the first has the bucket's burst), lowest first.
    pub achieved_rates: Vec<f64>,
    /// The most deliveries one limited webhook received within any one second.
    pub most_in_one_second: usize,
    /// Publish start to receipt, for the webhook without a limit.
    pub unlimited_latency_ms: Option<Percentiles>,
    /// From the first publish until every limited webhook had everything.
    pub drained_secs: f64,
    pub missing: usize,
    pub duplicates: usize,
    pub timed_out: bool,
}

/// Runs the workload on a server of its own.
pub async fn run(spec: PacedSpec, config: &RunConfig) -> Result<PacedResult> {
    let Target::Spawn(launch) = &config.target else {
        bail!("the paced workload runs on a server it starts, not --target-url");
    };
    let receiver = Receiver::start(config.verify_every).await?;
    let server = Server::spawn(launch).await?;
    let outcome = measure(spec, config, &receiver, &server).await;
    let stopped = server.stop().await;
    let result = outcome?;
    stopped?;
    Ok(result)
}

async fn measure(spec: PacedSpec, config: &RunConfig, receiver: &Receiver, server: &Server) -> Result<PacedResult> {
    let tag = format!("{}-paced", config.run_id);
    let api = Api::new(&server.base, BENCH_SPACE, &server.token)?;
    let limited = create_webhooks(&api, receiver, spec.paced_webhooks, &format!("{tag}-limited")).await?;
    // 0: no limit at all, the baseline the limited runs compare with.
    for id in limited.iter().filter(|_| spec.paced_rate > 0) {
        api.put_settings(id, &json!({"maxDeliveriesPerSecond": spec.paced_rate}))
            .await?;
    }
    let free = create_webhooks(&api, receiver, 1, &format!("{tag}-free")).await?;

    println!(
        "  {} events/s for {} s to {} webhooks at {}/s and one without a limit",
        spec.publish_rate, spec.publish_secs, spec.paced_webhooks, spec.paced_rate
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let publishing = tokio::spawn(api::publish_steadily(
        api.clone(),
        tag.clone(),
        spec.publish_rate,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(spec.publish_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let window = started.elapsed();
    let (published, publish_failures) = publishing.await??;

    let events: HashSet<String> = published.iter().map(|p| p.event_id.clone()).collect();
    let expected = events.len() * (limited.len() + free.len());
    let deadline = Instant::now() + config.deadline;
    let mut timed_out = false;
    while receiver.arrived(&events, &limited) + receiver.arrived(&events, &free) < expected {
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_secs = started.elapsed().as_secs_f64();

    let receipts = receiver.receipts();
    let mut arrivals: HashMap<&str, Vec<Instant>> = HashMap::new();
    for ((event, webhook), receipt) in &receipts {
        if limited.contains(webhook) && events.contains(event) {
            arrivals.entry(webhook.as_str()).or_default().push(receipt.first);
        }
    }
    // After the first second, whose burst (a bucket starts full) is not the rate.
    let (from, end) = (started + Duration::from_secs(1), started + window);
    let steady_secs = window.saturating_sub(Duration::from_secs(1)).as_secs_f64();
    let mut achieved_rates: Vec<f64> = limited
        .iter()
        .map(|id| {
            let within = arrivals
                .get(id.as_str())
                .map_or(0, |at| at.iter().filter(|t| **t > from && **t <= end).count());
            within as f64 / steady_secs
        })
        .collect();
    achieved_rates.sort_by(f64::total_cmp);
    let most_in_one_second = arrivals
        .values_mut()
        .map(|at| most_within_a_second(at))
        .max()
        .unwrap_or(0);
    let free_id = free.iter().next().cloned().unwrap_or_default();
    let latencies = published
        .iter()
        .filter_map(|p| {
            let receipt = receipts.get(&(p.event_id.clone(), free_id.clone()))?;
            Some(ms(receipt.first.saturating_duration_since(p.start)))
        })
        .collect();
    let arrived = receiver.arrived(&events, &limited) + receiver.arrived(&events, &free);
    Ok(PacedResult {
        spec,
        published: published.len(),
        publish_failures,
        achieved_rates,
        most_in_one_second,
        unlimited_latency_ms: Percentiles::of(latencies),
        drained_secs,
        missing: expected - arrived,
        duplicates: receipts.values().map(|r| r.count as usize - 1).sum(),
        timed_out,
    })
}

/// The most of `at` within any one second.
fn most_within_a_second(at: &mut [Instant]) -> usize {
    at.sort();
    (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

impl PacedResult {
    /// Everything published and delivered exactly once.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.publish_failures == 0 && !self.timed_out
    }

    /// The lines the run prints.
    pub fn lines(&self) -> String {
        let spec = self.spec;
        let mut out = String::new();
        let rates = &self.achieved_rates;
        let _ = writeln!(
            out,
            "  {} published ({} failed); limited webhooks at {}/s achieved {:.1} to {:.1}/s while publishing; \
             at most {} within one second (bound {})",
            self.published,
            self.publish_failures,
            spec.paced_rate,
            rates.first().copied().unwrap_or(0.0),
            rates.last().copied().unwrap_or(0.0),
            self.most_in_one_second,
            2 * spec.paced_rate
        );
        let latency = self.unlimited_latency_ms.map_or("–".to_owned(), |p| {
            format!("{:.1} / {:.1} / {:.1} / {:.1}", p.p50, p.p90, p.p99, p.max)
        });
        let _ = writeln!(
            out,
            "  unlimited webhook publish-to-receipt p50 / p90 / p99 / max {latency} ms; all drained in {:.1} s{}; \
             missing {}, duplicates {}",
            self.drained_secs,
            if self.timed_out { " (deadline passed)" } else { "" },
            self.missing,
            self.duplicates
        );
        out
    }
}
