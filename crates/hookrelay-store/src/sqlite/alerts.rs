//! Webhook health and alerts in SQLite: the health rules of `hookrelay_core::alert`
//! applied in the attempt's transaction, and the alert queue the alerter drains.

use hookrelay_core::alert::{
    on_attempt, render, Alert, AlertKind, AlertMessage, AlertPolicy, AlertStatus, AlertSubject, AttemptSummary,
    WebhookHealth,
};
use hookrelay_core::delivery::{ErrorKind, NextStep};
use hookrelay_core::{AlertId, SpaceId, Timestamp, WebhookId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::delivery::cancel_pending;
use super::SqliteStore;
use crate::rows::{corrupt, json_column, page};
use crate::{AlertOutcome, AttemptResult, Page, StoreError};

const ALERT_COLUMNS: &str = "seq, id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status, \
     attempts, next_attempt_time, last_error, create_time, sent_time";

/// Clears the failure records of webhooks whose attempts succeeded, and queues a
/// "recovered" alert for each that had been alerted about; returns the alerts queued.
pub(super) async fn clear_health(
    connection: &mut SqliteConnection,
    webhooks: &[&str],
    now: Timestamp,
) -> Result<u32, StoreError> {
    if webhooks.is_empty() {
        return Ok(0);
    }
    let ids = serde_json::to_string(webhooks).expect("strings serialise");
    let cleared: Vec<(String, bool)> = sqlx::query_as(
        "DELETE FROM webhook_health WHERE webhook_id IN (SELECT value FROM json_each(?)) RETURNING webhook_id, alerted",
    )
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut queued = 0;
    // Records of webhooks never alerted about go without a word.
    for (webhook, _) in cleared.into_iter().filter(|(_, alerted)| *alerted) {
        let webhook = WebhookId::parse(&webhook).ok_or_else(|| corrupt("webhook id", &webhook))?;
        queued += queue(
            connection,
            &webhook,
            AlertKind::Recovered,
            &WebhookHealth::default(),
            now,
        )
        .await?;
    }
    Ok(queued)
}

/// Applies one recorded failed attempt to its webhook's health; returns the alerts
/// queued.
pub(super) async fn apply_health(
    connection: &mut SqliteConnection,
    result: &AttemptResult,
    policy: &AlertPolicy,
) -> Result<u32, StoreError> {
    let webhook = &result.webhook_id;
    let now = result.finish_time;
    let gone = matches!(result.next, NextStep::Failed { disable_webhook: true });
    debug_assert!(
        !matches!(result.next, NextStep::Succeeded),
        "successes go to clear_health"
    );
    let mut health = load_health(connection, webhook).await?;
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
    if (gone || change.disable) && disable_webhook(connection, webhook, now).await? {
        // One e-mail says it all: no "failing" mail beside the "disabled" one.
        change.alerts.clear();
        change.alerts.push(AlertKind::Disabled);
    }
    save_health(connection, webhook, &health).await?;
    let mut queued = 0;
    for kind in change.alerts {
        queued += queue(connection, webhook, kind, &health, now).await?;
    }
    Ok(queued)
}

/// Disables the webhook if it is still enabled, cancelling its pending deliveries;
/// returns whether it did. `update_time` moves strictly forward, as a PATCH moves it.
async fn disable_webhook(
    connection: &mut SqliteConnection,
    webhook: &WebhookId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let disabled = sqlx::query(
        "UPDATE webhooks SET enabled = 0, update_time = MAX(update_time + 1000, ?) WHERE id = ? AND enabled = 1",
    )
    .bind(now.as_micros())
    .bind(webhook.as_str())
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if disabled == 0 {
        return Ok(false);
    }
    cancel_pending(connection, webhook, now).await?;
    Ok(true)
}

async fn load_health(connection: &mut SqliteConnection, webhook: &WebhookId) -> Result<WebhookHealth, StoreError> {
    let Some(row) = sqlx::query("SELECT * FROM webhook_health WHERE webhook_id = ?")
        .bind(webhook.as_str())
        .fetch_optional(&mut *connection)
        .await?
    else {
        return Ok(WebhookHealth::default());
    };
    let kind: Option<String> = row.try_get("last_error_kind")?;
    Ok(WebhookHealth {
        consecutive_failures: u32::try_from(row.try_get::<i64, _>("consecutive_failures")?).unwrap_or(u32::MAX),
        failing_since: row
            .try_get::<Option<i64>, _>("failing_since")?
            .map(Timestamp::from_micros),
        failed_deliveries: u32::try_from(row.try_get::<i64, _>("failed_deliveries")?).unwrap_or(u32::MAX),
        last_status_code: row
            .try_get::<Option<i64>, _>("last_status_code")?
            .and_then(|c| u16::try_from(c).ok()),
        last_error_kind: kind.as_deref().and_then(ErrorKind::parse),
        last_response_body: row.try_get("last_response_body")?,
        last_failing_alert: row
            .try_get::<Option<i64>, _>("last_failing_alert")?
            .map(Timestamp::from_micros),
        alerted: row.try_get("alerted")?,
    })
}

async fn save_health(
    connection: &mut SqliteConnection,
    webhook: &WebhookId,
    health: &WebhookHealth,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_health (webhook_id, consecutive_failures, failing_since, failed_deliveries,
             last_status_code, last_error_kind, last_response_body, last_failing_alert, alerted)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (webhook_id) DO UPDATE SET
             consecutive_failures = excluded.consecutive_failures, failing_since = excluded.failing_since,
             failed_deliveries = excluded.failed_deliveries, last_status_code = excluded.last_status_code,
             last_error_kind = excluded.last_error_kind, last_response_body = excluded.last_response_body,
             last_failing_alert = excluded.last_failing_alert, alerted = excluded.alerted",
    )
    .bind(webhook.as_str())
    .bind(i64::from(health.consecutive_failures))
    .bind(health.failing_since.map(Timestamp::as_micros))
    .bind(i64::from(health.failed_deliveries))
    .bind(health.last_status_code.map(i64::from))
    .bind(health.last_error_kind.map(ErrorKind::as_str))
    .bind(health.last_response_body.as_deref())
    .bind(health.last_failing_alert.map(Timestamp::as_micros))
    .bind(health.alerted)
    .execute(connection)
    .await?;
    Ok(())
}

