//! Events, deliveries and attempts in PostgreSQL: publishing with fan-out, claiming due
//! work under a lease when several nodes claim at once, and recording what attempts did.
//!
//! Lock order, to keep writers from deadlocking: webhooks (by `seq`) before deliveries.
//! Recording attempts locks every webhook it touches first, so two transactions that
//! record attempts of one webhook (its health, or the same delivery after a lease ran
//! out) run one after the other. A deadlock the order cannot rule out (attempts of a
//! webhook deleted meanwhile, which has no row left to lock) is retried.

use std::collections::HashSet;
use std::sync::LazyLock;

use std::sync::Arc;

use hookrelay_core::alert::AlertPolicy;

use hookrelay_core::delivery::{Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, NextStep};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::{DeliveryId, EventId, SpaceId, Timestamp, WebhookId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{alerts, bind_idempotency, webhook_columns, PostgresStore};
use crate::rows::{
    corrupt, decode_delivery, decode_event, event_from_columns, page, seal_idempotency, set_aside_until, Unreadable,
};
use crate::{
    AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryDetail, IdempotencyRecord, Page, StoreError, StoredEvent,
};

const EVENT_COLUMNS: &str = "seq, id, space_id, name, object_id, object_type, data, delivery_count, create_time";
const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.space_id, d.webhook_id, d.event_id, e.name AS event_name, d.status, \
     d.attempt_count, d.next_attempt_time, d.create_time, d.update_time";

/// `pending(webhook_id)`: the webhooks with pending deliveries other than those in
/// `$2` (and a last NULL row), found by skipping along the partial index
/// `deliveries_pending_by_webhook`, one probe per webhook however long its backlog;
/// `DISTINCT ON` or `MIN` over the due rows would read every one of them. A macro, so
/// queries can `concat!` it.
macro_rules! pending_webhooks {
    () => {
        "WITH RECURSIVE pending(webhook_id) AS (
             (SELECT webhook_id FROM deliveries WHERE status = 'pending' ORDER BY webhook_id LIMIT 1)
             UNION ALL
             SELECT (SELECT d.webhook_id FROM deliveries d
                     WHERE d.status = 'pending' AND d.webhook_id > p.webhook_id
                     ORDER BY d.webhook_id LIMIT 1)
             FROM pending p WHERE p.webhook_id IS NOT NULL
         ), live AS (
             SELECT webhook_id FROM pending WHERE webhook_id IS NOT NULL AND webhook_id <> ALL($2)
         ) "
    };
}

/// Leases due deliveries and reads what sending them needs, in one statement: oldest
/// due first, at most `$4` of any one webhook (so one webhook's backlog cannot crowd out
/// the others), at most `$3` in all; the same choice as SQLite's claim, which
/// PostgreSQL's `FOR UPDATE` cannot make in one window query.
///
/// Only the `$3` webhooks whose oldest due delivery comes first can contribute (each
/// of them has a delivery ahead of any other webhook's), so only their first `$4` rows
/// are locked. `SKIP LOCKED` passes over rows another node is claiming at this moment,
/// and a row leased since this statement's snapshot fails the re-checked lease test.
/// Each leased delivery comes back with its event and its webhook as they are now
/// (NULL columns for a webhook deleted meanwhile); the webhook's columns keep their own
/// names so the webhook decoder reads them as it reads the webhooks table.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}, firsts AS (
            SELECT live.webhook_id FROM live CROSS JOIN LATERAL (
                SELECT d.next_attempt_time, d.seq FROM deliveries d
                WHERE d.webhook_id = live.webhook_id AND d.status = 'pending' AND d.next_attempt_time <= $1
                  AND (d.lease_until IS NULL OR d.lease_until < $1)
                ORDER BY d.next_attempt_time, d.seq LIMIT 1
            ) first
            ORDER BY first.next_attempt_time, first.seq LIMIT $3
        ), locked AS (
            SELECT l.seq, l.next_attempt_time FROM firsts CROSS JOIN LATERAL (
                SELECT d.seq, d.next_attempt_time FROM deliveries d
                WHERE d.webhook_id = firsts.webhook_id AND d.status = 'pending' AND d.next_attempt_time <= $1
                  AND (d.lease_until IS NULL OR d.lease_until < $1)
                ORDER BY d.next_attempt_time, d.seq LIMIT $4
                FOR UPDATE SKIP LOCKED
            ) l
        ), chosen AS (
            SELECT seq FROM locked ORDER BY next_attempt_time, seq LIMIT $3
        ), claimed AS (
            UPDATE deliveries SET lease_until = $5, lease_owner = $6
            FROM chosen WHERE deliveries.seq = chosen.seq
            RETURNING deliveries.id, deliveries.attempt_count, deliveries.update_time, deliveries.event_id,
                      deliveries.webhook_id, deliveries.next_attempt_time, deliveries.seq
        )
        SELECT c.id AS delivery_id, c.attempt_count, c.update_time AS delivery_update_time,
               e.id AS event_id, e.space_id AS event_space_id, e.name AS event_name, e.object_id,
               e.object_type, e.data, e.create_time AS event_time, {}
        FROM claimed c
        JOIN events e ON e.id = c.event_id
        LEFT JOIN webhooks w ON w.id = c.webhook_id
        ORDER BY c.next_attempt_time, c.seq",
        pending_webhooks!(),
        webhook_columns("w")
    )
});

