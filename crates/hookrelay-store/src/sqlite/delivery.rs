//! Events, deliveries and attempts in SQLite: publishing with fan-out, claiming due
//! work under a lease, and recording what attempts did.

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::{Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::{DeliveryId, EventId, SpaceId, Timestamp, Webhook, WebhookId};
use serde_json::value::RawValue;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use std::sync::Arc;

use super::{save_idempotency, SqliteStore};
use crate::rows::{corrupt, decode_delivery, decode_event, page};
use crate::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryDetail, IdempotencyRecord, Page, RenderPublished, StoreError,
    StoredEvent,
};

const EVENT_COLUMNS: &str = "seq, id, space_id, name, object_id, object_type, data, delivery_count, create_time";
const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.space_id, d.webhook_id, d.event_id, e.name AS event_name, d.status, \
     d.attempt_count, d.next_attempt_time, d.create_time, d.update_time";
/// A claimed delivery with its event; its webhook comes from [`SqliteStore::webhooks_by_id`].
const CLAIMED_QUERY: &str = "SELECT d.id AS delivery_id, d.webhook_id, d.attempt_count, e.id AS event_id,
            e.space_id AS event_space_id, e.name AS event_name, e.object_id, e.object_type, e.data,
            e.create_time AS event_time
     FROM deliveries d
     JOIN events e ON e.id = d.event_id
     WHERE d.id IN (SELECT value FROM json_each(?))
     ORDER BY d.next_attempt_time, d.seq";
/// `pending(webhook_id)`: the webhooks with pending deliveries (and a last NULL row),
/// found by skipping along the `(webhook_id, next_attempt_time, seq)` index, one seek
/// per webhook however long its backlog. A macro, so queries can `concat!` it.
macro_rules! pending_webhooks {
    () => {
        "WITH RECURSIVE pending(webhook_id) AS (
             SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending'
             UNION ALL
             SELECT (SELECT MIN(webhook_id) FROM deliveries
                     WHERE status = 'pending' AND webhook_id > pending.webhook_id)
             FROM pending WHERE pending.webhook_id IS NOT NULL
         ) "
    };
}

/// Rows per multi-row INSERT, well under SQLite's bound-parameter limit.
const INSERT_CHUNK: usize = 500;

/// A JSON array of ids, for `IN (SELECT value FROM json_each(?))`.
fn json_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.into_iter().collect::<Vec<_>>()).expect("strings serialise")
}

/// Inserts the event and one pending delivery of it per webhook, due at once, in one
/// round trip to the connection; returns the deliveries' ids.
async fn insert_event_and_deliveries(
    connection: &mut SqliteConnection,
    event: &Event,
    webhooks: &[String],
) -> Result<Vec<DeliveryId>, StoreError> {
    let ids: Vec<DeliveryId> = webhooks.iter().map(|_| DeliveryId::generate()).collect();
    let now = event.create_time.as_micros();
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO events (id, space_id, name, object_id, object_type, data, delivery_count, create_time) ",
    );
    insert.push_values([event], |mut row, event| {
        row.push_bind(event.id.as_str())
            .push_bind(event.space_id.as_str())
            .push_bind(&event.name)
            .push_bind(&event.object.id)
            .push_bind(&event.object.object_type)
            .push_bind(event.data.get())
            .push_bind(ids.len() as i64)
            .push_bind(now);
    });
    // The first chunk of deliveries goes in the event's statement; further ones (an
    // event with more than `INSERT_CHUNK` subscribers) in their own.
    let mut chunks = ids.chunks(INSERT_CHUNK).zip(webhooks.chunks(INSERT_CHUNK));
    if let Some(chunk) = chunks.next() {
        insert.push("; ");
        push_deliveries(&mut insert, event, chunk);
    }
    insert.build().execute(&mut *connection).await?;
    for chunk in chunks {
        let mut insert = QueryBuilder::<Sqlite>::new("");
        push_deliveries(&mut insert, event, chunk);
        insert.build().execute(&mut *connection).await?;
    }
    Ok(ids)
}

