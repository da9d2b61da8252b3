//! The API's objects and envelopes, named and shaped as on the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `{success, messages, result}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ApiResponse<T> {
    /// Always true for a successful call.
    pub success: bool,
    /// Informational messages.
    pub messages: Vec<Value>,
    /// The object.
    pub result: T,
}

/// `{success, messages, result: [...], pagination}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ApiListResponse<T> {
    /// Always true for a successful call.
    pub success: bool,
    /// Informational messages.
    pub messages: Vec<Value>,
    /// This page's items, newest first.
    pub result: Vec<T>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

/// Page information.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Pagination {
    /// Items on this page.
    pub count: u64,
    /// Cursor for the next page (`after`), `None` on the last page.
    pub next: Option<String>,
}

/// Which page to fetch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Items per page, 1–50 (server default 10).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// The API release whose schemas a webhook receives.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ApiRelease {
    /// `caph`.
    #[default]
    Caph,
    /// `siriusb`.
    Siriusb,
}

/// How a new webhook's deliveries are signed. `Debug` hides the secret.
#[derive(Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type")]
pub enum NewVerificationMethod {
    /// HMAC-SHA-256 with your secret (32–256 characters).
    #[serde(rename = "HS256")]
    Hs256 {
        /// The shared secret.
        secret: String,
    },
    /// ECDSA P-256; the server generates the key pair and returns the public key.
    #[serde(rename = "ES256")]
    Es256,
}

/// How a webhook's deliveries are signed, as the API returns it. `Debug` hides the secret.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type")]
pub enum VerificationMethod {
    /// HMAC-SHA-256.
    #[serde(rename = "HS256")]
    Hs256 {
        /// The shared secret.
        secret: String,
    },
    /// ECDSA P-256.
    #[serde(rename = "ES256")]
    Es256 {
        /// PEM SubjectPublicKeyInfo to verify signatures with.
        #[serde(rename = "publicKey")]
        public_key: String,
    },
}

/// A webhook. `Debug` hides its secret and its header values.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `whk-…`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Where deliveries go.
    pub url: String,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Subscribed events.
    pub events: Vec<String>,
    /// Payload release.
    pub api_release: ApiRelease,
    /// Signing method.
    pub verification_method: VerificationMethod,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Who hears about repeated failures.
    #[serde(default)]
    pub alert_emails: Vec<String>,
    /// When it was created (RFC 3339).
    pub create_time: String,
    /// When it last changed (RFC 3339).
    pub update_time: Option<String>,
    /// Your annotations.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// `POST /v1/webhooks`. `Debug` hides the secret and the header values.
#[derive(Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateWebhook {
    /// 1–100 characters.
    pub name: String,
    /// Absolute http(s) URL, at most 255 characters.
    pub url: String,
    /// Payload release (default `caph`).
    pub api_release: ApiRelease,
    /// 1–100 event names from the catalog.
    pub events: Vec<String>,
    /// Default: enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default: HS256 with a generated 48-character secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_method: Option<NewVerificationMethod>,
    /// At most 10; not `Content-Type`, `User-Agent`, `Host`, … nor `Monime-*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// At most 2 addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_emails: Option<Vec<String>>,
    /// At most 64 keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `PATCH /v1/webhooks/{id}`: only the fields set change. `Debug` hides the header values.
#[derive(Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhook {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Enable or disable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// New release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_release: Option<ApiRelease>,
    /// New subscriptions (replace the old).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// New headers (replace the old; empty clears).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// New alert e-mails (replace the old; empty clears).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_emails: Option<Vec<String>>,
    /// New metadata (replaces the old).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// What an event is about.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct EventObject {
    /// Its id, e.g. `pmt-…`.
    pub id: String,
    /// Its type, e.g. `payment`.
    #[serde(rename = "type")]
    pub object_type: String,
}

/// `POST /v1/events`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PublishEvent {
    /// An event name from the catalog, e.g. `payment.completed`.
    pub name: String,
    /// What it is about.
    pub object: EventObject,
    /// The object as published (a JSON object).
    pub data: Value,
}

/// A published event.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `evt-…`.
    pub id: String,
    /// Event name.
    pub name: String,
    /// What it is about.
    pub object: EventObject,
    /// The object as published; `Null` once removed (`data_removed`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// Whether its data was removed (payload retention or an erasure).
    #[serde(default)]
    pub data_removed: bool,
    /// When its data was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_remove_time: Option<String>,
    /// When it was published.
    pub create_time: String,
    /// Deliveries it created.
    pub delivery_count: u32,
}

