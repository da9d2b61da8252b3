//! What both backends decode the same way: reading columns off a row, turning event and
//! delivery rows into domain values, pages, and the associated data that binds a sealed
//! secret to its row. Kept in one place so that SQLite and PostgreSQL cannot drift apart
//! (a sealed value written by one context and opened with another would never open).

use hookrelay_core::delivery::{Delivery, DeliveryStatus};
use hookrelay_core::event::{Event, EventObject};
use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{ApiRelease, DeliveryId, EventId, SpaceId, Timestamp, VerificationMethod, Webhook, WebhookId};
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::{IdempotencyRecord, Page, StoreError, StoredEvent};

/// The column reads both backends' rows offer with the same meaning.
pub(crate) trait Columns {
    /// A non-null text column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A non-null integer column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// A non-null blob column.
    fn blob(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    /// A non-null boolean column.
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

/// Implements [`Columns`] for a row type whose typed column read is `$get`.
macro_rules! columns_for {
    ($row:ty, $get:ident) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, StoreError> {
                Ok(self.$get(column)?)
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                Ok(self.$get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.$get(column)?)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                Ok(self.$get(column)?)
            }
            fn blob(&self, column: &str) -> Result<Vec<u8>, StoreError> {
                Ok(self.$get(column)?)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                Ok(self.$get(column)?)
            }
        }
    };
}

columns_for!(SqliteRow, try_get);
columns_for!(PgRow, try_get);
// Rows read on the SQLite writer's own connection.
columns_for!(rusqlite::Row<'_>, get);

/// How long a claimed delivery whose row cannot be read (a corrupt value, a secret that
/// does not open) is set aside, leased to nobody's use, before a claim tries it again: it
/// must not stop the deliveries due after it, and should it be mended, it goes out.
pub(crate) const UNREADABLE_SET_ASIDE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Until when an unreadable delivery of `claim` is set aside: five minutes, or the
/// claim's own lease if that is longer.
pub(crate) fn set_aside_until(claim: &crate::ClaimRequest) -> hookrelay_core::Timestamp {
    claim
        .now
        .plus_micros(UNREADABLE_SET_ASIDE.as_micros() as i64)
        .max(claim.lease_until)
}

/// A claimed delivery that could not be read, and why.
pub(crate) struct Unreadable {
    pub delivery_id: String,
    pub cause: String,
}

impl Unreadable {
    pub fn new(delivery_id: String, error: &StoreError) -> Self {
        Self {
            delivery_id,
            cause: hookrelay_core::error_chain(error),
        }
    }

    /// Tells the operator, once per claim that meets them: the first few one by one
    /// (a wrong master key makes every delivery unreadable), then how many in all.
    pub fn log(unreadable: &[Self]) {
        const NAMED: usize = 5;
        for row in unreadable.iter().take(NAMED) {
            tracing::error!(
                delivery = %row.delivery_id,
                cause = %row.cause,
                set_aside_secs = UNREADABLE_SET_ASIDE.as_secs(),
                "a claimed delivery cannot be read; it is set aside and tried again later, the others go on"
            );
        }
        if unreadable.len() > NAMED {
            tracing::error!(
                unreadable = unreadable.len(),
                "claimed deliveries that cannot be read were set aside (the first {NAMED} are named above)"
            );
        }
    }
}

/// A stored value that does not decode.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

/// A JSON text column.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: &impl Columns, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.text(column)?).map_err(|e| corrupt(column, &e.to_string()))
}

/// A domain value as JSON text.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values always serialise")
}

/// Associated data of a webhook's sealed headers.
pub(crate) fn headers_context(id: &WebhookId) -> Vec<u8> {
    format!("{id}/headers").into_bytes()
}

/// Associated data of a sealed idempotent response.
pub(crate) fn idempotency_context(space: &SpaceId, key: &str) -> Vec<u8> {
    format!("idempotency/{space}/{key}").into_bytes()
}

/// The record with its body sealed, as it is saved: a saved response can contain a
/// webhook's secret. Sealed before the write, so the writer does not spend its time on it.
pub(crate) fn seal_idempotency(cipher: &SecretCipher, mut record: IdempotencyRecord) -> IdempotencyRecord {
    record.body = cipher.seal(&record.body, &idempotency_context(&record.space_id, &record.key));
    record
}

