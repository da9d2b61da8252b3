//! The SQLite backend: one file, WAL mode, one writer connection and a pool of readers.
//! Commits are synced as [`SqliteSynchronous`] says: by default at every commit, so an
//! answered write survives a power cut, not only a killed process.
//!
//! SQLite allows one writer at a time. Funnelling every write through a single
//! connection makes writers queue in-process instead of failing with `SQLITE_BUSY`,
//! while WAL lets reads proceed in parallel with the writer. The writer is a `rusqlite`
//! connection on a thread of its own (`writer.rs`); migrations, readers and the
//! checkpointer use `sqlx`. Each concern's trait is implemented in its own file.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hookrelay_core::seal::SecretCipher;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection as _, SqlitePool};

use crate::{NodeRecord, SqliteSynchronous, Store, StoreError};

mod alerts;
mod backup;
mod cache;
mod claim;
mod deliveries;
mod events;
mod health;
mod idempotency;
mod nodes;
mod pace;
mod record;
mod recoveries;
mod retention;
mod spaces;
mod staging;
mod tokens;
mod webhooks;
mod writer;

pub use backup::backup;
use cache::{RecentEvents, WebhookCache};
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A JSON array of ids, for `IN (SELECT value FROM json_each(?))`.
fn json_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.into_iter().collect::<Vec<_>>()).expect("strings serialise")
}

/// A store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: SqlitePool,
    cipher: SecretCipher,
    /// Webhooks and subscriptions as last read; its epoch is the webhook epoch.
    cache: Arc<WebhookCache>,
    /// The events published last, for claims.
    recent_events: Arc<RecentEvents>,
    /// This node's last heartbeat (`nodes.rs`).
    node: Arc<Mutex<Option<NodeRecord>>>,
}

impl SqliteStore {
    /// Opens the file at `path`, creating and migrating it as needed, with every commit
    /// synced before it is answered.
    pub async fn open(path: &Path, cipher: SecretCipher) -> Result<Self, StoreError> {
        Self::open_with(path, cipher, SqliteSynchronous::Full).await
    }

    /// Opens the file at `path`, creating and migrating it as needed, syncing commits as
    /// `synchronous` says.
    pub async fn open_with(
        path: &Path,
        cipher: SecretCipher,
        synchronous: SqliteSynchronous,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("synchronous", synchronous.as_str())
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Migrations run on a connection of their own, closed before the writer opens.
        let mut migrating = options.clone().connect().await?;
        enable_incremental_vacuum(&mut migrating, path).await?;
        MIGRATOR.run(&mut migrating).await?;
        migrating.close().await?;
        let writer = Writer::start(open_writer(path, synchronous)?)?;
        let checkpointer = options.connect().await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        writer::checkpoint_in_background(checkpointer, &writer);
        Ok(Self {
            writer,
            readers,
            cipher,
            cache: Arc::default(),
            recent_events: Arc::default(),
            node: Arc::default(),
        })
    }
}

/// Makes the file give freed pages back when asked (`PRAGMA incremental_vacuum`, run by
/// the retention cleaner). A file made before this mode needs one full `VACUUM`, which
/// rewrites it whole (and needs as much free disk again) once; a new file costs nothing.
async fn enable_incremental_vacuum(connection: &mut sqlx::SqliteConnection, path: &Path) -> Result<(), StoreError> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut *connection)
        .await?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut *connection)
        .await?;
    if pages > 0 {
        tracing::info!(path = %path.display(), pages, "rewriting the database once so it can give freed space back (VACUUM)");
    }
    sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
        .execute(&mut *connection)
        .await?;
    sqlx::query("VACUUM").execute(&mut *connection).await?;
    Ok(())
}

/// Opens the writer's connection, which makes every commit: with FULL synchronisation in
/// WAL mode it syncs the log before a commit returns, so what the writer answers
/// survives a power cut; with NORMAL only a killed process, never corrupting the file.
fn open_writer(path: &Path, synchronous: SqliteSynchronous) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.execute_batch(
        // The writer never checkpoints: a checkpoint in a commit would hold up every
        // write queued behind it; a connection of its own does it in the background.
        // Most writes in a group run in a savepoint, whose journal SQLite would spill to
        // a temporary file past 64 KiB; in memory it is a copy, not a write. A log that
        // a burst grew past 64 MiB is cut back to it when it starts over, so the space
        // the retention cleaner gives back is not held by the log instead.
        "PRAGMA journal_mode = WAL;
         PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    connection.pragma_update(None, "synchronous", synchronous.as_str())?;
    Ok(connection)
}

impl crate::reads::ReadingBackend for SqliteStore {
    type Pool = SqlitePool;

    fn read_pool(&self) -> &SqlitePool {
        &self.readers
    }

    fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }

    fn nodes_in_memory(&self) -> Option<Vec<NodeRecord>> {
        Some(nodes::this_node(self))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.stopped() {
            return Err(StoreError::WriterStopped);
        }
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn broken(&self) -> StoreError {
        self.writer.wait_stopped().await;
        StoreError::WriterStopped
    }
}

#[cfg(test)]
mod tests {
    use hookrelay_core::seal::{MasterKey, SecretCipher};

    use super::*;

    /// A writer that died makes the store say so: the health check fails, and
    /// `broken` completes so the server stops instead of limping on.
    #[tokio::test]
    async fn a_dead_writer_fails_the_health_check_and_breaks_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), SecretCipher::new(&MasterKey::generate()))
            .await
            .unwrap();
        store.ping().await.expect("a fresh store is healthy");
        let panicked = store
            .writer
            .write(|_| -> Result<(), StoreError> { panic!("a bug in a write") })
            .await;
        assert!(matches!(panicked, Err(StoreError::WriterStopped)));
        let broken = tokio::time::timeout(Duration::from_secs(10), store.broken()).await;
        assert!(matches!(broken, Ok(StoreError::WriterStopped)), "{broken:?}");
        assert!(matches!(store.ping().await, Err(StoreError::WriterStopped)));
    }
}
