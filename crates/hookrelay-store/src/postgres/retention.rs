//! Retention in PostgreSQL: each cleaner batch is one transaction that first takes a
//! transaction-level advisory lock, so that of the nodes sharing the database one
//! cleans at a time (a batch that finds the lock taken does nothing); erasures.

use async_trait::async_trait;
use hookrelay_core::retention::{
    plan_deletion, plan_payload_expiry, BatchPlan, Erasure, ErasureDraft, EventAge, Removed, ALERTS_PER_BATCH,
    EVENTS_PER_BATCH,
};
use hookrelay_core::{SpaceId, Timestamp};
use sqlx::{Postgres, Row, Transaction};

use super::{save_idempotency, PostgresStore};
use crate::rows::seal_idempotency;
use crate::{CleanBatch, ErasedBatch, IdempotencyRecord, RetentionStore, StoreError};

/// The advisory lock key of the cleaner: "hookclea" in ASCII.
pub const CLEANER_LOCK: i64 = 0x686f_6f6b_636c_6561;

/// Opens a batch's transaction holding the cleaner's lock; `None` if another node's
/// cleaner holds it.
async fn begin_locked(store: &PostgresStore) -> Result<Option<Transaction<'static, Postgres>>, StoreError> {
    let mut tx = store.pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(CLEANER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    Ok(locked.then_some(tx))
}

/// What the cleaner reads of an event `e`.
const AGE_COLUMNS: &str = "e.seq, e.create_time, e.delivery_count, e.data_remove_time IS NOT NULL AS data_removed,
    EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending') AS unfinished";

fn ages(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<EventAge>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(EventAge {
                seq: row.try_get("seq")?,
                create_time: Timestamp::from_micros(row.try_get("create_time")?),
                deliveries: row.try_get::<i64, _>("delivery_count")?.max(0).unsigned_abs(),
                data_removed: row.try_get("data_removed")?,
                unfinished: row.try_get("unfinished")?,
            })
        })
        .collect()
}

/// Up to [`EVENTS_PER_BATCH`] of the space's events after `after`, oldest first.
async fn read_ages(
    tx: &mut Transaction<'_, Postgres>,
    space: &SpaceId,
    after: i64,
) -> Result<Vec<EventAge>, StoreError> {
    let sql =
        format!("SELECT {AGE_COLUMNS} FROM events e WHERE e.space_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3");
    let rows = sqlx::query(&sql)
        .bind(space.as_str())
        .bind(after)
        .bind(i64::from(EVENTS_PER_BATCH))
        .fetch_all(&mut **tx)
        .await?;
    ages(&rows)
}

/// The space's events at `seqs`, oldest first.
async fn read_ages_of(
    tx: &mut Transaction<'_, Postgres>,
    space: &SpaceId,
    seqs: &[i64],
) -> Result<Vec<EventAge>, StoreError> {
    let sql = format!("SELECT {AGE_COLUMNS} FROM events e WHERE e.space_id = $1 AND e.seq = ANY($2) ORDER BY e.seq");
    let rows = sqlx::query(&sql)
        .bind(space.as_str())
        .bind(seqs)
        .fetch_all(&mut **tx)
        .await?;
    ages(&rows)
}

/// Of the events at `seqs`, those with no pending delivery once their deliveries are
/// locked: a retry that made one pending since they were read keeps its event.
async fn lock_finished(tx: &mut Transaction<'_, Postgres>, seqs: &[i64]) -> Result<Vec<i64>, StoreError> {
    let finished = sqlx::query_scalar(
        "WITH chosen AS (SELECT seq, id FROM events WHERE seq = ANY($1)),
              locked AS (SELECT d.event_id, d.status FROM deliveries d
                         WHERE d.event_id IN (SELECT id FROM chosen) FOR UPDATE)
         SELECT c.seq FROM chosen c
         WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.event_id = c.id AND l.status = 'pending')",
    )
    .bind(seqs)
    .fetch_all(&mut **tx)
    .await?;
    Ok(finished)
}

async fn delete_events(tx: &mut Transaction<'_, Postgres>, seqs: &[i64]) -> Result<Removed, StoreError> {
    let attempts = sqlx::query(
        "DELETE FROM delivery_attempts WHERE delivery_id IN (
             SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.seq = ANY($1))",
    )
    .bind(seqs)
    .execute(&mut **tx)
    .await?;
    let deliveries =
        sqlx::query("DELETE FROM deliveries WHERE event_id IN (SELECT id FROM events WHERE seq = ANY($1))")
            .bind(seqs)
            .execute(&mut **tx)
            .await?;
    let events = sqlx::query("DELETE FROM events WHERE seq = ANY($1)")
        .bind(seqs)
        .execute(&mut **tx)
        .await?;
    Ok(Removed {
        events: events.rows_affected(),
        deliveries: deliveries.rows_affected(),
        attempts: attempts.rows_affected(),
        ..Removed::default()
    })
}

/// Drops the data of the events at `seqs` and their attempts' response bodies.
async fn remove_data(tx: &mut Transaction<'_, Postgres>, seqs: &[i64], now: Timestamp) -> Result<Removed, StoreError> {
    let payloads = sqlx::query(
        "UPDATE events SET data = '{}', data_remove_time = $2 WHERE seq = ANY($1) AND data_remove_time IS NULL",
    )
    .bind(seqs)
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    let bodies = sqlx::query(
        "UPDATE delivery_attempts SET response_body = NULL
         WHERE response_body IS NOT NULL AND delivery_id IN (
             SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.seq = ANY($1))",
    )
    .bind(seqs)
    .execute(&mut **tx)
    .await?;
    Ok(Removed {
        payloads: payloads.rows_affected(),
        response_bodies: bodies.rows_affected(),
        ..Removed::default()
    })
}

