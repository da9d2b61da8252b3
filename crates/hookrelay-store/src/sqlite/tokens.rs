//! Spaces and access tokens in SQLite.

use async_trait::async_trait;
use hookrelay_core::{SpaceId, Timestamp};
use rusqlite::{params, Connection};
use sqlx::Row;

use super::SqliteStore;
use crate::rows::decode_token;
use crate::{StoreError, TokenStore};

pub(super) fn ensure_space(connection: &Connection, space: &SpaceId, now: Timestamp) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT INTO spaces (id, create_time) VALUES (?, ?) ON CONFLICT DO NOTHING")?
        .execute(params![space.as_str(), now.as_micros()])?;
    Ok(())
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError> {
        let space = space.clone();
        self.writer
            .write(move |connection| ensure_space(connection, &space, Timestamp::now()))
            .await
    }

    async fn has_spaces(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM spaces)")
            .fetch_one(&self.readers)
            .await?;
        Ok(row.try_get::<bool, _>(0)?)
    }

    async fn add_access_token(&self, space: &SpaceId, digest: &[u8; 32]) -> Result<(), StoreError> {
        let (space, digest) = (space.clone(), *digest);
        self.writer
            .write(move |connection| {
                let now = Timestamp::now();
                ensure_space(connection, &space, now)?;
                connection.execute(
                    "INSERT INTO access_tokens (token_digest, space_id, create_time) VALUES (?, ?, ?)
                     ON CONFLICT DO NOTHING",
                    params![&digest[..], space.as_str(), now.as_micros()],
                )?;
                Ok(())
            })
            .await
    }

    async fn find_access_token(&self, digest: &[u8; 32]) -> Result<Option<(SpaceId, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT space_id, token_digest FROM access_tokens WHERE token_digest = ?")
            .bind(&digest[..])
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(decode_token).transpose()
    }
}
