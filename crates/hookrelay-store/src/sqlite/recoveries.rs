//! Recoveries in SQLite: each batch one write through the writer thread, so a publish
//! waits behind one batch at most.

use async_trait::async_trait;
use hookrelay_core::delivery::DeliveryStatus;
use hookrelay_core::recovery::{advance, Candidate, Recovery, RecoveryCounts, RecoveryDraft, RecoveryStatus, Verdict};
use hookrelay_core::{RecoveryId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

use super::deliveries::apply_requeue;
use super::idempotency::save_idempotency;
use super::SqliteStore;
use crate::rows::{corrupt, seal_idempotency, stored_count};
use crate::{IdempotencyRecord, RecoveryProgress, RecoveryStore, StoreError};

/// What a batch reads of its recovery.
struct Walk {
    webhook_id: String,
    draft: RecoveryDraft,
    end_seq: i64,
    cursor_seq: i64,
    counts: RecoveryCounts,
}

/// The recovery `id` if `owner` holds it and it is running.
fn read_walk(connection: &Connection, id: &str, owner: &str) -> Result<Option<Walk>, StoreError> {
    let row = connection
        .prepare_cached(
            "SELECT webhook_id, since_time, until_time, statuses, end_seq, cursor_seq, matched, requeued, skipped
             FROM recoveries WHERE id = ?1 AND status = 'running' AND lease_owner = ?2",
        )?
        .query_row(params![id, owner], |row| {
            Ok((
                row.get::<_, String>(0)?,
                [row.get::<_, i64>(1)?, row.get(2)?],
                row.get::<_, String>(3)?,
                [
                    row.get::<_, i64>(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                ],
            ))
        })
        .optional()?;
    let Some((webhook_id, [since, until], statuses, [end_seq, cursor_seq, matched, requeued, skipped])) = row else {
        return Ok(None);
    };
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Some(Walk {
        webhook_id,
        draft: RecoveryDraft {
            since: Timestamp::from_micros(since),
            until: Timestamp::from_micros(until),
            statuses: RecoveryDraft::parse_statuses_text(&statuses).ok_or_else(|| corrupt("statuses", &statuses))?,
        },
        end_seq,
        cursor_seq,
        counts: RecoveryCounts {
            matched: count(matched),
            requeued: count(requeued),
            skipped: count(skipped),
        },
    }))
}

/// Up to `limit` of the walk's deliveries after its cursor: position, id, candidate.
fn read_batch(
    connection: &Connection,
    walk: &Walk,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<(i64, String, Candidate)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT d.seq, d.id, d.status, d.update_time, e.data_remove_time IS NOT NULL
         FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.webhook_id = ?1 AND d.seq > ?2 AND d.seq <= ?3 ORDER BY d.seq LIMIT ?4",
    )?;
    let rows = statement.query_map(params![walk.webhook_id, walk.cursor_seq, walk.end_seq, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, bool>(4)?,
        ))
    })?;
    let mut batch = Vec::new();
    for row in rows {
        let (seq, id, status, update_time, data_removed) = row?;
        let status = DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
        let candidate = Candidate {
            status,
            update_time: Timestamp::from_micros(update_time),
            data_removed,
            now,
        };
        batch.push((seq, id, candidate));
    }
    Ok(batch)
}

