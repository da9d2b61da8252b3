//! Webhook health and alerts in PostgreSQL: the health rules of `hookrelay_core::alert`
//! applied in the attempt's transaction, as `sqlite/alerts.rs` applies them, and the
//! alert queue that every node's alerter drains.
//!
//! Health is a read-modify-write. The caller holds the webhook's row lock while it runs
//! (see `record_attempts_once`), so two nodes recording attempts of one webhook apply
//! them one after the other instead of one losing the other's failures.

use std::sync::LazyLock;

use hookrelay_core::alert::{
    on_attempt, render, Alert, AlertKind, AlertMessage, AlertPolicy, AlertStatus, AlertSubject, AttemptSummary,
    WebhookHealth,
};
use hookrelay_core::delivery::{ErrorKind, NextStep};
use hookrelay_core::{AlertId, SpaceId, Timestamp, WebhookId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::delivery::cancel_pending;
use super::PostgresStore;
use crate::rows::{corrupt, json_column, page};
use crate::{AlertOutcome, AttemptResult, Page, StoreError};

const ALERT_COLUMNS: &str = "seq, id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status, \
     attempts, next_attempt_time, last_error, create_time, sent_time";

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

/// Applies one recorded attempt to its webhook's health; returns the alerts queued.
/// The caller holds the webhook's row lock.
pub(super) async fn apply_health(
    tx: &mut Transaction<'_, Postgres>,
    result: &AttemptResult,
    policy: &AlertPolicy,
) -> Result<u32, StoreError> {
    let webhook = &result.webhook_id;
    let now = result.finish_time;
    let gone = matches!(result.next, NextStep::Failed { disable_webhook: true });
    if matches!(result.next, NextStep::Succeeded) {
        // The common case: no failure record, nothing to do but make sure of it.
        let alerted: Option<bool> =
            sqlx::query_scalar("DELETE FROM webhook_health WHERE webhook_id = $1 RETURNING alerted")
                .bind(webhook.as_str())
                .fetch_optional(&mut **tx)
                .await?;
        return match alerted {
            Some(true) => queue(tx, webhook, AlertKind::Recovered, &WebhookHealth::default(), now).await,
            _ => Ok(0),
        };
    }
    let mut health = load_health(tx, webhook).await?;
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
    if (gone || change.disable) && disable_webhook(tx, webhook, now).await? {
        // One e-mail says it all: no "failing" mail beside the "disabled" one.
        change.alerts.clear();
        change.alerts.push(AlertKind::Disabled);
    }
    save_health(tx, webhook, &health).await?;
    let mut queued = 0;
    for kind in change.alerts {
        queued += queue(tx, webhook, kind, &health, now).await?;
    }
    Ok(queued)
}

/// Health after attempts that all succeeded, for webhooks with no failure among the
/// attempts being recorded: the same as [`apply_health`] on each success in turn (the
/// first clears the webhook's failure record and, if its owners were told it was
/// failing, tells them it recovered; the rest find nothing), in one statement.
/// `successes` pairs each webhook with its first success's finish time.
pub(super) async fn recover_all(
    tx: &mut Transaction<'_, Postgres>,
    successes: &[(&WebhookId, Timestamp)],
) -> Result<u32, StoreError> {
    let ids: Vec<&str> = successes.iter().map(|(webhook, _)| webhook.as_str()).collect();
    let alerted: Vec<String> = sqlx::query_as::<_, (String, bool)>(
        "DELETE FROM webhook_health WHERE webhook_id = ANY($1) RETURNING webhook_id, alerted",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .filter_map(|(id, alerted)| alerted.then_some(id))
    .collect();
    let mut queued = 0;
    for (webhook, now) in successes {
        if alerted.iter().any(|id| id == webhook.as_str()) {
            queued += queue(tx, webhook, AlertKind::Recovered, &WebhookHealth::default(), *now).await?;
        }
    }
    Ok(queued)
}

/// Disables the webhook if it is still enabled, cancelling its pending deliveries;
/// returns whether it did. `update_time` moves strictly forward, as a PATCH moves it.
async fn disable_webhook(
    tx: &mut Transaction<'_, Postgres>,
    webhook: &WebhookId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let disabled = sqlx::query(
        "UPDATE webhooks SET enabled = FALSE, update_time = GREATEST(update_time + 1000, $1)
         WHERE id = $2 AND enabled",
    )
    .bind(now.as_micros())
    .bind(webhook.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if disabled == 0 {
        return Ok(false);
    }
    cancel_pending(tx, webhook, now).await?;
    Ok(true)
}

/// UTF-8 stored as BYTEA (see the migration) back to text.
fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| corrupt(what, "non-UTF-8"))
}

async fn load_health(tx: &mut Transaction<'_, Postgres>, webhook: &WebhookId) -> Result<WebhookHealth, StoreError> {
    let Some(row) = sqlx::query("SELECT * FROM webhook_health WHERE webhook_id = $1")
        .bind(webhook.as_str())
        .fetch_optional(&mut **tx)
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
        last_response_body: row
            .try_get::<Option<Vec<u8>>, _>("last_response_body")?
            .map(|body| utf8(body, "last response body"))
            .transpose()?,
        last_failing_alert: row
            .try_get::<Option<i64>, _>("last_failing_alert")?
            .map(Timestamp::from_micros),
        alerted: row.try_get("alerted")?,
    })
}

