//! Configuration. Every setting can come from a command-line flag, a `HOOKRELAY_*`
//! environment variable or the TOML file given with `--config`, in that order of
//! precedence. The binary fills [`Settings`] from flags and environment, this module
//! merges the file underneath and checks everything once, at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::{parse_duration, RetrySchedule};

use hookrelay_core::seal::MasterKey;
use hookrelay_core::{EventCatalog, SpaceId};
use hookrelay_store::{DatabaseLocation, OpenOptions};
use serde::Deserialize;

use crate::alerter::{AlerterConfig, SmtpSettings};
use crate::delivery::DeliveryConfig;

/// Default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hookrelay.db";

/// Settings as given, before defaults and checks. Field names are the TOML keys.
/// Not `Debug`: it holds the master key, the bootstrap token and SMTP credentials.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the API listens on (`HOOKRELAY_LISTEN`).
    pub listen: Option<String>,
    /// Database URL, `sqlite://PATH` or `postgres://…` (`HOOKRELAY_DATABASE_URL`).
    pub database_url: Option<String>,
    /// PostgreSQL: connections this node opens at most (`HOOKRELAY_DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: Option<u32>,
    /// The master key sealing secrets at rest, 32 bytes as base64 or hex (`HOOKRELAY_MASTER_KEY`).
    pub master_key: Option<String>,
    /// Where the master key is kept when `master_key` is not given
    /// (`HOOKRELAY_MASTER_KEY_FILE`; default: the database file's path plus `.key`).
    pub master_key_file: Option<PathBuf>,
    /// A space to create at start (`HOOKRELAY_BOOTSTRAP_SPACE_ID`).
    pub bootstrap_space_id: Option<String>,
    /// A token for that space (`HOOKRELAY_BOOTSTRAP_TOKEN`).
    pub bootstrap_token: Option<String>,
    /// Allow webhook URLs on private and loopback addresses (`HOOKRELAY_ALLOW_PRIVATE_TARGETS`).
    pub allow_private_targets: Option<bool>,
    /// Event names added to the built-in catalog (config file only).
    pub events: Option<Vec<String>>,
    /// Delays before each attempt, e.g. `0s,5s,5m` (`HOOKRELAY_RETRY_SCHEDULE`).
    pub retry_schedule: Option<String>,
    /// Time an attempt may take, e.g. `15s` (`HOOKRELAY_ATTEMPT_TIMEOUT`).
    pub attempt_timeout: Option<String>,
    /// Time connecting may take, e.g. `5s` (`HOOKRELAY_CONNECT_TIMEOUT`).
    pub connect_timeout: Option<String>,
    /// Attempts in flight to one webhook at most (`HOOKRELAY_MAX_IN_FLIGHT_PER_WEBHOOK`).
    pub max_in_flight_per_webhook: Option<u32>,
    /// Attempts in flight in all at most (`HOOKRELAY_MAX_IN_FLIGHT`).
    pub max_in_flight: Option<u32>,
    /// Time attempts in flight may take to finish at shutdown (`HOOKRELAY_SHUTDOWN_GRACE`).
    pub shutdown_grace: Option<String>,
    /// Mail server for alerts, e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@host`
    /// (`HOOKRELAY_SMTP_URL`). Unset: e-mail is off.
    pub smtp_url: Option<String>,
    /// Sender of alert e-mails (`HOOKRELAY_SMTP_FROM`).
    pub smtp_from: Option<String>,
    /// Time a conversation with the mail server may take (`HOOKRELAY_SMTP_TIMEOUT`).
    pub smtp_timeout: Option<String>,
    /// Consecutive failed attempts that make a webhook failing (`HOOKRELAY_ALERT_FAILING_AFTER`).
    pub alert_failing_after: Option<u32>,
    /// At most one failing alert per webhook per this period (`HOOKRELAY_ALERT_QUIET_PERIOD`).
    pub alert_quiet_period: Option<String>,
    /// Disable a webhook with attempts but no success for this long (`HOOKRELAY_AUTO_DISABLE_AFTER`).
    pub auto_disable_after: Option<String>,
    /// Delays between attempts to send an alert; the last repeats (`HOOKRELAY_ALERT_RETRY_SCHEDULE`).
    pub alert_retry_schedule: Option<String>,
}

/// Default sender of alert e-mails.
pub const DEFAULT_SMTP_FROM: &str = "hookrelay <hookrelay@localhost>";

