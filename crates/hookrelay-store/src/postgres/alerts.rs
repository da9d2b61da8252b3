//! The alert queue in PostgreSQL, which every node's alerter drains.

use std::sync::LazyLock;

use async_trait::async_trait;
use hookrelay_core::alert::Alert;
use hookrelay_core::{AlertId, Timestamp};

use super::PostgresStore;
use crate::rows::{decode_alert, ALERT_COLUMNS};
use crate::{AlertOutcome, AlertStore, StoreError};

/// Leases due alerts, oldest due first. `SKIP LOCKED` passes over alerts another node is
/// claiming at this moment, and one leased since this statement's snapshot fails the
/// re-checked lease test, so two nodes never claim (and send) the same alert.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH due AS (
             SELECT seq FROM alerts
             WHERE status = 'pending' AND next_attempt_time <= $1 AND (lease_until IS NULL OR lease_until < $1)
             ORDER BY next_attempt_time, seq LIMIT $3
             FOR UPDATE SKIP LOCKED
         ), claimed AS (
             UPDATE alerts SET lease_until = $2 FROM due WHERE alerts.seq = due.seq
             RETURNING alerts.*
         )
         SELECT {ALERT_COLUMNS} FROM claimed ORDER BY next_attempt_time, seq"
    )
});

#[async_trait]
impl AlertStore for PostgresStore {
    async fn claim_alerts(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(&CLAIM)
            .bind(now.as_micros())
            .bind(lease_until.as_micros())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_alert).collect()
    }

    async fn finish_alert(&self, id: &AlertId, outcome: &AlertOutcome, now: Timestamp) -> Result<(), StoreError> {
        let finished = outcome.columns(now);
        sqlx::query(
            "UPDATE alerts SET status = $1, attempts = attempts + 1, next_attempt_time = $2, sent_time = $3,
                 last_error = COALESCE($4, last_error), lease_until = NULL
             WHERE id = $5",
        )
        .bind(finished.status.as_str())
        .bind(finished.next_attempt_time)
        .bind(finished.sent_time)
        .bind(finished.error)
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
