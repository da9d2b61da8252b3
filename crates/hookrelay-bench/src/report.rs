//! What a run leaves behind: a summary on stdout as each workload ends, and JSON plus a
//! Markdown table under the output directory, so figures can be compared across commits.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::fanout::{FanoutResult, SteadyFigures};
use crate::stats::Percentiles;
use crate::workload::WorkloadResult;

/// Everything about one invocation.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// RFC 3339, UTC.
    pub started: String,
    /// `sqlite`, `postgres` or `remote`.
    pub backend: String,
    pub machine: Machine,
    /// The server binary, or the remote URL.
    pub server: String,
    pub server_args: Vec<String>,
    /// The workspace's commit (`-dirty` with local changes), when the server is the
    /// workspace's own `target/release/hookrelay`.
    pub git_commit: Option<String>,
    pub verify_every: u64,
    pub deadline_secs: u64,
    pub workloads: Vec<WorkloadResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<FanoutResult>,
    /// No missing or duplicate deliveries, failed publishes or bad signatures anywhere.
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub model: String,
}

impl Machine {
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(key, _)| key.trim() == "model name")
                    .map(|(_, value)| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self { cores, model }
    }
}

/// The short commit of the workspace at `root`, if it is a git checkout.
pub fn git_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

/// A few lines for stdout, as soon as a workload ends.
pub fn summary(r: &WorkloadResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  publish   {} events in {:.1} s = {:.0}/s; latency p50 / p90 / p99 {} ms",
        r.published,
        r.publish_secs,
        r.publish_per_sec,
        triple(r.publish_latency_ms)
    );
    let _ = writeln!(
        out,
        "  delivery  {} of {} in {:.1} s = {:.0}/s; publish-to-receipt p50 / p90 / p99 {} ms{}",
        r.delivered,
        r.expected_deliveries,
        r.end_to_end_secs,
        r.deliveries_per_sec,
        triple(r.latency_ms),
        if r.timed_out { " (deadline passed)" } else { "" }
    );
    if let Some(slow) = &r.slow {
        let _ = writeln!(
            out,
            "  slow      {} of {} deliveries to the {} slow webhooks arrived (not waited for)",
            slow.arrived, slow.expected, slow.webhooks
        );
    }
    let _ = writeln!(
        out,
        "  checks    missing {}, duplicates {}, failed publishes {}, signatures {} checked / {} bad{}",
        r.missing,
        r.duplicates,
        r.publish_failures,
        r.signatures_checked,
        r.bad_signatures,
        if r.unexpected > 0 {
            format!(", {} unexpected requests", r.unexpected)
        } else {
            String::new()
        }
    );
    if let Some(error) = &r.first_publish_error {
        let _ = writeln!(out, "  first publish error: {error}");
    }
    if let Some(s) = &r.server {
        let _ = writeln!(
            out,
            "  server    idle RSS {} MiB, peak RSS {:.1} MiB, CPU {} s",
            opt(s.idle_rss_mib, 1),
            s.peak_rss_mib,
            opt(s.cpu_secs, 1)
        );
    }
    out
}

