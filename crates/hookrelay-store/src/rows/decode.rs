//! Domain values from the rows of either backend.

use std::sync::Arc;

use hookrelay_core::alert::{render, Alert};
use hookrelay_core::alert::{AlertKind, AlertMessage, AlertStatus, AlertSubject, WebhookHealth};
use hookrelay_core::alert_limit::HeldAlert;
use hookrelay_core::delivery::{Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::record::Lease;
use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{
    AlertId, ApiRelease, DeliveryId, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId,
};
use serde_json::value::RawValue;

use super::{corrupt, headers_context, idempotency_context, json_column, secret_context, Columns};
use crate::{ClaimedDelivery, Digest, IdempotencyRecord, NodeBeat, NodeRecord, StoreError, StoredEvent};

/// A non-negative count column as `u32`, saturating (counts only grow).
fn count(row: &impl Columns, column: &str) -> Result<u32, StoreError> {
    Ok(u32::try_from(row.int(column)?.max(0)).unwrap_or(u32::MAX))
}

/// An id column, parsed by `parse`.
pub(super) fn id<T>(row: &impl Columns, column: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text = row.text(column)?;
    parse(&text).ok_or_else(|| corrupt(column, &text))
}

/// Decodes a `webhooks` row of either backend, opening its secrets.
pub(crate) fn decode_webhook(cipher: &SecretCipher, row: &impl Columns) -> Result<Webhook, StoreError> {
    let id = id(row, "id", WebhookId::parse)?;
    let secret = cipher.open(&row.blob("secret_sealed")?, secret_context(&id))?;
    let verification = match row.text("verification_type")?.as_str() {
        "HS256" => VerificationMethod::Hs256 {
            secret: String::from_utf8(secret).map_err(|_| corrupt("HS256 secret", "non-UTF-8"))?,
        },
        "ES256" => VerificationMethod::Es256 {
            private_key: secret,
            public_key_pem: row
                .opt_text("public_key")?
                .ok_or_else(|| corrupt("ES256 public key", "missing"))?,
        },
        other => return Err(corrupt("verification type", other)),
    };
    let headers = cipher.open(&row.blob("headers_sealed")?, &headers_context(&id))?;
    Ok(Webhook {
        space_id: self::id(row, "space_id", SpaceId::parse)?,
        name: row.text("name")?,
        url: row.text("url")?,
        enabled: row.flag("enabled")?,
        events: json_column(row, "events")?,
        api_release: self::id(row, "api_release", ApiRelease::parse)?,
        verification,
        headers: serde_json::from_slice(&headers).map_err(|e| corrupt("headers", &e.to_string()))?,
        alert_emails: json_column(row, "alert_emails")?,
        metadata: json_column(row, "metadata")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        update_time: Timestamp::from_micros(row.int("update_time")?),
        settings: super::settings_column(row)?,
        id,
    })
}

/// An event from its stored columns, whatever a query named them.
pub(crate) fn event_from_columns(
    id: &str,
    space_id: &str,
    name: String,
    object: EventObject,
    data: String,
    create_time: i64,
    trace_parent: Option<String>,
) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId::parse(id).ok_or_else(|| corrupt("event id", id))?,
        space_id: SpaceId::parse(space_id).ok_or_else(|| corrupt("space id", space_id))?,
        name,
        object,
        data: RawValue::from_string(data).map_err(|e| corrupt("event data", &e.to_string()))?,
        create_time: Timestamp::from_micros(create_time),
        trace_parent,
    })
}

/// An `events` row ([`super::EVENT_COLUMNS`]).
pub(crate) fn decode_event(row: &impl Columns) -> Result<StoredEvent, StoreError> {
    let delivery_count = row.int("delivery_count")?;
    Ok(StoredEvent {
        event: event_from_columns(
            &row.text("id")?,
            &row.text("space_id")?,
            row.text("name")?,
            EventObject {
                id: row.text("object_id")?,
                object_type: row.text("object_type")?,
            },
            row.text("data")?,
            row.int("create_time")?,
            row.opt_text("trace_parent")?,
        )?,
        delivery_count: u32::try_from(delivery_count)
            .map_err(|_| corrupt("delivery count", &delivery_count.to_string()))?,
        data_remove_time: row.opt_int("data_remove_time")?.map(Timestamp::from_micros),
    })
}

