//! hookrelay's storage. Everything the server keeps goes through the traits of
//! [`traits`], one per concern, which [`Store`] gathers; backends (SQLite for one
//! process, PostgreSQL for several nodes sharing a database) implement them, and
//! nothing above this crate writes SQL.
//!
//! A backend holds SQL and transactions only. The decisions it carries out are pure
//! functions of `hookrelay_core` (`record`, `claim`, `webhook_change`, `alert`), and
//! what both backends read and write alike is decoded in `rows` and sorted in
//! `triage`, and their reads are one implementation over sqlx (`reads`), so that the
//! two cannot drift apart.
//!
//! Secrets are sealed here, on the way in, with the [`SecretCipher`] a store is opened
//! with: callers hand over plain domain values and cannot forget to encrypt.

pub mod activity;
mod error;
mod location;
mod pace;
mod postgres;
mod reads;
mod rows;
mod sqlite;
pub mod traits;
mod triage;
mod types;

use std::sync::Arc;

use hookrelay_core::seal::SecretCipher;

pub use error::StoreError;
pub use hookrelay_core::record::AttemptResult;
pub use hookrelay_core::record::Lease;
pub use location::DatabaseLocation;
pub use postgres::{PostgresStore, CLEANER_LOCK};
pub use sqlite::{backup as backup_sqlite, SqliteStore};
pub use traits::{
    AlertStore, AttemptStore, ClaimStore, DeliveryStore, EventStore, IdempotencyStore, NodeStore, ReadStore,
    RecoveryStore, RetentionStore, SpaceStore, Store, TokenStore, WebhookStore,
};
pub use types::{
    AlertOutcome, Backlog, ClaimRequest, ClaimedDelivery, CleanBatch, DeliveryDetail, Digest, ErasedBatch,
    IdempotencyRecord, KeyOwner, NodeBeat, NodeRecord, Page, PublishedKey, QuotaChange, RecoveryProgress,
    RetentionChange, SpaceSummary, StoredEvent,
};

/// Settings for [`open_with`] that only some backends use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// PostgreSQL: the most connections this node's pool opens (SQLite's pools are fixed).
    pub max_connections: u32,
    /// SQLite: how a commit reaches the disk before it is answered.
    pub sqlite_synchronous: SqliteSynchronous,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            sqlite_synchronous: SqliteSynchronous::Full,
        }
    }
}

/// How SQLite makes a commit durable before it is answered (its `synchronous` pragma,
/// in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// The write-ahead log is synced (fsync) at every commit: an answered write survives
    /// a power cut or an operating-system crash. The writer's group commit shares one
    /// sync among the writes that arrive together.
    #[default]
    Full,
    /// The log is synced only at checkpoints: a killed process loses nothing, but a
    /// power cut or an operating-system crash may lose the last answered commits.
    Normal,
}

impl SqliteSynchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Opens (creating and migrating as needed) the database at `location`, with default
/// [`OpenOptions`].
pub async fn open(location: &DatabaseLocation, cipher: SecretCipher) -> Result<Arc<dyn Store>, StoreError> {
    open_with(location, cipher, &OpenOptions::default()).await
}

/// Opens (creating and migrating as needed) the database at `location`. A PostgreSQL
/// database must exist; its tables are created and migrated.
pub async fn open_with(
    location: &DatabaseLocation,
    cipher: SecretCipher,
    options: &OpenOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        DatabaseLocation::Sqlite(path) => Ok(Arc::new(
            SqliteStore::open_with(path, cipher, options.sqlite_synchronous).await?,
        )),
        DatabaseLocation::Postgres(url) => Ok(Arc::new(
            PostgresStore::open(url, cipher, options.max_connections).await?,
        )),
    }
}