/// The Markdown page: context, one table row per workload, then notes.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# hookrelay-bench results\n");
    let _ = writeln!(out, "- Started: {}", report.started);
    let _ = writeln!(out, "- Backend: {}", report.backend);
    let _ = writeln!(
        out,
        "- Machine: {} cores, {}",
        report.machine.cores, report.machine.model
    );
    let _ = writeln!(out, "- Server: `{}`", report.server);
    if !report.server_args.is_empty() {
        let _ = writeln!(out, "- Extra server arguments: `{}`", report.server_args.join(" "));
    }
    if let Some(commit) = &report.git_commit {
        let _ = writeln!(out, "- Workspace commit: {commit}");
    }
    let _ = writeln!(
        out,
        "- Signatures checked: {}; deadline {} s after the last publish",
        if report.verify_every == 0 {
            "none".to_owned()
        } else {
            format!("every {}th delivery", report.verify_every)
        },
        report.deadline_secs
    );
    let _ = writeln!(
        out,
        "- Result: {}\n",
        if report.ok {
            "all delivered exactly once"
        } else {
            "FAILED"
        }
    );
    if !report.workloads.is_empty() {
        workload_table(&mut out, report);
    }
    if let Some(fanout) = &report.fanout {
        let _ = writeln!(out, "## fanout\n\n```\n{}```", fanout_lines(fanout));
    }
    let mut notes = Vec::new();
    for r in &report.workloads {
        if let Some(slow) = &r.slow {
            notes.push(format!(
                "{}: figures are for the {} webhooks that answer at once; {} of the {} deliveries to the {} slow \
                 webhooks arrived before the run stopped waiting.",
                r.workload,
                r.webhooks - r.slow_webhooks,
                slow.arrived,
                slow.expected,
                slow.webhooks
            ));
        }
        if r.timed_out {
            notes.push(format!(
                "{}: the deadline passed before every delivery arrived.",
                r.workload
            ));
        }
        if r.publish_failures > 0 {
            notes.push(format!(
                "{}: {} publishes failed (first: {}).",
                r.workload,
                r.publish_failures,
                r.first_publish_error.as_deref().unwrap_or("?")
            ));
        }
        if r.bad_signatures > 0 {
            notes.push(format!(
                "{}: {} of {} checked signatures were bad.",
                r.workload, r.bad_signatures, r.signatures_checked
            ));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

/// The table of the fixed workloads, one row each.
fn workload_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "| workload | shape | deliveries | publish/s | publish p50 / p90 / p99 ms | deliveries/s \
         | publish-to-receipt p50 / p90 / p99 ms | missing | duplicates | idle RSS MiB | peak RSS MiB | CPU s |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in &report.workloads {
        let server = r.server.as_ref();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.shape,
            r.delivered,
            r.publish_per_sec,
            triple(r.publish_latency_ms),
            r.deliveries_per_sec,
            triple(r.latency_ms),
            r.missing,
            r.duplicates,
            opt(server.and_then(|s| s.idle_rss_mib), 1),
            opt(server.map(|s| s.peak_rss_mib), 1),
            opt(server.and_then(|s| s.cpu_secs), 1),
        );
    }
}

/// The fanout workload's figures: space B alone and during A's fan-out, then A's.
pub fn fanout_lines(r: &FanoutResult) -> String {
    let mut out = String::new();
    let spec = r.spec;
    let steady = |phase: &str, f: &SteadyFigures| {
        format!(
            "  B {phase:<8} {} publishes at {}/s ({} failed, {} not delivered); publish p50 / p90 / p99 {} ms; \
             publish-to-receipt {} ms\n",
            f.published,
            spec.steady_rate,
            f.publish_failures,
            f.missing,
            triple(f.publish_latency_ms),
            triple(f.delivery_latency_ms)
        )
    };
    out.push_str(&steady("alone", &r.baseline));
    out.push_str(&steady("during", &r.during_fanout));
    let _ = writeln!(
        out,
        "  A fan-out {} events x {} webhooks: publish p50 / p90 / p99 {} ms; {} of {} delivered in {:.1} s{}; \
         duplicates {}",
        spec.fanout_events,
        spec.fanout_webhooks,
        triple(r.fanout_publish_latency_ms),
        r.fanout_deliveries,
        spec.fanout_events * spec.fanout_webhooks,
        r.fanout_secs,
        if r.timed_out { " (deadline passed)" } else { "" },
        r.duplicates
    );
    out
}

/// Writes `<stamp>-<backend>.json`, `<stamp>-<backend>.md` and `latest-<backend>.md`.
pub fn write(report: &Report, dir: &Path, stamp: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join(format!("{stamp}-{}.json", report.backend));
    let md = dir.join(format!("{stamp}-{}.md", report.backend));
    let latest = dir.join(format!("latest-{}.md", report.backend));
    let page = markdown(report);
    let mut bytes = serde_json::to_vec_pretty(report)?;
    bytes.push(b'\n');
    std::fs::write(&json, bytes)?;
    std::fs::write(&md, &page)?;
    std::fs::write(&latest, &page)?;
    Ok(vec![json, md, latest])
}

fn triple(p: Option<Percentiles>) -> String {
    p.map_or("–".to_owned(), |p| {
        format!("{:.1} / {:.1} / {:.1}", p.p50, p.p90, p.p99)
    })
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.decimals$}"))
}
