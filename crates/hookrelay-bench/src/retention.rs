//! The `retention` workload: whether the database stays the same size under a steady
//! load once history older than a short retention is being deleted, and whether
//! publishes slow down while the cleaner runs. One webhook; a steady publish rate for
//! several minutes on a server started with `--retention` of a few seconds and a short
//! `--cleaner-interval`. Every interval (10 s) it reports the publishes' latency
//! (p50, p99, max) and the database's size at the interval's end (SQLite: the file and
//! its write-ahead log; PostgreSQL: `pg_database_size`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::api::{self, Api, Published};
use crate::receiver::Receiver;
use crate::server::{Launch, Server};
use crate::stats::{ms, Percentiles};
use crate::workload::{RunConfig, Target};

/// The workload's shape.
#[derive(Args, Clone, Copy, Debug, Serialize)]
pub struct RetentionSpec {
    /// Events published per second, throughout.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Minutes to publish for.
    #[arg(long, default_value_t = 4.0)]
    pub minutes: f64,
    /// The server's `--retention`, in seconds.
    #[arg(long, default_value_t = 30)]
    pub retention_secs: u64,
    /// The server's `--cleaner-interval`, in seconds.
    #[arg(long, default_value_t = 5)]
    pub cleaner_interval_secs: u64,
    /// The server's `--idempotency-window`, in seconds: with its default (a day) the
    /// publishes' keys grow the file for a day whatever the retention.
    #[arg(long, default_value_t = 30)]
    pub idempotency_window_secs: u64,
    /// Seconds per reported interval.
    #[arg(long, default_value_t = 10)]
    pub interval_secs: u64,
}

/// One reported interval.
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    /// Seconds from the start to the interval's end.
    pub end_secs: u64,
    /// Publishes started in it and accepted.
    pub published: usize,
    pub publish_latency_ms: Option<Percentiles>,
    /// The database's size at its end, in bytes.
    pub database_bytes: u64,
    /// Of which the write-ahead log (SQLite).
    pub wal_bytes: u64,
}

/// What the workload measured.
#[derive(Clone, Debug, Serialize)]
pub struct RetentionResult {
    pub spec: RetentionSpec,
    pub intervals: Vec<Interval>,
    pub publish_failures: usize,
    /// Events published but never received.
    pub missing: usize,
}

/// Runs the workload on a server of its own, started with the retention settings.
pub async fn run(spec: RetentionSpec, config: &RunConfig) -> Result<RetentionResult> {
    let Target::Spawn(launch) = &config.target else {
        bail!("the retention workload measures the database: it runs on a server it starts, not --target-url");
    };
    let mut launch: Launch = launch.clone();
    launch.extra_args.extend([
        format!("--retention={}s", spec.retention_secs),
        format!("--cleaner-interval={}s", spec.cleaner_interval_secs),
        format!("--idempotency-window={}s", spec.idempotency_window_secs),
    ]);
    let receiver = Receiver::start(config.verify_every).await?;
    let server = Server::spawn(&launch).await?;
    let outcome = measure(spec, config, &receiver, &server).await;
    let stopped = server.stop().await;
    let result = outcome?;
    stopped?;
    Ok(result)
}

async fn measure(
    spec: RetentionSpec,
    config: &RunConfig,
    receiver: &Receiver,
    server: &Server,
) -> Result<RetentionResult> {
    let tag = format!("{}-retention", config.run_id);
    let api = Api::new(&server.base, &server.space, &server.token)?;
    let secret = api::random_text(40);
    let url = format!("{}/hook/{tag}", receiver.base_url);
    let webhook = api
        .create_webhook("retention", &url, &secret, &format!("bench-{tag}-webhook"))
        .await?;
    receiver.add_secret(&webhook, &secret);

    if server.autovacuum_off().await? {
        println!("  note: autovacuum is off on this PostgreSQL server: the space of deleted rows is not reused, so the size grows");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let publisher = tokio::spawn(api::publish_steadily(api.clone(), tag, spec.rate, stop.clone()));
    let every = Duration::from_secs(spec.interval_secs.max(1));
    let intervals = (Duration::from_secs_f64(spec.minutes.max(0.0) * 60.0).as_secs_f64() / every.as_secs_f64()).ceil();
    let mut sizes = Vec::new();
    for n in 1..=intervals as u32 {
        tokio::time::sleep_until((started + every * n).into()).await;
        let (bytes, wal) = server.database_bytes().await?;
        println!(
            "  {:>5} s  database {:>8.1} MiB (log {:.1} MiB)",
            (every * n).as_secs(),
            mib(bytes),
            mib(wal)
        );
        sizes.push((bytes, wal));
    }
    stop.store(true, Ordering::Relaxed);
    let (published, publish_failures) = publisher.await??;

    let events: HashSet<String> = published.iter().map(|p| p.event_id.clone()).collect();
    let hooks = HashSet::from([webhook]);
    let settle = Instant::now() + config.deadline;
    while receiver.arrived(&events, &hooks) < events.len() && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing = events.len() - receiver.arrived(&events, &hooks);
    let intervals = sizes
        .iter()
        .enumerate()
        .map(|(i, &(database_bytes, wal_bytes))| {
            let (from, to) = (every * i as u32, every * (i as u32 + 1));
            let within: Vec<&Published> = published
                .iter()
                .filter(|p| (from..to).contains(&p.start.saturating_duration_since(started)))
                .collect();
            Interval {
                end_secs: to.as_secs(),
                published: within.len(),
                publish_latency_ms: Percentiles::of(within.iter().map(|p| ms(p.latency)).collect()),
                database_bytes,
                wal_bytes,
            }
        })
        .collect();
    Ok(RetentionResult {
        spec,
        intervals,
        publish_failures,
        missing,
    })
}

/// The table the workload prints.
pub fn table(result: &RetentionResult) -> String {
    let mut text = format!(
        "  retention {} s, cleaner every {} s, idempotency window {} s, {} events/s\n  {:>7} {:>9} {:>9} {:>9} {:>9} {:>12} {:>8}\n",
        result.spec.retention_secs,
        result.spec.cleaner_interval_secs,
        result.spec.idempotency_window_secs,
        result.spec.rate,
        "until s",
        "published",
        "p50 ms",
        "p99 ms",
        "max ms",
        "database MiB",
        "log MiB"
    );
    for interval in &result.intervals {
        let (p50, p99, max) = interval
            .publish_latency_ms
            .map_or((f64::NAN, f64::NAN, f64::NAN), |p| (p.p50, p.p99, p.max));
        text.push_str(&format!(
            "  {:>7} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>12.1} {:>8.1}\n",
            interval.end_secs,
            interval.published,
            p50,
            p99,
            max,
            mib(interval.database_bytes),
            mib(interval.wal_bytes)
        ));
    }
    text.push_str(&format!(
        "  publish failures {}, events never received {}\n",
        result.publish_failures, result.missing
    ));
    text
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}
