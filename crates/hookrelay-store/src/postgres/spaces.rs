//! Spaces in PostgreSQL.

use async_trait::async_trait;
use hookrelay_core::{SpaceId, Timestamp};

use super::notify::WORK_CHANNEL;
use super::PostgresStore;
use crate::{QuotaChange, RetentionChange, SpaceStore, StoreError};

/// Creates the space `$1` at `$2` unless it exists.
pub(super) const ENSURE_SPACE: &str = "INSERT INTO spaces (id, create_time) VALUES ($1, $2) ON CONFLICT DO NOTHING";

#[async_trait]
impl SpaceStore for PostgresStore {
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError> {
        self.create_space(space).await.map(drop)
    }

    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError> {
        let created = sqlx::query(ENSURE_SPACE)
            .bind(space.as_str())
            .bind(Timestamp::now().as_micros())
            .execute(&self.pool)
            .await?;
        Ok(created.rows_affected() == 1)
    }

    async fn set_space_disabled(&self, space: &SpaceId, disabled: bool) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE spaces SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(space.as_str())
            .execute(&mut *tx)
            .await?;
        let found = changed.rows_affected() == 1;
        if found && !disabled {
            // Its waiting deliveries are work every node may claim now. Sent with the
            // commit, not by the notifier's task: an operator's command exits at once.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    async fn set_space_quotas(&self, space: &SpaceId, change: &QuotaChange) -> Result<bool, StoreError> {
        let [webhooks, rate, fan_out] = change.columns();
        let changed = sqlx::query(
            "UPDATE spaces SET
                 max_webhooks = CASE WHEN $1 THEN $2 ELSE max_webhooks END,
                 max_publish_rate = CASE WHEN $3 THEN $4 ELSE max_publish_rate END,
                 max_fan_out = CASE WHEN $5 THEN $6 ELSE max_fan_out END
             WHERE id = $7",
        )
        .bind(webhooks.0)
        .bind(webhooks.1)
        .bind(rate.0)
        .bind(rate.1)
        .bind(fan_out.0)
        .bind(fan_out.1)
        .bind(space.as_str())
        .execute(&self.pool)
        .await?;
        Ok(changed.rows_affected() == 1)
    }

    async fn set_space_retention(&self, space: &SpaceId, change: &RetentionChange) -> Result<bool, StoreError> {
        let [retention, payload] = change.columns();
        let changed = sqlx::query(
            "UPDATE spaces SET
                 retention_micros = CASE WHEN $1 THEN $2 ELSE retention_micros END,
                 payload_retention_micros = CASE WHEN $3 THEN $4 ELSE payload_retention_micros END
             WHERE id = $5",
        )
        .bind(retention.0)
        .bind(retention.1)
        .bind(payload.0)
        .bind(payload.1)
        .bind(space.as_str())
        .execute(&self.pool)
        .await?;
        Ok(changed.rows_affected() == 1)
    }
}
