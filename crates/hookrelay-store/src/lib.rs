//! hookrelay's storage. Everything the server keeps goes through the [`Store`] trait;
//! backends (SQLite for one process, PostgreSQL for several nodes sharing a database)
//! implement it, and nothing above this crate writes SQL.
//!
//! Secrets are sealed here, on the way in, with the [`SecretCipher`] a store is opened
//! with: callers hand over plain domain values and cannot forget to encrypt.

mod error;
mod postgres;
mod rows;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use hookrelay_core::alert::{Alert, AlertPolicy};
use hookrelay_core::delivery::{Delivery, DeliveryAttempt, DeliveryStatus, NextStep};
use hookrelay_core::event::Event;
use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{AlertId, DeliveryId, EventId, SpaceId, Timestamp, Webhook, WebhookId, WebhookPatch};

pub use error::StoreError;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// How long an idempotency key's first response is replayed.
pub const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

/// The saved outcome of a request made with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The space the key belongs to (keys are per space).
    pub space_id: SpaceId,
    /// The client's key.
    pub key: String,
    /// A digest of the request (method, path, body), to spot a key reused for another request.
    pub fingerprint: Vec<u8>,
    /// The HTTP status that was answered.
    pub status: u16,
    /// The response body that was answered; for a publish, its event's id (the answer
    /// is rendered again from the event).
    pub body: Vec<u8>,
    /// When the first request was made.
    pub create_time: Timestamp,
}

/// One page of a list, newest first.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// The creation sequence number to continue after, when there are more items.
    pub next: Option<i64>,
}

/// An event with the number of deliveries it created.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    /// The event.
    pub event: Event,
    /// Deliveries created when it was published.
    pub delivery_count: u32,
}

/// What a worker asks for when it claims work.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// Deliveries due at or before this time are claimable.
    pub now: Timestamp,
    /// The claim holds until this time; after it, another worker may take the delivery.
    pub lease_until: Timestamp,
    /// Who claims (a node id), for operators reading the table.
    pub owner: String,
    /// At most this many deliveries.
    pub limit: u32,
    /// At most this many deliveries of one webhook.
    pub per_webhook: u32,
    /// Webhooks to leave alone (their in-flight cap is reached).
    pub skip_webhooks: Vec<WebhookId>,
}

/// A claimed delivery with everything needed to attempt it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// The number this attempt will have (1-based).
    pub attempt: u32,
    /// The event to send (shared by the deliveries of one claim that carry it).
    pub event: Arc<Event>,
    /// The webhook as it is now (URL, headers, key, release), shared likewise.
    pub webhook: Arc<Webhook>,
    /// The delivery's update time as claimed: its record, finding it changed since (a
    /// manual retry while the attempt was in flight), keeps the delivery pending.
    pub update_time: Timestamp,
}

/// The outcome of one attempt, to be recorded.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    /// The delivery attempted.
    pub delivery_id: DeliveryId,
    /// Its webhook.
    pub webhook_id: WebhookId,
    /// The attempt log entry.
    pub attempt: DeliveryAttempt,
    /// What happens next.
    pub next: NextStep,
    /// When the attempt finished.
    pub finish_time: Timestamp,
    /// The delivery's update time when it was claimed ([`ClaimedDelivery::update_time`]).
    pub claimed_update_time: Timestamp,
}

/// How an attempt to send an alert ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertOutcome {
    /// The mail server accepted it.
    Sent,
    /// E-mail is off: the alert was logged instead.
    Skipped,
    /// Sending failed; try again at `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// Why it failed (no secrets).
        error: String,
    },
}

/// A delivery with its attempt log.
#[derive(Clone, Debug)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: Delivery,
    /// Every attempt, first first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, as a `postgres://` or `postgresql://` URL (it may hold a password).
    Postgres(String),
}

