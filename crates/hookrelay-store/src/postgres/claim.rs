//! Claiming due deliveries in PostgreSQL, when several nodes claim at once, and giving
//! them back.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use hookrelay_core::claim::{set_aside_until, WebhookAtClaim};
use hookrelay_core::event::EventObject;
use hookrelay_core::record::Lease;
use hookrelay_core::{DeliveryId, Timestamp, Webhook, WebhookId};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::nodes::dead_nodes;
use super::notify::WORK_CHANNEL;
use super::PostgresStore;
use crate::rows::{claimed_delivery, decode_webhook, event_from_columns, webhook_columns};
use crate::triage::{Triage, Unreadable};
use crate::{ClaimRequest, ClaimStore, ClaimedDelivery, StoreError};

/// `pending(webhook_id)`: the webhooks with pending deliveries (and a last NULL row),
/// found by skipping along the partial index `deliveries_pending_by_webhook`, one probe
/// per webhook however long its backlog; `DISTINCT ON` or `MIN` over the due rows would
/// read every one of them. `live(webhook_id, space_id)`: those not in `$2` nor of a disabled space
/// (one probe of the webhook and its space each: a disabled space's deliveries wait,
/// untouched, until it is enabled; a deleted webhook's pass, to be cancelled when
/// claimed). A macro, so queries can `concat!` it.
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
             SELECT webhook_id, (SELECT w.space_id FROM webhooks w WHERE w.id = pending.webhook_id) AS space_id
             FROM pending
             WHERE webhook_id IS NOT NULL AND webhook_id <> ALL($2)
               AND NOT EXISTS (SELECT 1 FROM webhooks w JOIN spaces s ON s.id = w.space_id
                               WHERE w.id = pending.webhook_id AND s.disabled)
         ) "
    };
}

/// Whether a delivery `d`'s lease leaves it claimable at `$1`: it has none, its lease ran
/// out, or the node holding it is dead (its heartbeat is older than its timeout). A
/// macro, so queries can `concat!` it.
macro_rules! lease_claimable {
    () => {
        concat!(
            "(d.lease_until IS NULL OR d.lease_until < $1 OR d.lease_owner = ANY(",
            dead_nodes!(),
            "))"
        )
    };
}

/// `AND` the delivery `d` is not behind another of its object: one with an ordering key
/// (its webhook orders by object, `events.rs`) waits while an earlier delivery (by seq,
/// the publish order) of the same webhook and key is pending, whether due, retrying or
/// leased. A delivery leaves `pending` only for good (a manual retry aside), so in any
/// snapshot at most one delivery of an object passes, and `FOR UPDATE SKIP LOCKED` with
/// the re-checked lease lets one node alone lease it: two nodes never hold two deliveries
/// of one object. One probe of `deliveries_pending_by_ordering_key`; a delivery without
/// a key passes at once. A macro, so queries can `concat!` it.
macro_rules! in_object_order {
    () => {
        "(d.ordering_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM deliveries earlier
              WHERE earlier.webhook_id = d.webhook_id AND earlier.ordering_key = d.ordering_key
                AND earlier.status = 'pending' AND earlier.seq < d.seq))"
    };
}

