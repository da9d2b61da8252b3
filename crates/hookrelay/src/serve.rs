//! `hookrelay serve` and `hookrelay token create`: the commands that open the database.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hookrelay_core::{token, SpaceId};
use hookrelay_server::{App, Settings};
use tokio::net::TcpListener;

/// Where the data is and how it is sealed.
#[derive(Args)]
pub struct StoreArgs {
    /// TOML config file; flags and HOOKRELAY_* variables take precedence over it.
    #[arg(long, env = "HOOKRELAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Database URL: sqlite://PATH, or postgres://USER@HOST/DB for nodes sharing one
    /// database. [default: sqlite://hookrelay.db]
    #[arg(long = "database", env = "HOOKRELAY_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,

    /// PostgreSQL: connections this node opens at most. [default: 10]
    #[arg(long, env = "HOOKRELAY_DATABASE_MAX_CONNECTIONS", value_name = "N")]
    database_max_connections: Option<u32>,

    /// Master key sealing webhook secrets at rest: 32 bytes as base64 or 64 hex digits.
    /// Prefer the environment variable to the flag, which other users can see.
    #[arg(long, env = "HOOKRELAY_MASTER_KEY", value_name = "KEY", hide_env_values = true)]
    master_key: Option<String>,

    /// File holding the master key when none is given; created with a new key and mode
    /// 0600 if missing. [default: the database file's path plus `.key`]
    #[arg(long, env = "HOOKRELAY_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address the API listens on. [default: 127.0.0.1:8080]
    #[arg(long, env = "HOOKRELAY_LISTEN", value_name = "ADDR")]
    listen: Option<String>,

    #[command(flatten)]
    store: StoreArgs,

    /// A space to ensure at start, with --bootstrap-token.
    #[arg(long, env = "HOOKRELAY_BOOTSTRAP_SPACE_ID", value_name = "SPACE_ID")]
    bootstrap_space_id: Option<String>,

    /// An access token to ensure for the bootstrap space (at least 16 characters).
    #[arg(
        long,
        env = "HOOKRELAY_BOOTSTRAP_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    bootstrap_token: Option<String>,

    /// Allow webhook URLs on loopback, private and other non-public addresses.
    /// [default: false]
    #[arg(long, env = "HOOKRELAY_ALLOW_PRIVATE_TARGETS", value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    allow_private_targets: Option<bool>,

    /// Delays before each delivery attempt, comma-separated (ms, s, m, h, d); its
    /// length is the number of attempts. [default: 0s,5s,5m,30m,2h,5h,10h,14h,20h,24h]
    #[arg(long, env = "HOOKRELAY_RETRY_SCHEDULE", value_name = "DELAYS")]
    retry_schedule: Option<String>,

    /// Time an attempt may take until the receiver's status arrives. [default: 15s]
    #[arg(long, env = "HOOKRELAY_ATTEMPT_TIMEOUT", value_name = "DURATION")]
    attempt_timeout: Option<String>,

    /// Time connecting to a receiver may take. [default: 5s]
    #[arg(long, env = "HOOKRELAY_CONNECT_TIMEOUT", value_name = "DURATION")]
    connect_timeout: Option<String>,

    /// Attempts in flight to one webhook at most: the ceiling of a limit that starts at
    /// 10, rises while the receiver answers quickly and halves when it is overloaded.
    /// [default: 32]
    #[arg(long, env = "HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK", value_name = "N")]
    max_in_flight_per_webhook: Option<u32>,

    /// Attempts in flight in all at most. [default: 512]
    #[arg(long, env = "HOOKRELAY_MAX_IN_FLIGHT", value_name = "N")]
    max_in_flight: Option<u32>,

    /// On SIGTERM, time attempts in flight may take to finish. [default: 30s]
    #[arg(long, env = "HOOKRELAY_SHUTDOWN_GRACE", value_name = "DURATION")]
    shutdown_grace: Option<String>,

    /// Mail server for alert e-mails: smtp://host:port, smtps://user:pass@host, or
    /// smtp://host?tls=required for STARTTLS. Unset: e-mail is off (alerts are logged).
    #[arg(long, env = "HOOKRELAY_SMTP_URL", value_name = "URL", hide_env_values = true)]
    smtp_url: Option<String>,

