//! Idempotency records in SQLite.

use async_trait::async_trait;
use hookrelay_core::Timestamp;
use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::{IdempotencyRecord, IdempotencyStore, StoreError};

/// Records one pruning write deletes at most.
const PRUNE_BATCH: u64 = 500;

/// Saves an idempotency record (its body sealed: `rows::seal_idempotency`) in the
/// current transaction; a live record for the same key makes it fail with
/// [`StoreError::IdempotencyKeyTaken`], before it changes anything.
pub(super) fn save_idempotency(connection: &Connection, record: &IdempotencyRecord) -> Result<(), StoreError> {
    // An expired record for the same key gives way to the new one; a live one stands.
    let inserted = connection
        .prepare_cached(
            "INSERT INTO idempotency_keys (space_id, key, fingerprint, status, body, create_time, expire_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (space_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
                 body = excluded.body, create_time = excluded.create_time, expire_time = excluded.expire_time
             WHERE idempotency_keys.expire_time <= excluded.create_time",
        )?
        .execute(params![
            record.space_id.as_str(),
            record.key,
            record.fingerprint,
            i64::from(record.status),
            record.body,
            record.create_time.as_micros(),
            record.expire_time.as_micros(),
        ])?;
    if inserted == 0 {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(())
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn prune_idempotency_records(&self, now: Timestamp) -> Result<u64, StoreError> {
        // In batches, each a write of its own: publishes wait behind one batch at most.
        let mut total = 0;
        loop {
            let deleted = self
                .writer
                .write_without_savepoint(move |connection| {
                    let deleted = connection
                        .prepare_cached(
                            "DELETE FROM idempotency_keys WHERE rowid IN (
                                 SELECT rowid FROM idempotency_keys WHERE expire_time <= ?1 LIMIT ?2)",
                        )?
                        .execute(rusqlite::params![now.as_micros(), PRUNE_BATCH])?;
                    Ok(deleted as u64)
                })
                .await?;
            total += deleted;
            if deleted < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }
}
