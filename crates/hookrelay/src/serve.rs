//! `hookrelay serve` and `hookrelay migrate`, and the database settings every command
//! that opens the database takes (`token`, `space`).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgMatches, Args};
use hookrelay_server::config::{ConfigFile, ServeSettings, StoreSettings};
use hookrelay_server::{App, Config, ServerError, Settings};
use hookrelay_store::Store;
use tokio::net::TcpListener;

/// Where the data is and how it is sealed.
#[derive(Args)]
pub struct StoreArgs {
    #[command(flatten)]
    config: ConfigFile,
    #[command(flatten)]
    store: StoreSettings,
}

impl StoreArgs {
    /// The store's settings over the config file; the rest as declared.
    pub fn resolve(self, matches: &ArgMatches) -> anyhow::Result<Config> {
        let store = self.store.load(&self.config, matches)?;
        let serve = ServeSettings::default();
        Ok(Settings { store, serve }.resolve()?)
    }

    /// Opens (and migrates) the database, as an operator's command does while a server
    /// may be running on it.
    pub async fn open(self, matches: &ArgMatches) -> anyhow::Result<Arc<dyn Store>> {
        let config = self.resolve(matches)?;
        hookrelay_server::open_store(&config).await.map_err(naming_the_database)
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigFile,
    #[command(flatten)]
    settings: Settings,
}

/// `matches` is what clap parsed `args` from: it knows which values were given.
pub async fn serve(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let config = args.settings.load(&args.config, matches)?.resolve()?;
    let mut app = App::open(&config)
        .await
        .map_err(naming_the_database)
        .context("cannot start")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics_address = match config.metrics_listen {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (metrics_listen)"))?;
            let bound = listener.local_addr()?;
            app.serve_metrics_on(listener);
            Some(bound)
        }
        None => None,
    };
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
    if let Some(address) = metrics_address {
        writeln!(out, "hookrelay metrics on http://{address}/metrics")?;
    }
    writeln!(out, "hookrelay listening on http://{}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    hookrelay_server::run(app, listener, shutdown).await?;
    Ok(())
}

pub async fn migrate(store: StoreArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let config = store.resolve(matches)?;
    hookrelay_server::open_store(&config)
        .await
        .map_err(naming_the_database)
        .context("cannot migrate")?;
    println!("database is up to date");
    Ok(())
}

/// A database failure names the setting to look at (not its value, which may hold a
/// password).
fn naming_the_database(error: ServerError) -> anyhow::Error {
    let from_the_database = matches!(error, ServerError::Store(_));
    let error = anyhow::Error::new(error);
    match from_the_database {
        true => error.context("cannot use the database given by `database_url`"),
        false => error,
    }
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