/// Saves where the walk got to, what it did, and its lease (none once it ends).
fn save_walk(
    connection: &Connection,
    id: &str,
    walk: &Walk,
    status: RecoveryStatus,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<(), StoreError> {
    let running = status == RecoveryStatus::Running;
    connection
        .prepare_cached(
            "UPDATE recoveries SET status = ?1, cursor_seq = ?2, matched = ?3, requeued = ?4, skipped = ?5,
                 finish_time = ?6, lease_until = ?7, lease_owner = CASE WHEN ?7 IS NULL THEN NULL ELSE lease_owner END
             WHERE id = ?8",
        )?
        .execute(params![
            status.as_str(),
            walk.cursor_seq,
            stored_count(walk.counts.matched),
            stored_count(walk.counts.requeued),
            stored_count(walk.counts.skipped),
            (!running).then_some(now.as_micros()),
            running.then_some(lease_until.as_micros()),
            id,
        ])?;
    Ok(())
}

/// One batch, in the writer's transaction.
fn run_batch(
    connection: &Connection,
    id: &str,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Option<RecoveryProgress>, StoreError> {
    let Some(mut walk) = read_walk(connection, id, owner)? else {
        return Ok(None);
    };
    let enabled: Option<bool> = connection
        .prepare_cached("SELECT enabled FROM webhooks WHERE id = ?1")?
        .query_row(params![walk.webhook_id], |row| row.get(0))
        .optional()?;
    if enabled != Some(true) {
        save_walk(connection, id, &walk, RecoveryStatus::Cancelled, now, lease_until)?;
        return Ok(Some(progress(RecoveryStatus::Cancelled, walk.counts, 0)));
    }
    let batch = read_batch(connection, &walk, limit, now)?;
    let before = walk.counts.requeued;
    for (_, delivery, candidate) in &batch {
        let mut verdict = walk.draft.sort(candidate);
        if let Verdict::Requeue(requeue) = verdict {
            // Changed since it was read (PostgreSQL: by another transaction): no longer one to recover.
            if !apply_requeue(connection, delivery, &requeue, Some(candidate.status))? {
                verdict = Verdict::Pass;
            }
        }
        walk.counts.count(verdict);
    }
    let (cursor, status) = advance(batch.len(), limit, batch.last().map(|b| b.0), walk.end_seq);
    walk.cursor_seq = cursor;
    save_walk(connection, id, &walk, status, now, lease_until)?;
    Ok(Some(progress(status, walk.counts, walk.counts.requeued - before)))
}

fn progress(status: RecoveryStatus, counts: RecoveryCounts, requeued_now: u64) -> RecoveryProgress {
    RecoveryProgress {
        status,
        counts,
        requeued_now,
    }
}

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn create_recovery(
        &self,
        recovery: &Recovery,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let recovery = recovery.clone();
        let idempotency = idempotency.map(|record| seal_idempotency(&self.cipher, record.clone()));
        self.writer
            .write(move |connection| {
                if let Some(record) = &idempotency {
                    save_idempotency(connection, record)?;
                }
                connection
                    .prepare_cached(
                        "INSERT INTO recoveries (id, space_id, webhook_id, since_time, until_time, statuses, status,
                             end_seq, cursor_seq, matched, requeued, skipped, create_time)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running',
                             (SELECT COALESCE(MAX(seq), 0) FROM deliveries WHERE webhook_id = ?3), 0, 0, 0, 0, ?7)",
                    )?
                    .execute(params![
                        recovery.id.as_str(),
                        recovery.space_id.as_str(),
                        recovery.webhook_id.as_str(),
                        recovery.draft.since.as_micros(),
                        recovery.draft.until.as_micros(),
                        recovery.draft.statuses_text(),
                        recovery.create_time.as_micros(),
                    ])?;
                Ok(())
            })
            .await
    }

    async fn claim_recovery(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<RecoveryId>, StoreError> {
        let owner = owner.to_owned();
        let id: Option<String> = self
            .writer
            .write(move |connection| {
                Ok(connection
                    .prepare_cached(
                        "UPDATE recoveries SET lease_until = ?1, lease_owner = ?2
                         WHERE seq = (SELECT seq FROM recoveries
                                      WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?3)
                                      ORDER BY seq LIMIT 1)
                         RETURNING id",
                    )?
                    .query_row(params![lease_until.as_micros(), owner, now.as_micros()], |row| {
                        row.get(0)
                    })
                    .optional()?)
            })
            .await?;
        id.map(|id| RecoveryId::parse(&id).ok_or_else(|| corrupt("recoveries.id", &id)))
            .transpose()
    }

    async fn recover_batch(
        &self,
        id: &RecoveryId,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Option<RecoveryProgress>, StoreError> {
        let (id, owner) = (id.as_str().to_owned(), owner.to_owned());
        self.writer
            .write(move |connection| run_batch(connection, &id, &owner, now, lease_until, limit.max(1)))
            .await
    }
}
