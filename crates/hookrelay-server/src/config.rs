//! Configuration. Every setting can come from a command-line flag, a `HOOKRELAY_*`
//! environment variable or the TOML file given with `--config`, in that order of
//! precedence. The binary fills [`Settings`] from flags and environment, this module
//! merges the file underneath and checks everything once, at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hookrelay_core::seal::MasterKey;
use hookrelay_core::{EventCatalog, SpaceId};
use hookrelay_store::DatabaseLocation;
use serde::Deserialize;

/// Default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hookrelay.db";

/// Settings as given, before defaults and checks. Field names are the TOML keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the API listens on (`HOOKRELAY_LISTEN`).
    pub listen: Option<String>,
    /// Database URL, `sqlite://PATH` (`HOOKRELAY_DATABASE_URL`).
    pub database_url: Option<String>,
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
}

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
            master_key: self.master_key.or(fallback.master_key),
            master_key_file: self.master_key_file.or(fallback.master_key_file),
            bootstrap_space_id: self.bootstrap_space_id.or(fallback.bootstrap_space_id),
            bootstrap_token: self.bootstrap_token.or(fallback.bootstrap_token),
            allow_private_targets: self.allow_private_targets.or(fallback.allow_private_targets),
            events: self.events.or(fallback.events),
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
            None => MasterKeySource::File(self.master_key_file.unwrap_or_else(|| default_key_file(&database))),
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
        Ok(Config {
            listen,
            database,
            master_key,
            bootstrap,
            catalog,
            allow_private_targets: self.allow_private_targets.unwrap_or(false),
        })
    }
}

fn default_key_file(database: &DatabaseLocation) -> PathBuf {
    match database {
        DatabaseLocation::Sqlite(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".key");
            PathBuf::from(name)
        }
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
    /// Master key.
    pub master_key: MasterKeySource,
    /// Space and token to ensure at start.
    pub bootstrap: Option<Bootstrap>,
    /// Known events.
    pub catalog: EventCatalog,
    /// Whether private and loopback targets are allowed.
    pub allow_private_targets: bool,
}
