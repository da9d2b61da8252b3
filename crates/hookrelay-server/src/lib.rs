//! hookrelay's server: configuration, the HTTP API and its error envelope.
//!
//! [`App::open`] prepares everything that can fail at start (master key, database,
//! bootstrap credentials); [`run`] serves the API on a listener the caller bound until
//! the caller's shutdown future completes.

pub mod alerter;
pub mod api;
pub mod config;
pub mod delivery;
pub mod error;
pub mod idempotency;
pub mod openapi;
pub mod request;
pub mod retention;
pub mod serving;
pub mod state;
pub mod telemetry;

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use hookrelay_core::access::{AccessToken, Scopes, TokenDraft};
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::{token, SpaceId};
use hookrelay_store::{Store, StoreError};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use config::{Config, ConfigError, Settings};
pub use error::ApiError;
pub use state::AppState;

/// What can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The master key file could not be read or created.
    #[error("master key file {path}: {reason}")]
    MasterKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("serving the API failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Credentials created on first start, to be shown to the operator once.
#[derive(Clone)]
pub struct NewCredentials {
    /// The new space.
    pub space: SpaceId,
    /// Its token.
    pub token: String,
}

/// A ready-to-serve hookrelay: store opened and migrated, bootstrap done.
pub struct App {
    state: AppState,
    delivery: delivery::DeliveryConfig,
    alerter: alerter::AlerterConfig,
    http: serving::HttpLimits,
    /// Where only the metrics are served, when not on the API's listener.
    metrics_listener: Option<TcpListener>,
    retention: retention::RetentionConfig,
    /// Held while serving a SQLite file, so a second `serve` on it is refused.
    _single_node: Option<std::fs::File>,
    /// Set when an empty database got a fresh space and token.
    pub created_credentials: Option<NewCredentials>,
}

impl App {
    /// Opens the store (creating it and the master key file if needed) and ensures the
    /// bootstrap space and token.
    pub async fn open(config: &Config) -> Result<Self, ServerError> {
        let single_node = lock_single_node(&config.database)?;
        let store = open_store(config).await?;
        // Here rather than in `open_store`, which `hookrelay token create` also uses
        // while a server may be running on the same database.
        let released = store.release_orphaned_claims().await?;
        if released > 0 {
            tracing::info!(released, "released claims held by a previous run");
        }
        let created_credentials = bootstrap(store.as_ref(), config).await?;
        let wakeup = delivery::Wakeup::default();
        Ok(Self {
            state: AppState {
                store,
                catalog: Arc::new(config.catalog.clone()),
                allow_private_targets: config.allow_private_targets,
                engine: delivery::EngineStatus::new(wakeup.clone()),
                wakeup,
                tokens: state::TokenCache::default(),
                quotas: config.quotas,
                publish_limits: state::PublishLimits::default(),
                metrics_on_api: config.metrics_listen.is_none(),
                idempotency_window: config.idempotency_window,
            },
            delivery: config.delivery.clone(),
            alerter: config.alerter.clone(),
            http: config.http,
            metrics_listener: None,
            retention: config.retention,
            _single_node: single_node,
            created_credentials,
        })
    }

    /// The shared state, for tools built on the same store.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves `GET /metrics` on `listener` (bound by the caller to `metrics_listen`)
    /// rather than on the API's.
    pub fn serve_metrics_on(&mut self, listener: TcpListener) {
        self.metrics_listener = Some(listener);
    }

    /// Whether alert e-mails will be sent (an SMTP server is configured).
    pub fn email_enabled(&self) -> bool {
        self.alerter.smtp.is_some()
    }
}

/// A SQLite file serves one process: at start it takes back every claim, which would
/// steal a running server's work. An exclusive lock on `<database>.lock`, held while
/// serving, refuses a second `serve` on the same file.
fn lock_single_node(database: &hookrelay_store::DatabaseLocation) -> Result<Option<std::fs::File>, ServerError> {
    let hookrelay_store::DatabaseLocation::Sqlite(path) = database else {
        return Ok(None);
    };
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::Config(ConfigError::Invalid {
            name: "database_url",
            reason: format!(
                "another hookrelay serve is using {}; SQLite serves one node (use PostgreSQL for several)",
                path.display()
            ),
        })),
        Err(std::fs::TryLockError::Error(error)) => Err(ServerError::Io(error)),
    }
}

/// Opens the configured store with the configured master key.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    let key = match &config.master_key {
        config::MasterKeySource::Given(key) => key.clone(),
        config::MasterKeySource::File(path) => load_or_create_key_file(path)?,
    };
    Ok(hookrelay_store::open_with(&config.database, SecretCipher::new(&key), &config.database_options).await?)
}