/// A `deliveries` row joined with its event's name ([`super::DELIVERY_COLUMNS`]).
pub(crate) fn decode_delivery(row: &impl Columns) -> Result<Delivery, StoreError> {
    let status = row.text("status")?;
    let attempts = row.int("attempt_count")?;
    Ok(Delivery {
        id: id(row, "id", DeliveryId::parse)?,
        space_id: id(row, "space_id", SpaceId::parse)?,
        webhook_id: id(row, "webhook_id", WebhookId::parse)?,
        event_id: id(row, "event_id", EventId::parse)?,
        event_name: row.text("event_name")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("delivery status", &status))?,
        attempt_count: u32::try_from(attempts).map_err(|_| corrupt("attempt count", &attempts.to_string()))?,
        next_attempt_time: row.opt_int("next_attempt_time")?.map(Timestamp::from_micros),
        create_time: Timestamp::from_micros(row.int("create_time")?),
        update_time: Timestamp::from_micros(row.int("update_time")?),
    })
}

/// The delivery `id` of `event` to `webhook` as publishing creates it: pending, due at once.
pub(crate) fn pending_delivery(id: DeliveryId, event: &Event, webhook: &WebhookId) -> Delivery {
    Delivery {
        id,
        space_id: event.space_id.clone(),
        webhook_id: webhook.clone(),
        event_id: event.id.clone(),
        event_name: event.name.clone(),
        status: DeliveryStatus::Pending,
        attempt_count: 0,
        next_attempt_time: Some(event.create_time),
        create_time: event.create_time,
        update_time: event.create_time,
    }
}

/// A `delivery_attempts` row ([`super::ATTEMPT_COLUMNS`]).
pub(crate) fn decode_attempt(row: &impl Columns) -> Result<DeliveryAttempt, StoreError> {
    let number = row.int("attempt")?;
    let status: Option<i64> = row.opt_int("status_code")?;
    Ok(DeliveryAttempt {
        attempt: u32::try_from(number).map_err(|_| corrupt("attempt", &number.to_string()))?,
        start_time: Timestamp::from_micros(row.int("start_time")?),
        duration_ms: count(row, "duration_ms")?,
        status_code: status.and_then(|s| u16::try_from(s).ok()),
        error_kind: match row.opt_text("error_kind")? {
            None => None,
            Some(kind) => Some(ErrorKind::parse(&kind).ok_or_else(|| corrupt("error kind", &kind))?),
        },
        response_body: row.opt_body("response_body")?,
    })
}

/// A claimed delivery from its row's columns and what it sends.
pub(crate) fn claimed_delivery(
    delivery_id: &str,
    attempt_count: i64,
    update_time: i64,
    event: Arc<Event>,
    webhook: Arc<Webhook>,
    lease: Lease,
) -> Result<ClaimedDelivery, StoreError> {
    Ok(ClaimedDelivery {
        delivery_id: DeliveryId::parse(delivery_id).ok_or_else(|| corrupt("delivery id", delivery_id))?,
        attempt: u32::try_from(attempt_count + 1).map_err(|_| corrupt("attempt count", &attempt_count.to_string()))?,
        event,
        webhook,
        update_time: Timestamp::from_micros(update_time),
        lease,
    })
}

/// A delivery's `lease_owner` and `lease_until` columns.
pub(crate) type LeaseColumns = (Option<String>, Option<i64>);

/// A delivery's lease as its columns hold it; `None` without one. What
/// [`hookrelay_core::record::AttemptResult::holds_lease`] compares.
pub(crate) fn held_lease(columns: Option<&LeaseColumns>) -> Option<(&str, Timestamp)> {
    let (owner, until) = columns?;
    Some((owner.as_deref()?, Timestamp::from_micros((*until)?)))
}

/// A `nodes` row ([`super::NODE_COLUMNS`]).
pub(crate) fn decode_node(row: &impl Columns) -> Result<NodeRecord, StoreError> {
    let pid = row.int("pid")?;
    Ok(NodeRecord {
        node: NodeBeat {
            id: row.text("id")?,
            host: row.text("host")?,
            pid: u32::try_from(pid).map_err(|_| corrupt("pid", &pid.to_string()))?,
            started: Timestamp::from_micros(row.int("started_time")?),
            timeout: std::time::Duration::from_micros(u64::try_from(row.int("timeout_micros")?.max(0)).unwrap_or(0)),
        },
        heartbeat: Timestamp::from_micros(row.int("heartbeat_time")?),
    })
}

/// A `webhook_health` row ([`super::HEALTH_COLUMNS`]).
pub(crate) fn decode_health(row: &impl Columns) -> Result<WebhookHealth, StoreError> {
    Ok(WebhookHealth {
        consecutive_failures: count(row, "consecutive_failures")?,
        failing_since: row.opt_int("failing_since")?.map(Timestamp::from_micros),
        failed_deliveries: count(row, "failed_deliveries")?,
        last_status_code: row.opt_int("last_status_code")?.and_then(|c| u16::try_from(c).ok()),
        last_error_kind: row.opt_text("last_error_kind")?.as_deref().and_then(ErrorKind::parse),
        last_response_body: row.opt_body("last_response_body")?,
        last_failing_alert: row.opt_int("last_failing_alert")?.map(Timestamp::from_micros),
        alerted: row.flag("alerted")?,
    })
}

