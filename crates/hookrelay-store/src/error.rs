//! The storage layer's errors.

/// What can go wrong below the [`crate::Store`] trait.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names a backend this build does not have.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedDatabase(String),
    /// The database failed or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The SQLite writer's connection failed.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrating the schema failed.
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// The database was migrated by a newer hookrelay: this one must not touch it.
    #[error("the database schema is newer than this hookrelay knows (it has migration {0}); upgrade hookrelay")]
    SchemaTooNew(i64),
    /// The idempotency key was saved by a concurrent or earlier request.
    #[error("the idempotency key is already in use")]
    IdempotencyKeyTaken,
    /// The change would take a space past one of its quotas; nothing was written.
    #[error("{0}")]
    QuotaExceeded(#[from] hookrelay_core::quota::QuotaExceeded),
    /// A sealed secret did not open: the master key is not the one it was sealed with.
    #[error("a stored secret could not be decrypted; is HOOKRELAY_MASTER_KEY the key this database was created with?")]
    Unseal(#[from] hookrelay_core::seal::UnsealError),
    /// The transaction holding a write failed to commit.
    #[error("committing a write failed: {0}")]
    Commit(String),
    /// The writer thread is gone (the database failed badly or the store is closing).
    #[error("the database writer stopped")]
    WriterStopped,
    /// The delivery's event has no data any more (expired or erased): there is
    /// nothing to send.
    #[error("the event's data was removed (payload retention or erasure): there is nothing to send")]
    EventDataRemoved,
    /// A stored value does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::VersionMissing(version) => Self::SchemaTooNew(version),
            other => Self::Migration(other),
        }
    }
}
