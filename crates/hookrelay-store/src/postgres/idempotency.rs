//! Idempotency records in PostgreSQL (saved by `save_idempotency_key!` in the changes
//! they answer).

use async_trait::async_trait;
use hookrelay_core::{SpaceId, Timestamp};

use super::PostgresStore;
use crate::rows::decode_idempotency;
use crate::{IdempotencyRecord, IdempotencyStore, StoreError};

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn find_idempotency_record(
        &self,
        space: &SpaceId,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body, create_time FROM idempotency_keys
             WHERE space_id = $1 AND key = $2 AND create_time >= $3",
        )
        .bind(space.as_str())
        .bind(key)
        .bind(not_before.as_micros())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| decode_idempotency(&self.cipher, &row, space, key))
            .transpose()
    }

    async fn prune_idempotency_records(&self, before: Timestamp) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE create_time < $1")
            .bind(before.as_micros())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}
