//! Webhook health and alerts in SQLite: the health rules of `hookrelay_core::alert`
//! applied in the attempt's transaction, and the alert queue the alerter drains.

use hookrelay_core::alert::{
    on_attempt, render, Alert, AlertKind, AlertMessage, AlertPolicy, AlertStatus, AlertSubject, AttemptSummary,
    WebhookHealth,
};
use hookrelay_core::delivery::{ErrorKind, NextStep};
use hookrelay_core::{AlertId, SpaceId, Timestamp, WebhookId};
use rusqlite::{params, Connection, OptionalExtension};

use super::delivery::cancel_pending;
use super::SqliteStore;
use crate::rows::{corrupt, json_column, page, Columns};
use crate::{AlertOutcome, AttemptResult, Page, StoreError};

const ALERT_COLUMNS: &str = "seq, id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status, \
     attempts, next_attempt_time, last_error, create_time, sent_time";

/// Clears the failure record of a webhook whose attempt succeeded, and queues a
/// "recovered" alert if it had been alerted about; returns the alerts queued.
pub(super) fn clear_health(connection: &Connection, webhook: &WebhookId, now: Timestamp) -> Result<u32, StoreError> {
    let alerted: Option<bool> = connection
        .prepare_cached("DELETE FROM webhook_health WHERE webhook_id = ? RETURNING alerted")?
        .query_row([webhook.as_str()], |row| row.get(0))
        .optional()?;
    // A record of a webhook never alerted about goes without a word.
    if alerted != Some(true) {
        return Ok(0);
    }
    queue(
        connection,
        webhook,
        AlertKind::Recovered,
        &WebhookHealth::default(),
        now,
    )
}

/// Applies one recorded failed attempt to its webhook's health; returns the alerts
/// queued, and whether it disabled the webhook.
pub(super) fn apply_health(
    connection: &Connection,
    result: &AttemptResult,
    policy: &AlertPolicy,
) -> Result<(u32, bool), StoreError> {
    let webhook = &result.webhook_id;
    let now = result.finish_time;
    let gone = matches!(result.next, NextStep::Failed { disable_webhook: true });
    debug_assert!(
        !matches!(result.next, NextStep::Succeeded),
        "successes go to clear_health"
    );
    let mut health = load_health(connection, webhook)?;
    let attempt = &result.attempt;
    let summary = AttemptSummary {
        start_time: attempt.start_time,
        succeeded: false,
        delivery_exhausted: matches!(result.next, NextStep::Failed { .. }),
        status_code: attempt.status_code,
        error_kind: attempt.error_kind,
        response_body: attempt.response_body.as_deref(),
    };
    let mut change = on_attempt(&mut health, &summary, now, policy);
    // 410 Gone disables the webhook as failing for too long does. Only the attempt that
    // actually disables it tells its owners: another attempt in flight at the time, or a
    // webhook someone disabled already, must not send a second "disabled" mail.
    change.alerts.retain(|kind| *kind != AlertKind::Disabled);
    let disabled = (gone || change.disable) && disable_webhook(connection, webhook, now)?;
    if disabled {
        // One e-mail says it all: no "failing" mail beside the "disabled" one.
        change.alerts.clear();
        change.alerts.push(AlertKind::Disabled);
    }
    save_health(connection, webhook, &health)?;
    let mut queued = 0;
    for kind in change.alerts {
        queued += queue(connection, webhook, kind, &health, now)?;
    }
    Ok((queued, disabled))
}

/// Disables the webhook if it is still enabled, cancelling its pending deliveries;
/// returns whether it did. `update_time` moves strictly forward, as a PATCH moves it.
fn disable_webhook(connection: &Connection, webhook: &WebhookId, now: Timestamp) -> Result<bool, StoreError> {
    let disabled = connection
        .prepare_cached(
            "UPDATE webhooks SET enabled = 0, update_time = MAX(update_time + 1000, ?) WHERE id = ? AND enabled = 1",
        )?
        .execute(params![now.as_micros(), webhook.as_str()])?;
    if disabled == 0 {
        return Ok(false);
    }
    cancel_pending(connection, webhook, now)?;
    Ok(true)
}

