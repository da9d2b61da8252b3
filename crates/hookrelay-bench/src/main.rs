//! `hookrelay-bench`: the load harness of issue #5. For each workload it starts a
//! receiver and a fresh `hookrelay serve`, pushes events through the public API and
//! measures what comes out at the other end. Kept out of the `hookrelay` CLI because it
//! is a development tool; docs/performance.md says how to run it and read its figures.

mod api;
mod fanout;
mod ordered;
mod paced;
mod receiver;
mod recovery;
mod report;
mod retention;
mod server;
mod stats;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use clap::{Args, Parser, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// The server's allocator (see `hookrelay`'s `main.rs`), so the harness costs the shared
/// cores as little as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::report::{Machine, Report};
use crate::server::Launch;
use crate::workload::{RunConfig, Spec, Target};

#[derive(Parser)]
#[command(
    name = "hookrelay-bench",
    version,
    about = "Load harness for hookrelay: publish events, receive the deliveries, report rates, latencies and resources.",
    after_help = "Build the server first: cargo build --release -p hookrelay"
)]
struct Cli {
    #[command(subcommand)]
    command: Which,
    #[command(flatten)]
    options: Options,
}

#[derive(Clone, Copy, Subcommand)]
enum Which {
    /// W1 to W5, each on a fresh server.
    All,
    /// 1 webhook × 20,000 events, concurrency 32.
    W1,
    /// 10 webhooks × 2,000 events, concurrency 32 (20,000 deliveries).
    W2,
    /// 100 webhooks × 200 events, concurrency 32 (20,000 deliveries).
    W3,
    /// 1 webhook, a steady 200 events/s for 30 s: publish-to-receipt latency.
    W4,
    /// W2 with 2 of the 10 webhooks answering after 2 s.
    W5,
    /// A few hundred deliveries in seconds; fails on any missing or duplicate delivery,
    /// never on speed. Writes files only with --out.
    Smoke,
    /// One space fans out to thousands of webhooks while another publishes steadily:
    /// the other's publish and delivery latency alone and during the fan-out.
    Fanout(fanout::FanoutSpec),
    /// Ten webhooks limited to 50 deliveries a second and one without a limit, under a
    /// steady load: the limited ones' achieved rate, the other's latency.
    Paced(paced::PacedSpec),
    /// A steady load on a server with a retention of seconds for minutes: the
    /// database's size and the publish latency per interval while the cleaner runs.
    Retention(retention::RetentionSpec),
    /// One webhook's 100,000 failed deliveries recovered in bulk while another receives a
    /// steady rate: the server's RSS and the other's latency per interval.
    Recovery(recovery::RecoverySpec),
    /// One webhook ordering by object, many objects: throughput, publish-to-receipt
    /// latency and per-object order, against the same shape unordered.
    Ordered(ordered::OrderedSpec),
}