/// Appends an insert of pending deliveries of `event`, due at once.
fn push_deliveries<'a>(
    insert: &mut QueryBuilder<'a, Sqlite>,
    event: &'a Event,
    (ids, webhooks): (&'a [DeliveryId], &'a [String]),
) {
    let now = event.create_time.as_micros();
    insert.push(
        "INSERT INTO deliveries (id, space_id, webhook_id, event_id, status, attempt_count, next_attempt_time, \
         create_time, update_time) ",
    );
    insert.push_values(ids.iter().zip(webhooks), |mut row, (id, webhook)| {
        row.push_bind(id.as_str())
            .push_bind(event.space_id.as_str())
            .push_bind(webhook.as_str())
            .push_bind(event.id.as_str())
            .push_bind(DeliveryStatus::Pending.as_str())
            .push_bind(0_i64)
            .push_bind(now)
            .push_bind(now)
            .push_bind(now);
    });
}

/// Cancels a webhook's pending deliveries (it was disabled or deleted).
pub(crate) async fn cancel_pending(
    connection: &mut SqliteConnection,
    webhook: &WebhookId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let cancelled = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, update_time = ?
         WHERE webhook_id = ? AND status = 'pending'",
    )
    .bind(now.as_micros())
    .bind(webhook.as_str())
    .execute(connection)
    .await?;
    Ok(cancelled.rows_affected())
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

    pub(super) async fn publish_event_impl(
        &self,
        event: &Event,
        idempotency: Option<IdempotencyRecord>,
        render: RenderPublished<'_>,
    ) -> Result<u32, StoreError> {
        // Subscribers are read before the write, off the writer's connection. A webhook
        // disabled or deleted meanwhile gets a delivery that is cancelled when claimed;
        // one created meanwhile was created after this event, as far as anyone can tell.
        let webhooks = self.subscribers(&event.space_id, &event.name).await?;
        let count = u32::try_from(webhooks.len()).map_err(|_| corrupt("webhook count", "too many"))?;
        let record = idempotency.map(|mut record| {
            record.body = render(count);
            record
        });
        let (event, cipher) = (event.clone(), self.cipher.clone());
        self.writer
            .write(move |connection| {
                Box::pin(async move {
                    if let Some(record) = &record {
                        save_idempotency(connection, &cipher, record).await?;
                    }
                    insert_event_and_deliveries(connection, &event, &webhooks).await?;
                    Ok(count)
                })
            })
            .await
    }

    pub(super) async fn get_event_impl(
        &self,
        space: &SpaceId,
        id: &EventId,
    ) -> Result<Option<StoredEvent>, StoreError> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id = ? AND space_id = ?"
        ))
        .bind(id.as_str())
        .bind(space.as_str())
        .fetch_optional(&self.readers)
        .await?
        .map(|row| decode_event(&row))
        .transpose()
    }

    pub(super) async fn list_events_impl(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE space_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(space.as_str())
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
        .await?;
        page(rows, limit, decode_event)
    }

    pub(super) async fn publish_test_event_impl(
        &self,
        event: &Event,
        webhook: &WebhookId,
    ) -> Result<Delivery, StoreError> {
        let (stored, target) = (event.clone(), webhook.clone());
        let ids = self
            .writer
            .write(move |connection| {
                Box::pin(async move {
                    insert_event_and_deliveries(connection, &stored, &[target.as_str().to_owned()]).await
                })
            })
            .await?;
        Ok(Delivery {
            id: ids.into_iter().next().expect("one delivery inserted"),
            space_id: event.space_id.clone(),
            webhook_id: webhook.clone(),
            event_id: event.id.clone(),
            event_name: event.name.clone(),
            status: DeliveryStatus::Pending,
            attempt_count: 0,
            next_attempt_time: Some(event.create_time),
            create_time: event.create_time,
            update_time: event.create_time,
        })
    }

    pub(super) async fn claim_deliveries_impl(
        &self,
        request: &ClaimRequest,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let skip = json_ids(request.skip_webhooks.iter().map(WebhookId::as_str));
        let request_copy = request.clone();
        let claimed: Vec<String> = self
            .writer
            .write(move |connection| {
                let request = request_copy;
                Box::pin(async move {
                    // Oldest due first, at most `per_webhook` of any one webhook, so one
                    // webhook's backlog cannot crowd out the others. Each webhook's share
                    // is read from the index `pending_webhooks!` skips along.
                    let claimed = sqlx::query_scalar(concat!(
                        pending_webhooks!(),
                        "UPDATE deliveries SET lease_until = ?1, lease_owner = ?2
                         WHERE seq IN (
                             SELECT d.seq
                             FROM pending AS w
                             JOIN deliveries AS d ON d.seq IN (
                                 SELECT seq FROM deliveries
                                 WHERE webhook_id = w.webhook_id AND status = 'pending'
                                   AND next_attempt_time <= ?3 AND (lease_until IS NULL OR lease_until < ?3)
                                 ORDER BY next_attempt_time, seq LIMIT ?5)
                             WHERE w.webhook_id IS NOT NULL
                               AND w.webhook_id NOT IN (SELECT value FROM json_each(?4))
                             ORDER BY d.next_attempt_time, d.seq
                             LIMIT ?6
                         )
                         RETURNING id"
                    ))
                    .bind(request.lease_until.as_micros())
                    .bind(&request.owner)
                    .bind(request.now.as_micros())
                    .bind(&skip)
                    .bind(i64::from(request.per_webhook))
                    .bind(i64::from(request.limit))
                    .fetch_all(connection)
                    .await?;
                    Ok(claimed)
                })
            })
            .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // The claim is ours now: read what to send off the writer's connection.
        let rows = sqlx::query(CLAIMED_QUERY)
            .bind(json_ids(claimed.iter().map(String::as_str)))
            .fetch_all(&self.readers)
            .await?;
        let mut webhook_ids: Vec<String> = rows
            .iter()
            .map(|row| row.try_get("webhook_id"))
            .collect::<Result<_, _>>()?;
        webhook_ids.sort_unstable();
        webhook_ids.dedup();
        let webhooks = self
            .webhooks_by_id(&webhook_ids.iter().map(String::as_str).collect::<Vec<_>>())
            .await?;
        let mut ready = Vec::with_capacity(rows.len());
        let mut cancelled = Vec::new();
        for row in &rows {
            let delivery_id: String = row.try_get("delivery_id")?;
            let webhook_id: String = row.try_get("webhook_id")?;
            let Some(webhook) = webhooks.get(&webhook_id).filter(|w| w.enabled) else {
                cancelled.push(delivery_id);
                continue;
            };
            let attempts: i64 = row.try_get("attempt_count")?;
            let event_id: String = row.try_get("event_id")?;
            let event_space: String = row.try_get("event_space_id")?;
            let data: String = row.try_get("data")?;
            ready.push(ClaimedDelivery {
                delivery_id: DeliveryId::parse(&delivery_id).ok_or_else(|| corrupt("delivery id", &delivery_id))?,
                attempt: u32::try_from(attempts + 1).map_err(|_| corrupt("attempt count", &attempts.to_string()))?,
                event: Event {
                    id: EventId::parse(&event_id).ok_or_else(|| corrupt("event id", &event_id))?,
                    space_id: SpaceId::parse(&event_space).ok_or_else(|| corrupt("space id", &event_space))?,
                    name: row.try_get("event_name")?,
                    object: EventObject {
                        id: row.try_get("object_id")?,
                        object_type: row.try_get("object_type")?,
                    },
                    data: RawValue::from_string(data).map_err(|e| corrupt("event data", &e.to_string()))?,
                    create_time: Timestamp::from_micros(row.try_get("event_time")?),
                },
                webhook: Webhook::clone(webhook),
            });
        }
        if !cancelled.is_empty() {
            let now = request.now;
            self.writer
                .write(move |connection| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, lease_until = NULL,
                                 lease_owner = NULL, update_time = ?
                             WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'",
                        )
                        .bind(now.as_micros())
                        .bind(json_ids(cancelled.iter().map(String::as_str)))
                        .execute(connection)
                        .await?;
                        Ok(())
                    })
                })
                .await?;
        }
        Ok(ready)
    }

    pub(super) async fn release_deliveries_impl(&self, ids: &[DeliveryId]) -> Result<(), StoreError> {
        let ids = json_ids(ids.iter().map(DeliveryId::as_str));
        self.writer
            .write(move |connection| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
                         WHERE id IN (SELECT value FROM json_each(?))",
                    )
                    .bind(ids)
                    .execute(connection)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    pub(super) async fn record_attempts_impl(
        &self,
        results: &[AttemptResult],
        policy: &AlertPolicy,
    ) -> Result<u32, StoreError> {
        let (results, policy) = (results.to_vec(), *policy);
        self.writer
            .write(move |connection| Box::pin(async move { record_attempts(connection, &results, &policy).await }))
            .await
    }

    pub(super) async fn next_due_time_impl(
        &self,
        now: Timestamp,
        skip_webhooks: &[WebhookId],
    ) -> Result<Option<Timestamp>, StoreError> {
        // Per webhook, as claims read: a webhook left out (its slots are full) may have
        // a long backlog, which a scan of all pending deliveries by due time would read.
        let due: Option<i64> = sqlx::query_scalar(concat!(
            pending_webhooks!(),
            "SELECT MIN((SELECT MIN(next_attempt_time) FROM deliveries
                         WHERE webhook_id = p.webhook_id AND status = 'pending'
                           AND (lease_until IS NULL OR lease_until < ?1)))
             FROM pending AS p
             WHERE p.webhook_id IS NOT NULL AND p.webhook_id NOT IN (SELECT value FROM json_each(?2))"
        ))
        .bind(now.as_micros())
        .bind(json_ids(skip_webhooks.iter().map(WebhookId::as_str)))
        .fetch_one(&self.readers)
        .await?;
        Ok(due.map(Timestamp::from_micros))
    }

    pub(super) async fn list_deliveries_impl(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.webhook_id = ?1 AND d.space_id = ?2 AND (?3 IS NULL OR d.status = ?3) AND d.seq < ?4
             ORDER BY d.seq DESC LIMIT ?5"
        ))
        .bind(webhook.as_str())
        .bind(space.as_str())
        .bind(status.map(DeliveryStatus::as_str))
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
        .await?;
        page(rows, limit, decode_delivery)
    }

    pub(super) async fn get_delivery_impl(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, StoreError> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = ? AND d.webhook_id = ? AND d.space_id = ?"
        ))
        .bind(id.as_str())
        .bind(webhook.as_str())
        .bind(space.as_str())
        .fetch_optional(&self.readers)
        .await?
        else {
            return Ok(None);
        };
        let delivery = decode_delivery(&row)?;
        let attempts = sqlx::query(
            "SELECT attempt, start_time, duration_ms, status_code, error_kind, response_body
             FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt",
        )
        .bind(id.as_str())
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(|row| {
            let number: i64 = row.try_get("attempt")?;
            let duration: i64 = row.try_get("duration_ms")?;
            let status: Option<i64> = row.try_get("status_code")?;
            let kind: Option<String> = row.try_get("error_kind")?;
            Ok(DeliveryAttempt {
                attempt: u32::try_from(number).map_err(|_| corrupt("attempt", &number.to_string()))?,
                start_time: Timestamp::from_micros(row.try_get("start_time")?),
                duration_ms: u32::try_from(duration).unwrap_or(u32::MAX),
                status_code: status.and_then(|s| u16::try_from(s).ok()),
                error_kind: match kind {
                    None => None,
                    Some(kind) => Some(ErrorKind::parse(&kind).ok_or_else(|| corrupt("error kind", &kind))?),
                },
                response_body: row.try_get("response_body")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(DeliveryDetail { delivery, attempts }))
    }

    pub(super) async fn retry_delivery_impl(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        let (space, webhook, id) = (space.clone(), webhook.clone(), id.clone());
        self.writer
            .write(move |connection| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE deliveries SET status = 'pending', next_attempt_time = ?, update_time = ?
                         WHERE id = ? AND webhook_id = ? AND space_id = ?",
                    )
                    .bind(now.as_micros())
                    .bind(now.as_micros())
                    .bind(id.as_str())
                    .bind(webhook.as_str())
                    .bind(space.as_str())
                    .execute(&mut *connection)
                    .await?;
                    if updated.rows_affected() == 0 {
                        return Ok(None);
                    }
                    let row = sqlx::query(&format!(
                        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?"
                    ))
                    .bind(id.as_str())
                    .fetch_one(connection)
                    .await?;
                    decode_delivery(&row).map(Some)
                })
            })
            .await
    }
}