fn batch(removed: Removed, plan: BatchPlan) -> CleanBatch {
    CleanBatch {
        removed,
        next_after: plan.next_after,
        waiting: plan.waiting,
        done: plan.done,
    }
}

/// Drops the data of those of `events` that `plan_payload_expiry` chooses, and commits.
async fn expire(
    mut tx: Transaction<'_, Postgres>,
    events: &[EventAge],
    after: i64,
    cutoff: Timestamp,
    now: Timestamp,
) -> Result<CleanBatch, StoreError> {
    let plan = plan_payload_expiry(events, after, EVENTS_PER_BATCH, cutoff);
    let mut removed = Removed::default();
    if !plan.chosen.is_empty() {
        let finished = lock_finished(&mut tx, &plan.chosen).await?;
        removed = remove_data(&mut tx, &finished, now).await?;
    }
    tx.commit().await?;
    Ok(batch(removed, plan))
}

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn delete_expired(
        &self,
        space: &SpaceId,
        after: i64,
        cutoff: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError> {
        let Some(mut tx) = begin_locked(self).await? else {
            return Ok(None);
        };
        let events = read_ages(&mut tx, space, after).await?;
        let plan = plan_deletion(&events, after, EVENTS_PER_BATCH, cutoff);
        let mut removed = Removed::default();
        if !plan.chosen.is_empty() {
            let finished = lock_finished(&mut tx, &plan.chosen).await?;
            removed = delete_events(&mut tx, &finished).await?;
        }
        tx.commit().await?;
        Ok(Some(batch(removed, plan)))
    }

    async fn expire_payloads(
        &self,
        space: &SpaceId,
        after: i64,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError> {
        let Some(mut tx) = begin_locked(self).await? else {
            return Ok(None);
        };
        let events = read_ages(&mut tx, space, after).await?;
        expire(tx, &events, after, cutoff, now).await.map(Some)
    }

    async fn expire_payloads_of(
        &self,
        space: &SpaceId,
        seqs: &[i64],
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError> {
        let Some(mut tx) = begin_locked(self).await? else {
            return Ok(None);
        };
        let events = read_ages_of(&mut tx, space, seqs).await?;
        expire(tx, &events, 0, cutoff, now).await.map(Some)
    }

    async fn delete_old_alerts(&self, space: &SpaceId, cutoff: Timestamp) -> Result<Option<u64>, StoreError> {
        let Some(mut tx) = begin_locked(self).await? else {
            return Ok(None);
        };
        let deleted = sqlx::query(
            "DELETE FROM alerts WHERE seq IN (
                 SELECT seq FROM alerts WHERE space_id = $1 AND status <> 'pending' AND create_time < $2 LIMIT $3)",
        )
        .bind(space.as_str())
        .bind(cutoff.as_micros())
        .bind(i64::from(ALERTS_PER_BATCH))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(deleted))
    }

    async fn reclaim_space(&self, _pages: u32) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn erase_events(
        &self,
        space: &SpaceId,
        draft: &ErasureDraft,
        now: Timestamp,
    ) -> Result<ErasedBatch, StoreError> {
        let mut tx = self.pool.begin().await?;
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM events
             WHERE space_id = $1 AND object_id = $2 AND data_remove_time IS NULL
               AND create_time >= $3 AND create_time < $4
             LIMIT $5 FOR UPDATE",
        )
        .bind(space.as_str())
        .bind(&draft.object_id)
        .bind(draft.bounds().0.as_micros())
        .bind(draft.bounds().1.as_micros())
        .bind(i64::from(EVENTS_PER_BATCH))
        .fetch_all(&mut *tx)
        .await?;
        let cancelled = sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, update_time = $2
             WHERE status = 'pending' AND event_id IN (SELECT id FROM events WHERE seq = ANY($1))",
        )
        .bind(&seqs)
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        let removed = remove_data(&mut tx, &seqs, now).await?;
        tx.commit().await?;
        Ok(ErasedBatch {
            events: removed.payloads,
            deliveries_cancelled: cancelled.rows_affected(),
            more: seqs.len() == EVENTS_PER_BATCH as usize,
        })
    }

    async fn save_erasure(&self, erasure: &Erasure, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(record) = idempotency {
            save_idempotency(&mut tx, &seal_idempotency(&self.cipher, record.clone())).await?;
        }
        sqlx::query(
            "INSERT INTO erasures (id, space_id, object_id, from_time, to_time, events_erased, deliveries_cancelled,
                 create_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(erasure.id.as_str())
        .bind(erasure.space_id.as_str())
        .bind(&erasure.draft.object_id)
        .bind(erasure.draft.from.map(Timestamp::as_micros))
        .bind(erasure.draft.to.map(Timestamp::as_micros))
        .bind(i64::try_from(erasure.events_erased).unwrap_or(i64::MAX))
        .bind(i64::try_from(erasure.deliveries_cancelled).unwrap_or(i64::MAX))
        .bind(erasure.create_time.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
