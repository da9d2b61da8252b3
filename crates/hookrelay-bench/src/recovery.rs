//! The `recovery` workload: a bulk recovery of many failed deliveries, and what it costs
//! the server's memory and another webhook's latency. One webhook's endpoint refuses
//! connections while `events` are published (one attempt each, so each fails at once);
//! then its URL is pointed at the receiver and `POST /v1/webhooks/{id}/recoveries`
//! retries them all, while a second webhook receives a steady publish rate. Every
//! interval it reports the server's RSS (`VmRSS`), the recovery's progress, the
//! backlog received, and the second webhook's publish-to-receipt latency.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use reqwest::Method;
use serde::Serialize;
use serde_json::json;

use crate::api::{self, Api, Published};
use crate::receiver::Receiver;
use crate::server::{rss_kib, Launch, Server};
use crate::stats::{ms, Percentiles};
use crate::workload::{RunConfig, Target};

/// The workload's shape.
#[derive(Args, Clone, Copy, Debug, Serialize)]
pub struct RecoverySpec {
    /// Failed deliveries to recover.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Concurrent publishers while building the backlog.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Events per second published for both webhooks throughout the recovery.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Seconds of that steady load before the recovery starts (the baseline).
    #[arg(long, default_value_t = 10)]
    pub baseline_secs: u64,
    /// Seconds per reported interval.
    #[arg(long, default_value_t = 5)]
    pub interval_secs: u64,
}

/// One reported interval.
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    /// Seconds from the recovery's request to the interval's end (negative: baseline).
    pub end_secs: i64,
    pub rss_kib: u64,
    /// The recovery's `requeued` at the interval's end.
    pub requeued: u64,
    /// Recovered deliveries received by its end.
    pub backlog_received: usize,
    /// The other webhook's publish-to-receipt latency, of events published in it.
    pub other_latency_ms: Option<Percentiles>,
}

/// What the workload measured.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryResult {
    pub spec: RecoverySpec,
    /// Seconds to build the backlog (publish and fail).
    pub backlog_secs: f64,
    /// Seconds from the request to `completed`.
    pub recovery_secs: f64,
    /// Seconds from the request until every recovered delivery was received.
    pub drained_secs: f64,
    pub intervals: Vec<Interval>,
    /// Recovered deliveries never received, and steady events never received.
    pub missing: usize,
}

/// Runs the workload on a server of its own (it reads the server's RSS).
pub async fn run(spec: RecoverySpec, config: &RunConfig) -> Result<RecoveryResult> {
    let Target::Spawn(launch) = &config.target else {
        bail!("the recovery workload samples the server's memory: it runs on a server it starts, not --target-url");
    };
    let mut launch: Launch = launch.clone();
    launch.extra_args.push("--retry-schedule=0s".to_owned());
    let receiver = Receiver::start(config.verify_every).await?;
    let server = Server::spawn(&launch).await?;
    let outcome = measure(spec, config, &receiver, &server).await;
    let stopped = server.stop().await;
    let result = outcome?;
    stopped?;
    Ok(result)
}

