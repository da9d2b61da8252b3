//! The SQLite backend: one file, WAL mode, one writer connection and a pool of readers.
//!
//! SQLite allows one writer at a time. Funnelling every write through a single
//! connection makes writers queue in-process instead of failing with `SQLITE_BUSY`,
//! while WAL lets reads proceed in parallel with the writer. The writer is a `rusqlite`
//! connection on a thread of its own (`writer.rs`); migrations, readers and the
//! checkpointer use `sqlx`.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookrelay_core::delivery::{Delivery, DeliveryStatus};
use hookrelay_core::event::Event;
use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{DeliveryId, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId, WebhookPatch};
use rusqlite::{params, Connection, OpenFlags};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _, Row, SqlitePool};

use hookrelay_core::alert::{Alert, AlertPolicy};
use hookrelay_core::AlertId;

use crate::rows::{corrupt, decode_webhook, headers_context, idempotency_context, seal_idempotency, to_json, Columns};
use crate::{
    AlertOutcome, AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryDetail, IdempotencyRecord, Page, Store,
    StoreError, StoredEvent, IDEMPOTENCY_WINDOW_MICROS,
};

mod alerts;
mod cache;
mod delivery;
mod writer;

use cache::{RecentEvents, WebhookCache};
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const WEBHOOK_COLUMNS: &str = "seq, id, space_id, name, url, enabled, events, api_release, verification_type, \
     secret_sealed, public_key, headers_sealed, alert_emails, metadata, create_time, update_time";

/// A store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: SqlitePool,
    cipher: SecretCipher,
    /// Webhooks and subscriptions as last read; its epoch is [`Store::webhook_epoch`].
    cache: Arc<WebhookCache>,
    /// The events published last, for claims.
    recent_events: Arc<RecentEvents>,
}

impl SqliteStore {
    /// Opens the file at `path`, creating and migrating it as needed.
    pub async fn open(path: &Path, cipher: SecretCipher) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a killed process; only power loss can drop
            // the last commits, and it never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Migrations run on a connection of their own, closed before the writer opens.
        let mut migrating = options.clone().connect().await?;
        MIGRATOR.run(&mut migrating).await?;
        migrating.close().await?;
        let writer = Writer::start(open_writer(path)?)?;
        let checkpointer = options.connect().await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        writer::checkpoint_in_background(checkpointer, &writer);
        Ok(Self {
            writer,
            readers,
            cipher,
            cache: Arc::default(),
            recent_events: Arc::default(),
        })
    }

    fn decode_webhook(&self, row: &impl Columns) -> Result<Webhook, StoreError> {
        decode_webhook(&self.cipher, row)
    }

    /// Called after a commit that may have changed a webhook.
    fn webhooks_changed(&self) {
        self.cache.changed();
    }

    /// Webhooks by id, from the cache or else read (and cached) in one query; one that
    /// cannot be decoded is there as its error.
    async fn webhooks_by_id(&self, ids: &[&str]) -> Result<HashMap<String, WebhookRead>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            let cached = WebhookId::parse(id).and_then(|id| self.cache.webhook(&id));
            match cached {
                Some(webhook) => {
                    found.insert((*id).to_owned(), Ok(webhook));
                }
                None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let epoch = self.cache.epoch();
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id IN (SELECT value FROM json_each(?))"
        ))
        .bind(serde_json::to_string(&missing).expect("strings serialise"))
        .fetch_all(&self.readers)
        .await?;
        let mut read = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.decode_webhook(row) {
                Ok(webhook) => read.push(Arc::new(webhook)),
                // One webhook that cannot be read must not hide the others.
                Err(error) => {
                    let id: String = row.try_get("id")?;
                    found.insert(id, Err(error));
                }
            }
        }
        self.cache.put_webhooks(epoch, read.iter().cloned());
        found.extend(
            read.into_iter()
                .map(|webhook| (webhook.id.as_str().to_owned(), Ok(webhook))),
        );
        Ok(found)
    }
}

/// A webhook as read by id, or why it could not be.
type WebhookRead = Result<Arc<Webhook>, StoreError>;

/// Opens the writer's connection. NORMAL synchronisation in WAL mode survives a killed
/// process; only power loss can drop the last commits, and it never corrupts the file.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.execute_batch(
        // The writer never checkpoints: a checkpoint in a commit would hold up every
        // write queued behind it; a connection of its own does it in the background.
        // Most writes in a group run in a savepoint, whose journal SQLite would spill to
        // a temporary file past 64 KiB; in memory it is a copy, not a write.
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;",
    )?;
    Ok(connection)
}

