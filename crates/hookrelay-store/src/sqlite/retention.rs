//! Retention in SQLite: the cleaner's batches and erasures, each one write through the
//! writer thread (a publish waits behind at most one), and the incremental vacuum that
//! gives freed pages back to the file system.

use async_trait::async_trait;
use hookrelay_core::retention::{
    plan_deletion, plan_payload_expiry, Erasure, ErasureDraft, EventAge, Removed, ALERTS_PER_BATCH, EVENTS_PER_BATCH,
};
use hookrelay_core::{SpaceId, Timestamp};
use rusqlite::{params, Connection};

use super::idempotency::save_idempotency;
use super::SqliteStore;
use crate::rows::seal_idempotency;
use crate::{CleanBatch, ErasedBatch, IdempotencyRecord, RetentionStore, StoreError};

/// A JSON array of positions, for `IN (SELECT value FROM json_each(?))`.
fn json_seqs(seqs: &[i64]) -> String {
    serde_json::to_string(seqs).expect("integers serialise")
}

/// What the cleaner reads of an event `e`. An event whose fan-out is still being
/// written (`staged_events`) is unfinished.
const AGE_COLUMNS: &str = "e.seq, e.create_time, e.delivery_count, e.data_remove_time IS NOT NULL,
    EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
    OR EXISTS (SELECT 1 FROM staged_events s WHERE s.event_id = e.id)";