fn load_health(connection: &Connection, webhook: &WebhookId) -> Result<WebhookHealth, StoreError> {
    let mut select = connection.prepare_cached(
        "SELECT consecutive_failures, failing_since, failed_deliveries, last_status_code, last_error_kind,
             last_response_body, last_failing_alert, alerted
         FROM webhook_health WHERE webhook_id = ?",
    )?;
    let mut rows = select.query([webhook.as_str()])?;
    let Some(row) = rows.next()? else {
        return Ok(WebhookHealth::default());
    };
    let kind: Option<String> = row.get("last_error_kind")?;
    Ok(WebhookHealth {
        consecutive_failures: u32::try_from(row.get::<_, i64>("consecutive_failures")?).unwrap_or(u32::MAX),
        failing_since: row.get::<_, Option<i64>>("failing_since")?.map(Timestamp::from_micros),
        failed_deliveries: u32::try_from(row.get::<_, i64>("failed_deliveries")?).unwrap_or(u32::MAX),
        last_status_code: row
            .get::<_, Option<i64>>("last_status_code")?
            .and_then(|c| u16::try_from(c).ok()),
        last_error_kind: kind.as_deref().and_then(ErrorKind::parse),
        last_response_body: row.get("last_response_body")?,
        last_failing_alert: row
            .get::<_, Option<i64>>("last_failing_alert")?
            .map(Timestamp::from_micros),
        alerted: row.get("alerted")?,
    })
}

fn save_health(connection: &Connection, webhook: &WebhookId, health: &WebhookHealth) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO webhook_health (webhook_id, consecutive_failures, failing_since, failed_deliveries,
                 last_status_code, last_error_kind, last_response_body, last_failing_alert, alerted)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (webhook_id) DO UPDATE SET
                 consecutive_failures = excluded.consecutive_failures, failing_since = excluded.failing_since,
                 failed_deliveries = excluded.failed_deliveries, last_status_code = excluded.last_status_code,
                 last_error_kind = excluded.last_error_kind, last_response_body = excluded.last_response_body,
                 last_failing_alert = excluded.last_failing_alert, alerted = excluded.alerted",
        )?
        .execute(params![
            webhook.as_str(),
            i64::from(health.consecutive_failures),
            health.failing_since.map(Timestamp::as_micros),
            i64::from(health.failed_deliveries),
            health.last_status_code.map(i64::from),
            health.last_error_kind.map(ErrorKind::as_str),
            health.last_response_body.as_deref(),
            health.last_failing_alert.map(Timestamp::as_micros),
            health.alerted,
        ])?;
    Ok(())
}

/// Forgets a webhook's failures (it was re-enabled).
pub(super) fn reset_health(connection: &Connection, webhook: &WebhookId) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM webhook_health WHERE webhook_id = ?")?
        .execute([webhook.as_str()])?;
    Ok(())
}

/// Queues an alert for the webhook's current `alertEmails`; none queued without them.
fn queue(
    connection: &Connection,
    webhook: &WebhookId,
    kind: AlertKind,
    health: &WebhookHealth,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let found = connection
        .prepare_cached("SELECT space_id, name, url, alert_emails FROM webhooks WHERE id = ?")?
        .query_row([webhook.as_str()], |row| {
            Ok((
                row.get::<_, String>("space_id")?,
                row.get::<_, String>("name")?,
                row.get::<_, String>("url")?,
                row.get::<_, String>("alert_emails")?,
            ))
        })
        .optional()?;
    let Some((space, name, url, emails)) = found else {
        return Ok(0);
    };
    let recipients: Vec<String> = serde_json::from_str(&emails).map_err(|e| corrupt("alert_emails", &e.to_string()))?;
    if recipients.is_empty() {
        tracing::info!(webhook = %webhook, kind = kind.as_str(), "alert raised; the webhook has no alertEmails");
        return Ok(0);
    }
    let message = render(
        kind,
        &AlertSubject {
            id: webhook.as_str(),
            name: &name,
            url: &url,
        },
        health,
    );
    connection
        .prepare_cached(
            "INSERT INTO alerts (id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status,
                 attempts, next_attempt_time, create_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        )?
        .execute(params![
            AlertId::generate().as_str(),
            space,
            webhook.as_str(),
            kind.as_str(),
            serde_json::to_string(&recipients).expect("strings serialise"),
            message.subject,
            message.text,
            message.html,
            now.as_micros(),
            now.as_micros(),
        ])?;
    Ok(1)
}

