//! A webhook's delivery settings: how its deliveries are formatted, ordered, paced and
//! retried. They live beside the webhook, in their own resource
//! (`GET/PUT /v1/webhooks/{id}/settings`), because Monime's webhook body admits no
//! fields beyond its contract. Every field has a default, so a webhook that never had
//! its settings changed behaves as before they existed.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::delivery::{parse_duration, RetrySchedule};
use crate::validation::ValidationErrors;

/// The fields the settings resource takes (`additionalProperties: false`).
pub const FIELDS: &[&str] = &["format", "ordering", "maxDeliveriesPerSecond", "retrySchedule"];

/// Bounds of the settings.
pub mod limits {
    /// `maxDeliveriesPerSecond`: 1..=10,000.
    pub const RATE_MAX: u32 = 10_000;
    /// `retrySchedule`: at most this many attempts.
    pub const SCHEDULE_ATTEMPTS_MAX: usize = 50;
    /// `retrySchedule`: no delay longer than this (7 days, in seconds).
    pub const SCHEDULE_DELAY_MAX_SECS: u64 = 7 * 24 * 3600;
}

/// How a delivery is put on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryFormat {
    /// Monime's headers and signature (`Monime-Signature`).
    #[default]
    Monime,
    /// The Standard Webhooks headers and signature (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`), with the same body.
    StandardWebhooks,
}

/// In what order a webhook's deliveries go out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryOrdering {
    /// Concurrently, as they fall due.
    #[default]
    None,
    /// Those of one `object.id` one at a time, in publish order.
    Object,
}

/// Implements the wire names of a settings enum.
macro_rules! wire_names {
    ($type:ty, $($variant:path => $name:literal),+ $(,)?) => {
        impl $type {
            /// Every wire name, in order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The wire and database name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($variant => $name),+
                }
            }

            /// From the wire and database name.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($name => Some($variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_names!(DeliveryFormat, DeliveryFormat::Monime => "monime", DeliveryFormat::StandardWebhooks => "standard-webhooks");
wire_names!(DeliveryOrdering, DeliveryOrdering::None => "none", DeliveryOrdering::Object => "object");

/// A webhook's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookSettings {
    /// How deliveries are put on the wire.
    pub format: DeliveryFormat,
    /// In what order deliveries go out.
    pub ordering: DeliveryOrdering,
    /// At most this many deliveries a second (all nodes together); `None`: no limit.
    pub max_deliveries_per_second: Option<u32>,
    /// The webhook's own retry schedule; `None`: the server's.
    pub retry_schedule: Option<RetrySchedule>,
}

impl WebhookSettings {
    /// The settings as the API shows them (and the database keeps them).
    pub fn to_json(&self) -> Value {
        json!({
            "format": self.format.as_str(),
            "ordering": self.ordering.as_str(),
            "maxDeliveriesPerSecond": self.max_deliveries_per_second,
            "retrySchedule": self.retry_schedule.as_ref().map(schedule_texts),
        })
    }

    /// Settings as stored by [`WebhookSettings::to_json`]; a field missing from the
    /// stored document (written before it existed) takes its default.
    pub fn from_stored(stored: &Value) -> Result<Self, ValidationErrors> {
        let mut settings = Self::default();
        SettingsPatch::parse(stored)?.apply(&mut settings);
        Ok(settings)
    }
}

/// The schedule as duration strings, e.g. `["0s", "5s", "5m"]`.
fn schedule_texts(schedule: &RetrySchedule) -> Vec<String> {
    (1..=schedule.attempts())
        .filter_map(|n| schedule.delay_before(n))
        .map(duration_text)
        .collect()
}

/// A duration in the largest unit that divides it.
fn duration_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// A partial update of the settings: a field given replaces the stored one; `null`
/// resets a field to its default; a field left out is left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    format: Option<DeliveryFormat>,
    ordering: Option<DeliveryOrdering>,
    max_deliveries_per_second: Option<Option<u32>>,
    retry_schedule: Option<Option<RetrySchedule>>,
}

