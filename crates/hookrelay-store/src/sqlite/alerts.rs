//! The alert queue in SQLite, which the alerter drains.

use async_trait::async_trait;
use hookrelay_core::alert::Alert;
use hookrelay_core::alert_limit::{distinct_recipients, EmailLimit, RecipientWindow};
use hookrelay_core::{AlertId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::rows::{decode_alert, decode_held_alert, group_digests, to_json, ALERT_COLUMNS, HELD_COLUMNS};
use crate::{AlertOutcome, AlertStore, Digest, StoreError};

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

    async fn admit_alert_recipients(
        &self,
        alert: &Alert,
        limit: &EmailLimit,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let (alert, limit) = (alert.clone(), *limit);
        self.writer
            .write(move |connection| admit(connection, &alert, &limit, now))
            .await
    }

    async fn claim_digests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Digest>, StoreError> {
        self.writer
            .write(move |connection| {
                let mut claim = connection.prepare_cached(&format!(
                    "UPDATE alert_email_holds SET lease_until = ?2
                     WHERE digest_due <= ?1 AND (lease_until IS NULL OR lease_until < ?1)
                       AND recipient IN (
                           SELECT DISTINCT recipient FROM alert_email_holds
                           WHERE digest_due <= ?1 AND (lease_until IS NULL OR lease_until < ?1)
                           ORDER BY recipient LIMIT ?3
                       )
                     RETURNING {HELD_COLUMNS}"
                ))?;
                let mut rows = claim.query(params![now.as_micros(), lease_until.as_micros(), i64::from(limit)])?;
                let mut held = Vec::new();
                while let Some(row) = rows.next()? {
                    held.push(decode_held_alert(row)?);
                }
                Ok(group_digests(held, lease_until))
            })
            .await
    }

    async fn finish_digest(&self, digest: &Digest, retry_at: Option<Timestamp>) -> Result<(), StoreError> {
        let (recipient, lease) = (digest.recipient.clone(), digest.lease_until.as_micros());
        self.writer
            .write(move |connection| {
                match retry_at {
                    None => connection.execute(
                        "DELETE FROM alert_email_holds WHERE recipient = ? AND lease_until = ?",
                        params![recipient, lease],
                    )?,
                    Some(at) => connection.execute(
                        "UPDATE alert_email_holds SET lease_until = ? WHERE recipient = ? AND lease_until = ?",
                        params![at.as_micros(), recipient, lease],
                    )?,
                };
                Ok(())
            })
            .await
    }

    async fn prune_alert_email_windows(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.writer
            .write(move |connection| {
                let deleted = connection.execute(
                    "DELETE FROM alert_email_windows WHERE window_start < ?",
                    [before.as_micros()],
                )?;
                Ok(deleted as u64)
            })
            .await
    }
}

/// [`AlertStore::admit_alert_recipients`] in the writer's transaction, which is the only
/// writer: no other admission runs between reading a window and writing it back.
fn admit(
    connection: &Connection,
    alert: &Alert,
    limit: &EmailLimit,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let decided: Option<Option<String>> = connection
        .query_row(
            "SELECT admitted_recipients FROM alerts WHERE id = ?",
            [alert.id.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(Some(json)) = decided {
        return serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("admitted_recipients: {e}")));
    }
    let mut admitted = Vec::new();
    for (key, address) in distinct_recipients(&alert.recipients) {
        let current = connection
            .query_row(
                "SELECT window_start, sent FROM alert_email_windows WHERE recipient = ?",
                [&key],
                |row| {
                    Ok(RecipientWindow {
                        start: Timestamp::from_micros(row.get(0)?),
                        sent: u32::try_from(row.get::<_, i64>(1)?).unwrap_or(u32::MAX),
                    })
                },
            )
            .optional()?;
        let admission = limit.admit(current, now);
        connection.execute(
            "INSERT INTO alert_email_windows (recipient, window_start, sent) VALUES (?1, ?2, ?3)
             ON CONFLICT (recipient) DO UPDATE SET window_start = excluded.window_start, sent = excluded.sent",
            params![
                key,
                admission.window.start.as_micros(),
                i64::from(admission.window.sent)
            ],
        )?;
        if admission.send {
            admitted.push(address);
        } else {
            connection.execute(
                "INSERT INTO alert_email_holds (recipient, alert_id, webhook_id, kind, subject, create_time, digest_due)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![
                    key,
                    alert.id.as_str(),
                    alert.webhook_id.as_str(),
                    alert.kind.as_str(),
                    alert.message.subject,
                    alert.create_time.as_micros(),
                    admission.digest_due.as_micros()
                ],
            )?;
        }
    }
    connection.execute(
        "UPDATE alerts SET admitted_recipients = ? WHERE id = ?",
        params![to_json(&admitted), alert.id.as_str()],
    )?;
    Ok(admitted)
}
