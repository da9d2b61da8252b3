//! The PostgreSQL backend: the same [`Store`] as SQLite's, for several hookrelay nodes
//! sharing one database.
//!
//! It mirrors `sqlite/` method for method; what differs is what many writers need.
//! Rows that a read-modify-write depends on are locked (`FOR UPDATE`), claims take rows
//! `FOR UPDATE SKIP LOCKED` so two nodes never claim one delivery or alert, and no lease
//! is released at start ([`Store::release_orphaned_claims`] releases none): another node
//! may hold it, and an expired lease is claimable anyway.
//!
//! The connection speaks TLS as the URL's `sslmode` asks (libpq's names; without one,
//! `prefer`: TLS when the server offers it). Only `verify-ca` and `verify-full` check
//! who answers, so a server reached over a network without them is warned about.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use hookrelay_core::delivery::{Delivery, DeliveryStatus};
use hookrelay_core::event::Event;
use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{DeliveryId, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId, WebhookPatch};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{PgPool, Postgres, Row, Transaction};

use hookrelay_core::alert::{Alert, AlertPolicy};
use hookrelay_core::AlertId;

use crate::rows::{corrupt, headers_context, idempotency_context, seal_idempotency, to_json};
use crate::{
    AlertOutcome, AttemptResult, ClaimRequest, ClaimedDelivery, DeliveryDetail, IdempotencyRecord, Page, Store,
    StoreError, StoredEvent, IDEMPOTENCY_WINDOW_MICROS,
};

/// Saves an idempotency record, parameters `$1` to `$7` ([`bind_idempotency`]); no row
/// when `$2` (the key) is null. One statement: an expired record for the same key gives
/// way to the new one, a live one keeps the key. A concurrent insert of the same key makes
/// this one wait for it: if it commits, its record is live and the key is taken.
macro_rules! save_idempotency_key {
    () => {
        "INSERT INTO idempotency_keys (space_id, key, fingerprint, status, body, create_time)
         SELECT $1, $2, $3, $4, $5, $6 WHERE $2::text IS NOT NULL
         ON CONFLICT (space_id, key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
                 create_time = EXCLUDED.create_time
             WHERE idempotency_keys.create_time < $7"
    };
}

mod alerts;
mod delivery;
mod notify;

use notify::{WorkNotifier, WORK_CHANNEL};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The webhooks table's columns, as the decoder reads them, qualified by `alias`.
/// `events` is JSONB and is read back as its text.
fn webhook_columns(alias: &str) -> String {
    [
        "seq",
        "id",
        "space_id",
        "name",
        "url",
        "enabled",
        "events::text AS events",
        "api_release",
        "verification_type",
        "secret_sealed",
        "public_key",
        "headers_sealed",
        "alert_emails",
        "metadata",
        "create_time",
        "update_time",
    ]
    .iter()
    .map(|column| format!("{alias}.{column}"))
    .collect::<Vec<_>>()
    .join(", ")
}

static WEBHOOK_COLUMNS: LazyLock<String> = LazyLock::new(|| webhook_columns("webhooks"));

/// A store in one PostgreSQL database, shared by any number of nodes.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    cipher: SecretCipher,
    /// Tells other nodes, after the commit, that a write stored due work.
    notifier: Arc<WorkNotifier>,
}

/// Warns when a server off this machine is reached without checking its certificate.
fn warn_if_unverified(options: &PgConnectOptions) {
    if let Some(host) = unverified_remote_host(options) {
        tracing::warn!(
            host,
            "the PostgreSQL server's certificate is not checked: add sslmode=verify-full \
             (and sslrootcert=PATH for a private CA) to the database URL"
        );
    }
}

/// The server's host, if it is off this machine and its certificate is not checked:
/// below `verify-ca` the connection is encrypted at best, and anyone on the path could
/// pose as the database (and read webhook payloads on their way).
fn unverified_remote_host(options: &PgConnectOptions) -> Option<&str> {
    let verified = matches!(options.get_ssl_mode(), PgSslMode::VerifyCa | PgSslMode::VerifyFull);
    let host = options.get_host();
    let local = options.get_socket().is_some()
        || host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!verified && !local).then_some(host)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) with a pool of at most
    /// `max_connections`, and migrates it. The database itself must exist.
    pub async fn open(url: &str, cipher: SecretCipher, max_connections: u32) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if options.get_application_name().is_none() {
            // So operators can tell hookrelay's sessions apart in `pg_stat_activity`.
            options = options.application_name("hookrelay");
        }
        warn_if_unverified(&options);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        // Nodes starting together are serialised by the migrator's advisory lock.
        MIGRATOR.run(&pool).await?;
        let notifier = Arc::new(WorkNotifier::start(pool.clone()));
        Ok(Self { pool, cipher, notifier })
    }

    pub(crate) fn decode_webhook(&self, row: &PgRow) -> Result<Webhook, StoreError> {
        crate::rows::decode_webhook(&self.cipher, row)
    }

    /// Saves an idempotency record (its body sealed: [`seal_idempotency`]) in `tx`, as
    /// SQLite's `save_idempotency` does.
    pub(crate) async fn save_idempotency(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        record: &IdempotencyRecord,
    ) -> Result<(), StoreError> {
        let inserted = bind_idempotency(sqlx::query(save_idempotency_key!()), Some(record))
            .execute(&mut **tx)
            .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::IdempotencyKeyTaken);
        }
        Ok(())
    }
}