impl SettingsPatch {
    /// Parses a request body, reporting every broken rule by field.
    pub fn parse(body: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single(
                "body",
                "type",
                "the body must be a JSON object",
            ));
        };
        for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            errors.push(key.clone(), "unknown_field", format!("{key} is not a known field"));
        }
        let patch = Self {
            format: enum_field(
                object,
                "format",
                DeliveryFormat::parse,
                DeliveryFormat::NAMES,
                &mut errors,
            )
            .map(Option::unwrap_or_default),
            ordering: enum_field(
                object,
                "ordering",
                DeliveryOrdering::parse,
                DeliveryOrdering::NAMES,
                &mut errors,
            )
            .map(Option::unwrap_or_default),
            max_deliveries_per_second: object.get("maxDeliveriesPerSecond").map(|v| rate(v, &mut errors)),
            retry_schedule: object.get("retrySchedule").map(|v| schedule(v, &mut errors)),
        };
        errors.into_result(|| patch)
    }

    /// Applies the patch.
    pub fn apply(&self, settings: &mut WebhookSettings) {
        if let Some(format) = self.format {
            settings.format = format;
        }
        if let Some(ordering) = self.ordering {
            settings.ordering = ordering;
        }
        if let Some(rate) = self.max_deliveries_per_second {
            settings.max_deliveries_per_second = rate;
        }
        if let Some(schedule) = &self.retry_schedule {
            settings.retry_schedule = schedule.clone();
        }
    }
}

/// An enum field: `Some(None)` for an explicit null (reset), `None` when absent or wrong.
fn enum_field<T>(
    object: &Map<String, Value>,
    field: &str,
    parse: fn(&str) -> Option<T>,
    names: &[&str],
    errors: &mut ValidationErrors,
) -> Option<Option<T>> {
    match object.get(field)? {
        Value::Null => Some(None),
        Value::String(text) => match parse(text) {
            Some(value) => Some(Some(value)),
            None => {
                errors.push(field, "enum", format!("{field} must be one of: {}", names.join(", ")));
                None
            }
        },
        _ => {
            errors.push(field, "type", format!("{field} must be a string"));
            None
        }
    }
}

fn rate(value: &Value, errors: &mut ValidationErrors) -> Option<u32> {
    const FIELD: &str = "maxDeliveriesPerSecond";
    if value.is_null() {
        return None;
    }
    match value.as_u64().filter(|n| (1..=u64::from(limits::RATE_MAX)).contains(n)) {
        Some(n) => u32::try_from(n).ok(),
        None => {
            let message = format!(
                "{FIELD} must be an integer from 1 to {}, or null for no limit",
                limits::RATE_MAX
            );
            errors.push(FIELD, if value.is_number() { "range" } else { "type" }, message);
            None
        }
    }
}

