//! Webhooks in SQLite, kept in memory under the epoch every change moves on.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::claim::WebhookAtClaim;
use hookrelay_core::quota::check_webhooks;
use hookrelay_core::webhook_change::update_effects;
use hookrelay_core::webhook_settings::{SettingsPatch, WebhookSettings};
use hookrelay_core::{SpaceId, Timestamp, Webhook, WebhookId, WebhookPatch};
use rusqlite::params;
use sqlx::Row;

use super::idempotency::save_idempotency;
use super::{deliveries::cancel_pending, health::reset_health, SqliteStore};
use crate::rows::{
    decode_webhook, seal_headers, seal_idempotency, seal_webhook, settings_column, to_json, WEBHOOK_COLUMNS,
};
use crate::{IdempotencyRecord, StoreError, WebhookStore};

/// A webhook as read by id: decoded, or why not (with whether it is enabled).
pub(super) enum WebhookRead {
    Found(Arc<Webhook>),
    Unreadable { enabled: bool, error: StoreError },
}

impl WebhookRead {
    /// The webhook's state for a claimed delivery of it.
    pub(super) fn at_claim(read: Option<&Self>) -> Result<WebhookAtClaim, &StoreError> {
        match read {
            None => Ok(WebhookAtClaim::Deleted),
            Some(Self::Found(webhook)) if webhook.enabled => Ok(WebhookAtClaim::Ready),
            Some(Self::Found(_)) | Some(Self::Unreadable { enabled: false, .. }) => Ok(WebhookAtClaim::Disabled),
            Some(Self::Unreadable { error, .. }) => Err(error),
        }
    }
}

impl SqliteStore {
    /// Called after a commit that may have changed a webhook.
    pub(super) fn webhooks_changed(&self) {
        self.cache.changed();
    }

