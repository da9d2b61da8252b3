//! The settings, each declared once: its flag, `HOOKRELAY_*` variable, value name,
//! default and help come from clap's attributes, its config file key is its field name
//! (the variable's name without `HOOKRELAY_`, lowercased). A setting whose value may
//! hold a credential hides its variable's value (`hide_env_values`) and is a [`Secret`].

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{Args, FromArgMatches, ValueEnum};
use hookrelay_core::delivery::RetrySchedule;
use hookrelay_store::SqliteSynchronous;
use serde::{Deserialize, Serialize};

use super::values::{PositiveDuration, Schedule, Secret};

/// Where the data is and how it is sealed: what `serve`, `migrate` and `token create`
/// all need.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Database")]
pub struct StoreSettings {
    /// Database URL: sqlite://PATH, or postgres://USER@HOST/DB for nodes sharing one
    /// database (TLS as libpq's ?sslmode=verify-full&sslrootcert=PATH asks; see
    /// docs/cluster.md).
    #[arg(
        long = "database",
        env = "HOOKRELAY_DATABASE_URL",
        value_name = "URL",
        default_value = "sqlite://hookrelay.db",
        hide_env_values = true
    )]
    pub database_url: Secret,

    /// PostgreSQL: connections this node opens at most.
    #[arg(
        long,
        env = "HOOKRELAY_DATABASE_MAX_CONNECTIONS",
        value_name = "N",
        default_value = "10"
    )]
    pub database_max_connections: NonZeroU32,

    /// Master key sealing webhook secrets at rest: 32 bytes as base64 or 64 hex digits.
    /// Required with PostgreSQL, where every node must use the same key. Prefer the
    /// environment variable to the flag, which other users can see.
    #[arg(long, env = "HOOKRELAY_MASTER_KEY", value_name = "KEY", hide_env_values = true)]
    pub master_key: Option<Secret>,

    /// File holding the master key when none is given; created with a new key and mode
    /// 0600 if missing. [default: the SQLite database file's path plus `.key`]
    #[arg(long, env = "HOOKRELAY_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,

    /// SQLite: `full` syncs every commit to disk before it is answered, so an answered
    /// publish survives a power cut; `normal` is faster, but a power cut or an operating
    /// system crash may lose the last answered commits (a killed process loses nothing).
    #[arg(
        long,
        env = "HOOKRELAY_SQLITE_SYNCHRONOUS",
        value_name = "MODE",
        value_enum,
        default_value = "full"
    )]
    pub sqlite_synchronous: SqliteSync,
}

/// The `sqlite_synchronous` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Sync the write-ahead log at every commit.
    Full,
    /// Sync it at checkpoints only.
    Normal,
}

impl From<SqliteSync> for SqliteSynchronous {
    fn from(mode: SqliteSync) -> Self {
        match mode {
            SqliteSync::Full => Self::Full,
            SqliteSync::Normal => Self::Normal,
        }
    }
}

