//! Webhook health in SQLite: the rules of `hookrelay_core::record` and `alert` applied
//! in the transaction that records an attempt, and the alerts they queue.

use hookrelay_core::alert::{AlertKind, AlertPolicy, WebhookHealth};
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::record::{on_success, AttemptResult};
use hookrelay_core::{Timestamp, WebhookId};
use rusqlite::{params, Connection, OptionalExtension};

use super::deliveries::cancel_pending;
use crate::rows::{decode_health, new_alert, HEALTH_COLUMNS};
use crate::StoreError;

/// Clears the failure record of a webhook whose attempt succeeded, and queues a
/// "recovered" alert if its owners were told it was failing; returns the alerts queued.
pub(super) fn clear_health(connection: &Connection, webhook: &WebhookId, now: Timestamp) -> Result<u32, StoreError> {
    let cleared: Option<bool> = connection
        .prepare_cached("DELETE FROM webhook_health WHERE webhook_id = ? RETURNING alerted")?
        .query_row([webhook.as_str()], |row| row.get(0))
        .optional()?;
    match on_success(cleared) {
        Some(kind) => queue(connection, webhook, kind, &WebhookHealth::default(), now),
        None => Ok(0),
    }
}

/// Applies one recorded failed attempt to its webhook's health; returns the alerts
/// queued, and whether it disabled the webhook.
pub(super) fn apply_failure(
    connection: &Connection,
    result: &AttemptResult,
    policy: &AlertPolicy,
) -> Result<(u32, bool), StoreError> {
    let webhook = &result.webhook_id;
    let mut health = load_health(connection, webhook)?;
    let effects = result.apply_failure(&mut health, policy);
    let disabled = effects.disable && disable_webhook(connection, webhook, result.finish_time)?;
    save_health(connection, webhook, &health)?;
    let mut queued = 0;
    for kind in effects.alerts(disabled) {
        queued += queue(connection, webhook, kind, &health, result.finish_time)?;
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
    crate::activity::webhook_auto_disabled();
    Ok(true)
}

fn load_health(connection: &Connection, webhook: &WebhookId) -> Result<WebhookHealth, StoreError> {
    let mut select = connection.prepare_cached(&format!(
        "SELECT {HEALTH_COLUMNS} FROM webhook_health WHERE webhook_id = ?"
    ))?;
    let mut rows = select.query([webhook.as_str()])?;
    match rows.next()? {
        Some(row) => decode_health(row),
        None => Ok(WebhookHealth::default()),
    }
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
    let mut select =
        connection.prepare_cached("SELECT space_id, name, url, alert_emails FROM webhooks WHERE id = ?")?;
    let mut rows = select.query([webhook.as_str()])?;
    let Some(alert) = rows
        .next()?
        .map(|row| new_alert(row, webhook, kind, health))
        .transpose()?
        .flatten()
    else {
        return Ok(0);
    };
    connection
        .prepare_cached(
            "INSERT INTO alerts (id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status,
                 attempts, next_attempt_time, create_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?9, ?9)",
        )?
        .execute(params![
            alert.id.as_str(),
            alert.space_id,
            webhook.as_str(),
            alert.kind.as_str(),
            alert.recipients,
            alert.message.subject,
            alert.message.text,
            alert.message.html,
            now.as_micros(),
        ])?;
    Ok(1)
}
