//! Idempotency records in PostgreSQL (saved by `save_idempotency_key!` in the changes
//! they answer).

use async_trait::async_trait;
use hookrelay_core::Timestamp;

use super::PostgresStore;
use crate::{IdempotencyStore, StoreError};

/// Records one pruning transaction deletes at most.
const PRUNE_BATCH: i64 = 500;

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn prune_idempotency_records(&self, now: Timestamp) -> Result<u64, StoreError> {
        // In batches, each a short transaction of its own.
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM idempotency_keys WHERE (space_id, key) IN (
                     SELECT space_id, key FROM idempotency_keys WHERE expire_time <= $1 LIMIT $2)",
            )
            .bind(now.as_micros())
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
