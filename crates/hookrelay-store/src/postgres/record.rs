//! Recording attempts in PostgreSQL, by `hookrelay_core::record::plan`, in a few
//! statements over the whole batch (a round trip per attempt was most of a record's time).
//!
//! Lock order, to keep writers from deadlocking: webhooks (by `seq`) before deliveries
//! (by `seq`). Recording attempts locks every webhook it touches first, so two
//! transactions that record attempts of one webhook (its health, or the same delivery
//! after it was taken over) run one after the other, then the deliveries, whose leases
//! decide which results count: a claim skips a locked delivery, so none is taken over
//! between that check and the record. A deadlock the order cannot rule out (attempts
//! of a webhook deleted meanwhile, which has no row left to lock) is retried.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::record::{plan, AttemptResult};
use sqlx::{Postgres, Transaction};

use super::health::{apply_failure, clear_health, clear_health_of_all};
use super::PostgresStore;
use crate::rows::{held_lease, LeaseColumns};
use crate::{AttemptStore, StoreError};

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

#[async_trait]
impl AttemptStore for PostgresStore {
    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError> {
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
}

impl PostgresStore {
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
        let leases = lock_leases(&mut tx, results).await?;
        let plan = plan(results, |result| {
            result.holds_lease(held_lease(leases.get(result.delivery_id.as_str())))
        });
        insert_attempts(&mut tx, &plan.attempts().collect::<Vec<_>>()).await?;
        move_deliveries_on(&mut tx, &plan.together).await?;
        let mut alerts = 0;
        for result in plan.in_order {
            move_deliveries_on(&mut tx, &[result]).await?;
            // A webhook deleted meanwhile has no health to keep.
            if !existing.contains(result.webhook_id.as_str()) {
                continue;
            }
            alerts += match result.succeeded() {
                true => clear_health(&mut tx, &result.webhook_id, result.finish_time).await?,
                false => apply_failure(&mut tx, result, policy).await?,
            };
        }
        let recoveries: Vec<_> = plan
            .recoveries
            .into_iter()
            .filter(|(webhook, _)| existing.contains(webhook.as_str()))
            .collect();
        if !recoveries.is_empty() {
            alerts += clear_health_of_all(&mut tx, &recoveries).await?;
        }
        tx.commit().await?;
        Ok(alerts)
    }
}

/// Each delivery's lease now (owner, end), locked until the transaction ends.
type Leases = HashMap<String, LeaseColumns>;

/// Locks the deliveries of `results` (by `seq`, see the lock order above) and reads
/// their leases.
async fn lock_leases(tx: &mut Transaction<'_, Postgres>, results: &[AttemptResult]) -> Result<Leases, StoreError> {
    let mut ids: Vec<&str> = results.iter().map(|r| r.delivery_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT id, lease_owner, lease_until FROM deliveries WHERE id = ANY($1) ORDER BY seq FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, owner, until)| (id, (owner, until)))
        .collect())
}

/// Stores attempts; one stored already (the same attempt, recorded twice) is left as it
/// is.
async fn insert_attempts(tx: &mut Transaction<'_, Postgres>, results: &[&AttemptResult]) -> Result<(), StoreError> {
    if results.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&AttemptResult) -> Option<i64>| results.iter().map(|r| f(r)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body)
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[],
                              $7::bytea[])
         ON CONFLICT DO NOTHING",
    )
    .bind(results.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>())
    .bind(column(|r| Some(i64::from(r.attempt.attempt))))
    .bind(column(|r| Some(r.attempt.start_time.as_micros())))
    .bind(column(|r| Some(i64::from(r.attempt.duration_ms))))
    .bind(column(|r| r.attempt.status_code.map(i64::from)))
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the deliveries of recorded attempts on, in one statement. A delivery cancelled
/// while its attempt was in flight stays cancelled unless that attempt settled it. One
/// retried meanwhile (pending, and changed since its claim) stays pending, due when the
/// retry asked.
async fn move_deliveries_on(tx: &mut Transaction<'_, Postgres>, recorded: &[&AttemptResult]) -> Result<(), StoreError> {
    if recorded.is_empty() {
        return Ok(());
    }
    let next: Vec<_> = recorded.iter().map(|r| r.next_state()).collect();
    let column = |f: fn(&AttemptResult) -> i64| recorded.iter().map(|r| f(r)).collect::<Vec<_>>();
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
    .bind(
        next.iter()
            .map(|(_, time)| time.map(|t| t.as_micros()))
            .collect::<Vec<_>>(),
    )
    .bind(column(|r| i64::from(r.attempt.attempt)))
    .bind(column(|r| r.finish_time.as_micros()))
    .bind(column(|r| r.claimed_update_time.as_micros()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
