//! The values the store's traits take and give, beyond the domain's own.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::alert::AlertStatus;
use hookrelay_core::alert_limit::HeldAlert;
use hookrelay_core::delivery::{Delivery, DeliveryAttempt};
use hookrelay_core::event::Event;
use hookrelay_core::quota::QuotaOverrides;
use hookrelay_core::record::Lease;
use hookrelay_core::retention::{Removed, SpaceRetention};
use hookrelay_core::{DeliveryId, SpaceId, Timestamp, Webhook, WebhookId};

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
    /// When the record stops answering replays and the key is free again.
    pub expire_time: Timestamp,
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
    /// When its data was removed (its payload period ended, or it was erased); its
    /// `data` is then `{}`.
    pub data_remove_time: Option<Timestamp>,
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

impl ClaimRequest {
    /// The lease this claim takes.
    pub fn lease(&self) -> Lease {
        Lease {
            owner: self.owner.clone(),
            until: self.lease_until,
        }
    }
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
    /// The claim's lease: its record counts only while the delivery is still under it.
    pub lease: Lease,
}

/// A node as its heartbeat announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeBeat {
    /// The node's id: the owner its leases name.
    pub id: String,
    /// The machine it runs on, for operators.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// When it started.
    pub started: Timestamp,
    /// How old its heartbeat may grow before the others take its deliveries over.
    pub timeout: Duration,
}

/// The work waiting in the whole database (every node's, on PostgreSQL), for the
/// server's gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// Pending deliveries whose next attempt time has come (those in flight among them).
    pub due: u64,
    /// The earliest next attempt time among them.
    pub oldest_due: Option<Timestamp>,
    /// Webhooks disabled, by their owners or by their failures.
    pub disabled_webhooks: u64,
}

/// A node as the store last heard from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its id, host, process, start and timeout, as it announced them.
    pub node: NodeBeat,
    /// When its last heartbeat was written (by the database's clock).
    pub heartbeat: Timestamp,
}

impl NodeRecord {
    /// Whether the node counts as alive at `now` (by the database's clock): its
    /// heartbeat is no older than its timeout.
    pub fn alive_at(&self, now: Timestamp) -> bool {
        hookrelay_core::node::is_alive(self.heartbeat, self.node.timeout, now)
    }
}

/// How an attempt to send an alert ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertOutcome {
    /// The mail server accepted it.
    Sent,
    /// E-mail is off: the alert was logged instead.
    Skipped,
    /// Every recipient had reached its limit: the alert waits in their digests.
    Suppressed,
    /// Sending failed; try again at `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// Why it failed (no secrets).
        error: String,
    },
}

/// The alert columns an [`AlertOutcome`] at `now` writes.
pub(crate) struct FinishedAlert {
    pub status: AlertStatus,
    pub next_attempt_time: Option<i64>,
    pub sent_time: Option<i64>,
    /// `None` keeps the last error.
    pub error: Option<String>,
}

impl AlertOutcome {
    pub(crate) fn columns(&self, now: Timestamp) -> FinishedAlert {
        match self {
            Self::Sent => FinishedAlert {
                status: AlertStatus::Sent,
                next_attempt_time: None,
                sent_time: Some(now.as_micros()),
                error: None,
            },
            Self::Skipped => FinishedAlert {
                status: AlertStatus::Skipped,
                next_attempt_time: None,
                sent_time: None,
                error: None,
            },
            Self::Suppressed => FinishedAlert {
                status: AlertStatus::Suppressed,
                next_attempt_time: None,
                sent_time: None,
                error: None,
            },
            // PostgreSQL's TEXT refuses NUL, which a quoted server answer might hold.
            Self::Retry { at, error } => FinishedAlert {
                status: AlertStatus::Pending,
                next_attempt_time: Some(at.as_micros()),
                sent_time: None,
                error: Some(error.replace('\0', "\u{fffd}")),
            },
        }
    }
}

/// The alerts held back from one address whose digest is due, claimed under a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The address (lowercased).
    pub recipient: String,
    /// The claim's lease, which also names the claim when it is finished.
    pub lease_until: Timestamp,
    /// The alerts held back.
    pub held: Vec<HeldAlert>,
}

/// A delivery with its attempt log.
#[derive(Clone, Debug)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: Delivery,
    /// Every attempt, first first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// A space as an operator lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceSummary {
    /// Its id.
    pub id: SpaceId,
    /// When it was created.
    pub create_time: Timestamp,
    /// Whether its tokens are refused and its deliveries paused.
    pub disabled: bool,
    /// Its own quotas.
    pub quotas: QuotaOverrides,
    /// Its own retention.
    pub retention: SpaceRetention,
    /// How many webhooks it has.
    pub webhooks: u64,
    /// How many access tokens it has.
    pub tokens: u64,
}

/// A change to a space's quotas: for each, `None` leaves it, `Some(None)` returns it to
/// the server's default, `Some(Some(n))` sets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaChange {
    /// See [`QuotaOverrides::max_webhooks`].
    pub max_webhooks: Option<Option<u32>>,
    /// See [`QuotaOverrides::max_publish_rate`].
    pub max_publish_rate: Option<Option<u32>>,
    /// See [`QuotaOverrides::max_fan_out`].
    pub max_fan_out: Option<Option<u32>>,
}

impl QuotaChange {
    /// Each column's new value as stored (NULL for the default), and whether to set it.
    pub(crate) fn columns(&self) -> [(bool, Option<i64>); 3] {
        [self.max_webhooks, self.max_publish_rate, self.max_fan_out]
            .map(|change| (change.is_some(), change.flatten().map(i64::from)))
    }
}

/// A change to a space's retention: for each, `None` leaves it, `Some(None)` returns it
/// to the server's default, `Some(Some(d))` sets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionChange {
    /// See [`SpaceRetention::retention`].
    pub retention: Option<Option<Duration>>,
    /// See [`SpaceRetention::payload_retention`].
    pub payload_retention: Option<Option<Duration>>,
}

impl RetentionChange {
    /// Each column's new value as stored (microseconds, NULL for the default), and
    /// whether to set it.
    pub(crate) fn columns(&self) -> [(bool, Option<i64>); 2] {
        [self.retention, self.payload_retention].map(|change| {
            let micros = change.flatten().map(hookrelay_core::timestamp::saturating_micros);
            (change.is_some(), micros)
        })
    }
}

/// What one batch of the cleaner did, and where the next goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanBatch {
    /// Rows deleted and payloads dropped.
    pub removed: Removed,
    /// The position of the last event read: the next batch reads after it.
    pub next_after: i64,
    /// Events passed over because they were still being delivered (payload expiry).
    pub waiting: Vec<i64>,
    /// Whether the space has nothing more for this run.
    pub done: bool,
}

/// What one batch of an erasure did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErasedBatch {
    /// Events whose data it removed.
    pub events: u64,
    /// Pending deliveries of theirs it cancelled.
    pub deliveries_cancelled: u64,
    /// Whether more events may be left to erase.
    pub more: bool,
}
