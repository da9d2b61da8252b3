//! Claiming due deliveries in SQLite, under a lease, and giving them back.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::claim::set_aside_until;
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::{DeliveryId, Timestamp, WebhookId};
use rusqlite::params;

use super::staging::finish_staged;
use super::webhooks::WebhookRead;
use super::{json_ids, SqliteStore};
use crate::rows::{claimed_delivery, corrupt, event_from_columns};
use crate::triage::{Triage, Unreadable};
use crate::{ClaimRequest, ClaimStore, ClaimedDelivery, StoreError};

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

/// `AND` the webhook `pending.webhook_id` is not one of a disabled space: its deliveries
/// wait, untouched, until the space is enabled. One probe of the webhook and its space
/// per webhook with work; a deleted webhook passes (its deliveries are cancelled when
/// claimed). A macro, so queries can `concat!` it.
macro_rules! not_paused {
    () => {
        " AND NOT EXISTS (SELECT 1 FROM webhooks AS paused JOIN spaces ON spaces.id = paused.space_id
                          WHERE paused.id = pending.webhook_id AND spaces.disabled) "
    };
}

/// `AND` the webhook `pending.webhook_id` is not rate-limited with its bucket empty at
/// `$now` (`pace.rs`): claims pass it over until its next token is due. A macro, so
/// queries can `concat!` it.
macro_rules! not_paced {
    ($now:literal) => {
        concat!(
            " AND NOT EXISTS (SELECT 1 FROM webhook_pace WHERE webhook_pace.webhook_id = pending.webhook_id
                              AND webhook_pace.ready_at > ",
            $now,
            ") "
        )
    };
}

/// `AND` the delivery (of `deliveries`) is not of a fan-out still being written
/// (`staging.rs`): one probe of a table that is empty but for a moment.
macro_rules! not_staged {
    () => {
        " AND NOT EXISTS (SELECT 1 FROM staged_events WHERE staged_events.event_id = deliveries.event_id) "
    };
}

/// `AND` the delivery (of `deliveries`) is not behind another of its object: one with an
/// ordering key (its webhook orders by object, `events.rs`) waits while an earlier
/// delivery (by seq, the publish order) of the same webhook and key is pending, whether
/// due, retrying or leased. So at most one delivery of an object is ever claimable, and
/// the single writer makes the claim that takes it the only one. One seek of
/// `deliveries_pending_by_ordering_key`; a delivery without a key passes at once. A
/// macro, so queries can `concat!` it.
macro_rules! in_object_order {
    () => {
        " AND (deliveries.ordering_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM deliveries AS earlier
              WHERE earlier.webhook_id = deliveries.webhook_id AND earlier.ordering_key = deliveries.ordering_key
                AND earlier.status = 'pending' AND earlier.seq < deliveries.seq)) "
    };
}