/// What a claimed row holds.
enum ClaimedRow {
    /// A delivery to attempt.
    Ready(ClaimedDelivery),
    /// The id of a delivery whose webhook was disabled or deleted since it was published.
    WebhookGone(String),
}

/// How often a transaction that lost a deadlock is tried again.
const DEADLOCK_RETRIES: u32 = 3;

/// Whether PostgreSQL aborted the transaction only to break a deadlock or a
/// serialisation conflict, so that running it again is safe.
fn is_transient(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(db)) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// Inserts the event and one pending delivery of it per webhook, due at once, and saves
/// `key` (sealed), all in one statement whatever the count (the ids travel as two arrays),
/// so in one round trip and without a transaction around it; returns the deliveries' ids.
/// A live record for the key keeps it: then nothing is inserted, and the key is taken.
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
             INSERT INTO events (id, space_id, name, object_id, object_type, data, delivery_count, create_time)
             SELECT $11, $10, $13, $14, $15, $16, $17, $12
             WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM key)
             RETURNING id
         ), delivered AS (
             INSERT INTO deliveries (id, space_id, webhook_id, event_id, status, attempt_count, next_attempt_time,
                 create_time, update_time)
             SELECT new.id, $10, new.webhook_id, event.id, 'pending', 0, $12, $12, $12
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
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    if !inserted {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(ids)
}

/// Moves the deliveries of recorded attempts on, in one statement. A delivery cancelled
/// while its attempt was in flight stays cancelled unless that attempt settled it. One
/// retried meanwhile (pending, and changed since its claim) stays pending, due when the
/// retry asked.
async fn move_deliveries_on(tx: &mut Transaction<'_, Postgres>, recorded: &[&AttemptResult]) -> Result<(), StoreError> {
    if recorded.is_empty() {
        return Ok(());
    }
    let next: Vec<(DeliveryStatus, Option<i64>)> = recorded
        .iter()
        .map(|r| match r.next {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, None),
            NextStep::RetryAt(time) => (DeliveryStatus::Pending, Some(time.as_micros())),
            NextStep::Failed { .. } => (DeliveryStatus::Failed, None),
        })
        .collect();
    sqlx::query(
        "UPDATE deliveries AS d SET
             status = CASE WHEN d.status = 'cancelled' AND r.status = 'pending' THEN 'cancelled'
                           WHEN d.status = 'pending' AND d.update_time <> r.claimed THEN 'pending'
                           ELSE r.status END,
             next_attempt_time = CASE WHEN d.status = 'cancelled' THEN NULL
                                      WHEN d.status = 'pending' AND d.update_time <> r.claimed
                                          THEN d.next_attempt_time
                                      ELSE r.next_time END,
             attempt_count = GREATEST(d.attempt_count, r.attempt), lease_until = NULL, lease_owner = NULL,
             update_time = r.finish
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
             AS r(id, status, next_time, attempt, finish, claimed)
         WHERE d.id = r.id",
    )
    .bind(recorded.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>())
    .bind(next.iter().map(|(status, _)| status.as_str()).collect::<Vec<_>>())
    .bind(next.iter().map(|(_, time)| *time).collect::<Vec<_>>())
    .bind(
        recorded
            .iter()
            .map(|r| i64::from(r.attempt.attempt))
            .collect::<Vec<_>>(),
    )
    .bind(recorded.iter().map(|r| r.finish_time.as_micros()).collect::<Vec<_>>())
    .bind(
        recorded
            .iter()
            .map(|r| r.claimed_update_time.as_micros())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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

impl PostgresStore {
    pub(super) async fn publish_event_impl(
        &self,
        event: &Event,
        idempotency: Option<IdempotencyRecord>,
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
        let count = u32::try_from(webhooks.len()).map_err(|_| corrupt("webhook count", "too many"))?;
        let key = idempotency.map(|record| seal_idempotency(&self.cipher, record));
        insert_event_and_deliveries(&self.pool, event, &webhooks, key.as_ref()).await?;
        if count > 0 {
            self.notifier.work_stored();
        }
        Ok(count)
    }

    pub(super) async fn get_event_impl(
        &self,
        space: &SpaceId,
        id: &EventId,
    ) -> Result<Option<StoredEvent>, StoreError> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND space_id = $2"
        ))
        .bind(id.as_str())
        .bind(space.as_str())
        .fetch_optional(&self.pool)
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
            "SELECT {EVENT_COLUMNS} FROM events WHERE space_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(space.as_str())
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        page(rows, limit, decode_event)
    }

    pub(super) async fn publish_test_event_impl(
        &self,
        event: &Event,
        webhook: &WebhookId,
    ) -> Result<Delivery, StoreError> {
        let ids = insert_event_and_deliveries(&self.pool, event, &[webhook.as_str().to_owned()], None).await?;
        self.notifier.work_stored();
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
        let skip: Vec<&str> = request.skip_webhooks.iter().map(WebhookId::as_str).collect();
        // One statement, so one round trip and its own commit: a claim is the engine's
        // most frequent query, and under load every round trip waits for a CPU.
        let rows = sqlx::query(&CLAIM)
            .bind(request.now.as_micros())
            .bind(&skip)
            .bind(i64::from(request.limit))
            .bind(i64::from(request.per_webhook))
            .bind(request.lease_until.as_micros())
            .bind(&request.owner)
            .fetch_all(&self.pool)
            .await?;
        let mut ready = Vec::with_capacity(rows.len());
        let mut cancelled = Vec::new();
        let mut unreadable = Vec::new();
        let mut nameless = None;
        for row in &rows {
            match self.decode_claimed(row) {
                Ok(ClaimedRow::Ready(delivery)) => ready.push(delivery),
                Ok(ClaimedRow::WebhookGone(delivery_id)) => cancelled.push(delivery_id),
                Err(error) => match row.try_get::<String, _>("delivery_id") {
                    Ok(delivery_id) => unreadable.push(Unreadable::new(delivery_id, &error)),
                    Err(_) => {
                        nameless = Some(error);
                        break;
                    }
                },
            }
        }
        if !unreadable.is_empty() && nameless.is_none() {
            // Set aside under this claim's lease, made longer, so the deliveries due
            // after them go on.
            // Should this fail, they come back when the claim's own lease runs out.
            let ids: Vec<&str> = unreadable.iter().map(|u| u.delivery_id.as_str()).collect();
            if let Err(error) =
                sqlx::query("UPDATE deliveries SET lease_until = $1 WHERE id = ANY($2) AND lease_owner = $3")
                    .bind(set_aside_until(request).as_micros())
                    .bind(&ids)
                    .bind(&request.owner)
                    .execute(&self.pool)
                    .await
            {
                tracing::warn!(%error, "setting unreadable deliveries aside failed; they are tried again when their lease runs out");
            }
            Unreadable::log(&unreadable);
        }
        if let Some(error) = nameless {
            // Not even the delivery's id reads: as if the claim had not been made, so
            // nothing else waits for its lease.
            let ids: Vec<String> = rows.iter().filter_map(|row| row.try_get("delivery_id").ok()).collect();
            if let Err(release) = sqlx::query(
                "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
                 WHERE id = ANY($1) AND lease_owner = $2 AND lease_until = $3",
            )
            .bind(&ids)
            .bind(&request.owner)
            .bind(request.lease_until.as_micros())
            .execute(&self.pool)
            .await
            {
                tracing::warn!(error = %release, "giving back an undecodable claim failed; its leases run out");
            }
            return Err(error);
        }
        if !cancelled.is_empty() {
            // Their webhook was disabled or deleted after they were published. Should this
            // fail, the claimed deliveries still go out, and these are cancelled by a later
            // claim once their lease runs out.
            if let Err(error) = sqlx::query(
                "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, lease_until = NULL,
                     lease_owner = NULL, update_time = $1
                 WHERE id = ANY($2) AND status = 'pending'",
            )
            .bind(request.now.as_micros())
            .bind(&cancelled)
            .execute(&self.pool)
            .await
            {
                tracing::warn!(%error, "cancelling deliveries of a disabled webhook failed; a later claim will");
            }
        }
        Ok(ready)
    }

    /// A claimed row as a delivery to attempt, or the id of one whose webhook is disabled
    /// or gone.
    fn decode_claimed(&self, row: &PgRow) -> Result<ClaimedRow, StoreError> {
        let delivery_id: String = row.try_get("delivery_id")?;
        let enabled: Option<bool> = row.try_get("enabled")?;
        if enabled != Some(true) {
            return Ok(ClaimedRow::WebhookGone(delivery_id));
        }
        let attempts: i64 = row.try_get("attempt_count")?;
        let event_id: String = row.try_get("event_id")?;
        let event_space: String = row.try_get("event_space_id")?;
        Ok(ClaimedRow::Ready(ClaimedDelivery {
            delivery_id: DeliveryId::parse(&delivery_id).ok_or_else(|| corrupt("delivery id", &delivery_id))?,
            attempt: u32::try_from(attempts + 1).map_err(|_| corrupt("attempt count", &attempts.to_string()))?,
            event: Arc::new(event_from_columns(
                &event_id,
                &event_space,
                row.try_get("event_name")?,
                EventObject {
                    id: row.try_get("object_id")?,
                    object_type: row.try_get("object_type")?,
                },
                row.try_get("data")?,
                row.try_get("event_time")?,
            )?),
            webhook: Arc::new(self.decode_webhook(row)?),
            update_time: Timestamp::from_micros(row.try_get("delivery_update_time")?),
        }))
    }

    pub(super) async fn release_deliveries_impl(
        &self,
        ids: &[DeliveryId],
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
        sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
             WHERE id = ANY($1) AND lease_owner = $2 AND lease_until = $3",
        )
        .bind(&ids)
        .bind(owner)
        .bind(lease_until.as_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn record_attempts_impl(
        &self,
        results: &[AttemptResult],
        policy: &AlertPolicy,
    ) -> Result<u32, StoreError> {
        let mut tries = 0;
        loop {
            match self.record_attempts_once(results, policy).await {
                Err(error) if is_transient(&error) && tries < DEADLOCK_RETRIES => {
                    tries += 1;
                    tracing::debug!(tries, "recording attempts lost a deadlock; trying again");
                }
                outcome => return outcome,
            }
        }
    }

    /// Records attempts with the effect of recording them one by one in the caller's
    /// order, as SQLite does (health counts failures and successes in that order), in a
    /// few statements over the whole batch: a round trip per attempt was most of a
    /// record's time.
    async fn record_attempts_once(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Every webhook the results touch is locked first (see the lock order above):
        // its health is read, changed and written back, and another node's attempts of
        // the same webhook must wait rather than overwrite it.
        let mut touched: Vec<&str> = results.iter().map(|r| r.webhook_id.as_str()).collect();
        touched.sort_unstable();
        touched.dedup();
        let existing: HashSet<String> =
            sqlx::query_scalar("SELECT id FROM webhooks WHERE id = ANY($1) ORDER BY seq FOR UPDATE")
                .bind(&touched)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        // Waits for a concurrent insert of the same attempt; if that one commits, this
        // result is one of those ignored.
        let mut inserted: HashSet<(String, i64)> = sqlx::query_as(
            "INSERT INTO delivery_attempts
                 (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[],
                                  $7::bytea[])
             ON CONFLICT DO NOTHING
             RETURNING delivery_id, attempt",
        )
        .bind(results.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>())
        .bind(results.iter().map(|r| i64::from(r.attempt.attempt)).collect::<Vec<_>>())
        .bind(
            results
                .iter()
                .map(|r| r.attempt.start_time.as_micros())
                .collect::<Vec<_>>(),
        )
        .bind(
            results
                .iter()
                .map(|r| i64::from(r.attempt.duration_ms))
                .collect::<Vec<_>>(),
        )
        .bind(
            results
                .iter()
                .map(|r| r.attempt.status_code.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            results
                .iter()
                .map(|r| r.attempt.error_kind.map(ErrorKind::as_str))
                .collect::<Vec<_>>(),
        )
        .bind(
            results
                .iter()
                .map(|r| r.attempt.response_body.as_deref().map(str::as_bytes))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        // Each attempt once: a result repeated in the batch (its lease ran out and it was
        // claimed again before either was recorded) is ignored, as one already stored is.
        let recorded: Vec<&AttemptResult> = results
            .iter()
            .filter(|r| inserted.remove(&(r.delivery_id.as_str().to_owned(), i64::from(r.attempt.attempt))))
            .collect();
        // A webhook with a failure here may be disabled by it, which cancels its pending
        // deliveries: its results go one by one, each delivery moved on and then its health
        // applied, in order. The others' deliveries move on together, and those that only
        // succeeded settle their health together.
        let with_failures: HashSet<&str> = recorded
            .iter()
            .filter(|r| !matches!(r.next, NextStep::Succeeded))
            .map(|r| r.webhook_id.as_str())
            .collect();
        let (in_order, together): (Vec<&AttemptResult>, Vec<&AttemptResult>) = recorded
            .iter()
            .partition(|r| with_failures.contains(r.webhook_id.as_str()));
        move_deliveries_on(&mut tx, &together).await?;
        let mut alerts = 0;
        for result in in_order {
            move_deliveries_on(&mut tx, &[result]).await?;
            // A webhook deleted meanwhile has no health to keep.
            if existing.contains(result.webhook_id.as_str()) {
                alerts += alerts::apply_health(&mut tx, result, policy).await?;
            }
        }
        let mut recovering: Vec<(&WebhookId, Timestamp)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for result in together {
            let webhook = result.webhook_id.as_str();
            if existing.contains(webhook) && seen.insert(webhook) {
                recovering.push((&result.webhook_id, result.finish_time));
            }
        }
        if !recovering.is_empty() {
            alerts += alerts::recover_all(&mut tx, &recovering).await?;
        }
        tx.commit().await?;
        Ok(alerts)
    }

    pub(super) async fn next_due_time_impl(
        &self,
        now: Timestamp,
        skip_webhooks: &[WebhookId],
    ) -> Result<Option<Timestamp>, StoreError> {
        let skip: Vec<&str> = skip_webhooks.iter().map(WebhookId::as_str).collect();
        // Per webhook, as claims read: a webhook left out (its slots are full) may have
        // a long backlog at the head of the due order.
        let due: Option<i64> = sqlx::query_scalar(concat!(
            pending_webhooks!(),
            "SELECT MIN(first.next_attempt_time) FROM live CROSS JOIN LATERAL (
                 SELECT d.next_attempt_time FROM deliveries d
                 WHERE d.webhook_id = live.webhook_id AND d.status = 'pending'
                   AND (d.lease_until IS NULL OR d.lease_until < $1)
                 ORDER BY d.next_attempt_time, d.seq LIMIT 1
             ) first"
        ))
        .bind(now.as_micros())
        .bind(&skip)
        .fetch_one(&self.pool)
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

    pub(super) async fn get_delivery_impl(
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
        let delivery = decode_delivery(&row)?;
        let attempts = sqlx::query(
            "SELECT attempt, start_time, duration_ms, status_code, error_kind, response_body
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let number: i64 = row.try_get("attempt")?;
            let duration: i64 = row.try_get("duration_ms")?;
            let status: Option<i64> = row.try_get("status_code")?;
            let kind: Option<String> = row.try_get("error_kind")?;
            let body: Option<Vec<u8>> = row.try_get("response_body")?;
            Ok(DeliveryAttempt {
                attempt: u32::try_from(number).map_err(|_| corrupt("attempt", &number.to_string()))?,
                start_time: Timestamp::from_micros(row.try_get("start_time")?),
                duration_ms: u32::try_from(duration).unwrap_or(u32::MAX),
                status_code: status.and_then(|s| u16::try_from(s).ok()),
                error_kind: match kind {
                    None => None,
                    Some(kind) => Some(ErrorKind::parse(&kind).ok_or_else(|| corrupt("error kind", &kind))?),
                },
                response_body: match body {
                    None => None,
                    Some(body) => Some(String::from_utf8(body).map_err(|_| corrupt("response body", "non-UTF-8"))?),
                },
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
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_time = $1, update_time = $1
             WHERE id = $2 AND webhook_id = $3 AND space_id = $4",
        )
        .bind(now.as_micros())
        .bind(id.as_str())
        .bind(webhook.as_str())
        .bind(space.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1"
        ))
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notifier.work_stored();
        decode_delivery(&row).map(Some)
    }
}