impl DatabaseLocation {
    /// Parses `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path` for an absolute path),
    /// or a `postgres://…` / `postgresql://…` URL, kept whole for the driver.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            if rest.is_empty() {
                return Err(StoreError::UnsupportedDatabase(url.to_owned()));
            }
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedDatabase(url.to_owned()))?;
        if path.is_empty() {
            return Err(StoreError::UnsupportedDatabase(url.to_owned()));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

// By hand rather than derived: configuration is logged, and a PostgreSQL URL may carry a password.
impl std::fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&redact_password(url)).finish(),
        }
    }
}

/// `url` with the password in its user info (`user:password@`) replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    match authority
        .rsplit_once('@')
        .and_then(|(info, host)| Some((info.split_once(':')?.0, host)))
    {
        Some((user, host)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// Settings for [`open_with`] that only some backends use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// PostgreSQL: the most connections this node's pool opens (SQLite's pools are fixed).
    pub max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { max_connections: 10 }
    }
}

/// Opens (creating and migrating as needed) the database at `location`, with default
/// [`OpenOptions`].
pub async fn open(location: &DatabaseLocation, cipher: SecretCipher) -> Result<Arc<dyn Store>, StoreError> {
    open_with(location, cipher, &OpenOptions::default()).await
}

/// Opens (creating and migrating as needed) the database at `location`. A PostgreSQL
/// database must exist; its tables are created and migrated.
pub async fn open_with(
    location: &DatabaseLocation,
    cipher: SecretCipher,
    options: &OpenOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        DatabaseLocation::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path, cipher).await?)),
        DatabaseLocation::Postgres(url) => Ok(Arc::new(
            PostgresStore::open(url, cipher, options.max_connections).await?,
        )),
    }
}