/// One event's delivery to one webhook.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// `dlv-…`.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The event.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made.
    pub attempt_count: u32,
    /// When the next attempt is due.
    pub next_attempt_time: Option<String>,
    /// When it was created.
    pub create_time: String,
    /// When it last changed.
    pub update_time: String,
    /// The attempt log (single-delivery reads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<DeliveryAttempt>>,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// 1, 2, 3, …
    pub attempt: u32,
    /// When it started.
    pub start_time: String,
    /// How long it took.
    pub duration_ms: u32,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed (`http_status`, `timeout`, `connect`, …).
    pub error_kind: Option<String>,
    /// The first 1 KiB of the response body.
    pub response_body: Option<String>,
}

/// Which deliveries to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryListParams {
    /// Only this status (`pending`, `succeeded`, `failed`, `cancelled`).
    pub status: Option<String>,
    /// Items per page.
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// An alert e-mail raised about a webhook's health.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `alr-…`.
    pub id: String,
    /// The webhook it is about.
    pub webhook_id: String,
    /// Why it was raised: `failing`, `recovered` or `disabled`.
    pub kind: String,
    /// The webhook's `alertEmails` when it was raised.
    pub recipients: Vec<String>,
    /// The e-mail's subject line.
    pub subject: String,
    /// `pending`, `sent`, `skipped` (e-mail is off on the server) or `suppressed` (every
    /// recipient had reached its alert e-mail limit; listed in a digest instead).
    pub status: String,
    /// Sending attempts made.
    pub attempts: u32,
    /// When the next sending attempt is due (pending alerts).
    pub next_attempt_time: Option<String>,
    /// Why the last failed sending attempt failed.
    pub last_error: Option<String>,
    /// When it was raised.
    pub create_time: String,
    /// When the mail server accepted it.
    pub sent_time: Option<String>,
}

/// An access token of the space, as listed: never the token itself.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// `tok-…`: the token's record, not the token.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do, e.g. `webhooks:read`, `events:publish`.
    pub scopes: Vec<String>,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    /// When it was created.
    pub create_time: String,
    /// When it was last used, to the minute.
    pub last_used_time: Option<String>,
    /// When it stops working.
    pub expire_time: Option<String>,
}

/// A token just created: its record, and the token, shown this once. `Debug` hides the
/// token.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct CreatedToken {
    /// The record, as lists show it.
    #[serde(flatten)]
    pub record: Token,
    /// The token: send it as `Authorization: Bearer <token>`. It is not shown again.
    pub token: String,
}

/// `POST /v1/tokens`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreateToken {
    /// What it is for, 1–100 characters.
    pub name: String,
    /// What it may do: scopes the calling token has.
    pub scopes: Vec<String>,
    /// When it stops working (RFC 3339, in the future); never if absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
}

/// `POST /v1/erasures`: erase the data of an object's events.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreateErasure {
    /// The object (`object.id` as published).
    pub object_id: String,
    /// Only events published at or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Only events published before this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The record of an erasure; it holds no event data.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    /// `ers-…`.
    pub id: String,
    /// The object whose events were erased.
    pub object_id: String,
    /// As asked.
    pub from: Option<String>,
    /// As asked.
    pub to: Option<String>,
    /// Events whose data it removed.
    pub events_erased: u64,
    /// Pending deliveries of those events it cancelled.
    pub deliveries_cancelled: u64,
    /// When it was made.
    pub create_time: String,
}

/// `POST /v1/webhooks/{id}/recoveries`: retry a webhook's failed deliveries in bulk.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreateRecovery {
    /// Deliveries that ended at or after this time (RFC 3339).
    pub since: String,
    /// …and before this time (RFC 3339); now if absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `failed`, `cancelled`; both if absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<String>>,
}

/// A bulk recovery and its progress.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    /// `rcv-…`.
    pub id: String,
    /// The webhook whose deliveries it retries.
    pub webhook_id: String,
    /// As asked.
    pub since: String,
    /// As asked, or the request's time.
    pub until: String,
    /// The statuses it recovers.
    pub statuses: Vec<String>,
    /// `running`, `completed` or `cancelled` (its webhook was deleted or disabled first).
    pub status: String,
    /// Deliveries read so far that ended in the window with one of the statuses.
    pub matched: u64,
    /// Of those, retried.
    pub requeued: u64,
    /// Of those, left as they were: their event's data was removed.
    pub skipped: u64,
    /// When it was asked for.
    pub create_time: String,
    /// When it completed or was cancelled.
    pub finish_time: Option<String>,
}
