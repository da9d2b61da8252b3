//! A webhook's delivery settings (`/v1/webhooks/{id}/settings`), read with
//! `client.webhook().settings(id)` and changed with `update_settings`.

use serde::{Deserialize, Serialize};

/// How deliveries are put on the wire.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryFormat {
    /// Monime's headers and `Monime-Signature`.
    #[default]
    Monime,
    /// The Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks,
}

/// In what order a webhook's deliveries go out.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOrdering {
    /// Concurrently, as they fall due.
    #[default]
    None,
    /// Those of one `object.id` one at a time, in publish order.
    Object,
}

/// A webhook's delivery settings, as the server shows them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSettings {
    /// How deliveries are put on the wire.
    pub format: DeliveryFormat,
    /// In what order deliveries go out.
    pub ordering: DeliveryOrdering,
    /// At most this many deliveries a second; `None`: no limit.
    pub max_deliveries_per_second: Option<u32>,
    /// The webhook's own retry delays (e.g. `["0s", "5s", "5m"]`); `None`: the server's.
    pub retry_schedule: Option<Vec<String>>,
}

/// `PUT /v1/webhooks/{id}/settings`: `None` leaves a field alone; `Some(None)` resets a
/// nullable one to its default (sent as `null`).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhookSettings {
    /// New format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<DeliveryFormat>,
    /// New ordering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<DeliveryOrdering>,
    /// New rate limit, or `Some(None)` for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_deliveries_per_second: Option<Option<u32>>,
    /// New retry delays, or `Some(None)` for the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Option<Vec<String>>>,
}
