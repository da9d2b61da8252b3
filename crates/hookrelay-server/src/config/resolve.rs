//! Turning settings into the checked [`Config`]: the one place values are checked
//! against each other and against what the store, the catalog and the mail transport
//! accept. Defaults are clap's; nothing here fills one in, except what depends on
//! another setting (the key file beside the SQLite database).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::alert_limit::EmailLimit;
use hookrelay_core::node::Liveness;
use hookrelay_core::quota::Quotas;
use hookrelay_core::seal::MasterKey;
use hookrelay_core::{EventCatalog, SpaceId};
use hookrelay_store::{DatabaseLocation, OpenOptions};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::PositiveDuration;
use super::{Bootstrap, Config, ConfigError, MasterKeySource, Secret, ServeSettings, Settings, StoreSettings};
use crate::alerter::{AlerterConfig, SmtpSettings};
use crate::delivery::DeliveryConfig;
use crate::retention::RetentionConfig;
use crate::serving::HttpLimits;
use hookrelay_core::retention::RetentionPolicy;

/// How often an idle engine looks for work nobody told it about. On SQLite every
/// change comes through this process and wakes the engine at once, so this is a
/// safety net, not the way work is found.
const IDLE_POLL: Duration = Duration::from_secs(5);

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

impl Settings {
    /// Checks every value and builds the configuration.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let Settings { store, serve } = self;
        let (database, database_options, master_key) = store.resolve()?;
        let catalog =
            EventCatalog::with_extra(serve.events.iter().cloned()).map_err(|e| invalid("events", e.to_string()))?;
        Ok(Config {
            listen: serve.listen,
            metrics_listen: metrics_listen(&serve)?,
            database,
            database_options,
            master_key,
            bootstrap: bootstrap(&serve)?,
            catalog,
            allow_private_targets: serve.allow_private_targets,
            delivery: delivery(&serve)?,
            quotas: Quotas {
                max_webhooks: serve.max_webhooks_per_space.get(),
                max_publish_rate: serve.max_publish_rate.get(),
                max_fan_out: serve.max_fan_out.get(),
            },
            retention: retention(&serve)?,
            idempotency_window: serve.idempotency_window.get(),
            alerter: AlerterConfig {
                smtp: smtp(&serve)?,
                retry_schedule: serve.alert_retry_schedule.get().clone(),
                email_limit: EmailLimit {
                    per_window: serve.alert_emails_per_hour.get(),
                    window: serve.alert_email_window.get(),
                },
            },
            http: HttpLimits {
                header_timeout: serve.http_header_timeout.get(),
                request_timeout: serve.http_request_timeout.get(),
                max_connections: serve.max_connections.get(),
            },
        })
    }
}

/// The scrape's own address: not the API's (port 0 aside, which picks a free port).
fn metrics_listen(serve: &ServeSettings) -> Result<Option<SocketAddr>, ConfigError> {
    match serve.metrics_listen {
        Some(address) if address == serve.listen && address.port() != 0 => Err(invalid(
            "metrics_listen",
            format!("must differ from `listen` ({address}): leave it unset to serve /metrics on the API's address"),
        )),
        address => Ok(address),
    }
}

