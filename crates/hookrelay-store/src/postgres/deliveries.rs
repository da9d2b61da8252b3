//! Deliveries in PostgreSQL as tenants see them, cancelling a webhook's pending ones, and
//! rekeying them when its ordering changes.

use async_trait::async_trait;
use hookrelay_core::delivery::{requeue, Delivery, DeliveryStatus, Requeue};
use hookrelay_core::ordering::Rekey;
use hookrelay_core::{DeliveryId, SpaceId, Timestamp, WebhookId};
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::rows::{decode_delivery, DELIVERY_COLUMNS};
use crate::{DeliveryStore, StoreError};

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
    crate::activity::deliveries_cancelled(cancelled.rows_affected());
    Ok(cancelled.rows_affected())
}

/// Retries a delivery as [`requeue`] decided (a manual retry, or a recovery's batch),
/// only while its status is `only_from` if given; whether it did.
pub(super) async fn apply_requeue(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    requeue: &Requeue,
    only_from: Option<DeliveryStatus>,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        // The ordering key follows the webhook's ordering as it is now (as at publish:
        // `events.rs`), so a retried delivery takes its place.
        "UPDATE deliveries SET status = $1, next_attempt_time = $2, update_time = $2,
             ordering_key = (SELECT e.object_id FROM events e, webhooks w
                             WHERE e.id = deliveries.event_id AND w.id = deliveries.webhook_id
                               AND w.settings::jsonb ->> 'ordering' = 'object')
         WHERE id = $3 AND (CAST($4 AS TEXT) IS NULL OR status = $4)",
    )
    .bind(requeue.status.as_str())
    .bind(requeue.next_attempt_time.as_micros())
    .bind(id)
    .bind(only_from.map(DeliveryStatus::as_str))
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Sets or clears the ordering keys of a webhook's pending deliveries (`core::ordering`),
/// along its pending deliveries' index.
pub(super) async fn rekey_pending(
    tx: &mut Transaction<'_, Postgres>,
    webhook: &WebhookId,
    rekey: Rekey,
) -> Result<(), StoreError> {
    let sql = match rekey {
        Rekey::Keyed => {
            "UPDATE deliveries SET ordering_key = events.object_id FROM events
             WHERE deliveries.webhook_id = $1 AND deliveries.status = 'pending' AND events.id = deliveries.event_id"
        }
        Rekey::Unkeyed => {
            "UPDATE deliveries SET ordering_key = NULL
             WHERE webhook_id = $1 AND status = 'pending' AND ordering_key IS NOT NULL"
        }
    };
    sqlx::query(sql).bind(webhook.as_str()).execute(&mut **tx).await?;
    Ok(())
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn retry_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        // The event's row is locked (FOR SHARE) so that an erasure cannot remove its data
        // between this check and the update.
        let mut tx = self.pool.begin().await?;
        let removed: Option<bool> = sqlx::query_scalar(
            "SELECT e.data_remove_time IS NOT NULL FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = $1 AND d.webhook_id = $2 AND d.space_id = $3 FOR SHARE OF e",
        )
        .bind(id.as_str())
        .bind(webhook.as_str())
        .bind(space.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(removed) = removed else {
            return Ok(None);
        };
        let requeued = requeue(removed, now).ok_or(StoreError::EventDataRemoved)?;
        apply_requeue(&mut tx, id.as_str(), &requeued, None).await?;
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.notifier.work_stored();
        decode_delivery(&row).map(Some)
    }
}
