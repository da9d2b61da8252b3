//! Events, deliveries and attempts in SQLite: publishing with fan-out, claiming due
//! work under a lease, and recording what attempts did.

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::{Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::{DeliveryId, EventId, SpaceId, Timestamp, Webhook, WebhookId};
use rusqlite::{params, Connection};
use sqlx::Row;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{save_idempotency, SqliteStore};
use crate::rows::{
    corrupt, decode_delivery, decode_event, event_from_columns, page, seal_idempotency, set_aside_until, Unreadable,
};
use crate::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryDetail, IdempotencyRecord, Page, StoreError, StoredEvent,
};

const EVENT_COLUMNS: &str = "seq, id, space_id, name, object_id, object_type, data, delivery_count, create_time";
const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.space_id, d.webhook_id, d.event_id, e.name AS event_name, d.status, \
     d.attempt_count, d.next_attempt_time, d.create_time, d.update_time";
/// A delivery as leased by a claim, before its event is found.
struct LeasedRow {
    due: Option<i64>,
    seq: i64,
    delivery_id: String,
    webhook_id: String,
    attempt_count: i64,
    update_time: i64,
    event_id: String,
}

/// A delivery as claimed, with its event; its webhook comes from
/// [`SqliteStore::webhooks_by_id`].
struct ClaimedRow {
    delivery_id: String,
    webhook_id: String,
    attempt_count: i64,
    update_time: i64,
    event_id: String,
    event: ClaimedEvent,
}

/// A claimed delivery's stored event, read once per claim however many deliveries share
/// it.
fn read_event(
    read: &mut rusqlite::CachedStatement<'_>,
    events: &mut HashMap<String, Arc<EventRow>>,
    event_id: &str,
) -> Result<Arc<EventRow>, StoreError> {
    if let Some(event) = events.get(event_id) {
        return Ok(event.clone());
    }
    let event = Arc::new(read.query_row([event_id], |found| {
        Ok(EventRow {
            space_id: found.get(0)?,
            name: found.get(1)?,
            object_id: found.get(2)?,
            object_type: found.get(3)?,
            data: found.get(4)?,
            create_time: found.get(5)?,
        })
    })?);
    events.insert(event_id.to_owned(), event.clone());
    Ok(event)
}

/// A claimed row as a delivery to attempt; `events` holds the events read so far, so a
/// fan-out's deliveries share theirs.
fn decode_claimed(
    row: &ClaimedRow,
    webhook: &Arc<Webhook>,
    events: &mut HashMap<String, Arc<Event>>,
) -> Result<ClaimedDelivery, StoreError> {
    let event = match (&row.event, events.get(&row.event_id)) {
        (ClaimedEvent::Kept(event), _) | (ClaimedEvent::Read(_), Some(event)) => event.clone(),
        (ClaimedEvent::Read(stored), None) => {
            let event = Arc::new(event_from_columns(
                &row.event_id,
                &stored.space_id,
                stored.name.clone(),
                EventObject {
                    id: stored.object_id.clone(),
                    object_type: stored.object_type.clone(),
                },
                stored.data.clone(),
                stored.create_time,
            )?);
            events.insert(row.event_id.clone(), event.clone());
            event
        }
    };
    let attempts = row.attempt_count;
    Ok(ClaimedDelivery {
        delivery_id: DeliveryId::parse(&row.delivery_id).ok_or_else(|| corrupt("delivery id", &row.delivery_id))?,
        attempt: u32::try_from(attempts + 1).map_err(|_| corrupt("attempt count", &attempts.to_string()))?,
        event,
        webhook: webhook.clone(),
        update_time: Timestamp::from_micros(row.update_time),
    })
}

/// A claimed delivery's event: kept from its publishing, or read back.
enum ClaimedEvent {
    Kept(Arc<Event>),
    Read(Arc<EventRow>),
}

/// The columns of an event a delivery sends.
struct EventRow {
    space_id: String,
    name: String,
    object_id: String,
    object_type: String,
    data: String,
    create_time: i64,
}

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

