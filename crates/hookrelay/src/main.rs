//! The `hookrelay` binary: glue between the command line and the library crates.

mod backup;
mod listen;
mod output;
mod remote;
mod serve;
mod space;
mod token;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use hookrelay_server::telemetry::traces::Traces;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// mimalloc: the server allocates many small, short-lived buffers (requests, JSON, rows)
/// across threads, where it costs a fraction of glibc's malloc (about 10 % of the CPU).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hookrelay: a self-hostable webhook service speaking Monime's webhook API.
#[derive(Parser)]
#[command(name = "hookrelay", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and the delivery engine.
    ///
    /// Every setting below comes from its flag, else its HOOKRELAY_* environment
    /// variable, else the TOML file given with --config, else its default. A file key is
    /// the variable's name without HOOKRELAY_, in lower case; hookrelay.example.toml
    /// lists them all.
    ///
    /// On an empty database with no bootstrap settings, a space and an access token are
    /// created and printed once.
    // Boxed: its settings make it far larger than the other commands.
    Serve(Box<serve::ServeArgs>),
    /// Create or upgrade the database schema, then exit (`serve` also does this at start).
    Migrate {
        #[command(flatten)]
        store: serve::StoreArgs,
    },
    /// Copy a live SQLite database to a new file, for a backup (opens the database
    /// directly; servers keep running).
    Backup(backup::BackupArgs),
    /// Create, list and revoke any space's access tokens (opens the database directly).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Create, list, disable and enable spaces, and set their quotas (opens the
    /// database directly).
    Space {
        #[command(subcommand)]
        command: space::SpaceCommand,
    },
    /// Create, inspect, change, delete and test webhooks, and list their alerts.
    Webhook(remote::WebhookArgs),
    /// Publish and inspect events.
    Events(remote::EventArgs),
    /// Inspect and retry a webhook's deliveries.
    Deliveries(remote::DeliveryArgs),
    /// Create, list and revoke your space's access tokens through the API.
    Tokens(remote::TokenArgs),
    /// Erase the data of an object's events (GDPR requests) through the API, and list
    /// or read the records.
    Erasures(remote::ErasureArgs),
    /// Run a local receiver that verifies and prints each delivery (for development).
    Listen(listen::ListenArgs),
}

/// The matches of the subcommand that runs, such as `token create`'s.
fn innermost(matches: &ArgMatches) -> &ArgMatches {
    match matches.subcommand() {
        Some((_, sub)) => innermost(sub),
        None => matches,
    }
}

/// Logs to stderr as `HOOKRELAY_LOG` filters them, and exports hookrelay's spans when
/// `traces` is on.
fn init_logging(traces: Option<&Traces>) {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOOKRELAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    tracing_subscriber::registry()
        .with(logs)
        .with(traces.map(Traces::layer))
        .init();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Kept beside the parse: the settings' layering asks it where each value came from.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // Only `serve` exports traces; its spans are the only ones there are.
    let traces = match &cli.command {
        Command::Serve(_) => Traces::from_env(),
        _ => Ok(None),
    };
    let traces = match traces {
        Ok(traces) => traces,
        Err(error) => {
            init_logging(None);
            output::print_error(&anyhow::Error::new(error));
            return std::process::ExitCode::FAILURE;
        }
    };
    init_logging(traces.as_ref());
    let leaf = innermost(&matches);
    let result = match cli.command {
        Command::Serve(args) => {
            let served = serve::serve(*args, leaf).await;
            if let Some(traces) = traces {
                traces.shutdown().await;
            }
            served
        }
        Command::Migrate { store } => serve::migrate(store, leaf).await,
        Command::Backup(args) => backup::backup(args, leaf).await,
        Command::Token { command } => token::token(command, leaf).await,
        Command::Space { command } => space::space(command, leaf).await,
        Command::Webhook(args) => remote::webhook(args).await,
        Command::Events(args) => remote::events(args).await,
        Command::Deliveries(args) => remote::deliveries(args).await,
        Command::Tokens(args) => remote::tokens(args).await,
        Command::Erasures(args) => remote::erasures(args).await,
        Command::Listen(args) => listen::listen(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            output::print_error(&error);
            std::process::ExitCode::FAILURE
        }
    }
}
