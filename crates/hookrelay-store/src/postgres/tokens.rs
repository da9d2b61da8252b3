//! Access tokens in PostgreSQL.

use async_trait::async_trait;
use hookrelay_core::access::{AccessToken, LAST_USE_EVERY};
use hookrelay_core::{SpaceId, Timestamp, TokenId};

use super::spaces::ENSURE_SPACE;
use super::{save_idempotency, PostgresStore};
use crate::rows::seal_idempotency;
use crate::{IdempotencyRecord, StoreError, TokenStore};

#[async_trait]
impl TokenStore for PostgresStore {
    async fn add_token(
        &self,
        token: &AccessToken,
        digest: &[u8; 32],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(record) = idempotency {
            save_idempotency(&mut tx, &seal_idempotency(&self.cipher, record.clone())).await?;
        }
        sqlx::query(ENSURE_SPACE)
            .bind(token.space_id.as_str())
            .bind(token.create_time.as_micros())
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO access_tokens (id, token_digest, space_id, name, scopes, prefix, create_time, expire_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (token_digest) DO NOTHING",
        )
        .bind(token.id.as_str())
        .bind(&digest[..])
        .bind(token.space_id.as_str())
        .bind(&token.name)
        .bind(token.scopes.to_json())
        .bind(&token.prefix)
        .bind(token.create_time.as_micros())
        .bind(token.expire_time.map(Timestamp::as_micros))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn revoke_token(&self, space: &SpaceId, id: &TokenId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM access_tokens WHERE id = $1 AND space_id = $2")
            .bind(id.as_str())
            .bind(space.as_str())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn record_token_use(&self, id: &TokenId, at: Timestamp) -> Result<(), StoreError> {
        // The condition makes it once a minute across nodes too, whatever each node saw.
        sqlx::query(
            "UPDATE access_tokens SET last_used_time = $1
             WHERE id = $2 AND (last_used_time IS NULL OR last_used_time <= $3)",
        )
        .bind(at.as_micros())
        .bind(id.as_str())
        .bind(at.minus(LAST_USE_EVERY).as_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
