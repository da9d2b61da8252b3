//! Spaces in SQLite.

use async_trait::async_trait;
use hookrelay_core::{SpaceId, Timestamp};
use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::{QuotaChange, RetentionChange, SpaceStore, StoreError};

/// Creates the space unless it exists; whether it was created.
pub(super) fn ensure_space(connection: &Connection, space: &SpaceId, now: Timestamp) -> Result<bool, StoreError> {
    let created = connection
        .prepare_cached("INSERT INTO spaces (id, create_time) VALUES (?, ?) ON CONFLICT DO NOTHING")?
        .execute(params![space.as_str(), now.as_micros()])?;
    Ok(created == 1)
}

#[async_trait]
impl SpaceStore for SqliteStore {
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError> {
        self.create_space(space).await.map(drop)
    }

    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError> {
        let space = space.clone();
        self.writer
            .write_without_savepoint(move |connection| ensure_space(connection, &space, Timestamp::now()))
            .await
    }

    async fn set_space_disabled(&self, space: &SpaceId, disabled: bool) -> Result<bool, StoreError> {
        // Claims read the flag from the table (claim.rs): this process's engine, and a
        // server's when an operator's command changes it, find the change on their next
        // claim, at the latest after their idle poll.
        let space = space.clone();
        self.writer
            .write_without_savepoint(move |connection| {
                let changed = connection.execute(
                    "UPDATE spaces SET disabled = ? WHERE id = ?",
                    params![disabled, space.as_str()],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn set_space_quotas(&self, space: &SpaceId, change: &QuotaChange) -> Result<bool, StoreError> {
        let space = space.clone();
        let [webhooks, rate, fan_out] = change.columns();
        self.writer
            .write_without_savepoint(move |connection| {
                let changed = connection.execute(
                    "UPDATE spaces SET
                         max_webhooks = CASE WHEN ?1 THEN ?2 ELSE max_webhooks END,
                         max_publish_rate = CASE WHEN ?3 THEN ?4 ELSE max_publish_rate END,
                         max_fan_out = CASE WHEN ?5 THEN ?6 ELSE max_fan_out END
                     WHERE id = ?7",
                    params![
                        webhooks.0,
                        webhooks.1,
                        rate.0,
                        rate.1,
                        fan_out.0,
                        fan_out.1,
                        space.as_str()
                    ],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn set_space_retention(&self, space: &SpaceId, change: &RetentionChange) -> Result<bool, StoreError> {
        let space = space.clone();
        let [retention, payload] = change.columns();
        self.writer
            .write_without_savepoint(move |connection| {
                let changed = connection.execute(
                    "UPDATE spaces SET
                         retention_micros = CASE WHEN ?1 THEN ?2 ELSE retention_micros END,
                         payload_retention_micros = CASE WHEN ?3 THEN ?4 ELSE payload_retention_micros END
                     WHERE id = ?5",
                    params![retention.0, retention.1, payload.0, payload.1, space.as_str()],
                )?;
                Ok(changed == 1)
            })
            .await
    }
}
