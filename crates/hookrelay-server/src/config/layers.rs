//! Layering: clap's parse of flags and `HOOKRELAY_*` variables, over the TOML file
//! given with `--config`, over the declared defaults. Clap knows where each value came
//! from (`ArgMatches::value_source`), so its parse splits into the given values (top)
//! and the defaults (bottom); figment puts the file in between and reports a bad value
//! with its key and where it came from.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::settings::{declared, Settings, StoreSettings};
use super::ConfigError;

/// The TOML config file, if one is given.
#[derive(Args, Clone, Debug, Default)]
pub struct ConfigFile {
    /// TOML file of settings, keyed by the HOOKRELAY_* variables' names without
    /// `HOOKRELAY_`, in lower case (see hookrelay.example.toml); flags and variables
    /// take precedence over it.
    #[arg(long = "config", env = "HOOKRELAY_CONFIG", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

impl Settings {
    /// These settings, as clap parsed them into `matches`, over `file`'s.
    pub fn load(self, file: &ConfigFile, matches: &ArgMatches) -> Result<Settings, ConfigError> {
        let layers = Layers::read(file.path.as_deref())?;
        Ok(Settings {
            store: layers.apply(self.store, matches)?,
            serve: layers.apply(self.serve, matches)?,
        })
    }
}

impl StoreSettings {
    /// These settings, as clap parsed them into `matches`, over `file`'s (whose other
    /// settings are ignored).
    pub fn load(self, file: &ConfigFile, matches: &ArgMatches) -> Result<StoreSettings, ConfigError> {
        Layers::read(file.path.as_deref())?.apply(self, matches)
    }
}

/// The config file's values, read and checked against the declared settings.
struct Layers {
    file: Option<Layer>,
    /// Settings whose values must not appear in messages.
    secrets: Vec<String>,
}

impl Layers {
    fn read(path: Option<&Path>) -> Result<Self, ConfigError> {
        let declared = declared();
        let secrets = declared
            .get_arguments()
            .filter(|arg| arg.is_hide_env_values_set())
            .map(|arg| arg.get_id().to_string())
            .collect();
        let file = match path {
            None => None,
            Some(path) => {
                let values = read_file(path)?;
                let unknown: Vec<String> = values
                    .keys()
                    .filter(|key| declared.get_arguments().all(|arg| arg.get_id() != key.as_str()))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(ConfigError::UnknownKeys {
                        path: path.to_owned(),
                        keys: unknown,
                    });
                }
                let metadata = Metadata::from("config file", Source::File(path.to_owned()));
                Some(Layer { metadata, values })
            }
        };
        Ok(Self { file, secrets })
    }

    /// `given`, which clap parsed into `matches`, with the file's values under the
    /// ones given by flag or variable and over the defaults.
    fn apply<T: Serialize + DeserializeOwned>(&self, given: T, matches: &ArgMatches) -> Result<T, ConfigError> {
        let (mut defaults, mut explicit) = (Dict::new(), Dict::new());
        for (key, value) in to_dict(&given) {
            match matches.value_source(&key) {
                Some(ValueSource::DefaultValue) => defaults.insert(key, value),
                Some(_) => explicit.insert(key, value),
                None => None,
            };
        }
        let mut figment = Figment::new().merge(Layer::named("the declared defaults", defaults));
        if let Some(file) = &self.file {
            figment = figment.merge(file.clone());
        }
        figment
            .merge(Layer::named("a flag or HOOKRELAY_* variable", explicit))
            .extract()
            .map_err(|error| self.explain(error))
    }

    fn explain(&self, error: figment::Error) -> ConfigError {
        let name = error.path.join(".");
        let secret = error.path.first().is_some_and(|key| self.secrets.contains(key));
        let reason = if secret {
            reason_without_value(&error.kind)
        } else {
            error.kind.to_string()
        };
        let origin = match error.metadata {
            Some(Metadata {
                source: Some(Source::File(path)),
                name,
                ..
            }) => format!("{name} {}", path.display()),
            Some(metadata) => metadata.name.into_owned(),
            None => "the settings".to_owned(),
        };
        ConfigError::InvalidValue { name, origin, reason }
    }
}

/// What is wrong with a secret setting's value, without the value.
fn reason_without_value(kind: &Kind) -> String {
    match kind {
        Kind::InvalidType(actual, expected) => format!("expected {expected}, found {}", type_of(actual)),
        _ => "is not a valid value".to_owned(),
    }
}

fn type_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Str(_) | Actual::Char(_) => "a string",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        _ => "another type",
    }
}

/// The file's settings. A syntax error is reported by position, without the line
/// it is on, which may hold a secret.
fn read_file(path: &Path) -> Result<Dict, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::ReadFile {
        path: path.to_owned(),
        reason,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| {
        let before = &text[..error.span().map_or(0, |span| span.start)];
        ConfigError::ParseFile {
            path: path.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().unwrap_or("").chars().count() + 1,
            reason: error.message().to_owned(),
        }
    })?;
    Ok(to_dict(&table))
}