/// Records attempts and moves their deliveries on, in the caller's transaction: the
/// attempts in one multi-row insert, their deliveries in one update, and the health of
/// webhooks whose attempts succeeded in one delete, so a batch costs a few statements.
async fn record_attempts(
    connection: &mut SqliteConnection,
    results: &[AttemptResult],
    policy: &AlertPolicy,
) -> Result<u32, StoreError> {
    let mut recorded = std::collections::HashSet::with_capacity(results.len());
    for chunk in results.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO delivery_attempts
                 (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body) ",
        );
        insert.push_values(chunk, |mut row, result| {
            let attempt = &result.attempt;
            row.push_bind(result.delivery_id.as_str())
                .push_bind(i64::from(attempt.attempt))
                .push_bind(attempt.start_time.as_micros())
                .push_bind(i64::from(attempt.duration_ms))
                .push_bind(attempt.status_code.map(i64::from))
                .push_bind(attempt.error_kind.map(ErrorKind::as_str))
                .push_bind(attempt.response_body.as_deref());
        });
        // An attempt already recorded (its lease ran out and it was taken over) is left
        // as it is, and so are its delivery and health.
        insert.push(" ON CONFLICT DO NOTHING RETURNING delivery_id, attempt");
        let rows: Vec<(String, i64)> = insert.build_query_as().fetch_all(&mut *connection).await?;
        recorded.extend(rows);
    }
    let fresh: Vec<&AttemptResult> = results
        .iter()
        .filter(|r| recorded.contains(&(r.delivery_id.as_str().to_owned(), i64::from(r.attempt.attempt))))
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    let moves: Vec<serde_json::Value> = fresh
        .iter()
        .map(|result| {
            let (status, next_time) = match result.next {
                NextStep::Succeeded => (DeliveryStatus::Succeeded, None),
                NextStep::RetryAt(time) => (DeliveryStatus::Pending, Some(time.as_micros())),
                NextStep::Failed { .. } => (DeliveryStatus::Failed, None),
            };
            serde_json::json!([
                result.delivery_id.as_str(),
                status.as_str(),
                next_time,
                result.attempt.attempt,
                result.finish_time.as_micros()
            ])
        })
        .collect();
    // A delivery cancelled while its attempt was in flight stays cancelled unless that
    // attempt settled it.
    sqlx::query(
        "UPDATE deliveries SET
             status = CASE WHEN deliveries.status = 'cancelled' AND m.status = 'pending' THEN 'cancelled'
                           ELSE m.status END,
             next_attempt_time = CASE WHEN deliveries.status = 'cancelled' THEN NULL ELSE m.next_time END,
             attempt_count = MAX(attempt_count, m.attempt), lease_until = NULL, lease_owner = NULL,
             update_time = m.finish_time
         FROM (SELECT value ->> 0 AS id, value ->> 1 AS status, value ->> 2 AS next_time,
                      value ->> 3 AS attempt, value ->> 4 AS finish_time
               FROM json_each(?)) AS m
         WHERE deliveries.id = m.id",
    )
    .bind(serde_json::Value::Array(moves).to_string())
    .execute(&mut *connection)
    .await?;
    // Health, in the order the attempts finished. A run of successes only clears
    // failure records, so each run is one statement, whatever its webhooks.
    let mut alerts = 0;
    let mut successes: Vec<&str> = Vec::new();
    let mut run_end = Timestamp::from_micros(0);
    for result in fresh {
        if matches!(result.next, NextStep::Succeeded) {
            successes.push(result.webhook_id.as_str());
            run_end = result.finish_time;
            continue;
        }
        alerts += super::alerts::clear_health(connection, &successes, run_end).await?;
        successes.clear();
        // Health also disables the webhook on 410 Gone, and cancels its pending deliveries.
        alerts += super::alerts::apply_health(connection, result, policy).await?;
    }
    alerts += super::alerts::clear_health(connection, &successes, run_end).await?;
    Ok(alerts)
}
