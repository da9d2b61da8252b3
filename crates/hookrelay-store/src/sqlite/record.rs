//! Recording attempts in SQLite, by `hookrelay_core::record::plan`, in one transaction
//! of the writer.

use std::collections::HashMap;

use async_trait::async_trait;
use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::record::{plan, AttemptResult};
use rusqlite::{params, Connection, OptionalExtension};

use super::health::{apply_failure, clear_health};
use super::SqliteStore;
use crate::rows::{held_lease, LeaseColumns};
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
    let leases = leases(connection, results)?;
    let plan = plan(results, |result| {
        result.holds_lease(held_lease(leases.get(result.delivery_id.as_str())))
    });
    // An attempt is one row per number here, unlike PostgreSQL's one per start: one
    // node serves the file, so a number taken twice needs an attempt that outlived its
    // lease, which a worker never starts. Should it happen, the attempt that moves the
    // delivery on is the one kept.
    insert_attempts(connection, plan.together.iter().chain(&plan.in_order), true)?;
    insert_attempts(connection, plan.history.iter(), false)?;
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

/// Each delivery's lease now (owner, end).
fn leases<'a>(
    connection: &Connection,
    results: &'a [AttemptResult],
) -> Result<HashMap<&'a str, LeaseColumns>, StoreError> {
    let mut select = connection.prepare_cached("SELECT lease_owner, lease_until FROM deliveries WHERE id = ?")?;
    let mut leases = HashMap::new();
    for result in results {
        let id = result.delivery_id.as_str();
        if let Some(lease) = select
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?
        {
            leases.insert(id, lease);
        }
    }
    Ok(leases)
}

/// Stores each attempt; one whose number is stored already replaces it when it
/// `counts`, and is dropped when it does not.
fn insert_attempts<'a>(
    connection: &Connection,
    results: impl Iterator<Item = &'a &'a AttemptResult>,
    counts: bool,
) -> Result<(), StoreError> {
    let mut insert = connection.prepare_cached(if counts {
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (delivery_id, attempt) DO UPDATE SET start_time = excluded.start_time,
             duration_ms = excluded.duration_ms, status_code = excluded.status_code,
             error_kind = excluded.error_kind, response_body = excluded.response_body"
    } else {
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING"
    })?;
    for result in results {
        let attempt = &result.attempt;
        insert.execute(params![
            result.delivery_id.as_str(),
            i64::from(attempt.attempt),
            attempt.start_time.as_micros(),
            i64::from(attempt.duration_ms),
            attempt.status_code.map(i64::from),
            attempt.error_kind.map(ErrorKind::as_str),
            attempt.response_body.as_deref(),
        ])?;
    }
    Ok(())
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