/// Everything hookrelay persists. Methods that change state and may be retried by a
/// client take an optional [`IdempotencyRecord`], saved in the same transaction as the
/// change so that a crash can never separate the two.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the space if it does not exist.
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError>;

    /// Whether any space exists (an empty database gets a bootstrap space).
    async fn has_spaces(&self) -> Result<bool, StoreError>;

    /// Records a token digest for a space (creating the space); a digest already
    /// recorded for the same space is left as it is.
    async fn add_access_token(&self, space: &SpaceId, digest: &[u8; 32]) -> Result<(), StoreError>;

    /// The space a token digest belongs to, with the stored digest for a constant-time
    /// comparison by the caller.
    async fn find_access_token(&self, digest: &[u8; 32]) -> Result<Option<(SpaceId, Vec<u8>)>, StoreError>;

    /// Saves a new webhook. Fails with [`StoreError::IdempotencyKeyTaken`], writing
    /// nothing, when the record's key is already in use.
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;

    /// A webhook of the space, if it exists.
    async fn get_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<Option<Webhook>, StoreError>;

    /// The space's webhooks, newest first, after the cursor position `after`.
    async fn list_webhooks(&self, space: &SpaceId, after: Option<i64>, limit: u32)
        -> Result<Page<Webhook>, StoreError>;

    /// Applies `patch` atomically; `None` if the webhook does not exist.
    async fn update_webhook(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &WebhookPatch,
        now: Timestamp,
    ) -> Result<Option<Webhook>, StoreError>;

    /// Deletes a webhook; `false` if it did not exist.
    async fn delete_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<bool, StoreError>;

    /// The record saved for a key, if one was saved at or after `not_before`.
    async fn find_idempotency_record(
        &self,
        space: &SpaceId,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Forgets records older than `before`; returns how many.
    async fn prune_idempotency_records(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Saves an event and one pending delivery, due at once, for each enabled webhook of
    /// its space subscribed to its name, in one transaction, with the idempotency record
    /// if given; returns the number of deliveries.
    async fn publish_event(&self, event: &Event, idempotency: Option<IdempotencyRecord>) -> Result<u32, StoreError>;

    /// An event of the space.
    async fn get_event(&self, space: &SpaceId, id: &EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// The space's events, newest first.
    async fn list_events(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<StoredEvent>, StoreError>;

    /// Saves `event` with a single delivery to `webhook` (the test event).
    async fn publish_test_event(&self, event: &Event, webhook: &WebhookId) -> Result<Delivery, StoreError>;

    /// Claims due deliveries. Deliveries whose webhook has been disabled or deleted are
    /// cancelled instead of returned (on PostgreSQL after the claim commits, by a second
    /// statement; should that fail, a later claim cancels them once their lease runs out).
    async fn claim_deliveries(&self, request: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// Gives claimed deliveries back without attempting them: those of `ids` still under
    /// the lease `owner` took until `lease_until` (a lease that ran out and was taken by
    /// another claim is left alone).
    async fn release_deliveries(
        &self,
        ids: &[DeliveryId],
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<(), StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A number that changes whenever any webhook may have changed (updated, deleted,
    /// disabled by its health), read before a claim and compared before a queued
    /// delivery is attempted: unchanged, the claimed copy of the webhook is current and
    /// need not be read again. `None` where other processes change webhooks unseen
    /// (PostgreSQL): then the webhook is always read again.
    fn webhook_epoch(&self) -> Option<u64> {
        None
    }

    /// Calls `wake` whenever another node stores work that is due (PostgreSQL
    /// `LISTEN/NOTIFY`); a no-op where one process does all the work (SQLite).
    async fn watch_for_work(&self, wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), StoreError>;

    /// Releases claims that can only belong to a process that died. SQLite serves one
    /// process per file, so at `serve` start every lease is orphaned; on PostgreSQL
    /// leases of live nodes must stand, so it releases none (expired leases are
    /// claimable anyway). Returns how many claims (deliveries and alerts) it released.
    async fn release_orphaned_claims(&self) -> Result<u64, StoreError>;

    /// Records attempts and moves their deliveries on, in one transaction. A result for
    /// an attempt already recorded (a lease that expired and was taken over) is ignored.
    /// The same transaction updates each webhook's health under `policy`, disables
    /// webhooks failing for too long, and queues the alerts that calls for. Returns how
    /// many alerts were queued.
    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError>;

    /// Claims pending alerts that are due, under a lease.
    async fn claim_alerts(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> Result<Vec<Alert>, StoreError>;

    /// Records how sending a claimed alert ended.
    async fn finish_alert(&self, id: &AlertId, outcome: &AlertOutcome, now: Timestamp) -> Result<(), StoreError>;

    /// A webhook's alerts, newest first.
    async fn list_alerts(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError>;

    /// The earliest time an unclaimed pending delivery is due, ignoring `skip_webhooks`.
    async fn next_due_time(&self, now: Timestamp, skip_webhooks: &[WebhookId])
        -> Result<Option<Timestamp>, StoreError>;

    /// A webhook's deliveries, newest first, optionally of one status.
    async fn list_deliveries(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery>, StoreError>;

    /// A delivery of a webhook with its attempts.
    async fn get_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, StoreError>;

    /// Makes a delivery pending and due now, whatever its status.
    async fn retry_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            DatabaseLocation::parse("sqlite:///var/lib/hr.db").unwrap(),
            DatabaseLocation::Sqlite(PathBuf::from("/var/lib/hr.db"))
        );
        for url in [
            "postgres://hr@db:5432/hookrelay",
            "postgresql://hr:pw@db/hookrelay?sslmode=require",
        ] {
            assert_eq!(
                DatabaseLocation::parse(url).unwrap(),
                DatabaseLocation::Postgres(url.to_owned())
            );
        }
        for bad in ["postgres://", "mysql://db/x", "sqlite:", "db.sqlite"] {
            assert!(DatabaseLocation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_postgres_passwords() {
        let location = DatabaseLocation::parse("postgres://hr:s3cret@db:5432/hookrelay?sslmode=require").unwrap();
        assert_eq!(
            format!("{location:?}"),
            r#"Postgres("postgres://hr:***@db:5432/hookrelay?sslmode=require")"#
        );
        let plain = DatabaseLocation::parse("postgres://hr@db/hookrelay").unwrap();
        assert_eq!(format!("{plain:?}"), r#"Postgres("postgres://hr@db/hookrelay")"#);
    }
}