fn load_or_create_key_file(path: &Path) -> Result<MasterKey, ServerError> {
    let fail = |reason: String| ServerError::MasterKeyFile {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::parse(&text).map_err(|e| fail(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::OpenOptionsExt;
            let key = MasterKey::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| fail(e.to_string()))?;
            writeln!(file, "{}", key.to_base64()).map_err(|e| fail(e.to_string()))?;
            file.sync_all().map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "created a new master key file; back it up with the database");
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

async fn bootstrap(store: &dyn Store, config: &Config) -> Result<Option<NewCredentials>, ServerError> {
    if let Some(bootstrap) = &config.bootstrap {
        add_bootstrap_token(store, &bootstrap.space, &bootstrap.token).await?;
        return Ok(None);
    }
    if store.has_spaces().await? {
        return Ok(None);
    }
    let credentials = NewCredentials {
        space: SpaceId::generate(),
        token: token::generate(),
    };
    add_bootstrap_token(store, &credentials.space, &credentials.token).await?;
    Ok(Some(credentials))
}

/// Ensures a bootstrap token (with every scope) for its space; one already recorded is
/// left as it is, with the scopes it has.
async fn add_bootstrap_token(store: &dyn Store, space: &SpaceId, secret: &str) -> Result<(), ServerError> {
    let draft = TokenDraft {
        name: "bootstrap".to_owned(),
        scopes: Scopes::all(),
        expire_time: None,
    };
    let record = AccessToken::of_secret(secret, space.clone(), draft, hookrelay_core::Timestamp::now());
    store.add_token(&record, &token::digest(secret), None).await?;
    Ok(())
}

/// The API as a router, for serving or for tests.
pub fn router(state: AppState) -> axum::Router {
    api::router()
        .layer(DefaultBodyLimit::max(request::MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a request handler panicked".into()).into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` and delivers events until `shutdown` completes; then
/// stops taking requests and claiming work, and lets requests and attempts in flight
/// finish (attempts within the grace period).
pub async fn run(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let App {
        state,
        delivery,
        alerter,
        http,
        metrics_listener,
        retention,
        ..
    } = app;
    telemetry::metrics::install();
    let metrics_upkeep = tokio::spawn(telemetry::metrics::upkeep());
    let metrics_server = metrics_listener.map(|listener| {
        let router = api::metrics::own_listener(state.store.clone());
        // Under the API's limits too: a slow scraper holds a connection no longer.
        tokio::spawn(serving::serve(listener, router, http, std::future::pending()))
    });
    let alerts = delivery::Wakeup::default();
    let email_window = alerter.email_limit.window;
    let alerter = alerter::Alerter::start(state.store.clone(), alerter, alerts.clone())
        .map_err(|e| ServerError::Io(std::io::Error::other(e)))?;
    let engine = delivery::Engine::start(state.store.clone(), delivery, state.engine.clone(), alerts);
    // Work stored by other nodes wakes this one (PostgreSQL); on SQLite this process
    // stores all work and wakes its own engine.
    let wakeup = state.wakeup.clone();
    state.store.watch_for_work(Arc::new(move || wakeup.wake())).await?;
    // Deliveries left due by a previous run start at once.
    state.wakeup.wake();
    let pruner = tokio::spawn(prune_hourly(state.store.clone(), email_window));
    let cleaner = retention::Cleaner::new(state.store.clone(), retention);
    let cleaner = tokio::spawn(cleaner.run_forever());
    // A store that breaks for good (SQLite's writer thread died) stops the server as a
    // shutdown signal would, and the process exits with the store's error rather than
    // answer requests it can no longer keep.
    let (broke, broken) = tokio::sync::oneshot::channel();
    let store = state.store.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            error = store.broken() => {
                tracing::error!(error = %error_chain(&error), "the database cannot be written to any more; stopping");
                let _ = broke.send(error);
            }
        }
    };
    serving::serve(listener, router(state), http, stop).await;
    pruner.abort();
    cleaner.abort();
    metrics_upkeep.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    engine.shutdown().await;
    alerter.shutdown().await;
    if let Ok(error) = broken.await {
        return Err(ServerError::Store(error));
    }
    Ok(())
}

pub use hookrelay_core::error_chain;

/// Forgets closed alert e-mail windows once an hour so their table stays small
/// (expired idempotency keys are the retention cleaner's).
async fn prune_hourly(store: Arc<dyn Store>, email_window: std::time::Duration) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let now = hookrelay_core::Timestamp::now();
        // A window that opened a window's length ago has closed.
        if let Err(error) = store.prune_alert_email_windows(now.minus(email_window)).await {
            tracing::warn!(%error, "pruning alert e-mail windows failed");
        }
    }
}