    /// Webhooks by id, from the cache or else read (and cached) in one query.
    pub(super) async fn webhooks_by_id(&self, ids: &[&str]) -> Result<HashMap<String, WebhookRead>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match WebhookId::parse(id).and_then(|id| self.cache.webhook(&id)) {
                Some(webhook) => {
                    found.insert((*id).to_owned(), WebhookRead::Found(webhook));
                }
                None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let epoch = self.cache.epoch();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM webhooks WHERE id IN (SELECT value FROM json_each(?))",
            *WEBHOOK_COLUMNS
        ))
        .bind(super::json_ids(missing))
        .fetch_all(&self.readers)
        .await?;
        let mut read = Vec::with_capacity(rows.len());
        for row in &rows {
            match decode_webhook(&self.cipher, row) {
                Ok(webhook) => read.push(Arc::new(webhook)),
                // One webhook that cannot be read must not hide the others.
                Err(error) => {
                    let enabled = row.try_get("enabled").unwrap_or(true);
                    found.insert(row.try_get("id")?, WebhookRead::Unreadable { enabled, error });
                }
            }
        }
        self.cache.put_webhooks(epoch, read.iter().cloned());
        found.extend(
            read.into_iter()
                .map(|webhook| (webhook.id.as_str().to_owned(), WebhookRead::Found(webhook))),
        );
        Ok(found)
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook_within(
        &self,
        webhook: &Webhook,
        idempotency: Option<&IdempotencyRecord>,
        max_webhooks: Option<u32>,
    ) -> Result<(), StoreError> {
        let sealed = seal_webhook(&self.cipher, webhook);
        let record = idempotency
            .cloned()
            .map(|record| seal_idempotency(&self.cipher, record));
        let webhook = webhook.clone();
        let created = self
            .writer
            .write(move |connection| {
                if let Some(record) = &record {
                    save_idempotency(connection, record)?;
                }
                if let Some(limit) = max_webhooks {
                    // On the one writer: no other create can come between the count and the insert.
                    let existing: i64 = connection
                        .prepare_cached("SELECT COUNT(*) FROM webhooks WHERE space_id = ?")?
                        .query_row([webhook.space_id.as_str()], |row| row.get(0))?;
                    check_webhooks(u64::try_from(existing).unwrap_or(0), limit)?;
                }
                connection.execute(
                    "INSERT INTO webhooks (id, space_id, name, url, enabled, events, api_release,
                         verification_type, secret_sealed, public_key, headers_sealed, alert_emails, metadata,
                         create_time, update_time)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        webhook.id.as_str(),
                        webhook.space_id.as_str(),
                        webhook.name,
                        webhook.url,
                        webhook.enabled,
                        to_json(&webhook.events),
                        webhook.api_release.as_str(),
                        webhook.verification.type_name(),
                        sealed.secret,
                        sealed.public_key,
                        sealed.headers,
                        to_json(&webhook.alert_emails),
                        to_json(&webhook.metadata),
                        webhook.create_time.as_micros(),
                        webhook.update_time.as_micros(),
                    ],
                )?;
                Ok(())
            })
            .await;
        // A new subscriber for its events.
        self.webhooks_changed();
        created
    }

    async fn get_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        let found = self.webhooks_by_id(&[id.as_str()]).await?;
        match found.into_values().next() {
            None => Ok(None),
            Some(WebhookRead::Unreadable { error, .. }) => Err(error),
            Some(WebhookRead::Found(webhook)) => {
                Ok((webhook.space_id == *space).then(|| Arc::unwrap_or_clone(webhook)))
            }
        }
    }

    async fn update_webhook(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &WebhookPatch,
        now: Timestamp,
    ) -> Result<Option<Webhook>, StoreError> {
        let (space, id, patch, cipher) = (space.clone(), id.clone(), patch.clone(), self.cipher.clone());
        let updated = self
            .writer
            .write(move |connection| {
                let found = connection
                    .prepare_cached(&format!(
                        "SELECT {} FROM webhooks WHERE id = ? AND space_id = ?",
                        *WEBHOOK_COLUMNS
                    ))?
                    .query([id.as_str(), space.as_str()])?
                    .next()?
                    .map(|row| decode_webhook(&cipher, row))
                    .transpose()?;
                let Some(mut webhook) = found else {
                    return Ok(None);
                };
                let was_enabled = webhook.enabled;
                patch.apply(&mut webhook, now);
                let effects = update_effects(was_enabled, webhook.enabled);
                if effects.reset_health {
                    reset_health(connection, &webhook.id)?;
                }
                connection.execute(
                    "UPDATE webhooks SET name = ?, url = ?, enabled = ?, events = ?, api_release = ?,
                         headers_sealed = ?, alert_emails = ?, metadata = ?, update_time = ?
                     WHERE id = ?",
                    params![
                        webhook.name,
                        webhook.url,
                        webhook.enabled,
                        to_json(&webhook.events),
                        webhook.api_release.as_str(),
                        seal_headers(&cipher, &webhook),
                        to_json(&webhook.alert_emails),
                        to_json(&webhook.metadata),
                        webhook.update_time.as_micros(),
                        webhook.id.as_str(),
                    ],
                )?;
                if effects.cancel_pending {
                    cancel_pending(connection, &webhook.id, now)?;
                }
                Ok(Some(webhook))
            })
            .await;
        self.webhooks_changed();
        updated
    }

    async fn update_webhook_settings(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &SettingsPatch,
    ) -> Result<Option<WebhookSettings>, StoreError> {
        let (space, id, patch) = (space.clone(), id.clone(), patch.clone());
        let updated = self
            .writer
            .write(move |connection| {
                let found = connection
                    .prepare_cached("SELECT settings FROM webhooks WHERE id = ? AND space_id = ?")?
                    .query([id.as_str(), space.as_str()])?
                    .next()?
                    .map(settings_column)
                    .transpose()?;
                let Some(mut settings) = found else {
                    return Ok(None);
                };
                patch.apply(&mut settings);
                connection.execute(
                    "UPDATE webhooks SET settings = ? WHERE id = ?",
                    params![settings.to_json().to_string(), id.as_str()],
                )?;
                Ok(Some(settings))
            })
            .await;
        // The engine's cached copy of the webhook carries its settings.
        self.webhooks_changed();
        updated
    }

    async fn delete_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<bool, StoreError> {
        let (space, id) = (space.clone(), id.clone());
        let deleted = self
            .writer
            .write(move |connection| {
                let deleted = connection.execute(
                    "DELETE FROM webhooks WHERE id = ? AND space_id = ?",
                    [id.as_str(), space.as_str()],
                )?;
                if deleted > 0 {
                    cancel_pending(connection, &id, Timestamp::now())?;
                }
                Ok(deleted > 0)
            })
            .await;
        self.webhooks_changed();
        deleted
    }

    fn webhook_epoch(&self) -> Option<u64> {
        Some(self.cache.epoch())
    }
}