/// Default time an attempt may take.
pub const DEFAULT_ATTEMPT_TIMEOUT: &str = "15s";
/// Default time connecting may take.
pub const DEFAULT_CONNECT_TIMEOUT: &str = "5s";
/// Default ceiling of a webhook's adaptive limit on attempts in flight (it starts at
/// ten and rises one per round of quick successes). At ten, a single fast receiver fell
/// behind a burst: W1's deliveries lagged its publishes by a second and a half (p50),
/// against about ten milliseconds at 32 on the same machine.
pub const DEFAULT_MAX_IN_FLIGHT_PER_WEBHOOK: u32 = 32;
/// Default cap of attempts in flight in all: enough for 50 webhooks at ten each. Claims
/// take at most the free slots, so with wide fan-out (100 webhooks) a lower cap also
/// meant smaller, more frequent claims (W3 about 12 % slower at 256).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 512;
/// Default shutdown grace period.
pub const DEFAULT_SHUTDOWN_GRACE: &str = "30s";

/// A setting that is missing, malformed or inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {source}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A setting has a bad value.
    #[error("invalid setting `{name}`: {reason}")]
    Invalid {
        /// The setting's TOML name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// These settings, with `fallback`'s filling the gaps.
    pub fn or(self, fallback: Settings) -> Settings {
        Settings {
            listen: self.listen.or(fallback.listen),
            database_url: self.database_url.or(fallback.database_url),
            database_max_connections: self.database_max_connections.or(fallback.database_max_connections),
            master_key: self.master_key.or(fallback.master_key),
            master_key_file: self.master_key_file.or(fallback.master_key_file),
            bootstrap_space_id: self.bootstrap_space_id.or(fallback.bootstrap_space_id),
            bootstrap_token: self.bootstrap_token.or(fallback.bootstrap_token),
            allow_private_targets: self.allow_private_targets.or(fallback.allow_private_targets),
            events: self.events.or(fallback.events),
            retry_schedule: self.retry_schedule.or(fallback.retry_schedule),
            attempt_timeout: self.attempt_timeout.or(fallback.attempt_timeout),
            connect_timeout: self.connect_timeout.or(fallback.connect_timeout),
            max_in_flight_per_webhook: self.max_in_flight_per_webhook.or(fallback.max_in_flight_per_webhook),
            max_in_flight: self.max_in_flight.or(fallback.max_in_flight),
            shutdown_grace: self.shutdown_grace.or(fallback.shutdown_grace),
            smtp_url: self.smtp_url.or(fallback.smtp_url),
            smtp_from: self.smtp_from.or(fallback.smtp_from),
            smtp_timeout: self.smtp_timeout.or(fallback.smtp_timeout),
            alert_failing_after: self.alert_failing_after.or(fallback.alert_failing_after),
            alert_quiet_period: self.alert_quiet_period.or(fallback.alert_quiet_period),
            auto_disable_after: self.auto_disable_after.or(fallback.auto_disable_after),
            alert_retry_schedule: self.alert_retry_schedule.or(fallback.alert_retry_schedule),
        }
    }

    /// Applies defaults and checks every value.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen
            .parse()
            .map_err(|_| invalid("listen", format!("{listen:?} is not an address such as 127.0.0.1:8080")))?;
        let database_url = self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL);
        let database = DatabaseLocation::parse(database_url).map_err(|e| invalid("database_url", e.to_string()))?;
        let master_key = match self.master_key.as_deref() {
            Some(text) => {
                MasterKeySource::Given(MasterKey::parse(text).map_err(|e| invalid("master_key", e.to_string()))?)
            }
            None => match self.master_key_file.or_else(|| default_key_file(&database)) {
                Some(file) => MasterKeySource::File(file),
                // A key file made by one node would not open what another node sealed.
                None => {
                    return Err(invalid(
                        "master_key",
                        "is required with PostgreSQL (HOOKRELAY_MASTER_KEY): every node must use the same key",
                    ))
                }
            },
        };
        let database_options = OpenOptions {
            max_connections: at_least_one(
                "database_max_connections",
                self.database_max_connections
                    .unwrap_or(OpenOptions::default().max_connections),
            )?,
        };
        let bootstrap = match (self.bootstrap_space_id, self.bootstrap_token) {
            (None, None) => None,
            (Some(space), Some(token)) => {
                let space = SpaceId::parse(&space).ok_or_else(|| {
                    invalid(
                        "bootstrap_space_id",
                        "must be `spc-` followed by letters, digits, `_` or `-`",
                    )
                })?;
                if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid(
                        "bootstrap_token",
                        "must be at least 16 characters without spaces",
                    ));
                }
                Some(Bootstrap { space, token })
            }
            _ => {
                return Err(invalid(
                    "bootstrap_space_id",
                    "bootstrap_space_id and bootstrap_token must be set together",
                ))
            }
        };
        let catalog =
            EventCatalog::with_extra(self.events.unwrap_or_default()).map_err(|e| invalid("events", e.to_string()))?;
        let allow_private_targets = self.allow_private_targets.unwrap_or(false);
        let retry_schedule = match self.retry_schedule.as_deref() {
            None => RetrySchedule::default(),
            Some(text) => RetrySchedule::parse(text).map_err(|e| invalid("retry_schedule", e.to_string()))?,
        };
        let delivery = DeliveryConfig {
            retry_schedule,
            attempt_timeout: duration(
                "attempt_timeout",
                self.attempt_timeout.as_deref(),
                DEFAULT_ATTEMPT_TIMEOUT,
            )?,
            connect_timeout: duration(
                "connect_timeout",
                self.connect_timeout.as_deref(),
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            max_in_flight_per_webhook: at_least_one(
                "max_in_flight_per_webhook",
                self.max_in_flight_per_webhook
                    .unwrap_or(DEFAULT_MAX_IN_FLIGHT_PER_WEBHOOK),
            )?,
            max_in_flight: at_least_one("max_in_flight", self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT))?,
            allow_private_targets,
            shutdown_grace: duration("shutdown_grace", self.shutdown_grace.as_deref(), DEFAULT_SHUTDOWN_GRACE)?,
            idle_poll: IDLE_POLL,
            alert_policy: AlertPolicy {
                failing_after_attempts: at_least_one("alert_failing_after", self.alert_failing_after.unwrap_or(5))?,
                quiet_period: duration("alert_quiet_period", self.alert_quiet_period.as_deref(), "6h")?,
                disable_after: duration("auto_disable_after", self.auto_disable_after.as_deref(), "3d")?,
            },
        };
        let smtp = match self.smtp_url {
            None => None,
            Some(url) => {
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
                }
                let from = self.smtp_from.as_deref().unwrap_or(DEFAULT_SMTP_FROM);
                Some(SmtpSettings {
                    url,
                    from: from
                        .parse()
                        .map_err(|_| invalid("smtp_from", format!("{from:?} is not an e-mail address")))?,
                    timeout: duration("smtp_timeout", self.smtp_timeout.as_deref(), "10s")?,
                })
            }
        };
        let alerter = AlerterConfig {
            smtp,
            retry_schedule: match self.alert_retry_schedule.as_deref() {
                None => RetrySchedule::parse("5s,30s,2m,10m,30m,1h").expect("a valid default"),
                Some(text) => RetrySchedule::parse(text).map_err(|e| invalid("alert_retry_schedule", e.to_string()))?,
            },
        };
        Ok(Config {
            listen,
            database,
            database_options,
            master_key,
            bootstrap,
            catalog,
            allow_private_targets,
            delivery,
            alerter,
        })
    }
}