/// Binds `record` (sealed) as `$1` to `$7` of [`save_idempotency_key`], or nulls.
pub(crate) fn bind_idempotency<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    record: Option<&'q IdempotencyRecord>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(record.map(|r| r.space_id.as_str()))
        .bind(record.map(|r| r.key.as_str()))
        .bind(record.map(|r| r.fingerprint.as_slice()))
        .bind(record.map(|r| i64::from(r.status)))
        .bind(record.map(|r| r.body.as_slice()))
        .bind(record.map(|r| r.create_time.as_micros()))
        .bind(record.map(|r| r.create_time.as_micros() - IDEMPOTENCY_WINDOW_MICROS))
}

#[async_trait]
impl Store for PostgresStore {
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO spaces (id, create_time) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(space.as_str())
            .bind(Timestamp::now().as_micros())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn has_spaces(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM spaces)")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<bool, _>(0)?)
    }

    async fn add_access_token(&self, space: &SpaceId, digest: &[u8; 32]) -> Result<(), StoreError> {
        let now = Timestamp::now().as_micros();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO spaces (id, create_time) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(space.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO access_tokens (token_digest, space_id, create_time) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&digest[..])
        .bind(space.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_access_token(&self, digest: &[u8; 32]) -> Result<Option<(SpaceId, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT space_id, token_digest FROM access_tokens WHERE token_digest = $1")
            .bind(&digest[..])
            .fetch_optional(&self.pool)
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
            VerificationMethod::Es256 { public_key_pem, .. } => Some(public_key_pem.as_str()),
            VerificationMethod::Hs256 { .. } => None,
        };
        let mut tx = self.pool.begin().await?;
        if let Some(record) = idempotency {
            let record = seal_idempotency(&self.cipher, record.clone());
            self.save_idempotency(&mut tx, &record).await?;
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
        .bind(secret_sealed)
        .bind(public_key)
        .bind(headers_sealed)
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
        row.map(|row| self.decode_webhook(&row)).transpose()
    }

    async fn list_webhooks(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Webhook>, StoreError> {
        // One row more than asked tells whether another page exists.
        let rows = sqlx::query(&format!(
            "SELECT {} FROM webhooks WHERE space_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            *WEBHOOK_COLUMNS
        ))
        .bind(space.as_str())
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
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
        let mut webhook = self.decode_webhook(&row)?;
        let was_enabled = webhook.enabled;
        patch.apply(&mut webhook, now);
        if webhook.enabled && !was_enabled {
            // Re-enabling starts the webhook's failure record afresh.
            alerts::reset_health(&mut tx, &webhook.id).await?;
        }
        let headers_sealed = self
            .cipher
            .seal(to_json(&webhook.headers).as_bytes(), &headers_context(&webhook.id));
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
        .bind(headers_sealed)
        .bind(to_json(&webhook.alert_emails))
        .bind(to_json(&webhook.metadata))
        .bind(webhook.update_time.as_micros())
        .bind(webhook.id.as_str())
        .execute(&mut *tx)
        .await?;
        if !webhook.enabled {
            delivery::cancel_pending(&mut tx, &webhook.id, now).await?;
        }
        tx.commit().await?;
        Ok(Some(webhook))
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
            delivery::cancel_pending(&mut tx, id, Timestamp::now()).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn find_idempotency_record(
        &self,
        space: &SpaceId,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body, create_time FROM idempotency_keys
             WHERE space_id = $1 AND key = $2 AND create_time >= $3",
        )
        .bind(space.as_str())
        .bind(key)
        .bind(not_before.as_micros())
        .fetch_optional(&self.pool)
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
        let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE create_time < $1")
            .bind(before.as_micros())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
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
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn watch_for_work(&self, wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake(),
                    Err(error) => {
                        // The listener reconnects by itself on the next recv; meanwhile
                        // the engine's idle poll still finds the work.
                        tracing::warn!(%error, "listening for new work failed");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }

    async fn release_orphaned_claims(&self) -> Result<u64, StoreError> {
        // Several nodes share the database: a lease held now may be a live node's.
        Ok(0)
    }

    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError> {
        self.record_attempts_impl(results, policy).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_server_is_unverified_below_verify_ca() {
        let host = |url: &str| unverified_remote_host(&PgConnectOptions::from_str(url).unwrap()).map(str::to_owned);
        assert_eq!(
            host("postgres://u@db.example.com/app").as_deref(),
            Some("db.example.com")
        );
        assert_eq!(
            host("postgres://u@10.0.0.5/app?sslmode=require").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(host("postgres://u@db.example.com/app?sslmode=verify-full"), None);
        assert_eq!(host("postgres://u@db.example.com/app?sslmode=verify-ca"), None);
        assert_eq!(host("postgres://u@127.0.0.1/app"), None, "loopback");
        assert_eq!(host("postgres://u@[::1]/app"), None, "loopback");
        assert_eq!(host("postgres://u@localhost/app?sslmode=disable"), None);
        assert_eq!(host("postgres://u@%2Fvar%2Frun%2Fpostgresql/app"), None, "a socket");
    }
}
