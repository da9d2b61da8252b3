//! Events in SQLite: publishing with fan-out, and reading them back.

use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::delivery::Delivery;
use hookrelay_core::event::Event;
use hookrelay_core::quota::check_fan_out;
use hookrelay_core::{DeliveryId, SpaceId, WebhookId};
use rusqlite::{params, Connection};

use super::idempotency::save_idempotency;
use super::staging::STAGE_CHUNK;
use super::SqliteStore;
use crate::rows::{corrupt, pending_delivery, seal_idempotency};
use crate::{EventStore, IdempotencyRecord, StoreError};

/// Inserts the event, with the number of deliveries it has (or will have).
pub(super) fn insert_event(connection: &Connection, event: &Event, delivery_count: usize) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO events (id, space_id, name, object_id, object_type, data, delivery_count, create_time,
                 trace_parent)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            event.id.as_str(),
            event.space_id.as_str(),
            event.name,
            event.object.id,
            event.object.object_type,
            event.data.get(),
            i64::try_from(delivery_count).map_err(|_| corrupt("webhook count", "too many"))?,
            event.create_time.as_micros(),
            event.trace_parent.as_deref(),
        ])?;
    Ok(())
}

/// Inserts one pending delivery of the event `(id, space, created)` per webhook, due at
/// its creation; returns their ids. A delivery to a webhook that orders by object takes
/// the event's object id as its ordering key (`claim.rs`); for any other webhook the key
/// stays NULL, at the cost of one probe of the webhook's row.
pub(super) fn insert_deliveries(
    connection: &Connection,
    (event_id, space_id, created): (&str, &str, i64),
    webhooks: &[String],
) -> Result<Vec<DeliveryId>, StoreError> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO deliveries (id, space_id, webhook_id, event_id, status, attempt_count, next_attempt_time,
             create_time, update_time, ordering_key)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5,
                 (SELECT (SELECT object_id FROM events WHERE id = ?4) FROM webhooks
                  WHERE id = ?3 AND json_extract(settings, '$.ordering') = 'object'))",
    )?;
    let mut ids = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        let id = DeliveryId::generate();
        insert.execute(params![id.as_str(), space_id, webhook, event_id, created])?;
        ids.push(id);
    }
    Ok(ids)
}

/// The event as [`insert_deliveries`] takes it.
pub(super) fn delivery_key(event: &Event) -> (&str, &str, i64) {
    (
        event.id.as_str(),
        event.space_id.as_str(),
        event.create_time.as_micros(),
    )
}

/// Inserts the event and one pending delivery of it per webhook, due at once; returns
/// the deliveries' ids.
fn insert_event_and_deliveries(
    connection: &Connection,
    event: &Event,
    webhooks: &[String],
) -> Result<Vec<DeliveryId>, StoreError> {
    insert_event(connection, event, webhooks.len())?;
    insert_deliveries(connection, delivery_key(event), webhooks)
}

impl SqliteStore {
    /// The enabled webhooks of `space` subscribed to `event`, oldest first.
    async fn subscribers(&self, space: &SpaceId, event: &str) -> Result<Arc<[String]>, StoreError> {
        if let Some(ids) = self.cache.subscribers(space, event) {
            return Ok(ids);
        }
        let epoch = self.cache.epoch();
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM webhooks
             WHERE space_id = ? AND enabled = 1 AND EXISTS (SELECT 1 FROM json_each(webhooks.events) WHERE value = ?)
             ORDER BY seq",
        )
        .bind(space.as_str())
        .bind(event)
        .fetch_all(&self.readers)
        .await?;
        let ids: Arc<[String]> = ids.into();
        self.cache.put_subscribers(epoch, space, event, ids.clone());
        Ok(ids)
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn publish_event_within(
        &self,
        event: &Event,
        idempotency: Option<IdempotencyRecord>,
        max_fan_out: Option<u32>,
    ) -> Result<u32, StoreError> {
        // Subscribers are read before the write, off the writer's connection. A webhook
        // disabled or deleted meanwhile gets a delivery that is cancelled when claimed;
        // one created meanwhile was created after this event, as far as anyone can tell.
        let webhooks = self.subscribers(&event.space_id, &event.name).await?;
        if let Some(limit) = max_fan_out {
            check_fan_out(webhooks.len(), limit)?;
        }
        let count = u32::try_from(webhooks.len()).map_err(|_| corrupt("webhook count", "too many"))?;
        let record = idempotency.map(|record| seal_idempotency(&self.cipher, record));
        let event = Arc::new(event.clone());
        if webhooks.len() > STAGE_CHUNK {
            self.publish_staged(event.clone(), record, webhooks).await?;
        } else {
            let stored = event.clone();
            // No savepoint: the key is saved first, and a taken key fails before any change.
            self.writer
                .write_without_savepoint(move |connection| {
                    if let Some(record) = &record {
                        save_idempotency(connection, record)?;
                    }
                    insert_event_and_deliveries(connection, &stored, &webhooks)
                })
                .await?;
        }
        if count > 0 {
            self.recent_events.put(event);
        }
        Ok(count)
    }

    async fn publish_test_event(&self, event: &Event, webhook: &WebhookId) -> Result<Delivery, StoreError> {
        let (stored, target) = (event.clone(), webhook.clone());
        let ids = self
            .writer
            .write(move |connection| insert_event_and_deliveries(connection, &stored, &[target.as_str().to_owned()]))
            .await?;
        let id = ids.into_iter().next().expect("one delivery inserted");
        Ok(pending_delivery(id, event, webhook))
    }
}
