//! Deliveries in SQLite as tenants see them, cancelling a webhook's pending ones, and
//! rekeying them when its ordering changes.

use async_trait::async_trait;
use hookrelay_core::delivery::{requeue, Delivery, DeliveryStatus, Requeue};
use hookrelay_core::ordering::Rekey;
use hookrelay_core::{DeliveryId, SpaceId, Timestamp, WebhookId};
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::rows::{decode_delivery, DELIVERY_COLUMNS};
use crate::{DeliveryStore, StoreError};

/// Cancels a webhook's pending deliveries (it was disabled or deleted).
pub(super) fn cancel_pending(connection: &Connection, webhook: &WebhookId, now: Timestamp) -> Result<u64, StoreError> {
    let cancelled = connection
        .prepare_cached(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, update_time = ?
             WHERE webhook_id = ? AND status = 'pending'",
        )?
        .execute(params![now.as_micros(), webhook.as_str()])?;
    crate::activity::deliveries_cancelled(cancelled as u64);
    Ok(cancelled as u64)
}

/// Retries a delivery as [`requeue`] decided (a manual retry, or a recovery's batch),
/// only while its status is `only_from` if given; whether it did.
pub(super) fn apply_requeue(
    connection: &Connection,
    id: &str,
    requeue: &Requeue,
    only_from: Option<DeliveryStatus>,
) -> Result<bool, StoreError> {
    let updated = connection
        .prepare_cached(
            // The ordering key follows the webhook's ordering as it is now (as at publish:
            // `events::insert_deliveries`), so a retried delivery takes its place.
            "UPDATE deliveries SET status = ?1, next_attempt_time = ?2, update_time = ?2,
                 ordering_key = (SELECT (SELECT object_id FROM events WHERE events.id = deliveries.event_id)
                                 FROM webhooks WHERE webhooks.id = deliveries.webhook_id
                                   AND json_extract(webhooks.settings, '$.ordering') = 'object')
             WHERE id = ?3 AND (?4 IS NULL OR status = ?4)",
        )?
        .execute(params![
            requeue.status.as_str(),
            requeue.next_attempt_time.as_micros(),
            id,
            only_from.map(DeliveryStatus::as_str),
        ])?;
    Ok(updated > 0)
}

/// Sets or clears the ordering keys of a webhook's pending deliveries (`core::ordering`),
/// along its pending deliveries' index.
pub(super) fn rekey_pending(connection: &Connection, webhook: &WebhookId, rekey: Rekey) -> Result<(), StoreError> {
    let sql = match rekey {
        Rekey::Keyed => {
            "UPDATE deliveries SET ordering_key = (SELECT object_id FROM events WHERE events.id = deliveries.event_id)
             WHERE webhook_id = ? AND status = 'pending'"
        }
        Rekey::Unkeyed => {
            "UPDATE deliveries SET ordering_key = NULL
             WHERE webhook_id = ? AND status = 'pending' AND ordering_key IS NOT NULL"
        }
    };
    connection.prepare_cached(sql)?.execute([webhook.as_str()])?;
    Ok(())
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn retry_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        let (space_id, webhook_id, delivery_id) = (space.clone(), webhook.clone(), id.clone());
        let updated = self
            .writer
            .write(move |connection| {
                let removed: Option<bool> = connection
                    .query_row(
                        "SELECT e.data_remove_time IS NOT NULL FROM deliveries d JOIN events e ON e.id = d.event_id
                         WHERE d.id = ?1 AND d.webhook_id = ?2 AND d.space_id = ?3",
                        params![delivery_id.as_str(), webhook_id.as_str(), space_id.as_str()],
                        |row| row.get(0),
                    )
                    .optional()?;
                let Some(removed) = removed else {
                    return Ok(false);
                };
                let requeued = requeue(removed, now).ok_or(StoreError::EventDataRemoved)?;
                apply_requeue(connection, delivery_id.as_str(), &requeued, None)?;
                Ok(true)
            })
            .await?;
        if !updated {
            return Ok(None);
        }
        // Committed: any reader sees it now.
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?"
        ))
        .bind(id.as_str())
        .fetch_one(&self.readers)
        .await?;
        decode_delivery(&row).map(Some)
    }
}
