//! Idempotency records in PostgreSQL (saved by `save_idempotency_key!` in the changes
//! they answer).

use async_trait::async_trait;
use hookrelay_core::Timestamp;

use super::PostgresStore;
use crate::{IdempotencyStore, StoreError};

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn prune_idempotency_records(&self, before: Timestamp) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE create_time < $1")
            .bind(before.as_micros())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}