/// Saves an idempotency record (its body sealed: [`seal_idempotency`]) in the current
/// transaction; a live record for the same key makes it fail with
/// [`StoreError::IdempotencyKeyTaken`], before it changes anything.
pub(crate) fn save_idempotency(connection: &Connection, record: &IdempotencyRecord) -> Result<(), StoreError> {
    // An expired record for the same key gives way to the new one; a live one stands.
    let inserted = connection
        .prepare_cached(
            "INSERT INTO idempotency_keys (space_id, key, fingerprint, status, body, create_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (space_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
                 body = excluded.body, create_time = excluded.create_time
             WHERE idempotency_keys.create_time < ?7",
        )?
        .execute(params![
            record.space_id.as_str(),
            record.key,
            record.fingerprint,
            i64::from(record.status),
            record.body,
            record.create_time.as_micros(),
            record.create_time.as_micros() - IDEMPOTENCY_WINDOW_MICROS,
        ])?;
    if inserted == 0 {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(())
}

fn ensure_space(connection: &Connection, space: &SpaceId, now: Timestamp) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT INTO spaces (id, create_time) VALUES (?, ?) ON CONFLICT DO NOTHING")?
        .execute(params![space.as_str(), now.as_micros()])?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError> {
        let space = space.clone();
        self.writer
            .write(move |connection| ensure_space(connection, &space, Timestamp::now()))
            .await
    }

    async fn has_spaces(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM spaces)")
            .fetch_one(&self.readers)
            .await?;
        Ok(row.try_get::<bool, _>(0)?)
    }

    async fn add_access_token(&self, space: &SpaceId, digest: &[u8; 32]) -> Result<(), StoreError> {
        let (space, digest) = (space.clone(), *digest);
        self.writer
            .write(move |connection| {
                let now = Timestamp::now();
                ensure_space(connection, &space, now)?;
                connection.execute(
                    "INSERT INTO access_tokens (token_digest, space_id, create_time) VALUES (?, ?, ?)
                     ON CONFLICT DO NOTHING",
                    params![&digest[..], space.as_str(), now.as_micros()],
                )?;
                Ok(())
            })
            .await
    }

    async fn find_access_token(&self, digest: &[u8; 32]) -> Result<Option<(SpaceId, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT space_id, token_digest FROM access_tokens WHERE token_digest = ?")
            .bind(&digest[..])
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| {
            let space: String = row.try_get("space_id")?;
            let space = SpaceId::parse(&space).ok_or_else(|| corrupt("space id", &space))?;
            Ok((space, row.try_get("token_digest")?))
        })
        .transpose()
    }

    async fn create_webhook(
        &self,
        webhook: &Webhook,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let secret_sealed = self
            .cipher
            .seal(webhook.verification.secret_material(), webhook.id.as_str().as_bytes());
        let headers_sealed = self
            .cipher
            .seal(to_json(&webhook.headers).as_bytes(), &headers_context(&webhook.id));
        let public_key = match &webhook.verification {
            VerificationMethod::Es256 { public_key_pem, .. } => Some(public_key_pem.clone()),
            VerificationMethod::Hs256 { .. } => None,
        };
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
                        secret_sealed,
                        public_key,
                        headers_sealed,
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
        Ok(found
            .into_values()
            .next()
            .transpose()?
            .filter(|webhook| webhook.space_id == *space)
            .map(Arc::unwrap_or_clone))
    }

    async fn list_webhooks(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Webhook>, StoreError> {
        // One row more than asked tells whether another page exists.
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE space_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(space.as_str())
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
        .await?;
        crate::rows::page(rows, limit, |row| self.decode_webhook(row))
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
                        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND space_id = ?"
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
                if webhook.enabled && !was_enabled {
                    // Re-enabling starts the webhook's failure record afresh.
                    alerts::reset_health(connection, &webhook.id)?;
                }
                let headers_sealed = cipher.seal(to_json(&webhook.headers).as_bytes(), &headers_context(&webhook.id));
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
                        headers_sealed,
                        to_json(&webhook.alert_emails),
                        to_json(&webhook.metadata),
                        webhook.update_time.as_micros(),
                        webhook.id.as_str(),
                    ],
                )?;
                if !webhook.enabled {
                    delivery::cancel_pending(connection, &webhook.id, now)?;
                }
                Ok(Some(webhook))
            })
            .await;
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
                    delivery::cancel_pending(connection, &id, Timestamp::now())?;
                }
                Ok(deleted > 0)
            })
            .await;
        self.webhooks_changed();
        deleted
    }

    async fn find_idempotency_record(
        &self,
        space: &SpaceId,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body, create_time FROM idempotency_keys
             WHERE space_id = ? AND key = ? AND create_time >= ?",
        )
        .bind(space.as_str())
        .bind(key)
        .bind(not_before.as_micros())
        .fetch_optional(&self.readers)
        .await?;
        row.map(|row| {
            let status: i64 = row.try_get("status")?;
            Ok(IdempotencyRecord {
                space_id: space.clone(),
                key: key.to_owned(),
                fingerprint: row.try_get("fingerprint")?,
                status: u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?,
                body: self
                    .cipher
                    .open(&row.try_get::<Vec<u8>, _>("body")?, &idempotency_context(space, key))?,
                create_time: Timestamp::from_micros(row.try_get("create_time")?),
            })
        })
        .transpose()
    }

    async fn prune_idempotency_records(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.writer
            .write(move |connection| {
                let deleted = connection.execute(
                    "DELETE FROM idempotency_keys WHERE create_time < ?",
                    [before.as_micros()],
                )?;
                Ok(deleted as u64)
            })
            .await
    }

    async fn publish_event(&self, event: &Event, idempotency: Option<IdempotencyRecord>) -> Result<u32, StoreError> {
        self.publish_event_impl(event, idempotency).await
    }

    async fn get_event(&self, space: &SpaceId, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.get_event_impl(space, id).await
    }

    async fn list_events(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<StoredEvent>, StoreError> {
        self.list_events_impl(space, after, limit).await
    }

    async fn publish_test_event(&self, event: &Event, webhook: &WebhookId) -> Result<Delivery, StoreError> {
        self.publish_test_event_impl(event, webhook).await
    }

    async fn claim_deliveries(&self, request: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.claim_deliveries_impl(request).await
    }

    async fn release_deliveries(
        &self,
        ids: &[DeliveryId],
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.release_deliveries_impl(ids, owner, lease_until).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    fn webhook_epoch(&self) -> Option<u64> {
        Some(self.cache.epoch())
    }

    async fn watch_for_work(&self, _wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), StoreError> {
        // Every write comes through this process, which wakes its engine itself.
        Ok(())
    }

    async fn release_orphaned_claims(&self) -> Result<u64, StoreError> {
        // Not done at open: `hookrelay token create` opens the file while a server may
        // be running, and must not take that server's claims from under it.
        self.writer
            .write(move |connection| {
                // One SQLite file serves one hookrelay process, so leases held when it
                // starts belong to a process that died: give its work back at once
                // instead of waiting for the leases to run out.
                let deliveries = connection.execute(
                    "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL WHERE lease_until IS NOT NULL",
                    [],
                )?;
                let alerts =
                    connection.execute("UPDATE alerts SET lease_until = NULL WHERE lease_until IS NOT NULL", [])?;
                Ok((deliveries + alerts) as u64)
            })
            .await
    }

    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError> {
        let (alerts, disabled) = self.record_attempts_impl(results, policy).await?;
        // The webhooks kept in memory (and the targets the engine keeps under the epoch)
        // change only when one is disabled; a failure alone leaves them as they are.
        if disabled {
            self.webhooks_changed();
        }
        Ok(alerts)
    }

    async fn claim_alerts(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> Result<Vec<Alert>, StoreError> {
        self.claim_alerts_impl(now, lease_until, limit).await
    }

    async fn finish_alert(&self, id: &AlertId, outcome: &AlertOutcome, now: Timestamp) -> Result<(), StoreError> {
        self.finish_alert_impl(id, outcome, now).await
    }

    async fn list_alerts(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError> {
        self.list_alerts_impl(space, webhook, after, limit).await
    }

    async fn next_due_time(
        &self,
        now: Timestamp,
        skip_webhooks: &[WebhookId],
    ) -> Result<Option<Timestamp>, StoreError> {
        self.next_due_time_impl(now, skip_webhooks).await
    }

    async fn list_deliveries(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery>, StoreError> {
        self.list_deliveries_impl(space, webhook, status, after, limit).await
    }

    async fn get_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, StoreError> {
        self.get_delivery_impl(space, webhook, id).await
    }

    async fn retry_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        self.retry_delivery_impl(space, webhook, id, now).await
    }
}