/// Forgets a webhook's failures (it was re-enabled).
pub(super) async fn reset_health(connection: &mut SqliteConnection, webhook: &WebhookId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webhook_health WHERE webhook_id = ?")
        .bind(webhook.as_str())
        .execute(connection)
        .await?;
    Ok(())
}

/// Queues an alert for the webhook's current `alertEmails`; none queued without them.
async fn queue(
    connection: &mut SqliteConnection,
    webhook: &WebhookId,
    kind: AlertKind,
    health: &WebhookHealth,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let Some(row) = sqlx::query("SELECT space_id, name, url, alert_emails FROM webhooks WHERE id = ?")
        .bind(webhook.as_str())
        .fetch_optional(&mut *connection)
        .await?
    else {
        return Ok(0);
    };
    let recipients: Vec<String> = json_column(&row, "alert_emails")?;
    let (name, url): (String, String) = (row.try_get("name")?, row.try_get("url")?);
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
    sqlx::query(
        "INSERT INTO alerts (id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status,
             attempts, next_attempt_time, create_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
    )
    .bind(AlertId::generate().as_str())
    .bind(row.try_get::<String, _>("space_id")?)
    .bind(webhook.as_str())
    .bind(kind.as_str())
    .bind(serde_json::to_string(&recipients).expect("strings serialise"))
    .bind(&message.subject)
    .bind(&message.text)
    .bind(&message.html)
    .bind(now.as_micros())
    .bind(now.as_micros())
    .execute(connection)
    .await?;
    Ok(1)
}

fn decode_alert(row: &SqliteRow) -> Result<Alert, StoreError> {
    let text = |column: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(column)?) };
    let (id, space, webhook, kind, status) = (
        text("id")?,
        text("space_id")?,
        text("webhook_id")?,
        text("kind")?,
        text("status")?,
    );
    Ok(Alert {
        id: AlertId::parse(&id).ok_or_else(|| corrupt("alert id", &id))?,
        space_id: SpaceId::parse(&space).ok_or_else(|| corrupt("space id", &space))?,
        webhook_id: WebhookId::parse(&webhook).ok_or_else(|| corrupt("webhook id", &webhook))?,
        kind: AlertKind::parse(&kind).ok_or_else(|| corrupt("alert kind", &kind))?,
        recipients: json_column(row, "recipients")?,
        message: AlertMessage {
            subject: text("subject")?,
            text: text("text_body")?,
            html: text("html_body")?,
        },
        status: AlertStatus::parse(&status).ok_or_else(|| corrupt("alert status", &status))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_time: row
            .try_get::<Option<i64>, _>("next_attempt_time")?
            .map(Timestamp::from_micros),
        last_error: row.try_get("last_error")?,
        create_time: Timestamp::from_micros(row.try_get("create_time")?),
        sent_time: row.try_get::<Option<i64>, _>("sent_time")?.map(Timestamp::from_micros),
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
                Box::pin(async move {
                    let rows = sqlx::query(&format!(
                        "UPDATE alerts SET lease_until = ?
                         WHERE seq IN (
                             SELECT seq FROM alerts
                             WHERE status = 'pending' AND next_attempt_time <= ?
                               AND (lease_until IS NULL OR lease_until < ?)
                             ORDER BY next_attempt_time LIMIT ?
                         )
                         RETURNING {ALERT_COLUMNS}"
                    ))
                    .bind(lease_until.as_micros())
                    .bind(now.as_micros())
                    .bind(now.as_micros())
                    .bind(i64::from(limit))
                    .fetch_all(connection)
                    .await?;
                    rows.iter().map(decode_alert).collect()
                })
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
                Box::pin(async move {
                    let (status, next, sent, error) = match &outcome {
                        AlertOutcome::Sent => (AlertStatus::Sent, None, Some(now.as_micros()), None),
                        AlertOutcome::Skipped => (AlertStatus::Skipped, None, None, None),
                        AlertOutcome::Retry { at, error } => {
                            (AlertStatus::Pending, Some(at.as_micros()), None, Some(error.as_str()))
                        }
                    };
                    sqlx::query(
                        "UPDATE alerts SET status = ?, attempts = attempts + 1, next_attempt_time = ?, sent_time = ?,
                             last_error = COALESCE(?, last_error), lease_until = NULL
                         WHERE id = ?",
                    )
                    .bind(status.as_str())
                    .bind(next)
                    .bind(sent)
                    .bind(error)
                    .bind(id.as_str())
                    .execute(connection)
                    .await?;
                    Ok(())
                })
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
