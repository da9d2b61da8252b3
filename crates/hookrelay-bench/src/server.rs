//! The hookrelay under test: a `hookrelay serve` child on a fresh database, or a server
//! somebody else runs (`--target-url`). Only a child can be measured: its RSS and CPU
//! time are read from `/proc`, which is also why the harness is Linux-only for those.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub const BENCH_SPACE: &str = "spc-bench";
pub const BENCH_TOKEN: &str = "bench-token-0123456789";
/// A fixed master key for shared (Postgres) databases, so secrets sealed by one run's
/// server can be opened by the next. Scratch databases only.
const BENCH_MASTER_KEY: &str = "62656e63682d6d61737465722d6b65792d6e6f742d666f722d70726f64756374";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a server child.
#[derive(Clone, Debug)]
pub struct Launch {
    pub bin: PathBuf,
    /// `None`: a fresh SQLite file in a temp directory for every server.
    pub database: Option<String>,
    pub extra_args: Vec<String>,
}

/// Where the workload sends its requests.
pub struct Server {
    pub base: String,
    pub space: String,
    pub token: String,
    process: Option<Process>,
}

struct Process {
    child: Child,
    pid: u32,
    /// The binary and its database, for the operator's commands.
    bin: PathBuf,
    database: String,
    /// Working directory: the SQLite file (when fresh) and `server.log`.
    dir: TempDir,
    fresh_database: bool,
}

impl Server {
    /// A server somebody else runs.
    pub fn remote(base: &str, space: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            space: space.to_owned(),
            token: token.to_owned(),
            process: None,
        }
    }

    /// Starts `hookrelay serve` and waits for its "listening" line.
    pub async fn spawn(launch: &Launch) -> Result<Self> {
        if !launch.bin.is_file() {
            bail!(
                "no server binary at {}: build it with `cargo build --release -p hookrelay` \
                 (or pass --server-bin PATH)",
                launch.bin.display()
            );
        }
        let dir = tempfile::Builder::new().prefix("hookrelay-bench-").tempdir()?;
        let fresh_database = launch.database.is_none();
        let database = match &launch.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", dir.path().join("hookrelay.db").display()),
        };
        let mut command = Command::new(&launch.bin);
        // Settings come from the flags below and --server-arg only, never from the caller's env.
        for (key, _) in std::env::vars() {
            if key.starts_with("HOOKRELAY_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(dir.path())
            .arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--allow-private-targets",
                "--database",
                &database,
            ])
            .args(&launch.extra_args)
            .env("HOOKRELAY_BOOTSTRAP_SPACE_ID", BENCH_SPACE)
            .env("HOOKRELAY_BOOTSTRAP_TOKEN", BENCH_TOKEN)
            // Quotas out of the way: workloads measure throughput and latency, not the
            // limits that protect one space from another (a --server-arg still sets them).
            .env("HOOKRELAY_MAX_PUBLISH_RATE", "1000000")
            .env("HOOKRELAY_MAX_WEBHOOKS_PER_SPACE", "1000000")
            .env("HOOKRELAY_MAX_FAN_OUT", "1000000")
            .env("HOOKRELAY_LOG", "warn");
        if !fresh_database {
            command.env("HOOKRELAY_MASTER_KEY", BENCH_MASTER_KEY);
        }
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        command.stdout(Stdio::piped()).stderr(log).kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut lines = BufReader::new(child.stdout.take().context("server stdout")?).lines();
        let listening = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(address) = line.strip_prefix("hookrelay listening on ") {
                    return Ok(Some(address.trim().to_owned()));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let base = match listening {
            Ok(Ok(Some(base))) => base,
            Ok(Ok(None)) | Ok(Err(_)) => bail!("the server exited before listening:\n{}", log_tail(dir.path())),
            Err(_) => bail!(
                "the server did not listen within {START_TIMEOUT:?}:\n{}",
                log_tail(dir.path())
            ),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            base,
            space: BENCH_SPACE.to_owned(),
            token: BENCH_TOKEN.to_owned(),
            process: Some(Process {
                child,
                pid,
                bin: launch.bin.clone(),
                database,
                dir,
                fresh_database,
            }),
        })
    }

    /// A token for another space (created with it) from `hookrelay token create` on the
    /// server's database; only for a server the harness started.
    pub async fn create_token(&self, space: &str) -> Result<String> {
        let Some(process) = &self.process else {
            bail!("a second space needs a server the harness starts (not --target-url)");
        };
        let mut command = Command::new(&process.bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("HOOKRELAY_") {
                command.env_remove(key);
            }
        }
        if !process.fresh_database {
            command.env("HOOKRELAY_MASTER_KEY", BENCH_MASTER_KEY);
        }
        let output = command
            .current_dir(process.dir.path())
            .args(["token", "create", "--space", space, "--name", "bench", "--database"])
            .arg(&process.database)
            .output()
            .await?;
        if !output.status.success() {
            bail!("token create failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    }

    /// The size of the server's database in bytes, and of that its write-ahead log:
    /// the SQLite file and its log, or `pg_database_size` (no log counted) on
    /// PostgreSQL; only for a server the harness started.
    pub async fn database_bytes(&self) -> Result<(u64, u64)> {
        let Some(process) = &self.process else {
            bail!("the database size needs a server the harness starts (not --target-url)");
        };
        if let Some(path) = process.database.strip_prefix("sqlite://") {
            let size = |suffix: &str| std::fs::metadata(format!("{path}{suffix}")).map_or(0, |m| m.len());
            let wal = size("-wal");
            return Ok((size("") + wal, wal));
        }
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&process.database).await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut connection)
            .await?;
        Ok((u64::try_from(bytes).unwrap_or(0), 0))
    }

    /// Whether PostgreSQL's autovacuum is off (then the space of deleted rows is never
    /// reused); `false` on SQLite.
    pub async fn autovacuum_off(&self) -> Result<bool> {
        let Some(process) = self.process.as_ref().filter(|p| p.database.starts_with("postgres")) else {
            return Ok(false);
        };
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&process.database).await?;
        let setting: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(&mut connection).await?;
        Ok(setting == "off")
    }

    /// The child's pid, when the harness started the server.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    /// Whether the database is thrown away with the server (no need to clean up).
    pub fn fresh_database(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.fresh_database)
    }

    /// Fails if the child has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(process) = &mut self.process {
            if let Some(status) = process.child.try_wait()? {
                bail!("the server exited ({status}):\n{}", log_tail(process.dir.path()));
            }
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it takes too long; shows what the server logged.
    pub async fn stop(self) -> Result<()> {
        let Some(mut process) = self.process else { return Ok(()) };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &process.pid.to_string()])
            .status();
        if tokio::time::timeout(STOP_TIMEOUT, process.child.wait()).await.is_err() {
            eprintln!("  the server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it");
            process.child.kill().await?;
        }
        let log = std::fs::read_to_string(process.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        if !lines.is_empty() {
            eprintln!(
                "  the server logged {} line(s) at warn or above; the first:",
                lines.len()
            );
            for line in lines.iter().take(5) {
                eprintln!("    {line}");
            }
        }
        Ok(())
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Resident set size in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Peak resident set size over the process's life, in KiB (`VmHWM`).
pub fn hwm_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(name))?;
    line.split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we know of).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// Polls a process's RSS every 100 ms and keeps the highest value seen.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                if let Some(rss) = rss_kib(pid) {
                    seen.fetch_max(rss, Ordering::Relaxed);
                }
            }
        });
        Self { peak, task }
    }

    /// Stops polling; the peak in KiB.
    pub fn finish(self) -> u64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
