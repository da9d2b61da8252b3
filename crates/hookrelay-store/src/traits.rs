// Longer than 500 lines: one trait per concern, each short; the interface reads best whole.
//! The store's interface, one trait per concern, so that a caller names what it uses
//! and each backend implements a concern in the file that holds its SQL. [`Store`]
//! is all of them together, as the server holds it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookrelay_core::access::{AccessToken, Grant};
use hookrelay_core::alert::{Alert, AlertPolicy};
use hookrelay_core::alert_limit::EmailLimit;
use hookrelay_core::delivery::{Delivery, DeliveryStatus};
use hookrelay_core::event::Event;
use hookrelay_core::record::AttemptResult;
use hookrelay_core::recovery::Recovery;
use hookrelay_core::retention::{Erasure, ErasureDraft};
use hookrelay_core::webhook_settings::{SettingsPatch, WebhookSettings};
use hookrelay_core::{
    AlertId, DeliveryId, ErasureId, EventId, KeyId, RecoveryId, SpaceId, Timestamp, TokenId, Webhook, WebhookId,
    WebhookPatch,
};

use crate::{
    AlertOutcome, Backlog, ClaimRequest, ClaimedDelivery, CleanBatch, DeliveryDetail, Digest, ErasedBatch,
    IdempotencyRecord, KeyOwner, NodeBeat, NodeRecord, Page, PublishedKey, QuotaChange, RecoveryProgress,
    RetentionChange, SpaceSummary, StoreError, StoredEvent,
};

/// Spaces, the tenants: created, disabled and given quotas by operators.
#[async_trait]
pub trait SpaceStore: Send + Sync {
    /// Creates the space if it does not exist.
    async fn ensure_space(&self, space: &SpaceId) -> Result<(), StoreError>;

    /// Creates a space; `false` if it exists already.
    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError>;

    /// Disables a space (its tokens are refused, its deliveries wait) or enables it
    /// (they go out again); `false` if it does not exist.
    async fn set_space_disabled(&self, space: &SpaceId, disabled: bool) -> Result<bool, StoreError>;

    /// Changes a space's own quotas; `false` if it does not exist.
    async fn set_space_quotas(&self, space: &SpaceId, change: &QuotaChange) -> Result<bool, StoreError>;

    /// Changes a space's own retention; `false` if it does not exist.
    async fn set_space_retention(&self, space: &SpaceId, change: &RetentionChange) -> Result<bool, StoreError>;
}

/// Access tokens: their records, beside the SHA-256 digest of each token.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Saves a token's record and digest (creating its space if new), with the
    /// idempotency record if given, in one transaction. A digest already recorded is left
    /// as it is, with its record: then `false`. Fails with
    /// [`StoreError::IdempotencyKeyTaken`], writing nothing, when the key is in use.
    async fn add_token(
        &self,
        token: &AccessToken,
        digest: &[u8; 32],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<bool, StoreError>;

    /// Revokes (deletes) a token of the space; `false` if it has none with this id.
    async fn revoke_token(&self, space: &SpaceId, id: &TokenId) -> Result<bool, StoreError>;

    /// Records that the token was used at `at`, unless a use was recorded less than
    /// [`hookrelay_core::access::LAST_USE_EVERY`] before.
    async fn record_token_use(&self, id: &TokenId, at: Timestamp) -> Result<(), StoreError>;
}

/// Webhooks. Methods that may be retried by a client take an optional
/// [`IdempotencyRecord`], saved in the same transaction as the change so that a crash
/// can never separate the two.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Saves a new webhook. Fails with [`StoreError::IdempotencyKeyTaken`], writing
    /// nothing, when the record's key is already in use.
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.create_webhook_within(webhook, idempotency, None).await
    }

    /// [`WebhookStore::create_webhook`], failing with [`StoreError::QuotaExceeded`],
    /// writing nothing, when the space has `max_webhooks` already
    /// (`hookrelay_core::quota::check_webhooks`, in the transaction that inserts).
    async fn create_webhook_within(
        &self,
        webhook: &Webhook,
        idempotency: Option<&IdempotencyRecord>,
        max_webhooks: Option<u32>,
    ) -> Result<(), StoreError>;

    /// A webhook of the space, if it exists.
    async fn get_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<Option<Webhook>, StoreError>;

    /// Applies `patch` atomically, with its effects on the webhook's health and pending
    /// deliveries (`hookrelay_core::webhook_change`); `None` if the webhook does not exist.
    async fn update_webhook(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &WebhookPatch,
        now: Timestamp,
    ) -> Result<Option<Webhook>, StoreError>;

    /// Saves `webhook`'s keys (current key, key id and previous key) as they are, with
    /// `idempotency` in the same transaction, if its current key id is still
    /// `expected_key_id`: `false`, writing nothing, when the webhook is gone or another
    /// rotation came between its read and this write. Fails with
    /// [`StoreError::IdempotencyKeyTaken`], writing nothing, when the record's key is
    /// already in use.
    async fn save_webhook_keys(
        &self,
        webhook: &Webhook,
        expected_key_id: &KeyId,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<bool, StoreError>;

    /// Applies `patch` to the webhook's settings atomically; the settings as they now
    /// stand, or `None` if the webhook does not exist.
    async fn update_webhook_settings(
        &self,
        space: &SpaceId,
        id: &WebhookId,
        patch: &SettingsPatch,
    ) -> Result<Option<WebhookSettings>, StoreError>;

    /// Deletes a webhook, cancelling its pending deliveries; `false` if it did not exist.
    async fn delete_webhook(&self, space: &SpaceId, id: &WebhookId) -> Result<bool, StoreError>;

    /// A number that changes whenever any webhook may have changed (updated, deleted,
    /// disabled by its health), read before a claim and compared before a queued
    /// delivery is attempted: unchanged, the claimed copy of the webhook is current and
    /// need not be read again. `None` where other processes change webhooks unseen
    /// (PostgreSQL): then the webhook is always read again.
    fn webhook_epoch(&self) -> Option<u64> {
        None
    }
}