fn schedule(value: &Value, errors: &mut ValidationErrors) -> Option<RetrySchedule> {
    const FIELD: &str = "retrySchedule";
    if value.is_null() {
        return None;
    }
    let Some(items) = value.as_array() else {
        errors.push(
            FIELD,
            "type",
            format!("{FIELD} must be an array of durations such as \"5s\", or null"),
        );
        return None;
    };
    if items.is_empty() || items.len() > limits::SCHEDULE_ATTEMPTS_MAX {
        let message = format!("{FIELD} must hold 1 to {} delays", limits::SCHEDULE_ATTEMPTS_MAX);
        errors.push(FIELD, "length", message);
        return None;
    }
    let mut texts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("{FIELD}[{i}]");
        let delay = item.as_str().and_then(|text| parse_duration(text).map(|d| (text, d)));
        match delay {
            Some((text, delay)) if delay.as_secs() <= limits::SCHEDULE_DELAY_MAX_SECS => texts.push(text),
            Some(_) => {
                let message = format!("{field} must be at most 7d");
                errors.push(field, "range", message);
            }
            None => {
                let message = format!("{field} must be a duration such as 500ms, 5s, 5m, 2h or 1d");
                errors.push(field, "format", message);
            }
        }
    }
    (texts.len() == items.len())
        .then(|| RetrySchedule::parse(&texts.join(",")).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &ValidationErrors) -> Vec<(String, &'static str)> {
        errors.0.iter().map(|e| (e.field.clone(), e.rule)).collect()
    }

    #[test]
    fn defaults_round_trip_through_the_stored_form() {
        let settings = WebhookSettings::default();
        assert_eq!(
            settings.to_json(),
            json!({"format": "monime", "ordering": "none", "maxDeliveriesPerSecond": null, "retrySchedule": null})
        );
        assert_eq!(WebhookSettings::from_stored(&settings.to_json()).unwrap(), settings);
        assert_eq!(
            WebhookSettings::from_stored(&json!({})).unwrap(),
            settings,
            "an older document"
        );
    }

    #[test]
    fn a_patch_replaces_what_it_names_and_null_resets() {
        let mut settings = WebhookSettings::default();
        let patch = SettingsPatch::parse(&json!({
            "format": "standard-webhooks", "maxDeliveriesPerSecond": 50, "retrySchedule": ["0s", "90s", "2h"]
        }))
        .unwrap();
        patch.apply(&mut settings);
        assert_eq!(settings.format, DeliveryFormat::StandardWebhooks);
        assert_eq!(settings.ordering, DeliveryOrdering::None);
        assert_eq!(settings.max_deliveries_per_second, Some(50));
        assert_eq!(settings.to_json()["retrySchedule"], json!(["0s", "90s", "2h"]));
        assert_eq!(WebhookSettings::from_stored(&settings.to_json()).unwrap(), settings);

        SettingsPatch::parse(&json!({"ordering": "object", "maxDeliveriesPerSecond": null}))
            .unwrap()
            .apply(&mut settings);
        assert_eq!(settings.ordering, DeliveryOrdering::Object);
        assert_eq!(settings.max_deliveries_per_second, None);
        assert_eq!(settings.format, DeliveryFormat::StandardWebhooks, "left alone");
        SettingsPatch::parse(&json!({"format": null}))
            .unwrap()
            .apply(&mut settings);
        assert_eq!(settings.format, DeliveryFormat::Monime);
    }

    #[test]
    fn every_broken_rule_is_named_by_field() {
        let errors = SettingsPatch::parse(&json!({
            "format": "xml", "ordering": 3, "maxDeliveriesPerSecond": 0, "retrySchedule": ["5s", "soon", "8d"],
            "colour": "blue"
        }))
        .unwrap_err();
        let mut found = fields(&errors);
        found.sort();
        assert_eq!(
            found,
            [
                ("colour".to_owned(), "unknown_field"),
                ("format".to_owned(), "enum"),
                ("maxDeliveriesPerSecond".to_owned(), "range"),
                ("ordering".to_owned(), "type"),
                ("retrySchedule[1]".to_owned(), "format"),
                ("retrySchedule[2]".to_owned(), "range"),
            ]
        );
        let empty = SettingsPatch::parse(&json!({"retrySchedule": []})).unwrap_err();
        assert_eq!(fields(&empty), [("retrySchedule".to_owned(), "length")]);
        let too_fast = SettingsPatch::parse(&json!({"maxDeliveriesPerSecond": 10_001})).unwrap_err();
        assert_eq!(fields(&too_fast), [("maxDeliveriesPerSecond".to_owned(), "range")]);
        assert!(SettingsPatch::parse(&json!([])).is_err());
    }

    #[test]
    fn durations_print_in_their_largest_unit() {
        let text = |ms| duration_text(Duration::from_millis(ms));
        assert_eq!(text(0), "0s");
        assert_eq!(text(1_500), "1500ms");
        assert_eq!(text(90_000), "90s");
        assert_eq!(text(7_200_000), "2h");
        assert_eq!(text(86_400_000), "1d");
    }
}
