//! Deliveries in PostgreSQL as tenants see them, and cancelling a webhook's pending ones.

use async_trait::async_trait;
use hookrelay_core::delivery::{Delivery, DeliveryStatus};
use hookrelay_core::{DeliveryId, SpaceId, Timestamp, WebhookId};
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::rows::{decode_attempt, decode_delivery, page, ATTEMPT_COLUMNS, DELIVERY_COLUMNS};
use crate::{DeliveryDetail, DeliveryStore, Page, StoreError};

/// Cancels a webhook's pending deliveries (it was disabled or deleted).
pub(super) async fn cancel_pending(
    tx: &mut Transaction<'_, Postgres>,
    webhook: &WebhookId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let cancelled = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, update_time = $1
         WHERE webhook_id = $2 AND status = 'pending'",
    )
    .bind(now.as_micros())
    .bind(webhook.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(cancelled.rows_affected())
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn list_deliveries(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.webhook_id = $1 AND d.space_id = $2 AND ($3::text IS NULL OR d.status = $3) AND d.seq < $4
             ORDER BY d.seq DESC LIMIT $5"
        ))
        .bind(webhook.as_str())
        .bind(space.as_str())
        .bind(status.map(DeliveryStatus::as_str))
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        page(rows, limit, decode_delivery)
    }

    async fn get_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, StoreError> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = $1 AND d.webhook_id = $2 AND d.space_id = $3"
        ))
        .bind(id.as_str())
        .bind(webhook.as_str())
        .bind(space.as_str())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt"
        ))
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(DeliveryDetail {
            delivery: decode_delivery(&row)?,
            attempts: attempts.iter().map(decode_attempt).collect::<Result<_, _>>()?,
        }))
    }

    async fn retry_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!(
            "WITH retried AS (
                 UPDATE deliveries SET status = 'pending', next_attempt_time = $1, update_time = $1
                 WHERE id = $2 AND webhook_id = $3 AND space_id = $4
                 RETURNING *
             )
             SELECT {DELIVERY_COLUMNS} FROM retried d JOIN events e ON e.id = d.event_id"
        ))
        .bind(now.as_micros())
        .bind(id.as_str())
        .bind(webhook.as_str())
        .bind(space.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.notifier.work_stored();
        decode_delivery(&row).map(Some)
    }
}
