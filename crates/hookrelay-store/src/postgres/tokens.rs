//! Spaces and access tokens in PostgreSQL.

use async_trait::async_trait;
use hookrelay_core::{SpaceId, Timestamp};

use super::PostgresStore;
use crate::{StoreError, TokenStore};

const ENSURE_SPACE: &str = "INSERT INTO spaces (id, create_time) VALUES ($1, $2) ON CONFLICT DO NOTHING";

#[async_trait]
impl TokenStore for PostgresStore {
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError> {
        sqlx::query(ENSURE_SPACE)
            .bind(space.as_str())
            .bind(Timestamp::now().as_micros())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_access_token(&self, space: &SpaceId, digest: &[u8; 32]) -> Result<(), StoreError> {
        let now = Timestamp::now().as_micros();
        let mut tx = self.pool.begin().await?;
        sqlx::query(ENSURE_SPACE)
            .bind(space.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO access_tokens (token_digest, space_id, create_time) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&digest[..])
        .bind(space.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
