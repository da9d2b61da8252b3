//! Access tokens in SQLite.

use async_trait::async_trait;
use hookrelay_core::access::{AccessToken, LAST_USE_EVERY};
use hookrelay_core::{SpaceId, Timestamp, TokenId};
use rusqlite::{params, Connection};

use super::idempotency::save_idempotency;
use super::spaces::ensure_space;
use super::SqliteStore;
use crate::rows::seal_idempotency;
use crate::{IdempotencyRecord, StoreError, TokenStore};

/// Inserts a token's record unless its digest is recorded; whether it was inserted.
fn insert_token(connection: &Connection, token: &AccessToken, digest: &[u8; 32]) -> Result<bool, StoreError> {
    let inserted = connection
        .prepare_cached(
            "INSERT INTO access_tokens (id, token_digest, space_id, name, scopes, prefix, create_time, expire_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (token_digest) DO NOTHING",
        )?
        .execute(params![
            token.id.as_str(),
            &digest[..],
            token.space_id.as_str(),
            token.name,
            token.scopes.to_json(),
            token.prefix,
            token.create_time.as_micros(),
            token.expire_time.map(Timestamp::as_micros),
        ])?;
    Ok(inserted == 1)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn add_token(
        &self,
        token: &AccessToken,
        digest: &[u8; 32],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<bool, StoreError> {
        let record = idempotency
            .cloned()
            .map(|record| seal_idempotency(&self.cipher, record));
        let (token, digest) = (token.clone(), *digest);
        self.writer
            .write(move |connection| {
                if let Some(record) = &record {
                    save_idempotency(connection, record)?;
                }
                ensure_space(connection, &token.space_id, token.create_time)?;
                insert_token(connection, &token, &digest)
            })
            .await
    }

    async fn revoke_token(&self, space: &SpaceId, id: &TokenId) -> Result<bool, StoreError> {
        let (space, id) = (space.clone(), id.clone());
        self.writer
            .write_without_savepoint(move |connection| {
                let deleted = connection.execute(
                    "DELETE FROM access_tokens WHERE id = ? AND space_id = ?",
                    params![id.as_str(), space.as_str()],
                )?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn record_token_use(&self, id: &TokenId, at: Timestamp) -> Result<(), StoreError> {
        let id = id.clone();
        let recorded_before = at.minus(LAST_USE_EVERY).as_micros();
        self.writer
            .write_without_savepoint(move |connection| {
                connection
                    .prepare_cached(
                        "UPDATE access_tokens SET last_used_time = ?
                         WHERE id = ? AND (last_used_time IS NULL OR last_used_time <= ?)",
                    )?
                    .execute(params![at.as_micros(), id.as_str(), recorded_before])?;
                Ok(())
            })
            .await
    }
}