/// How `serve` serves: the API, deliveries and alerts.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Serving")]
pub struct ServeSettings {
    /// Address the API listens on.
    #[arg(
        long,
        env = "HOOKRELAY_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Time a client may take to send a request's headers, counted from when the
    /// server waits for them: on a kept-alive connection, from the previous answer, so
    /// this also closes idle connections. A slower client is disconnected.
    #[arg(
        long,
        env = "HOOKRELAY_HTTP_HEADER_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s"
    )]
    pub http_header_timeout: PositiveDuration,

    /// Time a request may take after its headers until its answer is ready, its body
    /// included; a slower one is answered 408 and its connection closed. A client that
    /// reads nothing of an answer for this long is disconnected too.
    #[arg(
        long,
        env = "HOOKRELAY_HTTP_REQUEST_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s"
    )]
    pub http_request_timeout: PositiveDuration,

    /// Client connections served at once at most; more wait, unaccepted, in the
    /// kernel's listen backlog until one closes.
    #[arg(long, env = "HOOKRELAY_MAX_CONNECTIONS", value_name = "N", default_value = "1024")]
    pub max_connections: NonZeroU32,
    /// Address serving only `GET /metrics` (Prometheus). Without it, `/metrics` is
    /// served on the API's address, without a token (no label names a tenant).
    #[arg(long, env = "HOOKRELAY_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// A space to ensure at start, with the bootstrap token. Without both, an empty
    /// database gets a new space and token, printed once.
    #[arg(long, env = "HOOKRELAY_BOOTSTRAP_SPACE_ID", value_name = "SPACE_ID")]
    pub bootstrap_space_id: Option<String>,

    /// An access token to ensure for the bootstrap space (at least 16 characters).
    #[arg(
        long,
        env = "HOOKRELAY_BOOTSTRAP_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub bootstrap_token: Option<Secret>,

    /// Allow webhook URLs on loopback, private and other non-public addresses.
    #[arg(
        long,
        env = "HOOKRELAY_ALLOW_PRIVATE_TARGETS",
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub allow_private_targets: bool,

    /// Event names added to the built-in Monime catalog, comma-separated (in the
    /// config file, a list: events = ["invoice.paid"]).
    #[arg(long, env = "HOOKRELAY_EVENTS", value_name = "NAMES", value_delimiter = ',')]
    #[serde(default)]
    pub events: Vec<String>,

    /// Delays before each delivery attempt, comma-separated (ms, s, m, h, d), each
    /// with ±10 % jitter; its length is the number of attempts (1 to 50, each delay at
    /// most 7d). A webhook's `retrySchedule` setting replaces it for that webhook.
    #[arg(
        long,
        env = "HOOKRELAY_RETRY_SCHEDULE",
        value_name = "DELAYS",
        default_value_t = Schedule::from(RetrySchedule::default())
    )]
    pub retry_schedule: Schedule,

    /// Time an attempt may take until the receiver's status arrives.
    #[arg(
        long,
        env = "HOOKRELAY_ATTEMPT_TIMEOUT",
        value_name = "DURATION",
        default_value = "15s"
    )]
    pub attempt_timeout: PositiveDuration,

    /// Time connecting to a receiver may take.
    #[arg(
        long,
        env = "HOOKRELAY_CONNECT_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s"
    )]
    pub connect_timeout: PositiveDuration,

    // 32 rather than ten: at ten, a single fast receiver falls behind a burst, its
    // deliveries lagging the publishes by about 1.5 s (p50), against about 10 ms at 32.
    /// Attempts in flight to one webhook at most: the ceiling of a limit that starts at
    /// 10 (or the ceiling, if lower), rises by one per round of successes answered
    /// within a second, and halves on a timeout, a connection refused or not made in
    /// time, 429 or 5xx (down to 1).
    #[arg(
        long,
        env = "HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK",
        value_name = "N",
        default_value = "32"
    )]
    pub max_in_flight_per_webhook: NonZeroU32,

    // Enough for 50 webhooks at ten each. Claims take at most the free slots, so with
    // wide fan-out a lower cap also means smaller, more frequent claims.
    /// Attempts in flight in all at most.
    #[arg(long, env = "HOOKRELAY_MAX_IN_FLIGHT", value_name = "N", default_value = "512")]
    pub max_in_flight: NonZeroU32,

    /// PostgreSQL: how often this node writes its heartbeat.
    #[arg(
        long,
        env = "HOOKRELAY_HEARTBEAT_INTERVAL",
        value_name = "DURATION",
        default_value = "1s"
    )]
    pub heartbeat_interval: PositiveDuration,

    /// PostgreSQL: how old this node's heartbeat may grow before other nodes take its
    /// deliveries over (at least two heartbeat intervals). The node stops starting
    /// attempts a fifth of this earlier, when it cannot write its heartbeat.
    #[arg(long, env = "HOOKRELAY_NODE_TIMEOUT", value_name = "DURATION", default_value = "5s")]
    pub node_timeout: PositiveDuration,

    /// On SIGTERM, time attempts in flight may take to finish.
    #[arg(
        long,
        env = "HOOKRELAY_SHUTDOWN_GRACE",
        value_name = "DURATION",
        default_value = "30s"
    )]
    pub shutdown_grace: PositiveDuration,

    /// Mail server for alert e-mails: smtp://host:port, smtps://user:pass@host, or
    /// smtp://host?tls=required for STARTTLS. Unset: e-mail is off (alerts are
    /// recorded and logged).
    #[arg(long, env = "HOOKRELAY_SMTP_URL", value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Sender of alert e-mails.
    #[arg(
        long,
        env = "HOOKRELAY_SMTP_FROM",
        value_name = "MAILBOX",
        default_value = "hookrelay <hookrelay@localhost>"
    )]
    pub smtp_from: String,

    /// Time a conversation with the mail server may take.
    #[arg(long, env = "HOOKRELAY_SMTP_TIMEOUT", value_name = "DURATION", default_value = "10s")]
    pub smtp_timeout: PositiveDuration,

    /// Consecutive failed attempts that make a webhook "failing" and alert its
    /// alertEmails.
    #[arg(long, env = "HOOKRELAY_ALERT_FAILING_AFTER", value_name = "N", default_value = "5")]
    pub alert_failing_after: NonZeroU32,

    /// At most one failing alert per webhook per this period.
    #[arg(
        long,
        env = "HOOKRELAY_ALERT_QUIET_PERIOD",
        value_name = "DURATION",
        default_value = "6h"
    )]
    pub alert_quiet_period: PositiveDuration,

    /// Disable a webhook whose attempts have all failed for this long.
    #[arg(
        long,
        env = "HOOKRELAY_AUTO_DISABLE_AFTER",
        value_name = "DURATION",
        default_value = "3d"
    )]
    pub auto_disable_after: PositiveDuration,

    /// Delays between attempts to send an alert e-mail; the last repeats until it is
    /// sent.
    #[arg(
        long,
        env = "HOOKRELAY_ALERT_RETRY_SCHEDULE",
        value_name = "DELAYS",
        default_value = "5s,30s,2m,10m,30m,1h"
    )]
    pub alert_retry_schedule: Schedule,

    /// Alert e-mails one address gets per `alert_email_window` at most; alerts past
    /// that are listed in one digest sent when the window closes. Counted in the
    /// database, across nodes and restarts.
    #[arg(
        long,
        env = "HOOKRELAY_ALERT_EMAILS_PER_HOUR",
        value_name = "N",
        default_value = "10"
    )]
    pub alert_emails_per_hour: NonZeroU32,

    /// The window `alert_emails_per_hour` counts in, opening with the first alert
    /// e-mail sent to an address.
    #[arg(
        long,
        env = "HOOKRELAY_ALERT_EMAIL_WINDOW",
        value_name = "DURATION",
        default_value = "1h"
    )]
    pub alert_email_window: PositiveDuration,

    /// Webhooks a space may have, unless an operator set the space's own (`hookrelay
    /// space set-quota`); one more is refused with 409 quota_exceeded.
    #[arg(
        long,
        env = "HOOKRELAY_MAX_WEBHOOKS_PER_SPACE",
        value_name = "N",
        default_value = "100"
    )]
    pub max_webhooks_per_space: NonZeroU32,

    /// Events a space may publish per second on each node, in bursts of up to twice as
    /// many, unless an operator set the space's own; more are refused with 429
    /// rate_limited and Retry-After. Each node counts its own publishes.
    #[arg(long, env = "HOOKRELAY_MAX_PUBLISH_RATE", value_name = "N", default_value = "100")]
    pub max_publish_rate: NonZeroU32,

    /// Deliveries one publish may create (webhooks subscribed to its event), unless an
    /// operator set the space's own; a publish with more subscribers is refused with 409
    /// quota_exceeded and nothing is stored.
    #[arg(long, env = "HOOKRELAY_MAX_FAN_OUT", value_name = "N", default_value = "1000")]
    pub max_fan_out: NonZeroU32,

    /// Events whose deliveries have all finished are deleted, with their deliveries and
    /// attempts, this long after they were published, unless an operator set the
    /// space's own (`hookrelay space set-retention`).
    #[arg(long, env = "HOOKRELAY_RETENTION", value_name = "DURATION", default_value = "30d")]
    pub retention: PositiveDuration,

    /// Events' data and their attempts' response bodies are dropped this long after
    /// publishing (once their deliveries have finished), the rest kept until
    /// `retention`; shorter than it. Unset: kept as long as the event.
    #[arg(long, env = "HOOKRELAY_PAYLOAD_RETENTION", value_name = "DURATION")]
    pub payload_retention: Option<PositiveDuration>,

    /// How often the cleaner looks for history past its retention.
    #[arg(
        long,
        env = "HOOKRELAY_CLEANER_INTERVAL",
        value_name = "DURATION",
        default_value = "60s"
    )]
    pub cleaner_interval: PositiveDuration,

    /// How long the first answer to a request made with an `Idempotency-Key` is replayed,
    /// and the key refused for a different request; the cleaner then forgets it. A change
    /// applies to keys saved after it.
    #[arg(
        long,
        env = "HOOKRELAY_IDEMPOTENCY_WINDOW",
        value_name = "DURATION",
        default_value = "24h"
    )]
    pub idempotency_window: PositiveDuration,
}

/// Every setting of `serve`.
#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Where the data is.
    #[command(flatten)]
    pub store: StoreSettings,
    /// How it is served.
    #[command(flatten)]
    pub serve: ServeSettings,
}

impl Default for ServeSettings {
    /// The declared defaults, with no flag or variable read.
    fn default() -> Self {
        let command = Self::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(["defaults"]);
        matches
            .and_then(|matches| Self::from_arg_matches(&matches))
            .expect("the declared defaults parse")
    }
}

/// Every setting as clap declares it (the file's keys are their ids).
pub(crate) fn declared() -> clap::Command {
    Settings::augment_args(clap::Command::new("settings"))
}