async fn save_health(
    tx: &mut Transaction<'_, Postgres>,
    webhook: &WebhookId,
    health: &WebhookHealth,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_health (webhook_id, consecutive_failures, failing_since, failed_deliveries,
             last_status_code, last_error_kind, last_response_body, last_failing_alert, alerted)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
    .bind(health.last_response_body.as_deref().map(str::as_bytes))
    .bind(health.last_failing_alert.map(Timestamp::as_micros))
    .bind(health.alerted)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets a webhook's failures (it was re-enabled).
pub(super) async fn reset_health(tx: &mut Transaction<'_, Postgres>, webhook: &WebhookId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webhook_health WHERE webhook_id = $1")
        .bind(webhook.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Queues an alert for the webhook's current `alertEmails`; none queued without them.
async fn queue(
    tx: &mut Transaction<'_, Postgres>,
    webhook: &WebhookId,
    kind: AlertKind,
    health: &WebhookHealth,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let Some(row) = sqlx::query("SELECT space_id, name, url, alert_emails FROM webhooks WHERE id = $1")
        .bind(webhook.as_str())
        .fetch_optional(&mut **tx)
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9)",
    )
    .bind(AlertId::generate().as_str())
    .bind(row.try_get::<String, _>("space_id")?)
    .bind(webhook.as_str())
    .bind(kind.as_str())
    .bind(serde_json::to_string(&recipients).expect("strings serialise"))
    .bind(&message.subject)
    .bind(message.text.as_bytes())
    .bind(message.html.as_bytes())
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(1)
}

fn decode_alert(row: &PgRow) -> Result<Alert, StoreError> {
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
            text: utf8(row.try_get("text_body")?, "alert text body")?,
            html: utf8(row.try_get("html_body")?, "alert HTML body")?,
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

impl PostgresStore {
    pub(super) async fn claim_alerts_impl(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(&CLAIM)
            .bind(now.as_micros())
            .bind(lease_until.as_micros())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_alert).collect()
    }

    pub(super) async fn finish_alert_impl(
        &self,
        id: &AlertId,
        outcome: &AlertOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (status, next, sent, error) = match outcome {
            AlertOutcome::Sent => (AlertStatus::Sent, None, Some(now.as_micros()), None),
            AlertOutcome::Skipped => (AlertStatus::Skipped, None, None, None),
            // TEXT refuses NUL; a mail server's answer quoted in the error might hold one.
            AlertOutcome::Retry { at, error } => (
                AlertStatus::Pending,
                Some(at.as_micros()),
                None,
                Some(error.replace('\0', "\u{fffd}")),
            ),
        };
        sqlx::query(
            "UPDATE alerts SET status = $1, attempts = attempts + 1, next_attempt_time = $2, sent_time = $3,
                 last_error = COALESCE($4, last_error), lease_until = NULL
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(next)
        .bind(sent)
        .bind(error)
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn list_alerts_impl(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE webhook_id = $1 AND space_id = $2 AND seq < $3
             ORDER BY seq DESC LIMIT $4"
        ))
        .bind(webhook.as_str())
        .bind(space.as_str())
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        page(rows, limit, decode_alert)
    }
}
