//! Events in PostgreSQL: publishing with fan-out in one statement, and reading them back.

use async_trait::async_trait;
use hookrelay_core::delivery::Delivery;
use hookrelay_core::event::Event;
use hookrelay_core::quota::check_fan_out;
use hookrelay_core::{DeliveryId, WebhookId};
use sqlx::{PgPool, Row};

use super::{bind_idempotency, PostgresStore};
use crate::rows::{corrupt, pending_delivery, seal_idempotency};
use crate::{EventStore, IdempotencyRecord, StoreError};

/// Inserts the event and one pending delivery of it per webhook, due at once, and saves
/// `key` (sealed), all in one statement whatever the count (the ids travel as two arrays),
/// so in one round trip and without a transaction around it; returns the deliveries' ids.
/// A live record for the key keeps it: then nothing is inserted, and the key is taken.
/// A delivery to a webhook that orders by object takes the event's object id as its
/// ordering key (`claim.rs`); for any other webhook the key stays NULL.
async fn insert_event_and_deliveries(
    pool: &PgPool,
    event: &Event,
    webhooks: &[String],
    key: Option<&IdempotencyRecord>,
) -> Result<Vec<DeliveryId>, StoreError> {
    let ids: Vec<DeliveryId> = webhooks.iter().map(|_| DeliveryId::generate()).collect();
    let delivery_count = i64::try_from(ids.len()).map_err(|_| corrupt("webhook count", "too many"))?;
    let query = sqlx::query(concat!(
        "WITH key AS (",
        save_idempotency_key!(),
        " RETURNING 1
         ), event AS (
             INSERT INTO events (id, space_id, name, object_id, object_type, data, delivery_count, create_time,
                 trace_parent)
             SELECT $11, $10, $13, $14, $15, $16, $17, $12, $18
             WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM key)
             RETURNING id
         ), delivered AS (
             INSERT INTO deliveries (id, space_id, webhook_id, event_id, status, attempt_count, next_attempt_time,
                 create_time, update_time, ordering_key)
             SELECT new.id, $10, new.webhook_id, event.id, 'pending', 0, $12, $12, $12,
                    (SELECT $14 FROM webhooks w
                     WHERE w.id = new.webhook_id AND w.settings::jsonb ->> 'ordering' = 'object')
             FROM event, UNNEST($8::text[], $9::text[]) WITH ORDINALITY AS new (id, webhook_id, n)
             ORDER BY new.n
         )
         SELECT EXISTS (SELECT 1 FROM event)"
    ));
    let inserted: bool = bind_idempotency(query, key)
        .bind(ids.iter().map(DeliveryId::as_str).collect::<Vec<_>>())
        .bind(webhooks)
        .bind(event.space_id.as_str())
        .bind(event.id.as_str())
        .bind(event.create_time.as_micros())
        .bind(&event.name)
        .bind(&event.object.id)
        .bind(&event.object.object_type)
        .bind(event.data.get())
        .bind(delivery_count)
        .bind(event.trace_parent.as_deref())
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    if !inserted {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(ids)
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn publish_event_within(
        &self,
        event: &Event,
        idempotency: Option<IdempotencyRecord>,
        max_fan_out: Option<u32>,
    ) -> Result<u32, StoreError> {
        // Not locked, nor read in the insert's transaction: as on SQLite, a webhook
        // disabled or deleted meanwhile gets a delivery that is cancelled when claimed, and
        // publishing never waits for a patch.
        let webhooks: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM webhooks
             WHERE space_id = $1 AND enabled AND events @> jsonb_build_array($2::text)
             ORDER BY seq",
        )
        .bind(event.space_id.as_str())
        .bind(&event.name)
        .fetch_all(&self.pool)
        .await?;
        if let Some(limit) = max_fan_out {
            check_fan_out(webhooks.len(), limit)?;
        }
        let count = u32::try_from(webhooks.len()).map_err(|_| corrupt("webhook count", "too many"))?;
        let key = idempotency.map(|record| seal_idempotency(&self.cipher, record));
        insert_event_and_deliveries(&self.pool, event, &webhooks, key.as_ref()).await?;
        if count > 0 {
            self.notifier.work_stored();
        }
        Ok(count)
    }

    async fn publish_test_event(&self, event: &Event, webhook: &WebhookId) -> Result<Delivery, StoreError> {
        let ids = insert_event_and_deliveries(&self.pool, event, &[webhook.as_str().to_owned()], None).await?;
        self.notifier.work_stored();
        let id = ids.into_iter().next().expect("one delivery inserted");
        Ok(pending_delivery(id, event, webhook))
    }
}