fn age(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventAge> {
    Ok(EventAge {
        seq: row.get(0)?,
        create_time: Timestamp::from_micros(row.get(1)?),
        deliveries: row.get::<_, i64>(2)?.max(0).unsigned_abs(),
        data_removed: row.get(3)?,
        unfinished: row.get(4)?,
    })
}

/// Up to [`EVENTS_PER_BATCH`] of the space's events after `after`, oldest first.
fn read_ages(connection: &Connection, space: &str, after: i64) -> Result<Vec<EventAge>, StoreError> {
    let sql =
        format!("SELECT {AGE_COLUMNS} FROM events e WHERE e.space_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3");
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params![space, after, EVENTS_PER_BATCH], age)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The space's events at `seqs` (a JSON array), oldest first.
fn read_ages_of(connection: &Connection, space: &str, seqs: &str) -> Result<Vec<EventAge>, StoreError> {
    let sql = format!(
        "SELECT {AGE_COLUMNS} FROM events e
         WHERE e.space_id = ?1 AND e.seq IN (SELECT value FROM json_each(?2)) ORDER BY e.seq"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params![space, seqs], age)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the events at `seqs` with their deliveries and attempts.
fn delete_events(connection: &Connection, seqs: &[i64]) -> Result<Removed, StoreError> {
    if seqs.is_empty() {
        return Ok(Removed::default());
    }
    let seqs = json_seqs(seqs);
    let attempts = connection
        .prepare_cached(
            "DELETE FROM delivery_attempts WHERE delivery_id IN (
                 SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE e.seq IN (SELECT value FROM json_each(?1)))",
        )?
        .execute([&seqs])?;
    let deliveries = connection
        .prepare_cached(
            "DELETE FROM deliveries WHERE event_id IN (
                 SELECT id FROM events WHERE seq IN (SELECT value FROM json_each(?1)))",
        )?
        .execute([&seqs])?;
    let events = connection
        .prepare_cached("DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?1))")?
        .execute([&seqs])?;
    Ok(Removed {
        events: events as u64,
        deliveries: deliveries as u64,
        attempts: attempts as u64,
        ..Removed::default()
    })
}

/// Drops the data of the events at `seqs` (a JSON array) and their attempts' response
/// bodies, at `now`; the events still listed, with their deliveries and attempts.
fn remove_data(connection: &Connection, seqs: &str, now: Timestamp) -> Result<Removed, StoreError> {
    let payloads = connection
        .prepare_cached(
            "UPDATE events SET data = '{}', data_remove_time = ?2
             WHERE seq IN (SELECT value FROM json_each(?1)) AND data_remove_time IS NULL",
        )?
        .execute(params![seqs, now.as_micros()])?;
    let response_bodies = connection
        .prepare_cached(
            "UPDATE delivery_attempts SET response_body = NULL
             WHERE response_body IS NOT NULL AND delivery_id IN (
                 SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE e.seq IN (SELECT value FROM json_each(?1)))",
        )?
        .execute([seqs])?;
    Ok(Removed {
        payloads: payloads as u64,
        response_bodies: response_bodies as u64,
        ..Removed::default()
    })
}

/// Drops the data of those of `events` that `plan_payload_expiry` chooses.
fn expire(
    connection: &Connection,
    events: &[EventAge],
    after: i64,
    cutoff: Timestamp,
    now: Timestamp,
) -> Result<CleanBatch, StoreError> {
    let plan = plan_payload_expiry(events, after, EVENTS_PER_BATCH, cutoff);
    let removed = if plan.chosen.is_empty() {
        Removed::default()
    } else {
        remove_data(connection, &json_seqs(&plan.chosen), now)?
    };
    Ok(CleanBatch {
        removed,
        next_after: plan.next_after,
        waiting: plan.waiting,
        done: plan.done,
    })
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn delete_expired(
        &self,
        space: &SpaceId,
        after: i64,
        cutoff: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError> {
        let space = space.clone();
        let batch = self
            .writer
            .write(move |connection| {
                let events = read_ages(connection, space.as_str(), after)?;
                let plan = plan_deletion(&events, after, EVENTS_PER_BATCH, cutoff);
                Ok(CleanBatch {
                    removed: delete_events(connection, &plan.chosen)?,
                    next_after: plan.next_after,
                    waiting: Vec::new(),
                    done: plan.done,
                })
            })
            .await?;
        Ok(Some(batch))
    }

    async fn expire_payloads(
        &self,
        space: &SpaceId,
        after: i64,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError> {
        let space = space.clone();
        let batch = self
            .writer
            .write(move |connection| {
                let events = read_ages(connection, space.as_str(), after)?;
                expire(connection, &events, after, cutoff, now)
            })
            .await?;
        Ok(Some(batch))
    }

    async fn expire_payloads_of(
        &self,
        space: &SpaceId,
        seqs: &[i64],
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError> {
        let (space, seqs) = (space.clone(), json_seqs(seqs));
        let batch = self
            .writer
            .write(move |connection| {
                let events = read_ages_of(connection, space.as_str(), &seqs)?;
                expire(connection, &events, 0, cutoff, now)
            })
            .await?;
        Ok(Some(batch))
    }

    async fn delete_old_alerts(&self, space: &SpaceId, cutoff: Timestamp) -> Result<Option<u64>, StoreError> {
        let space = space.clone();
        let deleted = self
            .writer
            .write_without_savepoint(move |connection| {
                let deleted = connection
                    .prepare_cached(
                        "DELETE FROM alerts WHERE seq IN (
                             SELECT seq FROM alerts
                             WHERE space_id = ?1 AND status <> 'pending' AND create_time < ?2 LIMIT ?3)",
                    )?
                    .execute(params![space.as_str(), cutoff.as_micros(), ALERTS_PER_BATCH])?;
                Ok(deleted as u64)
            })
            .await?;
        Ok(Some(deleted))
    }

    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError> {
        self.writer
            .write_without_savepoint(move |connection| {
                let free: i64 = connection.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
                if free == 0 {
                    return Ok(0);
                }
                // The pragma frees one page per step of its statement.
                let mut statement = connection.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
                let mut rows = statement.query([])?;
                while rows.next()?.is_some() {}
                let left: i64 = connection.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
                Ok((free - left).max(0).unsigned_abs())
            })
            .await
    }

    async fn erase_events(
        &self,
        space: &SpaceId,
        draft: &ErasureDraft,
        now: Timestamp,
    ) -> Result<ErasedBatch, StoreError> {
        let (space, draft) = (space.clone(), draft.clone());
        let (batch, ids) = self
            .writer
            .write(move |connection| {
                let found: Vec<(i64, String)> = connection
                    .prepare_cached(
                        "SELECT seq, id FROM events
                         WHERE space_id = ?1 AND object_id = ?2 AND data_remove_time IS NULL
                           AND create_time >= ?3 AND create_time < ?4
                         LIMIT ?5",
                    )?
                    .query_map(
                        params![
                            space.as_str(),
                            draft.object_id,
                            draft.bounds().0.as_micros(),
                            draft.bounds().1.as_micros(),
                            EVENTS_PER_BATCH
                        ],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?
                    .collect::<Result<_, _>>()?;
                let (seqs, ids): (Vec<i64>, Vec<String>) = found.into_iter().unzip();
                let json = json_seqs(&seqs);
                let cancelled = connection
                    .prepare_cached(
                        "UPDATE deliveries SET status = 'cancelled', next_attempt_time = NULL, update_time = ?2
                         WHERE status = 'pending' AND event_id IN (
                             SELECT id FROM events WHERE seq IN (SELECT value FROM json_each(?1)))",
                    )?
                    .execute(params![json, now.as_micros()])?;
                let removed = remove_data(connection, &json, now)?;
                let batch = ErasedBatch {
                    events: removed.payloads,
                    deliveries_cancelled: cancelled as u64,
                    more: seqs.len() == EVENTS_PER_BATCH as usize,
                };
                Ok((batch, ids))
            })
            .await?;
        // Claims keep copies of recent events: the erased data goes from memory too.
        self.recent_events.forget(ids.iter().map(String::as_str));
        Ok(batch)
    }

    async fn save_erasure(&self, erasure: &Erasure, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let erasure = erasure.clone();
        let idempotency = idempotency.map(|record| seal_idempotency(&self.cipher, record.clone()));
        self.writer
            .write(move |connection| {
                if let Some(record) = &idempotency {
                    save_idempotency(connection, record)?;
                }
                connection
                    .prepare_cached(
                        "INSERT INTO erasures (id, space_id, object_id, from_time, to_time, events_erased,
                             deliveries_cancelled, create_time)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        erasure.id.as_str(),
                        erasure.space_id.as_str(),
                        erasure.draft.object_id,
                        erasure.draft.from.map(Timestamp::as_micros),
                        erasure.draft.to.map(Timestamp::as_micros),
                        i64::try_from(erasure.events_erased).unwrap_or(i64::MAX),
                        i64::try_from(erasure.deliveries_cancelled).unwrap_or(i64::MAX),
                        erasure.create_time.as_micros(),
                    ])?;
                Ok(())
            })
            .await
    }
}