/// Decodes a `webhooks` row of either backend, opening its secrets.
pub(crate) fn decode_webhook(cipher: &SecretCipher, row: &impl Columns) -> Result<Webhook, StoreError> {
    let id_text = row.text("id")?;
    let id = WebhookId::parse(&id_text).ok_or_else(|| corrupt("webhook id", &id_text))?;
    let space_text = row.text("space_id")?;
    let space_id = SpaceId::parse(&space_text).ok_or_else(|| corrupt("space id", &space_text))?;
    let secret = cipher.open(&row.blob("secret_sealed")?, id.as_str().as_bytes())?;
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
    let release = row.text("api_release")?;
    Ok(Webhook {
        space_id,
        name: row.text("name")?,
        url: row.text("url")?,
        enabled: row.flag("enabled")?,
        events: json_column(row, "events")?,
        api_release: ApiRelease::parse(&release).ok_or_else(|| corrupt("api release", &release))?,
        verification,
        headers: serde_json::from_slice(&headers).map_err(|e| corrupt("headers", &e.to_string()))?,
        alert_emails: json_column(row, "alert_emails")?,
        metadata: json_column(row, "metadata")?,
        create_time: Timestamp::from_micros(row.int("create_time")?),
        update_time: Timestamp::from_micros(row.int("update_time")?),
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
) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId::parse(id).ok_or_else(|| corrupt("event id", id))?,
        space_id: SpaceId::parse(space_id).ok_or_else(|| corrupt("space id", space_id))?,
        name,
        object,
        data: RawValue::from_string(data).map_err(|e| corrupt("event data", &e.to_string()))?,
        create_time: Timestamp::from_micros(create_time),
    })
}

/// An `events` row.
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
        )?,
        delivery_count: u32::try_from(delivery_count)
            .map_err(|_| corrupt("delivery count", &delivery_count.to_string()))?,
    })
}

/// A `deliveries` row joined with its event's name (`event_name`).
pub(crate) fn decode_delivery(row: &impl Columns) -> Result<Delivery, StoreError> {
    let id = row.text("id")?;
    let space = row.text("space_id")?;
    let webhook = row.text("webhook_id")?;
    let event = row.text("event_id")?;
    let status = row.text("status")?;
    let attempts = row.int("attempt_count")?;
    Ok(Delivery {
        id: DeliveryId::parse(&id).ok_or_else(|| corrupt("delivery id", &id))?,
        space_id: SpaceId::parse(&space).ok_or_else(|| corrupt("space id", &space))?,
        webhook_id: WebhookId::parse(&webhook).ok_or_else(|| corrupt("webhook id", &webhook))?,
        event_id: EventId::parse(&event).ok_or_else(|| corrupt("event id", &event))?,
        event_name: row.text("event_name")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("delivery status", &status))?,
        attempt_count: u32::try_from(attempts).map_err(|_| corrupt("attempt count", &attempts.to_string()))?,
        next_attempt_time: row.opt_int("next_attempt_time")?.map(Timestamp::from_micros),
        create_time: Timestamp::from_micros(row.int("create_time")?),
        update_time: Timestamp::from_micros(row.int("update_time")?),
    })
}

/// One page from rows fetched with `LIMIT limit + 1`, newest first, continuing at `seq`.
pub(crate) fn page<R: Columns, T>(
    rows: Vec<R>,
    limit: u32,
    decode: impl Fn(&R) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let has_more = rows.len() > limit as usize;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next = match (has_more, rows.last()) {
        (true, Some(last)) => Some(last.int("seq")?),
        _ => None,
    };
    let items = rows.iter().map(decode).collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookrelay_core::Timestamp;

    #[test]
    fn an_unreadable_delivery_is_set_aside_five_minutes_or_its_claims_lease_if_longer() {
        let claim = |lease_secs: i64| crate::ClaimRequest {
            now: Timestamp::from_micros(0),
            lease_until: Timestamp::from_micros(lease_secs * 1_000_000),
            owner: "n".into(),
            limit: 1,
            per_webhook: 1,
            skip_webhooks: Vec::new(),
        };
        assert_eq!(set_aside_until(&claim(60)), Timestamp::from_micros(300_000_000));
        assert_eq!(set_aside_until(&claim(600)), Timestamp::from_micros(600_000_000));
    }
}
