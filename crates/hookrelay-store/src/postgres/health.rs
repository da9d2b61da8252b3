//! Webhook health in PostgreSQL: the rules of `hookrelay_core::record` and `alert`
//! applied in the transaction that records an attempt, and the alerts they queue.
//!
//! Health is a read-modify-write. The caller holds the webhook's row lock while it runs
//! (see `record.rs`), so two nodes recording attempts of one webhook apply them one after
//! the other instead of one losing the other's failures.

use hookrelay_core::alert::{AlertKind, AlertPolicy, WebhookHealth};
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::record::{on_success, AttemptResult};
use hookrelay_core::{Timestamp, WebhookId};
use sqlx::{Postgres, Transaction};

use super::deliveries::cancel_pending;
use crate::rows::{decode_health, new_alert, HEALTH_COLUMNS};
use crate::StoreError;

/// Clears the failure record of a webhook whose attempt succeeded, and queues a
/// "recovered" alert if its owners were told it was failing; returns the alerts queued.
pub(super) async fn clear_health(
    tx: &mut Transaction<'_, Postgres>,
    webhook: &WebhookId,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let cleared: Option<bool> =
        sqlx::query_scalar("DELETE FROM webhook_health WHERE webhook_id = $1 RETURNING alerted")
            .bind(webhook.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    match on_success(cleared) {
        Some(kind) => queue(tx, webhook, kind, &WebhookHealth::default(), now).await,
        None => Ok(0),
    }
}

/// [`clear_health`] for several webhooks at once (each with its first success's finish
/// time), in one statement.
pub(super) async fn clear_health_of_all(
    tx: &mut Transaction<'_, Postgres>,
    successes: &[(&WebhookId, Timestamp)],
) -> Result<u32, StoreError> {
    let ids: Vec<&str> = successes.iter().map(|(webhook, _)| webhook.as_str()).collect();
    let cleared: Vec<(String, bool)> =
        sqlx::query_as("DELETE FROM webhook_health WHERE webhook_id = ANY($1) RETURNING webhook_id, alerted")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    let mut queued = 0;
    for (webhook, now) in successes {
        let found = cleared
            .iter()
            .find(|(id, _)| id == webhook.as_str())
            .map(|(_, alerted)| *alerted);
        if let Some(kind) = on_success(found) {
            queued += queue(tx, webhook, kind, &WebhookHealth::default(), *now).await?;
        }
    }
    Ok(queued)
}

/// Applies one recorded failed attempt to its webhook's health; returns the alerts queued.
pub(super) async fn apply_failure(
    tx: &mut Transaction<'_, Postgres>,
    result: &AttemptResult,
    policy: &AlertPolicy,
) -> Result<u32, StoreError> {
    let webhook = &result.webhook_id;
    let mut health = load_health(tx, webhook).await?;
    let effects = result.apply_failure(&mut health, policy);
    let disabled = effects.disable && disable_webhook(tx, webhook, result.finish_time).await?;
    save_health(tx, webhook, &health).await?;
    let mut queued = 0;
    for kind in effects.alerts(disabled) {
        queued += queue(tx, webhook, kind, &health, result.finish_time).await?;
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
    crate::activity::webhook_auto_disabled();
    Ok(true)
}

async fn load_health(tx: &mut Transaction<'_, Postgres>, webhook: &WebhookId) -> Result<WebhookHealth, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {HEALTH_COLUMNS} FROM webhook_health WHERE webhook_id = $1"
    ))
    .bind(webhook.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map_or_else(|| Ok(WebhookHealth::default()), decode_health)
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
    let row = sqlx::query("SELECT space_id, name, url, alert_emails FROM webhooks WHERE id = $1")
        .bind(webhook.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(alert) = row
        .map(|row| new_alert(&row, webhook, kind, health))
        .transpose()?
        .flatten()
    else {
        return Ok(0);
    };
    sqlx::query(
        "INSERT INTO alerts (id, space_id, webhook_id, kind, recipients, subject, text_body, html_body, status,
             attempts, next_attempt_time, create_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9)",
    )
    .bind(alert.id.as_str())
    .bind(&alert.space_id)
    .bind(webhook.as_str())
    .bind(alert.kind.as_str())
    .bind(&alert.recipients)
    .bind(&alert.message.subject)
    .bind(alert.message.text.as_bytes())
    .bind(alert.message.html.as_bytes())
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(1)
}
