//! Webhooks in PostgreSQL. Nodes keep no copy: every read goes to the database.

use async_trait::async_trait;
use hookrelay_core::quota::check_webhooks;
use hookrelay_core::webhook_change::update_effects;
use hookrelay_core::webhook_settings::{SettingsPatch, WebhookSettings};
use hookrelay_core::{SpaceId, Timestamp, Webhook, WebhookId, WebhookPatch};

use super::deliveries::cancel_pending;
use super::health::reset_health;
use super::{save_idempotency, PostgresStore};
use crate::rows::{
    decode_webhook, seal_headers, seal_idempotency, seal_webhook, settings_column, to_json, WEBHOOK_COLUMNS,
};
use crate::{IdempotencyRecord, StoreError, WebhookStore};

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn create_webhook_within(
        &self,
        webhook: &Webhook,
        idempotency: Option<&IdempotencyRecord>,
        max_webhooks: Option<u32>,
    ) -> Result<(), StoreError> {
        let sealed = seal_webhook(&self.cipher, webhook);
        let mut tx = self.pool.begin().await?;
        if let Some(record) = idempotency {
            save_idempotency(&mut tx, &seal_idempotency(&self.cipher, record.clone())).await?;
        }
        if let Some(limit) = max_webhooks {
            // The space's row, locked, makes creates in one space (from any node) count one
            // after the other; the count is a statement of its own, so that its snapshot,
            // taken once the lock is held, sees the webhook a create before it committed.
            sqlx::query("SELECT 1 FROM spaces WHERE id = $1 FOR UPDATE")
                .bind(webhook.space_id.as_str())
                .execute(&mut *tx)
                .await?;
            let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE space_id = $1")
                .bind(webhook.space_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            check_webhooks(u64::try_from(existing).unwrap_or(0), limit)?;
        }
        sqlx::query(
            "INSERT INTO webhooks (id, space_id, name, url, enabled, events, api_release, verification_type,
                 secret_sealed, public_key, headers_sealed, alert_emails, metadata, create_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(webhook.id.as_str())
        .bind(webhook.space_id.as_str())
        .bind(&webhook.name)
        .bind(&webhook.url)
        .bind(webhook.enabled)
        .bind(to_json(&webhook.events))
        .bind(webhook.api_release.as_str())
        .bind(webhook.verification.type_name())
        .bind(sealed.secret)
        .bind(sealed.public_key)
        .bind(sealed.headers)
        .bind(to_json(&webhook.alert_emails))
        .bind(to_json(&webhook.metadata))
        .bind(webhook.create_time.as_micros())
        .bind(webhook.update_time.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM webhooks WHERE id = $1 AND space_id = $2",
            *WEBHOOK_COLUMNS
        ))
        .bind(id.as_str())
        .bind(space.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| decode_webhook(&self.cipher, &row)).transpose()
    }

    async fn update_webhook(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &WebhookPatch,
        now: Timestamp,
    ) -> Result<Option<Webhook>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: concurrent patches (from any node) apply one after the other
        // instead of one losing the other's fields.
        let row = sqlx::query(&format!(
            "SELECT {} FROM webhooks WHERE id = $1 AND space_id = $2 FOR UPDATE",
            *WEBHOOK_COLUMNS
        ))
        .bind(id.as_str())
        .bind(space.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut webhook = decode_webhook(&self.cipher, &row)?;
        let was_enabled = webhook.enabled;
        patch.apply(&mut webhook, now);
        let effects = update_effects(was_enabled, webhook.enabled);
        if effects.reset_health {
            reset_health(&mut tx, &webhook.id).await?;
        }
        sqlx::query(
            "UPDATE webhooks SET name = $1, url = $2, enabled = $3, events = $4::jsonb, api_release = $5,
                 headers_sealed = $6, alert_emails = $7, metadata = $8, update_time = $9
             WHERE id = $10",
        )
        .bind(&webhook.name)
        .bind(&webhook.url)
        .bind(webhook.enabled)
        .bind(to_json(&webhook.events))
        .bind(webhook.api_release.as_str())
        .bind(seal_headers(&self.cipher, &webhook))
        .bind(to_json(&webhook.alert_emails))
        .bind(to_json(&webhook.metadata))
        .bind(webhook.update_time.as_micros())
        .bind(webhook.id.as_str())
        .execute(&mut *tx)
        .await?;
        if effects.cancel_pending {
            cancel_pending(&mut tx, &webhook.id, now).await?;
        }
        tx.commit().await?;
        Ok(Some(webhook))
    }

    async fn update_webhook_settings(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &SettingsPatch,
    ) -> Result<Option<WebhookSettings>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: two partial updates from any nodes apply one after the other.
        let row = sqlx::query("SELECT settings FROM webhooks WHERE id = $1 AND space_id = $2 FOR UPDATE")
            .bind(id.as_str())
            .bind(space.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut settings = settings_column(&row)?;
        patch.apply(&mut settings);
        sqlx::query("UPDATE webhooks SET settings = $1 WHERE id = $2")
            .bind(settings.to_json().to_string())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(settings))
    }

    async fn delete_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND space_id = $2")
            .bind(id.as_str())
            .bind(space.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted > 0 {
            cancel_pending(&mut tx, id, Timestamp::now()).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }
}