/// Saved answers to requests made with an `Idempotency-Key` (saved by the changes they
/// answer, through [`WebhookStore`] and [`EventStore`]; found through [`ReadStore`]).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Forgets the records expired at `now`; returns how many.
    async fn prune_idempotency_records(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// Events and the deliveries publishing them creates.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Saves an event and one pending delivery, due at once, for each enabled webhook of
    /// its space subscribed to its name, in one transaction, with the idempotency record
    /// if given; returns the number of deliveries.
    async fn publish_event(&self, event: &Event, idempotency: Option<IdempotencyRecord>) -> Result<u32, StoreError> {
        self.publish_event_within(event, idempotency, None).await
    }

    /// [`EventStore::publish_event`], failing with [`StoreError::QuotaExceeded`],
    /// writing nothing, when more than `max_fan_out` webhooks are subscribed
    /// (`hookrelay_core::quota::check_fan_out`).
    async fn publish_event_within(
        &self,
        event: &Event,
        idempotency: Option<IdempotencyRecord>,
        max_fan_out: Option<u32>,
    ) -> Result<u32, StoreError>;

    /// Saves `event` with a single delivery to `webhook` (the test event).
    async fn publish_test_event(&self, event: &Event, webhook: &WebhookId) -> Result<Delivery, StoreError>;
}

/// A tenant's hand on deliveries.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Makes a delivery pending and due now, whatever its status.
    async fn retry_delivery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError>;
}

/// Due deliveries, leased to the engine that attempts them.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Claims due deliveries: those with no lease, a lease that ran out, or a lease of a
    /// node judged dead by its heartbeat ([`NodeStore`]). Deliveries whose webhook has
    /// been disabled or deleted are cancelled instead of returned, and those that cannot
    /// be read are set aside (`hookrelay_core::claim`); on PostgreSQL after the claim
    /// commits, by a second statement (should that fail, a later claim does it once
    /// their lease runs out).
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

    /// The earliest time a claimable pending delivery is due (as for
    /// [`Self::claim_deliveries`]), ignoring `skip_webhooks`.
    async fn next_due_time(&self, now: Timestamp, skip_webhooks: &[WebhookId])
        -> Result<Option<Timestamp>, StoreError>;

    /// Releases claims that can only belong to a process that died. SQLite serves one
    /// process per file, so at `serve` start every lease is orphaned (and a wide
    /// fan-out it was writing in chunks is finished first); on PostgreSQL leases of
    /// live nodes must stand, so it releases none (expired leases, and those of nodes
    /// judged dead, are claimable anyway). Returns how many claims (deliveries, alerts
    /// and recoveries) it released.
    async fn release_orphaned_claims(&self) -> Result<u64, StoreError>;

    /// Calls `wake` whenever another node stores work that is due (PostgreSQL
    /// `LISTEN/NOTIFY`); a no-op where one process does all the work (SQLite).
    async fn watch_for_work(&self, wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), StoreError>;
}

/// The nodes serving the database, by their heartbeats. On PostgreSQL a node whose
/// heartbeat is older than its timeout is dead, and the deliveries it leased are
/// claimable at once; SQLite serves one node, which keeps its heartbeat in memory.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Whether other nodes share the database and take a dead node's deliveries over
    /// (PostgreSQL): then a node that cannot write its heartbeat must stop starting
    /// attempts. SQLite serves one node.
    fn shared_by_nodes(&self) -> bool;

    /// Records that `node` is alive, stamped by the database's clock (registering it at
    /// its first heartbeat); returns the other nodes now judged dead whose rows remain.
    async fn beat(&self, node: &NodeBeat) -> Result<Vec<String>, StoreError>;

    /// Forgets the nodes whose last heartbeat is older than `silent_for`; returns how
    /// many. A forgotten node's leases are claimable only once they run out.
    async fn forget_nodes(&self, silent_for: Duration) -> Result<u64, StoreError>;
}

