//! Spaces and access tokens in SQLite.

use async_trait::async_trait;
use hookrelay_core::{SpaceId, Timestamp};
use rusqlite::{params, Connection};

use super::SqliteStore;
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
}
