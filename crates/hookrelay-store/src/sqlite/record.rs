//! Recording attempts in SQLite, by `hookrelay_core::record::plan`, in one transaction
//! of the writer.

use std::collections::HashSet;

use async_trait::async_trait;
use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::record::{plan, AttemptResult};
use rusqlite::{params, Connection};

use super::health::{apply_failure, clear_health};
use super::SqliteStore;
use crate::{AttemptStore, StoreError};

#[async_trait]
impl AttemptStore for SqliteStore {
    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError> {
        let (results, policy) = (results.to_vec(), *policy);
        let (alerts, disabled) = self
            .writer
            // In a savepoint: a batch changes rows result by result, and one that then
            // fails (a webhook's stored alert settings unreadable) must fail alone.
            .write(move |connection| record(connection, &results, &policy))
            .await?;
        // The webhooks kept in memory (and the targets the engine keeps under the epoch)
        // change only when one is disabled; a failure alone leaves them as they are.
        if disabled {
            self.webhooks_changed();
        }
        Ok(alerts)
    }
}

/// Records `results` in the caller's transaction; returns the alerts queued and whether
/// a webhook was disabled.
fn record(connection: &Connection, results: &[AttemptResult], policy: &AlertPolicy) -> Result<(u32, bool), StoreError> {
    let inserted = insert_attempts(connection, results)?;
    let plan = plan(results, &inserted);
    for result in &plan.together {
        move_on(connection, result)?;
    }
    let (mut alerts, mut disabled_any) = (0, false);
    for result in &plan.in_order {
        move_on(connection, result)?;
        if result.succeeded() {
            alerts += clear_health(connection, &result.webhook_id, result.finish_time)?;
        } else {
            // A failure may disable the webhook, which cancels its pending deliveries.
            let (queued, disabled) = apply_failure(connection, result, policy)?;
            alerts += queued;
            disabled_any |= disabled;
        }
    }
    for (webhook, at) in &plan.recoveries {
        alerts += clear_health(connection, webhook, *at)?;
    }
    Ok((alerts, disabled_any))
}

/// Stores each attempt unless it is stored already; returns those newly stored.
fn insert_attempts<'a>(
    connection: &Connection,
    results: &'a [AttemptResult],
) -> Result<HashSet<(&'a str, u32)>, StoreError> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING",
    )?;
    let mut inserted = HashSet::new();
    for result in results {
        let attempt = &result.attempt;
        let stored = insert.execute(params![
            result.delivery_id.as_str(),
            i64::from(attempt.attempt),
            attempt.start_time.as_micros(),
            i64::from(attempt.duration_ms),
            attempt.status_code.map(i64::from),
            attempt.error_kind.map(ErrorKind::as_str),
            attempt.response_body.as_deref(),
        ])?;
        if stored > 0 {
            inserted.insert(result.key());
        }
    }
    Ok(inserted)
}

/// Moves a recorded attempt's delivery on. A delivery cancelled while its attempt was in
/// flight stays cancelled unless that attempt settled it. One retried meanwhile
/// (pending, and changed since its claim) stays pending, due when the retry asked.
fn move_on(connection: &Connection, result: &AttemptResult) -> Result<(), StoreError> {
    let (status, next_time) = result.next_state();
    connection
        .prepare_cached(
            "UPDATE deliveries SET
                 status = CASE WHEN status = 'cancelled' AND ?2 = 'pending' THEN 'cancelled'
                               WHEN status = 'pending' AND update_time <> ?6 THEN 'pending'
                               ELSE ?2 END,
                 next_attempt_time = CASE WHEN status = 'cancelled' THEN NULL
                                          WHEN status = 'pending' AND update_time <> ?6 THEN next_attempt_time
                                          ELSE ?3 END,
                 attempt_count = MAX(attempt_count, ?4), lease_until = NULL, lease_owner = NULL, update_time = ?5
             WHERE id = ?1",
        )?
        .execute(params![
            result.delivery_id.as_str(),
            status.as_str(),
            next_time.map(|t| t.as_micros()),
            i64::from(result.attempt.attempt),
            result.finish_time.as_micros(),
            result.claimed_update_time.as_micros(),
        ])?;
    Ok(())
}