async fn measure(
    spec: RecoverySpec,
    config: &RunConfig,
    receiver: &Receiver,
    server: &Server,
) -> Result<RecoveryResult> {
    let pid = server.pid().context("the server's pid")?;
    let tag = format!("{}-recovery", config.run_id);
    let api = Api::new(&server.base, &server.space, &server.token)?;
    let secret = api::random_text(40);
    // Nothing listens on port 1: every attempt is refused at once.
    let recovered = api
        .create_webhook(
            "recovered",
            "http://127.0.0.1:1/hook",
            &secret,
            &format!("bench-{tag}-a"),
        )
        .await?;
    receiver.add_secret(&recovered, &secret);
    let started = Instant::now();
    let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let backlog = publish_backlog(&api, &tag, spec).await?;
    wait_for_failures(&api, &recovered).await?;
    let backlog_secs = started.elapsed().as_secs_f64();
    println!("  {} failed deliveries in {backlog_secs:.1} s", backlog.len());

    let url = format!("{}/hook/{tag}-a", receiver.base_url);
    api.call(
        Method::PATCH,
        &format!("/v1/webhooks/{recovered}"),
        None,
        Some(&json!({"url": url})),
    )
    .await?;
    let other = api
        .create_webhook(
            "other",
            &format!("{}/hook/{tag}-b", receiver.base_url),
            &secret,
            &format!("bench-{tag}-b"),
        )
        .await?;
    receiver.add_secret(&other, &secret);
    let stop = Arc::new(AtomicBool::new(false));
    let steady_started = Instant::now();
    let publisher = tokio::spawn(api::publish_steadily(
        api.clone(),
        format!("{tag}-steady"),
        spec.rate,
        stop.clone(),
    ));
    let every = Duration::from_secs(spec.interval_secs.max(1));
    let mut samples = Vec::new();
    let baseline_end = steady_started + Duration::from_secs(spec.baseline_secs);
    while Instant::now() + every <= baseline_end {
        tokio::time::sleep(every).await;
        samples.push((Instant::now(), rss_kib(pid).unwrap_or(0), 0, 0));
    }
    tokio::time::sleep_until(baseline_end.into()).await;
    samples.push((Instant::now(), rss_kib(pid).unwrap_or(0), 0, 0));

    let since = since.format(&time::format_description::well_known::Rfc3339)?;
    let requested = Instant::now();
    let created = api
        .call(
            Method::POST,
            &format!("/v1/webhooks/{recovered}/recoveries"),
            Some(&format!("bench-{tag}-r")),
            Some(&json!({"since": since})),
        )
        .await?;
    let id = created["result"]["id"].as_str().context("a recovery id")?.to_owned();
    let path = format!("/v1/webhooks/{recovered}/recoveries/{id}");
    let hooks = HashSet::from([recovered.clone()]);
    let (mut recovery_secs, mut drained_secs) = (None, None);
    let settle = requested + config.deadline;
    while drained_secs.is_none() && Instant::now() < settle {
        tokio::time::sleep(every).await;
        let progress = api.call(Method::GET, &path, None, None).await?;
        let requeued = progress["result"]["requeued"].as_u64().unwrap_or(0);
        if recovery_secs.is_none() && progress["result"]["status"] == "completed" {
            recovery_secs = Some(requested.elapsed().as_secs_f64());
        }
        let received = receiver.arrived(&backlog, &hooks);
        let rss = rss_kib(pid).unwrap_or(0);
        println!(
            "  {:>5} s  rss {:>7.1} MiB  requeued {requeued:>7}  received {received:>7}",
            requested.elapsed().as_secs(),
            rss as f64 / 1024.0
        );
        samples.push((Instant::now(), rss, requeued, received));
        if received == backlog.len() {
            drained_secs = Some(requested.elapsed().as_secs_f64());
        }
    }
    // A last interval after the backlog drained: memory once the work is done.
    tokio::time::sleep(every).await;
    samples.push((Instant::now(), rss_kib(pid).unwrap_or(0), 0, backlog.len()));
    stop.store(true, Ordering::Relaxed);
    let (steady, _failures) = publisher.await??;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let receipts = receiver.receipts();
    let latency_of = |p: &Published| {
        receipts
            .get(&(p.event_id.clone(), other.clone()))
            .map(|r| ms(r.first.saturating_duration_since(p.start)))
    };
    let steady_missing = steady.iter().filter(|p| latency_of(p).is_none()).count();
    let mut intervals = Vec::new();
    let mut from = steady_started;
    for &(end, rss, requeued, backlog_received) in &samples {
        let latencies = steady
            .iter()
            .filter(|p| p.start >= from && p.start < end)
            .filter_map(latency_of)
            .collect();
        let end_secs = if end >= requested {
            end.duration_since(requested).as_secs() as i64
        } else {
            -(requested.duration_since(end).as_secs() as i64)
        };
        intervals.push(Interval {
            end_secs,
            rss_kib: rss,
            requeued,
            backlog_received,
            other_latency_ms: Percentiles::of(latencies),
        });
        from = end;
    }
    Ok(RecoveryResult {
        spec,
        backlog_secs,
        recovery_secs: recovery_secs.unwrap_or(f64::NAN),
        drained_secs: drained_secs.unwrap_or(f64::NAN),
        intervals,
        missing: backlog.len() - receiver.arrived(&backlog, &hooks) + steady_missing,
    })
}

/// Publishes `spec.events` events with `spec.concurrency` publishers; their ids.
async fn publish_backlog(api: &Api, tag: &str, spec: RecoverySpec) -> Result<HashSet<String>> {
    let workers = spec.concurrency.max(1);
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (api, tag) = (api.clone(), tag.to_owned());
        let count = spec.events;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (worker..count).step_by(workers) {
                let published = api
                    .publish(&format!("bench-{tag}-{n}"), api::payment_event(&tag, n))
                    .await?;
                ids.push(published.event_id);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = HashSet::with_capacity(spec.events);
    for task in tasks {
        ids.extend(task.await??);
    }
    Ok(ids)
}

/// Waits until the webhook has no pending delivery left: each has failed.
async fn wait_for_failures(api: &Api, webhook: &str) -> Result<()> {
    let path = format!("/v1/webhooks/{webhook}/deliveries?status=pending&limit=1");
    loop {
        let page = api.call(Method::GET, &path, None, None).await?;
        if page["result"].as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The table the workload prints.
pub fn table(result: &RecoveryResult) -> String {
    let mut text = format!(
        "  {} failed deliveries built in {:.1} s; recovery completed in {:.1} s, drained in {:.1} s; {} events/s to both webhooks\n  {:>6} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11}\n",
        result.spec.events,
        result.backlog_secs,
        result.recovery_secs,
        result.drained_secs,
        result.spec.rate,
        "at s",
        "RSS MiB",
        "requeued",
        "received",
        "other p50",
        "other p99",
        "other max"
    );
    for interval in &result.intervals {
        let (p50, p99, max) = interval
            .other_latency_ms
            .map_or((f64::NAN, f64::NAN, f64::NAN), |p| (p.p50, p.p99, p.max));
        text.push_str(&format!(
            "  {:>6} {:>9.1} {:>9} {:>9} {:>11.1} {:>11.1} {:>11.1}\n",
            interval.end_secs,
            interval.rss_kib as f64 / 1024.0,
            interval.requeued,
            interval.backlog_received,
            p50,
            p99,
            max
        ));
    }
    text.push_str(&format!("  never received {}\n", result.missing));
    text
}