fn decode_alert(row: &impl Columns) -> Result<Alert, StoreError> {
    let (id, space, webhook, kind, status) = (
        row.text("id")?,
        row.text("space_id")?,
        row.text("webhook_id")?,
        row.text("kind")?,
        row.text("status")?,
    );
    Ok(Alert {
        id: AlertId::parse(&id).ok_or_else(|| corrupt("alert id", &id))?,
        space_id: SpaceId::parse(&space).ok_or_else(|| corrupt("space id", &space))?,
        webhook_id: WebhookId::parse(&webhook).ok_or_else(|| corrupt("webhook id", &webhook))?,
        kind: AlertKind::parse(&kind).ok_or_else(|| corrupt("alert kind", &kind))?,
        recipients: json_column(row, "recipients")?,
        message: AlertMessage {
            subject: row.text("subject")?,
            text: row.text("text_body")?,
            html: row.text("html_body")?,
        },
        status: AlertStatus::parse(&status).ok_or_else(|| corrupt("alert status", &status))?,
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
        next_attempt_time: row.opt_int("next_attempt_time")?.map(Timestamp::from_micros),
        last_error: row.opt_text("last_error")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        sent_time: row.opt_int("sent_time")?.map(Timestamp::from_micros),
    })
}

impl SqliteStore {
    pub(super) async fn claim_alerts_impl(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        self.writer
            .write(move |connection| {
                let mut claim = connection.prepare_cached(&format!(
                    "UPDATE alerts SET lease_until = ?
                     WHERE seq IN (
                         SELECT seq FROM alerts
                         WHERE status = 'pending' AND next_attempt_time <= ?
                           AND (lease_until IS NULL OR lease_until < ?)
                         ORDER BY next_attempt_time LIMIT ?
                     )
                     RETURNING {ALERT_COLUMNS}"
                ))?;
                let mut rows = claim.query(params![
                    lease_until.as_micros(),
                    now.as_micros(),
                    now.as_micros(),
                    i64::from(limit)
                ])?;
                let mut alerts = Vec::new();
                while let Some(row) = rows.next()? {
                    alerts.push(decode_alert(row)?);
                }
                Ok(alerts)
            })
            .await
    }

    pub(super) async fn finish_alert_impl(
        &self,
        id: &AlertId,
        outcome: &AlertOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (id, outcome) = (id.clone(), outcome.clone());
        self.writer
            .write(move |connection| {
                let (status, next, sent, error) = match &outcome {
                    AlertOutcome::Sent => (AlertStatus::Sent, None, Some(now.as_micros()), None),
                    AlertOutcome::Skipped => (AlertStatus::Skipped, None, None, None),
                    AlertOutcome::Retry { at, error } => {
                        (AlertStatus::Pending, Some(at.as_micros()), None, Some(error.as_str()))
                    }
                };
                connection.execute(
                    "UPDATE alerts SET status = ?, attempts = attempts + 1, next_attempt_time = ?, sent_time = ?,
                         last_error = COALESCE(?, last_error), lease_until = NULL
                     WHERE id = ?",
                    params![status.as_str(), next, sent, error, id.as_str()],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn list_alerts_impl(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE webhook_id = ? AND space_id = ? AND seq < ?
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(webhook.as_str())
        .bind(space.as_str())
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
        .await?;
        page(rows, limit, decode_alert)
    }
}