impl StoreSettings {
    fn resolve(self) -> Result<(DatabaseLocation, OpenOptions, MasterKeySource), ConfigError> {
        let database = database(&self.database_url)?;
        let master_key = match &self.master_key {
            Some(key) => MasterKeySource::Given(
                // The parse error says what a key looks like, never what was given.
                MasterKey::parse(key.expose()).map_err(|e| invalid("master_key", e.to_string()))?,
            ),
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
        let options = OpenOptions {
            max_connections: self.database_max_connections.get(),
            sqlite_synchronous: self.sqlite_synchronous.into(),
        };
        Ok((database, options, master_key))
    }
}

/// The database the URL names. Messages show the URL with its password masked, or
/// not at all when it does not parse (where a password would be is then unknown).
fn database(url: &Secret) -> Result<DatabaseLocation, ConfigError> {
    let shown = redacted_url(url.expose()).unwrap_or_else(|| "the URL".to_owned());
    let location = DatabaseLocation::parse(url.expose()).map_err(|_| {
        invalid(
            "database_url",
            format!("{shown} is not sqlite://PATH or postgres://USER@HOST/DB"),
        )
    })?;
    if let DatabaseLocation::Postgres(text) = &location {
        url::Url::parse(text).map_err(|e| invalid("database_url", format!("{shown} is not a valid URL: {e}")))?;
    }
    Ok(location)
}

/// `text` as a URL with its password (in the user info or a `password` parameter)
/// replaced by `***`; `None` if it is not a URL.
fn redacted_url(text: &str) -> Option<String> {
    let mut url = url::Url::parse(text).ok()?;
    if url.password().is_some() {
        url.set_password(Some("***")).ok()?;
    }
    if url.query_pairs().any(|(key, _)| key.eq_ignore_ascii_case("password")) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let masked = key.eq_ignore_ascii_case("password");
                (
                    key.into_owned(),
                    if masked { "***".to_owned() } else { value.into_owned() },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Some(format!("{:?}", url.as_str()))
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

fn bootstrap(serve: &ServeSettings) -> Result<Option<Bootstrap>, ConfigError> {
    let (space, token) = match (&serve.bootstrap_space_id, &serve.bootstrap_token) {
        (None, None) => return Ok(None),
        (Some(space), Some(token)) => (space, token.expose()),
        _ => {
            return Err(invalid(
                "bootstrap_space_id",
                "bootstrap_space_id and bootstrap_token must be set together",
            ))
        }
    };
    let space = SpaceId::parse(space).ok_or_else(|| {
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
    Ok(Some(Bootstrap {
        space,
        token: token.to_owned(),
    }))
}

fn delivery(serve: &ServeSettings) -> Result<DeliveryConfig, ConfigError> {
    let liveness = Liveness {
        heartbeat_interval: serve.heartbeat_interval.get(),
        node_timeout: serve.node_timeout.get(),
    };
    liveness.check().map_err(|reason| invalid("node_timeout", reason))?;
    Ok(DeliveryConfig {
        retry_schedule: serve.retry_schedule.get().clone(),
        attempt_timeout: serve.attempt_timeout.get(),
        connect_timeout: serve.connect_timeout.get(),
        max_in_flight_per_webhook: serve.max_in_flight_per_webhook.get(),
        max_in_flight: serve.max_in_flight.get(),
        allow_private_targets: serve.allow_private_targets,
        shutdown_grace: serve.shutdown_grace.get(),
        idle_poll: IDLE_POLL,
        alert_policy: AlertPolicy {
            failing_after_attempts: serve.alert_failing_after.get(),
            quiet_period: serve.alert_quiet_period.get(),
            disable_after: serve.auto_disable_after.get(),
        },
        liveness,
    })
}

fn retention(serve: &ServeSettings) -> Result<RetentionConfig, ConfigError> {
    let policy = RetentionPolicy {
        retention: serve.retention.get(),
        payload_retention: serve.payload_retention.map(PositiveDuration::get),
    };
    policy.check().map_err(|reason| invalid("payload_retention", reason))?;
    Ok(RetentionConfig {
        policy,
        interval: serve.cleaner_interval.get(),
    })
}

/// The mail server, checked as the mail transport will read it (lettre's messages
/// name what is wrong, never the URL).
fn smtp(serve: &ServeSettings) -> Result<Option<SmtpSettings>, ConfigError> {
    let Some(url) = &serve.smtp_url else {
        return Ok(None);
    };
    let url = url.expose();
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| invalid("smtp_url", e.to_string()))?;
    let from = &serve.smtp_from;
    Ok(Some(SmtpSettings {
        url: url.to_owned(),
        from: from
            .parse()
            .map_err(|_| invalid("smtp_from", format!("{from:?} is not an e-mail address")))?,
        timeout: serve.smtp_timeout.get(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeSettings;
    use std::path::Path;

    fn settings(database_url: &str) -> Settings {
        Settings {
            store: StoreSettings {
                database_url: database_url.parse().unwrap(),
                database_max_connections: 10.try_into().unwrap(),
                master_key: None,
                master_key_file: None,
                sqlite_synchronous: crate::config::SqliteSync::Full,
            },
            serve: ServeSettings::default(),
        }
    }

    fn error_of(settings: Settings) -> String {
        settings.resolve().unwrap_err().to_string()
    }

    #[test]
    fn the_declared_defaults_resolve() {
        let config = settings("sqlite://hookrelay.db").resolve().unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.delivery.attempt_timeout, Duration::from_secs(15));
        assert_eq!(config.delivery.alert_policy, AlertPolicy::default());
        assert!(matches!(config.master_key, MasterKeySource::File(path) if path == Path::new("hookrelay.db.key")));
        assert!(config.alerter.smtp.is_none() && config.bootstrap.is_none());
        assert_eq!(config.quotas, Quotas::default());
        assert_eq!(config.alerter.email_limit, EmailLimit::default());
        let http = HttpLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        };
        assert_eq!(config.http, http);
    }

    #[test]
    fn metrics_listen_must_differ_from_listen() {
        let mut same = settings("sqlite://hookrelay.db");
        same.serve.metrics_listen = Some(same.serve.listen);
        let error = error_of(same);
        assert!(
            error.contains("`metrics_listen`") && error.contains("must differ from `listen`"),
            "{error}"
        );
        let mut own = settings("sqlite://hookrelay.db");
        own.serve.metrics_listen = Some("127.0.0.1:9090".parse().unwrap());
        assert_eq!(
            own.resolve().unwrap().metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
    }

    #[test]
    fn database_errors_mask_the_password() {
        let error = error_of(settings("mysql://u:pw-secret@db/x"));
        assert!(
            error.contains("`database_url`") && error.contains("mysql://u:***@db/x"),
            "{error}"
        );
        let error = error_of(settings("postgres://u:pw-secret@db:port/x"));
        assert!(
            error.contains("`database_url`") && !error.contains("pw-secret"),
            "{error}"
        );
        let error = error_of(settings("nonsense pw-secret"));
        assert!(
            error.contains("`database_url`") && !error.contains("pw-secret"),
            "{error}"
        );
        assert_eq!(
            redacted_url("postgres://u@db/x?sslmode=require&password=pw-secret").unwrap(),
            "\"postgres://u@db/x?sslmode=require&password=***\""
        );
    }

    #[test]
    fn postgres_needs_a_given_master_key() {
        let error = error_of(settings("postgres://u@db/x"));
        assert!(error.contains("`master_key`") && error.contains("required"), "{error}");
        let mut with_key = settings("postgres://u@db/x");
        with_key.store.master_key = Some("not-a-key-pw-secret".parse().unwrap());
        let error = error_of(with_key);
        assert!(
            error.contains("`master_key`") && !error.contains("pw-secret"),
            "{error}"
        );
    }

    #[test]
    fn smtp_url_errors_do_not_show_the_url() {
        for (url, expected) in [
            ("smtps://u:pw-secret@host:notaport", "invalid port number"),
            ("http://u:pw-secret@host", "must start with smtp://"),
            ("smtp://u:pw-secret@host?tls=maybe", "Unknown scheme"),
        ] {
            let mut given = settings("sqlite://x.db");
            given.serve.smtp_url = Some(url.parse().unwrap());
            let error = error_of(given);
            assert!(error.contains("`smtp_url`") && error.contains(expected), "{error}");
            assert!(!error.contains("pw-secret"), "{error}");
        }
        let mut given = settings("sqlite://x.db");
        given.serve.smtp_url = Some("smtps://u:pw-secret@mail.example.com".parse().unwrap());
        let smtp = given.resolve().unwrap().alerter.smtp.unwrap();
        assert_eq!(smtp.url, "smtps://u:pw-secret@mail.example.com");
    }

    #[test]
    fn bootstrap_settings_come_together_and_are_checked() {
        let mut given = settings("sqlite://x.db");
        given.serve.bootstrap_space_id = Some("spc-x".into());
        assert!(error_of(given.clone()).contains("set together"));
        given.serve.bootstrap_token = Some("short pw-secret".parse().unwrap());
        let error = error_of(given.clone());
        assert!(
            error.contains("`bootstrap_token`") && !error.contains("pw-secret"),
            "{error}"
        );
        given.serve.bootstrap_token = Some("a-token-of-16-characters".parse().unwrap());
        let bootstrap = given.resolve().unwrap().bootstrap.unwrap();
        assert_eq!(bootstrap.space.as_str(), "spc-x");
    }

    #[test]
    fn durability_and_liveness_default_to_the_safe_choices() {
        let config = settings("sqlite://x.db").resolve().unwrap();
        assert_eq!(
            config.database_options.sqlite_synchronous,
            hookrelay_store::SqliteSynchronous::Full
        );
        assert_eq!(config.delivery.liveness, Liveness::default());
    }

    #[test]
    fn a_node_timeout_must_span_two_heartbeats() {
        let mut given = settings("sqlite://x.db");
        given.serve.heartbeat_interval = "2s".parse().unwrap();
        given.serve.node_timeout = "3s".parse().unwrap();
        let error = error_of(given.clone());
        assert!(
            error.contains("`node_timeout`") && error.contains("2 heartbeat intervals"),
            "{error}"
        );
        given.serve.node_timeout = "4s".parse().unwrap();
        assert_eq!(
            given.resolve().unwrap().delivery.liveness.fence_after(),
            Duration::from_millis(3200)
        );
    }

    #[test]
    fn extra_events_must_be_well_formed() {
        let mut given = settings("sqlite://x.db");
        given.serve.events = vec!["invoice.paid".into()];
        assert!(given.clone().resolve().unwrap().catalog.contains("invoice.paid"));
        given.serve.events = vec!["Not An Event".into()];
        assert!(error_of(given).contains("`events`"));
    }
}