/// A struct or table as figment's values, keyed by field.
fn to_dict(value: &impl Serialize) -> Dict {
    Value::serialize(value)
        .ok()
        .and_then(Value::into_dict)
        .expect("settings serialize to a dictionary")
}

/// One layer of values, named for messages.
#[derive(Clone)]
struct Layer {
    metadata: Metadata,
    values: Dict,
}

impl Layer {
    fn named(name: &'static str, values: Dict) -> Self {
        Self {
            metadata: Metadata::named(name),
            values,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::FromArgMatches;

    use super::*;

    /// `args` parsed as `serve` would, with no variable read, over a file holding `toml`.
    fn load(args: &[&str], toml: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookrelay.toml");
        std::fs::write(&path, toml).unwrap();
        let command = ConfigFile::augment_args(declared()).mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["serve", "--config", path.to_str().unwrap()].iter().chain(args))
            .unwrap();
        let file = ConfigFile::from_arg_matches(&matches).unwrap();
        Settings::from_arg_matches(&matches).unwrap().load(&file, &matches)
    }

    fn error(args: &[&str], toml: &str) -> String {
        load(args, toml).unwrap_err().to_string()
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let file = "listen = \"127.0.0.2:1\"\nattempt_timeout = \"7s\"\nevents = [\"invoice.paid\"]\n";
        let settings = load(&["--listen", "127.0.0.3:1"], file).unwrap();
        assert_eq!(settings.serve.listen, "127.0.0.3:1".parse().unwrap());
        assert_eq!(settings.serve.attempt_timeout.get(), Duration::from_secs(7));
        assert_eq!(settings.serve.events, ["invoice.paid"]);
        assert_eq!(settings.serve.connect_timeout.get(), Duration::from_secs(5));
        let settings = load(&["--events", "a.b,c.d"], file).unwrap();
        assert_eq!(settings.serve.events, ["a.b", "c.d"]);
        assert_eq!(settings.serve.listen, "127.0.0.2:1".parse().unwrap());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let message = error(&[], "lisen = \"127.0.0.1:1\"\n[delivery]\nretries = 3\n");
        assert!(message.contains("`delivery`, `lisen` are not a setting"), "{message}");
        assert!(message.contains("hookrelay.toml"), "{message}");
    }

    #[test]
    fn a_mistyped_value_names_its_key_and_the_file() {
        for (toml, expected) in [
            (
                "max_in_flight = \"many\"",
                "invalid setting `max_in_flight` in config file ",
            ),
            ("max_in_flight = 0", "expected a nonzero u32"),
            ("attempt_timeout = \"soon\"", "\"soon\" is not a positive duration"),
            ("retry_schedule = \"0s,later\"", "invalid setting `retry_schedule`"),
            (
                "allow_private_targets = \"yes\"",
                "invalid setting `allow_private_targets`",
            ),
        ] {
            let message = error(&[], toml);
            assert!(message.contains(expected), "{toml}: {message}");
            assert!(message.contains("hookrelay.toml"), "{toml}: {message}");
        }
    }

    #[test]
    fn secret_values_stay_out_of_file_errors() {
        for toml in [
            "bootstrap_token = 98765432198765",
            "master_key = [\"pw-secret\"]",
            "smtp_url = { url = \"pw-secret\" }",
            "database_url = \"postgres://u:pw-secret@db/x",
            "master_key = \"pw-secret\"\nmaster_key = \"pw-secret\"",
        ] {
            let message = error(&[], toml);
            assert!(
                !message.contains("pw-secret") && !message.contains("98765432198765"),
                "{message}"
            );
            assert!(message.contains("hookrelay.toml"), "{message}");
        }
        let message = error(&[], "bootstrap_token = 98765432198765");
        assert!(
            message.contains("`bootstrap_token`") && message.contains("found an integer"),
            "{message}"
        );
        let message = error(&[], "listen = \"127.0.0.1:80\"\nmaster_key = \"pw-secret");
        assert!(message.contains("line 2, column"), "{message}");
    }

    #[test]
    fn store_settings_take_their_keys_and_leave_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookrelay.toml");
        let command = ConfigFile::augment_args(StoreSettings::augment_args(clap::Command::new("migrate")))
            .mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["migrate", "--config", path.to_str().unwrap()])
            .unwrap();
        let load = |toml: &str| {
            std::fs::write(&path, toml).unwrap();
            let file = ConfigFile::from_arg_matches(&matches).unwrap();
            StoreSettings::from_arg_matches(&matches).unwrap().load(&file, &matches)
        };
        let store = load("database_url = \"sqlite://other.db\"\nattempt_timeout = \"not read\"\n").unwrap();
        assert_eq!(store.database_url.expose(), "sqlite://other.db");
        assert!(load("database_ur = \"sqlite://other.db\"").is_err());
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            Layers::read(Some(&missing)),
            Err(ConfigError::ReadFile { .. })
        ));
    }
}