/// Leases due deliveries and reads what sending them needs, in one statement, taking
/// turns between spaces as SQLite's claim does: within each space its webhooks are
/// ranked by their oldest due delivery, every space's first webhook comes before any
/// space's second (one space's wide fan-out does not hold another's deliveries behind
/// it), then oldest due first; at most `$4` of any one webhook, at most `$3` in all.
///
/// Only the `$3` webhooks that come first by (turn, oldest due) can contribute (each has
/// a delivery ahead of any later webhook's), so only their first `$4` rows are locked, and
/// the `$3` first of those by (turn, due) are leased. `SKIP LOCKED` passes over rows
/// another node is claiming at this moment, and a row leased since this statement's
/// snapshot fails the re-checked lease test (its new owner is alive). A dead node's
/// leases are taken at once, not when they run out. Each leased delivery comes back with
/// its event and its webhook as they are now (NULL columns for a webhook deleted
/// meanwhile); the webhook's columns keep their own names so the webhook decoder reads
/// them as it reads the webhooks table.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}, firsts AS (
            SELECT webhook_id, turn FROM (
                SELECT live.webhook_id, first.next_attempt_time, first.seq,
                       row_number() OVER (PARTITION BY live.space_id
                                          ORDER BY first.next_attempt_time, first.seq) AS turn
                FROM live CROSS JOIN LATERAL (
                    SELECT d.next_attempt_time, d.seq FROM deliveries d
                    WHERE d.webhook_id = live.webhook_id AND d.status = 'pending' AND d.next_attempt_time <= $1
                      -- Ranked by a delivery that may go: a webhook whose due ones all
                      -- wait behind their objects' earlier ones takes no turn.
                      AND {claimable} AND {in_order}
                    ORDER BY d.next_attempt_time, d.seq LIMIT 1
                ) first
                -- Pacing (pace.rs): a rate-limited webhook whose bucket is empty
                -- waits for its next token.
                WHERE NOT EXISTS (SELECT 1 FROM webhook_pace p
                                  WHERE p.webhook_id = live.webhook_id AND p.ready_at > $1)
            ) ranked
            ORDER BY turn, next_attempt_time, seq
            LIMIT $3
        ), locked AS (
            SELECT l.seq, l.next_attempt_time, firsts.turn FROM firsts CROSS JOIN LATERAL (
                SELECT d.seq, d.next_attempt_time FROM deliveries d
                WHERE d.webhook_id = firsts.webhook_id AND d.status = 'pending' AND d.next_attempt_time <= $1
                  AND {claimable} AND {in_order}
                ORDER BY d.next_attempt_time, d.seq LIMIT $4
                FOR UPDATE SKIP LOCKED
            ) l
        ), chosen AS (
            SELECT seq FROM locked ORDER BY turn, next_attempt_time, seq LIMIT $3
        ), claimed AS (
            UPDATE deliveries SET lease_until = $5, lease_owner = $6
            FROM chosen WHERE deliveries.seq = chosen.seq
            RETURNING deliveries.id, deliveries.attempt_count, deliveries.update_time, deliveries.event_id,
                      deliveries.webhook_id, deliveries.next_attempt_time, deliveries.seq
        )
        SELECT c.id AS delivery_id, c.attempt_count, c.update_time AS delivery_update_time,
               e.id AS event_id, e.space_id AS event_space_id, e.name AS event_name, e.object_id,
               e.object_type, e.data, e.create_time AS event_time, e.trace_parent, {}
        FROM claimed c
        JOIN events e ON e.id = c.event_id
        LEFT JOIN webhooks w ON w.id = c.webhook_id
        ORDER BY c.next_attempt_time, c.seq",
        pending_webhooks!(),
        webhook_columns("w"),
        claimable = lease_claimable!(),
        in_order = in_object_order!(),
    )
});

/// A claimed row's webhook: ready to send to, not (disabled or deleted), or unreadable.
fn claimed_webhook(store: &PostgresStore, row: &PgRow) -> Result<Result<Arc<Webhook>, WebhookAtClaim>, StoreError> {
    match row.try_get::<Option<bool>, _>("enabled")? {
        None => Ok(Err(WebhookAtClaim::Deleted)),
        Some(false) => Ok(Err(WebhookAtClaim::Disabled)),
        Some(true) => decode_webhook(&store.cipher, row).map(|webhook| Ok(Arc::new(webhook))),
    }
}

/// A claimed row as a delivery to attempt, with its (ready) webhook, under `lease`.
fn decode_claimed(row: &PgRow, webhook: Arc<Webhook>, lease: Lease) -> Result<ClaimedDelivery, StoreError> {
    let event = event_from_columns(
        &row.try_get::<String, _>("event_id")?,
        &row.try_get::<String, _>("event_space_id")?,
        row.try_get("event_name")?,
        EventObject {
            id: row.try_get("object_id")?,
            object_type: row.try_get("object_type")?,
        },
        row.try_get("data")?,
        row.try_get("event_time")?,
        row.try_get("trace_parent")?,
    )?;
    claimed_delivery(
        &row.try_get::<String, _>("delivery_id")?,
        row.try_get("attempt_count")?,
        row.try_get("delivery_update_time")?,
        Arc::new(event),
        webhook,
        lease,
    )
}

#[async_trait]
impl ClaimStore for PostgresStore {
    async fn claim_deliveries(&self, request: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // Pacing (`pace.rs`): claims, debits rate-limited webhooks' buckets, and claims
        // again for the room what their tokens did not cover left.
        crate::pace::claim_paced(self, request).await
    }

    async fn release_deliveries(
        &self,
        ids: &[DeliveryId],
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
        release(&self.pool, &ids, owner, lease_until).await
    }

