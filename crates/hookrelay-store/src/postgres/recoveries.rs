//! Recoveries in PostgreSQL: each batch one transaction that locks its recovery row, so
//! two nodes never run the same batch, and the events of the deliveries it reads, so an
//! erasure cannot remove their data before it commits.

use async_trait::async_trait;
use hookrelay_core::delivery::DeliveryStatus;
use hookrelay_core::recovery::{advance, Candidate, Recovery, RecoveryCounts, RecoveryDraft, RecoveryStatus, Verdict};
use hookrelay_core::{RecoveryId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::deliveries::apply_requeue;
use super::nodes::dead_nodes;
use super::{save_idempotency, PostgresStore};
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

fn decode_walk(row: &PgRow) -> Result<Walk, StoreError> {
    let count = |column: &str| row.try_get::<i64, _>(column).map(|n| u64::try_from(n).unwrap_or(0));
    let statuses: String = row.try_get("statuses")?;
    Ok(Walk {
        webhook_id: row.try_get("webhook_id")?,
        draft: RecoveryDraft {
            since: Timestamp::from_micros(row.try_get("since_time")?),
            until: Timestamp::from_micros(row.try_get("until_time")?),
            statuses: RecoveryDraft::parse_statuses_text(&statuses).ok_or_else(|| corrupt("statuses", &statuses))?,
        },
        end_seq: row.try_get("end_seq")?,
        cursor_seq: row.try_get("cursor_seq")?,
        counts: RecoveryCounts {
            matched: count("matched")?,
            requeued: count("requeued")?,
            skipped: count("skipped")?,
        },
    })
}

/// Up to `limit` of the walk's deliveries after its cursor: position, id and candidate.
/// Their events are locked (FOR SHARE), so an erasure cannot remove their data before
/// the batch commits; the deliveries are not, so claims and records never wait on a
/// batch (a retry re-checks the status it read).
async fn read_batch(
    tx: &mut Transaction<'_, Postgres>,
    walk: &Walk,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<(i64, String, Candidate)>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.seq, d.id, d.status, d.update_time, e.data_remove_time IS NOT NULL AS data_removed
         FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.webhook_id = $1 AND d.seq > $2 AND d.seq <= $3 ORDER BY d.seq LIMIT $4
         FOR SHARE OF e",
    )
    .bind(&walk.webhook_id)
    .bind(walk.cursor_seq)
    .bind(walk.end_seq)
    .bind(i64::from(limit))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            let candidate = Candidate {
                status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
                update_time: Timestamp::from_micros(row.try_get("update_time")?),
                data_removed: row.try_get("data_removed")?,
                now,
            };
            Ok((row.try_get("seq")?, row.try_get("id")?, candidate))
        })
        .collect()
}

/// Saves where the walk got to, what it did, and its lease (none once it ends).
async fn save_walk(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    walk: &Walk,
    status: RecoveryStatus,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<(), StoreError> {
    let running = status == RecoveryStatus::Running;
    sqlx::query(
        "UPDATE recoveries SET status = $1, cursor_seq = $2, matched = $3, requeued = $4, skipped = $5,
             finish_time = $6, lease_until = $7, lease_owner = CASE WHEN $7 IS NULL THEN NULL ELSE lease_owner END
         WHERE id = $8",
    )
    .bind(status.as_str())
    .bind(walk.cursor_seq)
    .bind(stored_count(walk.counts.matched))
    .bind(stored_count(walk.counts.requeued))
    .bind(stored_count(walk.counts.skipped))
    .bind((!running).then_some(now.as_micros()))
    .bind(running.then_some(lease_until.as_micros()))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn progress(status: RecoveryStatus, counts: RecoveryCounts, requeued_now: u64) -> RecoveryProgress {
    RecoveryProgress {
        status,
        counts,
        requeued_now,
    }
}

/// One batch, in `tx`.
async fn run_batch(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Option<RecoveryProgress>, StoreError> {
    let row = sqlx::query(
        "SELECT webhook_id, since_time, until_time, statuses, end_seq, cursor_seq, matched, requeued, skipped
         FROM recoveries WHERE id = $1 AND status = 'running' AND lease_owner = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut walk = decode_walk(&row)?;
    let enabled: Option<bool> = sqlx::query_scalar("SELECT enabled FROM webhooks WHERE id = $1")
        .bind(&walk.webhook_id)
        .fetch_optional(&mut **tx)
        .await?;
    if enabled != Some(true) {
        save_walk(tx, id, &walk, RecoveryStatus::Cancelled, now, lease_until).await?;
        return Ok(Some(progress(RecoveryStatus::Cancelled, walk.counts, 0)));
    }
    let batch = read_batch(tx, &walk, limit, now).await?;
    let before = walk.counts.requeued;
    for (_, delivery, candidate) in &batch {
        let mut verdict = walk.draft.sort(candidate);
        if let Verdict::Requeue(requeue) = verdict {
            // Changed since it was read (PostgreSQL: by another transaction): no longer one to recover.
            if !apply_requeue(tx, delivery, &requeue, Some(candidate.status)).await? {
                verdict = Verdict::Pass;
            }
        }
        walk.counts.count(verdict);
    }
    let (cursor, status) = advance(batch.len(), limit, batch.last().map(|b| b.0), walk.end_seq);
    walk.cursor_seq = cursor;
    save_walk(tx, id, &walk, status, now, lease_until).await?;
    Ok(Some(progress(status, walk.counts, walk.counts.requeued - before)))
}

#[async_trait]
impl RecoveryStore for PostgresStore {
    async fn create_recovery(
        &self,
        recovery: &Recovery,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(record) = idempotency {
            save_idempotency(&mut tx, &seal_idempotency(&self.cipher, record.clone())).await?;
        }
        sqlx::query(
            "INSERT INTO recoveries (id, space_id, webhook_id, since_time, until_time, statuses, status,
                 end_seq, cursor_seq, matched, requeued, skipped, create_time)
             VALUES ($1, $2, $3, $4, $5, $6, 'running',
                 (SELECT COALESCE(MAX(seq), 0) FROM deliveries WHERE webhook_id = $3), 0, 0, 0, 0, $7)",
        )
        .bind(recovery.id.as_str())
        .bind(recovery.space_id.as_str())
        .bind(recovery.webhook_id.as_str())
        .bind(recovery.draft.since.as_micros())
        .bind(recovery.draft.until.as_micros())
        .bind(recovery.draft.statuses_text())
        .bind(recovery.create_time.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_recovery(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<RecoveryId>, StoreError> {
        let id: Option<String> = sqlx::query_scalar(concat!(
            "UPDATE recoveries SET lease_until = $1, lease_owner = $2
             WHERE seq = (SELECT seq FROM recoveries
                          WHERE status = 'running'
                            AND (lease_until IS NULL OR lease_until < $3 OR lease_owner = ANY(",
            dead_nodes!(),
            "))
                          ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id"
        ))
        .bind(lease_until.as_micros())
        .bind(owner)
        .bind(now.as_micros())
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let progress = run_batch(&mut tx, id.as_str(), owner, now, lease_until, limit.max(1)).await?;
        tx.commit().await?;
        if progress.is_some_and(|p| p.requeued_now > 0) {
            self.notifier.work_stored();
        }
        Ok(progress)
    }
}
