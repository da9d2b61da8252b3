//! `hookrelay backup`: a consistent copy of a live SQLite database.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{ArgMatches, Args};
use hookrelay_server::config::MasterKeySource;
use hookrelay_store::DatabaseLocation;

use crate::serve::StoreArgs;

#[derive(Args)]
pub struct BackupArgs {
    /// The file to write the copy to; it must not exist.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

/// Copies the SQLite database while servers may keep running on it. The master key is
/// not in the copy: it is backed up on its own, and the copy is useless without it.
pub async fn backup(args: BackupArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let config = args.store.resolve(matches)?;
    let DatabaseLocation::Sqlite(source) = config.database else {
        bail!("hookrelay backup copies an SQLite database; back up PostgreSQL with pg_dump (see docs/operations.md)");
    };
    if !source.exists() {
        bail!("there is no database at {}", source.display());
    }
    if args.to.exists() {
        bail!(
            "{} exists already; the backup is written to a new file",
            args.to.display()
        );
    }
    let Some(destination) = args.to.to_str().map(str::to_owned) else {
        bail!("the backup's path must be valid UTF-8");
    };
    let from = source.clone();
    tokio::task::spawn_blocking(move || hookrelay_store::backup_sqlite(&from, &destination))
        .await?
        .with_context(|| format!("cannot copy {} to {}", source.display(), args.to.display()))?;
    println!("{}", args.to.display());
    if let MasterKeySource::File(key) = &config.master_key {
        eprintln!(
            "Copied. Keep a copy of the master key file {} apart from it: without the key, the copy's secrets cannot be read.",
            key.display()
        );
    }
    Ok(())
}
