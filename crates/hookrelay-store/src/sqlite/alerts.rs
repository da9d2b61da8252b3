//! The alert queue in SQLite, which the alerter drains.

use async_trait::async_trait;
use hookrelay_core::alert::Alert;
use hookrelay_core::{AlertId, Timestamp};
use rusqlite::params;

use super::SqliteStore;
use crate::rows::{decode_alert, ALERT_COLUMNS};
use crate::{AlertOutcome, AlertStore, StoreError};

#[async_trait]
impl AlertStore for SqliteStore {
    async fn claim_alerts(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> Result<Vec<Alert>, StoreError> {
        self.writer
            .write(move |connection| {
                let mut claim = connection.prepare_cached(&format!(
                    "UPDATE alerts SET lease_until = ?1
                     WHERE seq IN (
                         SELECT seq FROM alerts
                         WHERE status = 'pending' AND next_attempt_time <= ?2
                           AND (lease_until IS NULL OR lease_until < ?2)
                         ORDER BY next_attempt_time LIMIT ?3
                     )
                     RETURNING {ALERT_COLUMNS}"
                ))?;
                let mut rows = claim.query(params![lease_until.as_micros(), now.as_micros(), i64::from(limit)])?;
                let mut alerts = Vec::new();
                while let Some(row) = rows.next()? {
                    alerts.push(decode_alert(row)?);
                }
                Ok(alerts)
            })
            .await
    }

    async fn finish_alert(&self, id: &AlertId, outcome: &AlertOutcome, now: Timestamp) -> Result<(), StoreError> {
        let (id, finished) = (id.clone(), outcome.columns(now));
        self.writer
            .write(move |connection| {
                connection.execute(
                    "UPDATE alerts SET status = ?, attempts = attempts + 1, next_attempt_time = ?, sent_time = ?,
                         last_error = COALESCE(?, last_error), lease_until = NULL
                     WHERE id = ?",
                    params![
                        finished.status.as_str(),
                        finished.next_attempt_time,
                        finished.sent_time,
                        finished.error,
                        id.as_str()
                    ],
                )?;
                Ok(())
            })
            .await
    }
}