/// A JSON array of ids, for `IN (SELECT value FROM json_each(?))`.
fn json_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.into_iter().collect::<Vec<_>>()).expect("strings serialise")
}

/// Inserts the event and one pending delivery of it per webhook, due at once; returns
/// the deliveries' ids.
fn insert_event_and_deliveries(
    connection: &Connection,
    event: &Event,
    webhooks: &[String],
) -> Result<Vec<DeliveryId>, StoreError> {
    let now = event.create_time.as_micros();
    connection
        .prepare_cached(
            "INSERT INTO events (id, space_id, name, object_id, object_type, data, delivery_count, create_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            event.id.as_str(),
            event.space_id.as_str(),
            event.name,
            event.object.id,
            event.object.object_type,
            event.data.get(),
            webhooks.len() as i64,
            now,
        ])?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO deliveries (id, space_id, webhook_id, event_id, status, attempt_count, next_attempt_time,
             create_time, update_time)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5)",
    )?;
    let mut ids = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        let id = DeliveryId::generate();
        insert.execute(params![
            id.as_str(),
            event.space_id.as_str(),
            webhook,
            event.id.as_str(),
            now
        ])?;
        ids.push(id);
    }
    Ok(ids)
}

/// Cancels a webhook's pending deliveries (it was disabled or deleted).
pub(crate) fn cancel_pending(connection: &Connection, webhook: &WebhookId, now: Timestamp) -> Result<u64, StoreError> {
    let cancelled = connection
        .prepare_cached(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, update_time = ?
             WHERE webhook_id = ? AND status = 'pending'",
        )?
        .execute(params![now.as_micros(), webhook.as_str()])?;
    Ok(cancelled as u64)
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
    ) -> Result<u32, StoreError> {
        // Subscribers are read before the write, off the writer's connection. A webhook
        // disabled or deleted meanwhile gets a delivery that is cancelled when claimed;
        // one created meanwhile was created after this event, as far as anyone can tell.
        let webhooks = self.subscribers(&event.space_id, &event.name).await?;
        let count = u32::try_from(webhooks.len()).map_err(|_| corrupt("webhook count", "too many"))?;
        let record = idempotency.map(|record| seal_idempotency(&self.cipher, record));
        let event = Arc::new(event.clone());
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
        if count > 0 {
            self.recent_events.put(event);
        }
        Ok(count)
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
            .write(move |connection| insert_event_and_deliveries(connection, &stored, &[target.as_str().to_owned()]))
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
        let recent = self.recent_events.clone();
        // In a savepoint: rows are decoded after they are leased, and a row that cannot be
        // decoded must fail this claim alone, not the writes that share its commit.
        let rows: Vec<ClaimedRow> = self
            .writer
            .write(move |connection| {
                let request = request_copy;
                // Oldest due first, at most `per_webhook` of any one webhook, so one
                // webhook's backlog cannot crowd out the others. Each webhook's share is
                // read from the index `pending_webhooks!` skips along.
                let mut claim = connection.prepare_cached(concat!(
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
                         RETURNING id, webhook_id, attempt_count, event_id, next_attempt_time, seq, update_time"
                ))?;
                let mut claimed = claim
                    .query_map(
                        params![
                            request.lease_until.as_micros(),
                            request.owner,
                            request.now.as_micros(),
                            skip,
                            i64::from(request.per_webhook),
                            i64::from(request.limit),
                        ],
                        |row| {
                            Ok(LeasedRow {
                                due: row.get("next_attempt_time")?,
                                seq: row.get("seq")?,
                                delivery_id: row.get("id")?,
                                webhook_id: row.get("webhook_id")?,
                                attempt_count: row.get("attempt_count")?,
                                update_time: row.get("update_time")?,
                                event_id: row.get("event_id")?,
                            })
                        },
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                claimed.sort_unstable_by_key(|row| (row.due, row.seq));
                // What to send: kept since it was published, or else read here (the
                // writer's connection answers without a hop to another thread); a
                // fan-out's deliveries share their event.
                let kept = recent.get_all(claimed.iter().map(|row| row.event_id.as_str()));
                let mut read = connection.prepare_cached(
                    "SELECT space_id, name, object_id, object_type, data, create_time FROM events WHERE id = ?",
                )?;
                let mut events: HashMap<String, Arc<EventRow>> = HashMap::new();
                let mut rows = Vec::with_capacity(claimed.len());
                for (row, kept) in claimed.into_iter().zip(kept) {
                    let event = match kept {
                        Some(event) => ClaimedEvent::Kept(event),
                        None => ClaimedEvent::Read(read_event(&mut read, &mut events, &row.event_id)?),
                    };
                    rows.push(ClaimedRow {
                        delivery_id: row.delivery_id,
                        webhook_id: row.webhook_id,
                        attempt_count: row.attempt_count,
                        update_time: row.update_time,
                        event_id: row.event_id,
                        event,
                    });
                }
                Ok(rows)
            })
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut webhook_ids: Vec<&str> = rows.iter().map(|row| row.webhook_id.as_str()).collect();
        webhook_ids.sort_unstable();
        webhook_ids.dedup();
        let webhooks = self.webhooks_by_id(&webhook_ids).await?;
        let mut ready = Vec::with_capacity(rows.len());
        let mut cancelled = Vec::new();
        let mut unreadable = Vec::new();
        let mut events: HashMap<String, Arc<Event>> = HashMap::new();
        for row in rows {
            let webhook = match webhooks.get(&row.webhook_id) {
                Some(Ok(webhook)) if webhook.enabled => webhook,
                Some(Err(error)) => {
                    unreadable.push(Unreadable::new(row.delivery_id, error));
                    continue;
                }
                _ => {
                    cancelled.push(row.delivery_id);
                    continue;
                }
            };
            match decode_claimed(&row, webhook, &mut events) {
                Ok(delivery) => ready.push(delivery),
                Err(error) => unreadable.push(Unreadable::new(row.delivery_id, &error)),
            }
        }
        if !unreadable.is_empty() {
            let until = set_aside_until(request);
            let (ids, owner) = (
                json_ids(unreadable.iter().map(|u| u.delivery_id.as_str())),
                request.owner.clone(),
            );
            // Should this fail, they come back when the claim's own lease runs out.
            let set_aside = self
                .writer
                .write_without_savepoint(move |connection| {
                    connection.execute(
                        "UPDATE deliveries SET lease_until = ? WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?",
                        params![until.as_micros(), ids, owner],
                    )?;
                    Ok(())
                })
                .await;
            if let Err(error) = set_aside {
                tracing::warn!(%error, "setting unreadable deliveries aside failed; they are tried again when their lease runs out");
            }
            Unreadable::log(&unreadable);
        }
        if !cancelled.is_empty() {
            let now = request.now;
            self.writer
                .write_without_savepoint(move |connection| {
                    connection.execute(
                        "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, lease_until = NULL,
                             lease_owner = NULL, update_time = ?
                         WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'",
                        params![now.as_micros(), json_ids(cancelled.iter().map(String::as_str))],
                    )?;
                    Ok(())
                })
                .await?;
        }
        Ok(ready)
    }

    pub(super) async fn release_deliveries_impl(
        &self,
        ids: &[DeliveryId],
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        let ids = json_ids(ids.iter().map(DeliveryId::as_str));
        let owner = owner.to_owned();
        self.writer
            .write_without_savepoint(move |connection| {
                connection.execute(
                    "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
                     WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? AND lease_until = ?",
                    params![ids, owner, lease_until.as_micros()],
                )?;
                Ok(())
            })
            .await
    }

    /// Records the results; returns the alerts queued, and whether a webhook was
    /// disabled.
    pub(super) async fn record_attempts_impl(
        &self,
        results: &[AttemptResult],
        policy: &AlertPolicy,
    ) -> Result<(u32, bool), StoreError> {
        let (results, policy) = (results.to_vec(), *policy);
        self.writer
            // In a savepoint: a batch changes rows result by result, and one that then
            // fails (a webhook's stored alert settings unreadable) must fail alone.
            .write(move |connection| record_attempts(connection, &results, &policy))
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
        let (space_id, webhook_id, delivery_id) = (space.clone(), webhook.clone(), id.clone());
        let updated = self
            .writer
            .write(move |connection| {
                let updated = connection.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_time = ?, update_time = ?
                     WHERE id = ? AND webhook_id = ? AND space_id = ?",
                    params![
                        now.as_micros(),
                        now.as_micros(),
                        delivery_id.as_str(),
                        webhook_id.as_str(),
                        space_id.as_str()
                    ],
                )?;
                Ok(updated > 0)
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

/// Records attempts and moves their deliveries on, in the caller's transaction, and
/// applies each to its webhook's health; returns the alerts queued.
fn record_attempts(
    connection: &Connection,
    results: &[AttemptResult],
    policy: &AlertPolicy,
) -> Result<(u32, bool), StoreError> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING",
    )?;
    // A delivery cancelled while its attempt was in flight stays cancelled unless that
    // attempt settled it. One retried meanwhile (pending, and changed since its claim)
    // stays pending, due when the retry asked.
    let mut settle = connection.prepare_cached(
        "UPDATE deliveries SET
             status = CASE WHEN status = 'cancelled' AND ?2 = 'pending' THEN 'cancelled'
                           WHEN status = 'pending' AND update_time <> ?6 THEN 'pending'
                           ELSE ?2 END,
             next_attempt_time = CASE WHEN status = 'cancelled' THEN NULL
                                      WHEN status = 'pending' AND update_time <> ?6 THEN next_attempt_time
                                      ELSE ?3 END,
             attempt_count = MAX(attempt_count, ?4), lease_until = NULL, lease_owner = NULL, update_time = ?5
         WHERE id = ?1",
    )?;
    let (mut alerts, mut disabled_any) = (0, false);
    // Webhooks whose health this batch cleared and no failure has touched since: their
    // next successes have nothing to clear.
    let mut healthy: HashSet<&WebhookId> = HashSet::new();
    for result in results {
        let attempt = &result.attempt;
        let inserted = insert.execute(params![
            result.delivery_id.as_str(),
            i64::from(attempt.attempt),
            attempt.start_time.as_micros(),
            i64::from(attempt.duration_ms),
            attempt.status_code.map(i64::from),
            attempt.error_kind.map(ErrorKind::as_str),
            attempt.response_body.as_deref(),
        ])?;
        // An attempt already recorded (its lease ran out and it was taken over) is left
        // as it is, and so are its delivery and health.
        if inserted == 0 {
            continue;
        }
        let (status, next_time) = match result.next {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, None),
            NextStep::RetryAt(time) => (DeliveryStatus::Pending, Some(time.as_micros())),
            NextStep::Failed { .. } => (DeliveryStatus::Failed, None),
        };
        settle.execute(params![
            result.delivery_id.as_str(),
            status.as_str(),
            next_time,
            i64::from(attempt.attempt),
            result.finish_time.as_micros(),
            result.claimed_update_time.as_micros(),
        ])?;
        if matches!(result.next, NextStep::Succeeded) {
            if healthy.insert(&result.webhook_id) {
                alerts += super::alerts::clear_health(connection, &result.webhook_id, result.finish_time)?;
            }
        } else {
            healthy.remove(&result.webhook_id);
            // Health also disables the webhook on 410 Gone, and cancels its pending
            // deliveries.
            let (queued, disabled) = super::alerts::apply_health(connection, result, policy)?;
            alerts += queued;
            disabled_any |= disabled;
        }
    }
    Ok((alerts, disabled_any))
}