/// Leases due deliveries, taking turns between spaces: within each space its webhooks
/// are ranked by their oldest due delivery, and every space's first webhook comes before
/// any space's second (so one space's fan-out to thousands of webhooks does not hold
/// another space's deliveries behind it); then oldest due first. At most `?5` of any one
/// webhook (so one webhook's backlog cannot crowd out the others), at most `?6` in all,
/// none of a disabled space nor of a fan-out still being written. The turns are ranked
/// over the webhooks with work, one index probe each for its oldest due delivery, not over
/// every candidate delivery, which cost a claim twice the time. A deleted webhook's deliveries take their turns
/// together (no space).
const CLAIM: &str = concat!(
    pending_webhooks!(),
    "UPDATE deliveries SET lease_until = ?1, lease_owner = ?2
         WHERE seq IN (
             SELECT d.seq FROM (
                 SELECT candidate.webhook_id,
                        ROW_NUMBER() OVER (PARTITION BY candidate.space_id
                                           ORDER BY first.next_attempt_time, first.seq) AS turn
                 FROM (
                     SELECT pending.webhook_id, owner.space_id,
                            (SELECT seq FROM deliveries
                             WHERE webhook_id = pending.webhook_id AND status = 'pending'
                               AND next_attempt_time <= ?3 AND (lease_until IS NULL OR lease_until < ?3)
                             ORDER BY next_attempt_time, seq LIMIT 1) AS first_seq
                     FROM pending
                     LEFT JOIN webhooks AS owner ON owner.id = pending.webhook_id
                     WHERE pending.webhook_id IS NOT NULL
                       AND pending.webhook_id NOT IN (SELECT value FROM json_each(?4))",
    not_paused!(),
    not_paced!("?3"),
    "            ) AS candidate
                 JOIN deliveries AS first ON first.seq = candidate.first_seq
             ) AS turns
             JOIN deliveries AS d ON d.seq IN (
                 SELECT seq FROM deliveries
                 WHERE webhook_id = turns.webhook_id AND status = 'pending'
                   AND next_attempt_time <= ?3 AND (lease_until IS NULL OR lease_until < ?3)",
    not_staged!(),
    in_object_order!(),
    "            ORDER BY next_attempt_time, seq LIMIT ?5)
             ORDER BY turns.turn, d.next_attempt_time, d.seq
             LIMIT ?6
         )
         RETURNING id, webhook_id, attempt_count, event_id, next_attempt_time, seq, update_time"
);

/// A delivery as leased by a claim.
struct LeasedRow {
    due: Option<i64>,
    seq: i64,
    delivery_id: String,
    webhook_id: String,
    attempt_count: i64,
    update_time: i64,
    event_id: String,
}

/// The events of a claim's deliveries, each read or decoded once however many
/// deliveries share it: kept since publishing, or else read on the writer's connection.
type ClaimEvents = HashMap<String, Result<Arc<Event>, Arc<StoreError>>>;

/// Leases the claim's rows and finds their events, on the writer's connection.
fn lease(
    connection: &rusqlite::Connection,
    request: &ClaimRequest,
    skip: &str,
    recent: &super::cache::RecentEvents,
) -> Result<(Vec<LeasedRow>, ClaimEvents), StoreError> {
    let mut claimed = connection
        .prepare_cached(CLAIM)?
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
    let kept = recent.get_all(claimed.iter().map(|row| row.event_id.as_str()));
    let mut read = connection.prepare_cached(
        "SELECT space_id, name, object_id, object_type, data, create_time, trace_parent FROM events WHERE id = ?",
    )?;
    let mut events = ClaimEvents::new();
    for (row, kept) in claimed.iter().zip(kept) {
        if !events.contains_key(&row.event_id) {
            let event = match kept {
                Some(event) => Ok(event),
                None => read_event(&mut read, &row.event_id)?.map_err(Arc::new),
            };
            events.insert(row.event_id.clone(), event);
        }
    }
    Ok((claimed, events))
}

/// A claimed delivery's event, read back: the outer error fails the claim (the
/// database failed), the inner one sets the delivery aside (its event is missing or
/// does not decode).
fn read_event(
    read: &mut rusqlite::CachedStatement<'_>,
    event_id: &str,
) -> Result<Result<Arc<Event>, StoreError>, StoreError> {
    let found = read.query_row([event_id], |found| {
        Ok((
            found.get::<_, String>(0)?,
            found.get::<_, String>(1)?,
            EventObject {
                id: found.get(2)?,
                object_type: found.get(3)?,
            },
            found.get::<_, String>(4)?,
            found.get::<_, i64>(5)?,
            found.get::<_, Option<String>>(6)?,
        ))
    });
    match found {
        Ok((space, name, object, data, time, trace_parent)) => {
            Ok(event_from_columns(event_id, &space, name, object, data, time, trace_parent).map(Arc::new))
        }
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(Err(corrupt("event", "missing"))),
        Err(error) => Err(error.into()),
    }
}

#[async_trait]
impl ClaimStore for SqliteStore {
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

    async fn next_due_time(
        &self,
        now: Timestamp,
        skip_webhooks: &[WebhookId],
    ) -> Result<Option<Timestamp>, StoreError> {
        // Per webhook, as claims read: a webhook left out (its slots are full) may have
        // a long backlog, which a scan of all pending deliveries by due time would read.
        // A rate-limited webhook's work is due no sooner than its next token.
        let due: Option<i64> = sqlx::query_scalar(concat!(
            pending_webhooks!(),
            "SELECT MIN(MAX(first_due, COALESCE(ready_at, first_due))) FROM (
                 SELECT (SELECT MIN(next_attempt_time) FROM deliveries
                         WHERE webhook_id = pending.webhook_id AND status = 'pending'
                           AND (lease_until IS NULL OR lease_until < ?1)",
            not_staged!(),
            // A delivery waiting for an earlier one of its object is not due: that one's
            // record wakes the engine, and its retry time is the due time to sleep to.
            in_object_order!(),
            "       ) AS first_due,
                        (SELECT ready_at FROM webhook_pace WHERE webhook_pace.webhook_id = pending.webhook_id) AS ready_at
                 FROM pending
                 WHERE pending.webhook_id IS NOT NULL AND pending.webhook_id NOT IN (SELECT value FROM json_each(?2))",
            not_paused!(),
            ")"
        ))
        .bind(now.as_micros())
        .bind(json_ids(skip_webhooks.iter().map(WebhookId::as_str)))
        .fetch_one(&self.readers)
        .await?;
        Ok(due.map(Timestamp::from_micros))
    }

    async fn release_orphaned_claims(&self) -> Result<u64, StoreError> {
        // Not done at open: `hookrelay token create` opens the file while a server may
        // be running, and must not take that server's claims from under it.
        self.writer
            .write(move |connection| {
                // Fan-outs a crash interrupted are finished first, before anything claims.
                let finished = finish_staged(connection)?;
                if finished > 0 {
                    tracing::info!(finished, "finished writing fan-outs a previous run left half written");
                }
                // One SQLite file serves one hookrelay process, so leases held when it
                // starts belong to a process that died: give its work back at once
                // instead of waiting for the leases to run out.
                let deliveries = connection.execute(
                    "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL WHERE lease_until IS NOT NULL",
                    [],
                )?;
                let alerts =
                    connection.execute("UPDATE alerts SET lease_until = NULL WHERE lease_until IS NOT NULL", [])?;
                let recoveries = connection.execute(
                    "UPDATE recoveries SET lease_until = NULL, lease_owner = NULL WHERE lease_until IS NOT NULL",
                    [],
                )?;
                Ok((deliveries + alerts + recoveries) as u64)
            })
            .await
    }

    async fn watch_for_work(&self, _wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), StoreError> {
        // Every write comes through this process, which wakes its engine itself.
        Ok(())
    }
}

impl SqliteStore {
    /// Leases due deliveries and sorts them (`claim.rs`'s query and triage): how many
    /// it leased, and those to send, before pacing.
    pub(super) async fn lease_due(&self, request: &ClaimRequest) -> Result<(usize, Vec<ClaimedDelivery>), StoreError> {
        let skip = json_ids(request.skip_webhooks.iter().map(WebhookId::as_str));
        let (request_copy, recent) = (request.clone(), self.recent_events.clone());
        // In a savepoint: a row that cannot be read fails this claim alone, not the
        // writes that share its commit.
        let (rows, events) = self
            .writer
            .write(move |connection| lease(connection, &request_copy, &skip, &recent))
            .await?;
        if rows.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut webhook_ids: Vec<&str> = rows.iter().map(|row| row.webhook_id.as_str()).collect();
        webhook_ids.sort_unstable();
        webhook_ids.dedup();
        let webhooks = self.webhooks_by_id(&webhook_ids).await?;
        let leased = rows.len();
        let mut triage = Triage::default();
        for row in rows {
            let read = webhooks.get(&row.webhook_id);
            let decode = || {
                let Some(WebhookRead::Found(webhook)) = read else {
                    return Err(corrupt("webhook", "not ready"));
                };
                let event = events[&row.event_id]
                    .clone()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                claimed_delivery(
                    &row.delivery_id,
                    row.attempt_count,
                    row.update_time,
                    event,
                    webhook.clone(),
                    request.lease(),
                )
            };
            triage.add(row.delivery_id.clone(), WebhookRead::at_claim(read), decode);
        }
        self.carry_out(request, &triage).await?;
        Ok((leased, triage.ready))
    }

    /// Sets aside and cancels what the triage says.
    async fn carry_out(&self, request: &ClaimRequest, triage: &Triage) -> Result<(), StoreError> {
        if !triage.set_aside.is_empty() {
            let until = set_aside_until(request.now, request.lease_until);
            let (ids, owner) = (json_ids(triage.set_aside_ids()), request.owner.clone());
            // Should this fail, they come back when the claim's own lease runs out.
            let set_aside = self
                .writer
                .write_without_savepoint(move |connection| {
                    connection.execute(
                        "UPDATE deliveries SET lease_until = ?
                         WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?",
                        params![until.as_micros(), ids, owner],
                    )?;
                    Ok(())
                })
                .await;
            if let Err(error) = set_aside {
                tracing::warn!(%error, "setting unreadable deliveries aside failed; they are tried again when their lease runs out");
            }
            Unreadable::log(&triage.set_aside);
        }
        if !triage.cancel.is_empty() {
            let (now, ids) = (request.now, json_ids(triage.cancel.iter().map(String::as_str)));
            self.writer
                .write_without_savepoint(move |connection| {
                    let cancelled = connection.execute(
                        "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, lease_until = NULL,
                             lease_owner = NULL, update_time = ?
                         WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'",
                        params![now.as_micros(), ids],
                    )?;
                    crate::activity::deliveries_cancelled(cancelled as u64);
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }
}
