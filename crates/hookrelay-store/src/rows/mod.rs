//! What both backends read and write the same way: column reads that mean the same on
//! either ([`Columns`]), domain values decoded from rows (`decode`), the column lists
//! both backends select, and the associated data that binds a sealed secret to its row
//! (`seal`). Kept in one place so that SQLite and PostgreSQL cannot drift apart (a
//! sealed value written by one context and opened with another would never open).

mod decode;
mod erasure;
mod recovery;
mod seal;
mod tenancy;

pub(crate) use decode::*;
pub(crate) use erasure::*;
pub(crate) use recovery::*;
pub(crate) use seal::*;
pub(crate) use tenancy::*;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use hookrelay_core::webhook_settings::WebhookSettings;

use crate::{Page, StoreError};

/// The columns of `events` that [`decode_event`] reads.
pub(crate) const EVENT_COLUMNS: &str =
    "seq, id, space_id, name, object_id, object_type, data, delivery_count, create_time, trace_parent, data_remove_time";
/// The columns of a `deliveries d` joined with its `events e` that [`decode_delivery`] reads.
pub(crate) const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.space_id, d.webhook_id, d.event_id, e.name AS event_name, \
     d.status, d.attempt_count, d.next_attempt_time, d.create_time, d.update_time";
/// The columns of `delivery_attempts` that [`decode_attempt`] reads.
pub(crate) const ATTEMPT_COLUMNS: &str = "attempt, start_time, duration_ms, status_code, error_kind, response_body";
/// The columns of `nodes` that [`decode_node`] reads.
pub(crate) const NODE_COLUMNS: &str = "id, host, pid, started_time, heartbeat_time, timeout_micros";
/// The columns of `alert_email_holds` that [`decode_held_alert`] reads.
pub(crate) const HELD_COLUMNS: &str = "recipient, alert_id, webhook_id, kind, subject, create_time";
/// The columns of `alerts` that [`decode_alert`] reads.
pub(crate) const ALERT_COLUMNS: &str = "seq, id, space_id, webhook_id, kind, recipients, subject, text_body, \
     html_body, status, attempts, next_attempt_time, last_error, create_time, sent_time";
/// The columns of `webhook_health` that [`decode_health`] reads.
pub(crate) const HEALTH_COLUMNS: &str = "consecutive_failures, failing_since, failed_deliveries, last_status_code, \
     last_error_kind, last_response_body, last_failing_alert, alerted";

/// The columns of `webhooks` that [`decode_webhook`] reads, qualified by `table` (an
/// alias in a join). `events` is JSONB on PostgreSQL and is read back as its text.
pub(crate) fn webhook_columns(table: &str) -> String {
    [
        "seq",
        "id",
        "space_id",
        "name",
        "url",
        "enabled",
        "api_release",
        "verification_type",
        "secret_sealed",
        "public_key",
        "headers_sealed",
        "alert_emails",
        "metadata",
        "create_time",
        "update_time",
        "settings",
    ]
    .iter()
    .map(|column| format!("{table}.{column}"))
    .chain([format!("CAST({table}.events AS TEXT) AS events")])
    .collect::<Vec<_>>()
    .join(", ")
}

/// [`webhook_columns`] of the `webhooks` table itself.
pub(crate) static WEBHOOK_COLUMNS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| webhook_columns("webhooks"));

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
    /// A nullable column of text that may hold NUL (a receiver's answer, an alert's
    /// body): TEXT on SQLite, BYTEA holding UTF-8 on PostgreSQL, whose TEXT refuses NUL.
    fn opt_body(&self, column: &str) -> Result<Option<String>, StoreError>;

    /// A non-null column of [`Columns::opt_body`]'s kind.
    fn body(&self, column: &str) -> Result<String, StoreError> {
        self.opt_body(column)?.ok_or_else(|| corrupt(column, "NULL"))
    }
}

/// Implements [`Columns`] for a row type whose typed column read is `$get`; `$body`
/// names how it stores text that may hold NUL (`text` or `utf8_bytes`).
macro_rules! columns_for {
    ($row:ty, $get:ident, $body:ident) => {
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
            fn opt_body(&self, column: &str) -> Result<Option<String>, StoreError> {
                columns_for!(@body $body, self, $get, column)
            }
        }
    };
    (@body text, $row:ident, $get:ident, $column:ident) => {
        Ok($row.$get($column)?)
    };
    (@body utf8_bytes, $row:ident, $get:ident, $column:ident) => {
        $row.$get::<Option<Vec<u8>>, _>($column)?
            .map(|bytes| String::from_utf8(bytes).map_err(|_| corrupt($column, "non-UTF-8")))
            .transpose()
    };
}

columns_for!(SqliteRow, try_get, text);
columns_for!(PgRow, try_get, utf8_bytes);
// Rows read on the SQLite writer's own connection.
columns_for!(rusqlite::Row<'_>, get, text);

/// A stored value that does not decode.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

/// A JSON text column.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: &impl Columns, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.text(column)?).map_err(|e| corrupt(column, &e.to_string()))
}

/// A webhook's settings column: NULL until first changed, which means every default.
pub(crate) fn settings_column(row: &impl Columns) -> Result<WebhookSettings, StoreError> {
    let Some(text) = row.opt_text("settings")? else {
        return Ok(WebhookSettings::default());
    };
    let stored: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt("settings", &e.to_string()))?;
    WebhookSettings::from_stored(&stored).map_err(|e| corrupt("settings", &e.summary()))
}

/// A domain value as JSON text.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values always serialise")
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