    async fn next_due_time(
        &self,
        now: Timestamp,
        skip_webhooks: &[WebhookId],
    ) -> Result<Option<Timestamp>, StoreError> {
        let skip: Vec<&str> = skip_webhooks.iter().map(WebhookId::as_str).collect();
        // Per webhook, as claims read: a webhook left out (its slots are full) may have
        // a long backlog at the head of the due order. A rate-limited webhook's work is
        // due no sooner than its next token.
        let due: Option<i64> = sqlx::query_scalar(concat!(
            pending_webhooks!(),
            "SELECT MIN(GREATEST(first.next_attempt_time, paced.ready_at)) FROM live CROSS JOIN LATERAL (
                 SELECT d.next_attempt_time FROM deliveries d
                 WHERE d.webhook_id = live.webhook_id AND d.status = 'pending' AND ",
            lease_claimable!(),
            // A delivery waiting for an earlier one of its object is not due: that one's
            // record wakes the engine, and its retry time is the due time to sleep to.
            " AND ",
            in_object_order!(),
            "
                 ORDER BY d.next_attempt_time, d.seq LIMIT 1
             ) first
             LEFT JOIN webhook_pace paced ON paced.webhook_id = live.webhook_id"
        ))
        .bind(now.as_micros())
        .bind(&skip)
        .fetch_one(&self.pool)
        .await?;
        Ok(due.map(Timestamp::from_micros))
    }

    async fn release_orphaned_claims(&self) -> Result<u64, StoreError> {
        // Several nodes share the database: a lease held now may be a live node's.
        Ok(0)
    }

    async fn watch_for_work(&self, wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake(),
                    Err(error) => {
                        // The listener reconnects by itself on the next recv; meanwhile
                        // the engine's idle poll still finds the work.
                        tracing::warn!(%error, "listening for new work failed");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }
}

/// Clears the leases of `ids` that `owner` still holds until `lease_until`.
async fn release(pool: &sqlx::PgPool, ids: &[&str], owner: &str, lease_until: Timestamp) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
         WHERE id = ANY($1) AND lease_owner = $2 AND lease_until = $3",
    )
    .bind(ids)
    .bind(owner)
    .bind(lease_until.as_micros())
    .execute(pool)
    .await?;
    Ok(())
}

impl PostgresStore {
    /// Leases due deliveries and sorts them (`claim.rs`'s query and triage): how many
    /// it leased, and those to send, before pacing.
    pub(super) async fn lease_due(&self, request: &ClaimRequest) -> Result<(usize, Vec<ClaimedDelivery>), StoreError> {
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
        let leased = rows.len();
        let mut triage = Triage::default();
        for row in &rows {
            let Ok(delivery_id) = row.try_get::<String, _>("delivery_id") else {
                // Not even the delivery's id reads: as if the claim had not been made, so
                // nothing else waits for its lease.
                self.give_back_claim(request, &rows).await;
                return Err(StoreError::Corrupt("a claimed delivery's id does not read".into()));
            };
            let webhook = claimed_webhook(self, row);
            let state = match &webhook {
                Ok(Ok(_)) => Ok(WebhookAtClaim::Ready),
                Ok(Err(state)) => Ok(*state),
                Err(error) => Err(error),
            };
            let decode = || match &webhook {
                Ok(Ok(webhook)) => decode_claimed(row, webhook.clone(), request.lease()),
                _ => Err(StoreError::Corrupt("its webhook is not ready".into())),
            };
            triage.add(delivery_id, state, decode);
        }
        self.carry_out(request, &triage).await;
        Ok((leased, triage.ready))
    }

    /// Sets aside and cancels what the triage says. Should either fail, the claimed
    /// deliveries still go out, and these come back when the claim's lease runs out.
    async fn carry_out(&self, request: &ClaimRequest, triage: &Triage) {
        if !triage.set_aside.is_empty() {
            let ids: Vec<&str> = triage.set_aside_ids().collect();
            if let Err(error) =
                sqlx::query("UPDATE deliveries SET lease_until = $1 WHERE id = ANY($2) AND lease_owner = $3")
                    .bind(set_aside_until(request.now, request.lease_until).as_micros())
                    .bind(&ids)
                    .bind(&request.owner)
                    .execute(&self.pool)
                    .await
            {
                tracing::warn!(%error, "setting unreadable deliveries aside failed; they are tried again when their lease runs out");
            }
            Unreadable::log(&triage.set_aside);
        }
        if !triage.cancel.is_empty() {
            let cancelled = sqlx::query(
                "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, lease_until = NULL,
                     lease_owner = NULL, update_time = $1
                 WHERE id = ANY($2) AND status = 'pending'",
            )
            .bind(request.now.as_micros())
            .bind(&triage.cancel)
            .execute(&self.pool)
            .await;
            match cancelled {
                Ok(done) => crate::activity::deliveries_cancelled(done.rows_affected()),
                Err(error) => {
                    tracing::warn!(%error, "cancelling deliveries of a disabled webhook failed; a later claim will")
                }
            }
        }
    }

    /// Gives back every lease of a claim that cannot be used at all.
    async fn give_back_claim(&self, request: &ClaimRequest, rows: &[PgRow]) {
        let ids: Vec<String> = rows.iter().filter_map(|row| row.try_get("delivery_id").ok()).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        if let Err(error) = release(&self.pool, &ids, &request.owner, request.lease_until).await {
            tracing::warn!(%error, "giving back an undecodable claim failed; its leases run out");
        }
    }
}
