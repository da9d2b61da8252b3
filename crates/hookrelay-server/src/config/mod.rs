//! Configuration. Every setting is declared once, in `settings.rs`: a command-line flag,
//! a `HOOKRELAY_*` environment variable and a key of the TOML file given with
//! `--config`, in that order of precedence over its default. The binary parses flags
//! and environment with clap, [`Settings::load`] layers the file in between, and
//! [`Settings::resolve`] checks everything once, at start, into a [`Config`].

mod layers;
mod resolve;
mod settings;
mod values;

#[cfg(test)]
mod example_file;

use std::net::SocketAddr;
use std::path::PathBuf;

use hookrelay_core::quota::Quotas;
use hookrelay_core::seal::MasterKey;
use hookrelay_core::{EventCatalog, SpaceId};
use hookrelay_store::{DatabaseLocation, OpenOptions};

use crate::alerter::AlerterConfig;
use crate::delivery::DeliveryConfig;
use crate::serving::HttpLimits;

pub use layers::ConfigFile;
pub use settings::{ServeSettings, Settings, SqliteSync, StoreSettings};
pub use values::{PositiveDuration, Schedule, Secret};

/// A setting that is missing, malformed or inconsistent. No variant holds a secret
/// setting's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not a source: it would print twice).
        reason: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("invalid config file {path}: line {line}, column {column}: {reason}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Where, from 1.
        line: usize,
        /// Where in the line, from 1.
        column: usize,
        /// What is wrong there.
        reason: String,
    },
    /// The config file has keys that are not settings.
    #[error(
        "config file {path}: {} not a setting (see hookrelay serve --help)",
        unknown_keys(keys)
    )]
    UnknownKeys {
        /// The file.
        path: PathBuf,
        /// The keys.
        keys: Vec<String>,
    },
    /// A value does not have its setting's type or form.
    #[error("invalid setting `{name}` in {origin}: {reason}")]
    InvalidValue {
        /// The setting's key.
        name: String,
        /// Where the value came from: the config file, a flag or variable.
        origin: String,
        /// What is wrong with it.
        reason: String,
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

fn unknown_keys(keys: &[String]) -> String {
    let quoted: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
    match quoted.as_slice() {
        [one] => format!("{one} is"),
        many => format!("{} are", many.join(", ")),
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
    /// The scrape's own address, if it has one.
    pub metrics_listen: Option<SocketAddr>,
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
    /// How slow clients and open connections are bounded.
    pub http: HttpLimits,
    /// The quotas of spaces without their own.
    pub quotas: Quotas,
    /// How long history is kept, and how often the cleaner runs.
    pub retention: crate::retention::RetentionConfig,
    /// How long an `Idempotency-Key`'s first answer is replayed.
    pub idempotency_window: std::time::Duration,
}
