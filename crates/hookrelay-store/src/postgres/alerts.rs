//! The alert queue in PostgreSQL, which every node's alerter drains.

use std::sync::LazyLock;

use async_trait::async_trait;
use hookrelay_core::alert::Alert;
use hookrelay_core::alert_limit::{distinct_recipients, EmailLimit, RecipientWindow};
use hookrelay_core::{AlertId, Timestamp};
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::rows::{decode_alert, decode_held_alert, group_digests, to_json, ALERT_COLUMNS, HELD_COLUMNS};
use crate::{AlertOutcome, AlertStore, Digest, StoreError};

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

/// Leases the due held alerts of up to `$3` addresses. The re-checked lease test passes
/// over rows another node leased since this statement's snapshot, so two nodes never
/// send the same held alert.
static CLAIM_DIGESTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE alert_email_holds SET lease_until = $2
         WHERE digest_due <= $1 AND (lease_until IS NULL OR lease_until < $1)
           AND recipient IN (
               SELECT DISTINCT recipient FROM alert_email_holds
               WHERE digest_due <= $1 AND (lease_until IS NULL OR lease_until < $1)
               ORDER BY recipient LIMIT $3
           )
         RETURNING {HELD_COLUMNS}"
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

    async fn admit_alert_recipients(
        &self,
        alert: &Alert,
        limit: &EmailLimit,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The alert's row lock makes the decision once: a second caller waits and reads it.
        let decided: Option<Option<String>> =
            sqlx::query_scalar("SELECT admitted_recipients FROM alerts WHERE id = $1 FOR UPDATE")
                .bind(alert.id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(Some(json)) = decided {
            return serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("admitted_recipients: {e}")));
        }
        let mut admitted = Vec::new();
        for (key, address) in distinct_recipients(&alert.recipients) {
            let admission = limit.admit(Some(lock_window(&mut tx, &key, now).await?), now);
            sqlx::query("UPDATE alert_email_windows SET window_start = $2, sent = $3 WHERE recipient = $1")
                .bind(&key)
                .bind(admission.window.start.as_micros())
                .bind(i64::from(admission.window.sent))
                .execute(&mut *tx)
                .await?;
            if admission.send {
                admitted.push(address);
                continue;
            }
            sqlx::query(
                "INSERT INTO alert_email_holds (recipient, alert_id, webhook_id, kind, subject, create_time, digest_due)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&key)
            .bind(alert.id.as_str())
            .bind(alert.webhook_id.as_str())
            .bind(alert.kind.as_str())
            .bind(&alert.message.subject)
            .bind(alert.create_time.as_micros())
            .bind(admission.digest_due.as_micros())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE alerts SET admitted_recipients = $1 WHERE id = $2")
            .bind(to_json(&admitted))
            .bind(alert.id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(admitted)
    }

    async fn claim_digests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Digest>, StoreError> {
        let rows = sqlx::query(&CLAIM_DIGESTS)
            .bind(now.as_micros())
            .bind(lease_until.as_micros())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let held = rows.iter().map(decode_held_alert).collect::<Result<Vec<_>, _>>()?;
        Ok(group_digests(held, lease_until))
    }

    async fn finish_digest(&self, digest: &Digest, retry_at: Option<Timestamp>) -> Result<(), StoreError> {
        let (recipient, lease) = (&digest.recipient, digest.lease_until.as_micros());
        match retry_at {
            None => sqlx::query("DELETE FROM alert_email_holds WHERE recipient = $1 AND lease_until = $2")
                .bind(recipient)
                .bind(lease),
            Some(at) => {
                sqlx::query("UPDATE alert_email_holds SET lease_until = $3 WHERE recipient = $1 AND lease_until = $2")
                    .bind(recipient)
                    .bind(lease)
                    .bind(at.as_micros())
            }
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune_alert_email_windows(&self, before: Timestamp) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM alert_email_windows WHERE window_start < $1")
            .bind(before.as_micros())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

/// An address's window, locked until the transaction ends so nodes admitting alerts
/// for it take turns. A new address gets an empty window opening now, which admits as
/// no window would. One upsert inserts or locks the row, so a concurrent insert or
/// prune cannot slip between a read and its lock.
async fn lock_window(
    tx: &mut Transaction<'_, Postgres>,
    key: &str,
    now: Timestamp,
) -> Result<RecipientWindow, StoreError> {
    let (start, sent): (i64, i64) = sqlx::query_as(
        "INSERT INTO alert_email_windows (recipient, window_start, sent) VALUES ($1, $2, 0)
         ON CONFLICT (recipient) DO UPDATE SET recipient = excluded.recipient
         RETURNING window_start, sent",
    )
    .bind(key)
    .bind(now.as_micros())
    .fetch_one(&mut **tx)
    .await?;
    Ok(RecipientWindow {
        start: Timestamp::from_micros(start),
        sent: u32::try_from(sent).unwrap_or(u32::MAX),
    })
}