#[derive(Args)]
struct Options {
    /// Database for the server: a postgres://… URL (shared by every workload; the
    /// harness deletes its webhooks after each). Default: a fresh SQLite file per workload.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// The hookrelay binary [default: <workspace>/target/release/hookrelay, or
    /// $CARGO_TARGET_DIR/release/hookrelay].
    #[arg(long, global = true, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Benchmark a server that is already running (no RSS or CPU figures); needs --space and --token.
    #[arg(long, global = true, value_name = "URL", conflicts_with_all = ["database", "server_bin", "server_arg"])]
    target_url: Option<String>,
    /// The space id to use with --target-url.
    #[arg(long, global = true, value_name = "SPACE_ID")]
    space: Option<String>,
    /// An access token for that space, with --target-url.
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Where to write results [default: <workspace>/bench/results; smoke writes none unless given].
    #[arg(long, global = true, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seconds to wait for deliveries after the last publish.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120)]
    deadline: u64,
    /// Verify the signature of every Nth delivery (0: none).
    #[arg(long, global = true, value_name = "N", default_value_t = 100)]
    verify_every: u64,
    /// An extra argument for `hookrelay serve` (repeatable), e.g. --server-arg=--max-in-flight=512.
    #[arg(long, global = true, value_name = "ARG", allow_hyphen_values = true)]
    server_arg: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("hookrelay-bench: FAILED: some deliveries were missing or duplicated (see above)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("hookrelay-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the chosen workloads; whether every one delivered everything exactly once.
async fn run(cli: Cli) -> Result<bool> {
    let root = workspace_root();
    let options = cli.options;
    let (target, backend, server_name) = target(&options, &root)?;
    let default_bin = options.target_url.is_none() && options.server_bin.is_none();
    let specs: Vec<Spec> = match cli.command {
        Which::All => vec![workload::W1, workload::W2, workload::W3, workload::W4, workload::W5],
        Which::W1 => vec![workload::W1],
        Which::W2 => vec![workload::W2],
        Which::W3 => vec![workload::W3],
        Which::W4 => vec![workload::W4],
        Which::W5 => vec![workload::W5],
        Which::Smoke => workload::SMOKE.to_vec(),
        Which::Fanout(_) | Which::Paced(_) | Which::Retention(_) | Which::Recovery(_) | Which::Ordered(_) => Vec::new(),
    };
    let out = match (&options.out, cli.command) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Which::Smoke) => None,
        (None, _) => Some(root.join("bench").join("results")),
    };
    let config = RunConfig {
        target,
        deadline: Duration::from_secs(options.deadline),
        verify_every: options.verify_every,
        run_id: api::random_text(8).to_lowercase(),
    };
    let now = OffsetDateTime::now_utc();
    let stamp = now.format(format_description!("[year][month][day]T[hour][minute][second]Z"))?;
    let mut report = Report {
        started: now.format(&Rfc3339)?,
        backend,
        machine: Machine::detect(),
        server: server_name,
        server_args: options.server_arg.clone(),
        // Only a server built from this workspace is described by its commit.
        git_commit: default_bin.then(|| report::git_commit(&root)).flatten(),
        verify_every: options.verify_every,
        deadline_secs: options.deadline,
        workloads: Vec::new(),
        fanout: None,
        ok: true,
    };
    println!(
        "hookrelay-bench: backend {}, {} cores ({}), server {}",
        report.backend, report.machine.cores, report.machine.model, report.server
    );
    for spec in &specs {
        println!("\n== {} {} ({})", spec.key, spec.title, spec.describe());
        let result = workload::run(spec, &config)
            .await
            .with_context(|| format!("workload {}", spec.key))?;
        print!("{}", report::summary(&result));
        report.ok &= result.ok();
        report.workloads.push(result);
        // Written after every workload, so a long run that fails late keeps what it measured.
        if let Some(dir) = &out {
            report::write(&report, dir, &stamp)?;
        }
    }
    if let Which::Fanout(spec) = cli.command {
        println!("\n== fanout (two spaces on one server)");
        let result = fanout::run(spec, &config).await.context("workload fanout")?;
        print!("{}", report::fanout_lines(&result));
        report.ok &= result.ok();
        report.fanout = Some(result);
    }
    if let Which::Paced(spec) = cli.command {
        println!("\n== paced (maxDeliveriesPerSecond beside a webhook without a limit)");
        let result = paced::run(spec, &config).await.context("workload paced")?;
        print!("{}", result.lines());
        if let Some(dir) = &out {
            let path = dir.join(format!("{stamp}-paced-{}.json", report.backend));
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
            println!("wrote {}", path.display());
        }
        return Ok(result.ok());
    }
    if let Which::Retention(spec) = cli.command {
        println!("\n== retention (database size under a steady load)");
        let result = retention::run(spec, &config).await.context("workload retention")?;
        print!("{}", retention::table(&result));
        report.ok &= result.missing == 0 && result.publish_failures == 0;
        if let Some(dir) = &out {
            let path = dir.join(format!("{stamp}-retention-{}.json", report.backend));
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
            println!("wrote {}", path.display());
        }
        return Ok(report.ok);
    }
    if let Which::Recovery(spec) = cli.command {
        println!("\n== recovery (a bulk recovery beside a steady load)");
        let result = recovery::run(spec, &config).await.context("workload recovery")?;
        print!("{}", recovery::table(&result));
        report.ok &= result.missing == 0;
        if let Some(dir) = &out {
            let path = dir.join(format!("{stamp}-recovery-{}.json", report.backend));
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
            println!("wrote {}", path.display());
        }
        return Ok(report.ok);
    }
    if let Which::Ordered(spec) = cli.command {
        println!(
            "\n== ordered (one webhook, {} objects, {} events)",
            spec.objects, spec.events
        );
        let result = ordered::run(spec, &config).await.context("workload ordered")?;
        if let Some(dir) = &out {
            let path = dir.join(format!("{stamp}-ordered-{}.json", report.backend));
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
            println!("wrote {}", path.display());
        }
        return Ok(result.ok());
    }
    println!("\n{}", report::markdown(&report));
    if let Some(dir) = &out {
        for path in report::write(&report, dir, &stamp)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(report.ok)
}

/// The target of the run, the backend's name for the result files, and a label for the server.
fn target(options: &Options, root: &Path) -> Result<(Target, String, String)> {
    if let Some(url) = &options.target_url {
        let (Some(space), Some(token)) = (&options.space, &options.token) else {
            bail!("--target-url needs --space and --token");
        };
        let target = Target::Remote {
            url: url.clone(),
            space: space.clone(),
            token: token.clone(),
        };
        return Ok((target, "remote".to_owned(), url.clone()));
    }
    if options.space.is_some() || options.token.is_some() {
        bail!("--space and --token go with --target-url");
    }
    let backend = match options.database.as_deref() {
        None => "sqlite",
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => "postgres",
        Some(url) if url.starts_with("sqlite://") => "sqlite",
        Some(url) => bail!("--database must be a postgres:// or sqlite:// URL, not {url}"),
    };
    let bin = options.server_bin.clone().unwrap_or_else(|| default_server_bin(root));
    if !bin.is_file() {
        bail!(
            "no server binary at {}: build it with `cargo build --release -p hookrelay` (or pass --server-bin PATH)",
            bin.display()
        );
    }
    let launch = Launch {
        bin: bin.clone(),
        database: options.database.clone(),
        extra_args: options.server_arg.clone(),
    };
    Ok((Target::Spawn(launch), backend.to_owned(), bin.display().to_string()))
}

/// The workspace this harness was built from (or the working directory, if it moved).
fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize()
        .unwrap_or_else(|_| std::env::current_dir().unwrap_or_default())
}

/// `target/release/hookrelay`, honouring CARGO_TARGET_DIR as cargo does.
fn default_server_bin(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join("hookrelay")
}