/// How often an idle engine looks for work nobody told it about. On SQLite every
/// change comes through this process and wakes the engine at once, so this is a
/// safety net, not the way work is found.
const IDLE_POLL: Duration = Duration::from_secs(5);

fn duration(name: &'static str, given: Option<&str>, default: &str) -> Result<Duration, ConfigError> {
    let text = given.unwrap_or(default);
    parse_duration(text).filter(|d| !d.is_zero()).ok_or_else(|| {
        invalid(
            name,
            format!("{text:?} is not a positive duration such as 500ms, 15s, 5m"),
        )
    })
}

fn at_least_one(name: &'static str, value: u32) -> Result<u32, ConfigError> {
    if value == 0 {
        return Err(invalid(name, "must be at least 1"));
    }
    Ok(value)
}

/// The key file beside an SQLite database; PostgreSQL has no such place.
fn default_key_file(database: &DatabaseLocation) -> Option<PathBuf> {
    match database {
        DatabaseLocation::Sqlite(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".key");
            Some(PathBuf::from(name))
        }
        DatabaseLocation::Postgres(_) => None,
    }
}

/// Where the master key comes from.
#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// Given directly.
    Given(MasterKey),
    /// Read from this file, which is created (mode 0600) with a new key if missing.
    File(PathBuf),
}

/// A space and token to ensure at start.
#[derive(Clone)]
pub struct Bootstrap {
    /// The space.
    pub space: SpaceId,
    /// The token, in clear: only its digest is stored.
    pub token: String,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("space", &self.space)
            .finish_non_exhaustive()
    }
}

/// Checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// API address.
    pub listen: SocketAddr,
    /// Database.
    pub database: DatabaseLocation,
    /// How to open it.
    pub database_options: OpenOptions,
    /// Master key.
    pub master_key: MasterKeySource,
    /// Space and token to ensure at start.
    pub bootstrap: Option<Bootstrap>,
    /// Known events.
    pub catalog: EventCatalog,
    /// Whether private and loopback targets are allowed.
    pub allow_private_targets: bool,
    /// How deliveries are made.
    pub delivery: DeliveryConfig,
    /// How alerts are sent.
    pub alerter: AlerterConfig,
}