    /// Sender of alert e-mails. [default: hookrelay <hookrelay@localhost>]
    #[arg(long, env = "HOOKRELAY_SMTP_FROM", value_name = "MAILBOX")]
    smtp_from: Option<String>,

    /// Time a conversation with the mail server may take. [default: 10s]
    #[arg(long, env = "HOOKRELAY_SMTP_TIMEOUT", value_name = "DURATION")]
    smtp_timeout: Option<String>,

    /// Consecutive failed attempts that make a webhook "failing". [default: 5]
    #[arg(long, env = "HOOKRELAY_ALERT_FAILING_AFTER", value_name = "N")]
    alert_failing_after: Option<u32>,

    /// At most one failing alert per webhook per this period. [default: 6h]
    #[arg(long, env = "HOOKRELAY_ALERT_QUIET_PERIOD", value_name = "DURATION")]
    alert_quiet_period: Option<String>,

    /// Disable a webhook whose attempts have all failed for this long. [default: 3d]
    #[arg(long, env = "HOOKRELAY_AUTO_DISABLE_AFTER", value_name = "DURATION")]
    auto_disable_after: Option<String>,

    /// Delays between attempts to send an alert; the last repeats until it is sent.
    /// [default: 5s,30s,2m,10m,30m,1h]
    #[arg(long, env = "HOOKRELAY_ALERT_RETRY_SCHEDULE", value_name = "DELAYS")]
    alert_retry_schedule: Option<String>,
}

impl StoreArgs {
    /// Flags and environment over the config file.
    fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        let given = Settings {
            database_url: self.database_url.clone(),
            database_max_connections: self.database_max_connections,
            master_key: self.master_key.clone(),
            master_key_file: self.master_key_file.clone(),
            ..Settings::default()
        };
        Ok(given.or(file))
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let given = Settings {
        listen: args.listen,
        bootstrap_space_id: args.bootstrap_space_id,
        bootstrap_token: args.bootstrap_token,
        allow_private_targets: args.allow_private_targets,
        retry_schedule: args.retry_schedule,
        attempt_timeout: args.attempt_timeout,
        connect_timeout: args.connect_timeout,
        max_in_flight_per_webhook: args.max_in_flight_per_webhook,
        max_in_flight: args.max_in_flight,
        shutdown_grace: args.shutdown_grace,
        smtp_url: args.smtp_url,
        smtp_from: args.smtp_from,
        smtp_timeout: args.smtp_timeout,
        alert_failing_after: args.alert_failing_after,
        alert_quiet_period: args.alert_quiet_period,
        auto_disable_after: args.auto_disable_after,
        alert_retry_schedule: args.alert_retry_schedule,
        ..Settings::default()
    };
    let config = given.or(args.store.settings()?).resolve()?;
    let app = App::open(&config).await.context("cannot start")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = shutdown_signal().context("cannot install signal handlers")?;
    let mut out = std::io::stdout().lock();
    if let Some(created) = &app.created_credentials {
        writeln!(
            out,
            "Created space {} with access token {}",
            created.space, created.token
        )?;
        writeln!(out, "The token is shown only once: keep it somewhere safe.")?;
    }
    if !app.email_enabled() {
        writeln!(
            out,
            "E-mail is off: alerts are recorded and logged, not sent (set HOOKRELAY_SMTP_URL to send them)."
        )?;
    }
    writeln!(out, "hookrelay listening on http://{}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    hookrelay_server::run(app, listener, shutdown).await?;
    Ok(())
}

pub async fn migrate(store: &StoreArgs) -> anyhow::Result<()> {
    let config = store.settings()?.resolve()?;
    hookrelay_server::open_store(&config).await.context("cannot migrate")?;
    println!("database is up to date");
    Ok(())
}

pub async fn create_token(space: &str, store: &StoreArgs) -> anyhow::Result<()> {
    let space = SpaceId::parse(space).with_context(|| {
        format!("{space:?} is not a space id: expected `spc-` followed by letters, digits, `_` or `-`")
    })?;
    let config = store.settings()?.resolve()?;
    let store = hookrelay_server::open_store(&config).await?;
    let token = token::generate();
    store.add_access_token(&space, &token::digest(&token)).await?;
    println!("{token}");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when it is first polled, so a signal sent right after start is not lost.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down");
    })
}