/// An `alerts` row ([`super::ALERT_COLUMNS`]).
pub(crate) fn decode_alert(row: &impl Columns) -> Result<Alert, StoreError> {
    let (kind, status) = (row.text("kind")?, row.text("status")?);
    Ok(Alert {
        id: id(row, "id", AlertId::parse)?,
        space_id: id(row, "space_id", SpaceId::parse)?,
        webhook_id: id(row, "webhook_id", WebhookId::parse)?,
        kind: AlertKind::parse(&kind).ok_or_else(|| corrupt("alert kind", &kind))?,
        recipients: json_column(row, "recipients")?,
        message: AlertMessage {
            subject: row.text("subject")?,
            text: row.body("text_body")?,
            html: row.body("html_body")?,
        },
        status: AlertStatus::parse(&status).ok_or_else(|| corrupt("alert status", &status))?,
        attempts: count(row, "attempts")?,
        next_attempt_time: row.opt_int("next_attempt_time")?.map(Timestamp::from_micros),
        last_error: row.opt_text("last_error")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        sent_time: row.opt_int("sent_time")?.map(Timestamp::from_micros),
    })
}

/// An alert to queue, as both backends insert it.
pub(crate) struct NewAlert {
    pub id: AlertId,
    pub space_id: String,
    pub kind: AlertKind,
    /// JSON array of addresses.
    pub recipients: String,
    pub message: AlertMessage,
}

/// The alert of `kind` about the webhook of `row` (its `space_id`, `name`, `url` and
/// `alert_emails`), or `None` when it has no `alertEmails` (then it is only logged).
pub(crate) fn new_alert(
    row: &impl Columns,
    webhook: &WebhookId,
    kind: AlertKind,
    health: &WebhookHealth,
) -> Result<Option<NewAlert>, StoreError> {
    let recipients: Vec<String> = json_column(row, "alert_emails")?;
    if recipients.is_empty() {
        tracing::info!(webhook = %webhook, kind = kind.as_str(), "alert raised; the webhook has no alertEmails");
        return Ok(None);
    }
    let (name, url) = (row.text("name")?, row.text("url")?);
    let subject = AlertSubject {
        id: webhook.as_str(),
        name: &name,
        url: &url,
    };
    Ok(Some(NewAlert {
        id: AlertId::generate(),
        space_id: row.text("space_id")?,
        kind,
        recipients: super::to_json(&recipients),
        message: render(kind, &subject, health),
    }))
}

/// A saved idempotency record (`fingerprint`, `status`, `body`, `create_time`) for `key`,
/// its body opened.
pub(crate) fn decode_idempotency(
    cipher: &SecretCipher,
    row: &impl Columns,
    space: &SpaceId,
    key: &str,
) -> Result<IdempotencyRecord, StoreError> {
    let status = row.int("status")?;
    Ok(IdempotencyRecord {
        space_id: space.clone(),
        key: key.to_owned(),
        fingerprint: row.blob("fingerprint")?,
        status: u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?,
        body: cipher.open(&row.blob("body")?, &idempotency_context(space, key))?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        expire_time: Timestamp::from_micros(row.int("expire_time")?),
    })
}

/// An `alert_email_holds` row ([`super::HELD_COLUMNS`]): its address and the alert held.
pub(crate) fn decode_held_alert(row: &impl Columns) -> Result<(String, HeldAlert), StoreError> {
    let kind = row.text("kind")?;
    let held = HeldAlert {
        alert_id: row.text("alert_id")?,
        webhook_id: row.text("webhook_id")?,
        kind: AlertKind::parse(&kind).ok_or_else(|| corrupt("alert kind", &kind))?,
        subject: row.text("subject")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
    };
    Ok((row.text("recipient")?, held))
}

/// Claimed held alerts, one digest per address.
pub(crate) fn group_digests(rows: Vec<(String, HeldAlert)>, lease_until: Timestamp) -> Vec<Digest> {
    let mut by_recipient: std::collections::BTreeMap<String, Vec<HeldAlert>> = Default::default();
    for (recipient, held) in rows {
        by_recipient.entry(recipient).or_default().push(held);
    }
    by_recipient
        .into_iter()
        .map(|(recipient, held)| Digest {
            recipient,
            lease_until,
            held,
        })
        .collect()
}