/// What attempts did.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Records attempts and moves their deliveries on, in one transaction, by
    /// `hookrelay_core::record::plan`: a result whose delivery is no longer under the
    /// lease it was attempted under (taken over from a node judged dead, or a lease that
    /// ran out and was claimed again) is stored as history and changes nothing else. The
    /// same transaction updates each webhook's health under `policy`, disables webhooks
    /// failing for too long or gone, and queues the alerts that calls for. Returns how
    /// many alerts were queued.
    async fn record_attempts(&self, results: &[AttemptResult], policy: &AlertPolicy) -> Result<u32, StoreError>;
}

/// Alert e-mails: queued by [`AttemptStore::record_attempts`], sent by the alerter.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Claims pending alerts that are due, under a lease.
    async fn claim_alerts(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> Result<Vec<Alert>, StoreError>;

    /// Records how sending a claimed alert ended.
    async fn finish_alert(&self, id: &AlertId, outcome: &AlertOutcome, now: Timestamp) -> Result<(), StoreError>;

    /// The recipients a claimed alert is e-mailed to under `limit` (by
    /// `EmailLimit::admit`, per address, counting it in their windows), holding it for
    /// the digests of the rest; decided at the first call and the same at every later
    /// one, so a retried send is not counted twice. Counts hold across nodes.
    async fn admit_alert_recipients(
        &self,
        alert: &Alert,
        limit: &EmailLimit,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// Claims, under a lease, the held alerts of up to `limit` addresses whose digest
    /// is due at `now`, one digest per address.
    async fn claim_digests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Digest>, StoreError>;

    /// Records a claimed digest sent (its alerts are forgotten) or, with `retry_at`,
    /// failed (it is claimed again from then).
    async fn finish_digest(&self, digest: &Digest, retry_at: Option<Timestamp>) -> Result<(), StoreError>;

    /// Forgets the addresses' windows that opened before `before` (closed ones count as
    /// none), so the table holds only addresses alerted lately. Returns how many.
    async fn prune_alert_email_windows(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Keeping history bounded: the cleaner's batches (each one short transaction, reading
/// at most [`hookrelay_core::retention::EVENTS_PER_BATCH`] of a space's events, oldest
/// first, after the position `after`, and acting by `hookrelay_core::retention`),
/// erasures, and giving freed space back. On PostgreSQL each cleaner batch takes a
/// transaction-level advisory lock first, so one node cleans at a time: a batch that
/// finds it taken does nothing and answers `None`.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes events published before `cutoff` whose deliveries have all finished,
    /// with their deliveries and attempts (`retention::plan_deletion`).
    async fn delete_expired(
        &self,
        space: &SpaceId,
        after: i64,
        cutoff: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError>;

    /// Drops the data of events published before `cutoff` whose deliveries have all
    /// finished, and the response bodies of their attempts, at `now`
    /// (`retention::plan_payload_expiry`).
    async fn expire_payloads(
        &self,
        space: &SpaceId,
        after: i64,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError>;

    /// [`RetentionStore::expire_payloads`] for the space's events at the positions
    /// `seqs` (at most [`hookrelay_core::retention::EVENTS_PER_BATCH`]), passed over
    /// earlier while they were being delivered; those still being delivered are again
    /// `waiting`.
    async fn expire_payloads_of(
        &self,
        space: &SpaceId,
        seqs: &[i64],
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CleanBatch>, StoreError>;

    /// Deletes up to [`hookrelay_core::retention::ALERTS_PER_BATCH`] of the space's
    /// alerts made before `cutoff` that are no longer pending (sent or skipped);
    /// returns how many.
    async fn delete_old_alerts(&self, space: &SpaceId, cutoff: Timestamp) -> Result<Option<u64>, StoreError>;

    /// Gives up to `pages` free pages back to the file system (SQLite's incremental
    /// vacuum); returns how many it gave. PostgreSQL's autovacuum does this itself: 0.
    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError>;

    /// Erases one batch of the space's events that `draft` covers and that still have
    /// their data: drops the data and their attempts' response bodies and cancels
    /// their pending deliveries, at `now`.
    async fn erase_events(
        &self,
        space: &SpaceId,
        draft: &ErasureDraft,
        now: Timestamp,
    ) -> Result<ErasedBatch, StoreError>;

    /// Saves the record of an erasure, with the idempotency record if given, in one
    /// transaction. Fails with [`StoreError::IdempotencyKeyTaken`], writing nothing,
    /// when the key is in use.
    async fn save_erasure(&self, erasure: &Erasure, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError>;
}

/// Bulk recoveries: saved by the API, run batch by batch by the server's runner. Each
/// batch is one transaction that retries deliveries as a manual retry does
/// (`hookrelay_core::delivery::requeue`, by `hookrelay_core::recovery`) and advances the
/// recovery's cursor and counts with them, so a run cut short resumes where it was and
/// never retries a delivery twice. A lease on the recovery keeps it to one runner.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Saves a new recovery, running, over the webhook's deliveries up to its last one
    /// now, with the idempotency record if given, in one transaction. Fails with
    /// [`StoreError::IdempotencyKeyTaken`], writing nothing, when the key is in use.
    async fn create_recovery(
        &self,
        recovery: &Recovery,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;

    /// Leases the oldest running recovery that no runner holds (no lease, one that ran
    /// out, or on PostgreSQL one of a node judged dead) to `owner` until `lease_until`.
    async fn claim_recovery(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<RecoveryId>, StoreError>;

    /// Runs the next batch of a recovery `owner` holds: reads up to `limit` of its
    /// webhook's deliveries after its cursor, retries those it matches, and renews the
    /// lease to `lease_until` (or ends it when the recovery completes, or is cancelled
    /// because its webhook was deleted or disabled). `None` if `owner` no longer holds it.
    async fn recover_batch(
        &self,
        id: &RecoveryId,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Option<RecoveryProgress>, StoreError>;
}

/// Every read the API serves that needs nothing of a backend but its SQL: written once,
/// over sqlx, for both (`crate::reads`).
#[async_trait]
pub trait ReadStore: Send + Sync {
    /// Whether any space exists (an empty database gets a bootstrap space).
    async fn has_spaces(&self) -> Result<bool, StoreError>;

    /// What a token digest grants, with its space's state, and the stored digest for a
    /// constant-time comparison by the caller.
    async fn find_access_token(&self, digest: &[u8; 32]) -> Result<Option<(Grant, Vec<u8>)>, StoreError>;

    /// The space's tokens, newest first.
    async fn list_tokens(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<AccessToken>, StoreError>;

    /// Every space, oldest first, with its webhooks and tokens counted.
    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>, StoreError>;

    /// The record saved for a key, if it is still live at `now` (expires after it).
    async fn find_idempotency_record(
        &self,
        space: &SpaceId,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// The space's webhooks, newest first, after the cursor position `after`.
    async fn list_webhooks(&self, space: &SpaceId, after: Option<i64>, limit: u32)
        -> Result<Page<Webhook>, StoreError>;

    /// An event of the space.
    async fn get_event(&self, space: &SpaceId, id: &EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// The space's events, newest first.
    async fn list_events(
        &self,
        space: &SpaceId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<StoredEvent>, StoreError>;

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

    /// A webhook's alerts, newest first.
    async fn list_alerts(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Alert>, StoreError>;

    /// The space's erasure records, newest first.
    async fn list_erasures(&self, space: &SpaceId, after: Option<i64>, limit: u32)
        -> Result<Page<Erasure>, StoreError>;

    /// An erasure record of the space.
    async fn get_erasure(&self, space: &SpaceId, id: &ErasureId) -> Result<Option<Erasure>, StoreError>;

    /// The public keys of the ES256 webhooks `owner` names (one webhook, or every one of
    /// a space), oldest webhook first, each webhook's current key before its previous
    /// one, the previous only while its overlap lasts at `now`; no secret is read.
    async fn published_keys(&self, owner: KeyOwner<'_>, now: Timestamp) -> Result<Vec<PublishedKey>, StoreError>;

    /// A webhook's recoveries, newest first.
    async fn list_recoveries(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<Recovery>, StoreError>;

    /// A recovery of a webhook.
    async fn get_recovery(
        &self,
        space: &SpaceId,
        webhook: &WebhookId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError>;

    /// The nodes known by their heartbeats, oldest first, the dead among them until
    /// they are forgotten (PostgreSQL); SQLite's one node, once it has had a heartbeat.
    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;

    /// The deliveries due at `now` and the disabled webhooks, counted through the
    /// pending-delivery index (a scan of the due ones, not of the history).
    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StoreError>;
}

/// Everything hookrelay persists, and whether the database can take it.
#[async_trait]
pub trait Store:
    ReadStore
    + SpaceStore
    + TokenStore
    + WebhookStore
    + IdempotencyStore
    + EventStore
    + DeliveryStore
    + ClaimStore
    + NodeStore
    + AttemptStore
    + AlertStore
    + RetentionStore
    + RecoveryStore
    + 'static
{
    /// Checks that the database answers and can be written to (on SQLite, that its
    /// writer thread runs).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Completes if the store breaks for good (SQLite's writer thread died): nothing
    /// can be written any more, and the process must stop rather than limp on.
    async fn broken(&self) -> StoreError;
}
