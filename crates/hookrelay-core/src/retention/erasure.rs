//! Erasure on request (`POST /v1/erasures`): the data of every event of one object,
//! optionally within a time range, is removed, and the record of the request kept.

use serde_json::Value;

use crate::event::OBJECT_ID_MAX;
use crate::id::{ErasureId, SpaceId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;
use crate::webhook::fields::{nullable, reject_unknown_fields, required, type_error};

/// Fields an erasure request may carry.
pub const ERASURE_FIELDS: &[&str] = &["objectId", "from", "to"];

/// A valid erasure request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureDraft {
    /// The object whose events lose their data (`object.id` as published).
    pub object_id: String,
    /// Only events published at or after this time.
    pub from: Option<Timestamp>,
    /// Only events published before this time.
    pub to: Option<Timestamp>,
}

impl ErasureDraft {
    /// Parses a request body, reporting every broken rule.
    pub fn parse(body: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single(
                "body",
                "type",
                "the request body must be a JSON object",
            ));
        };
        reject_unknown_fields(object, ERASURE_FIELDS, "", &mut errors);
        let object_id = required(object, "objectId", &mut errors).and_then(|v| parse_object_id(v, &mut errors));
        let from = nullable(object, "from").map(|v| parse_time("from", v, &mut errors));
        let to = nullable(object, "to").map(|v| parse_time("to", v, &mut errors));
        if let (Some(Some(from)), Some(Some(to))) = (from, to) {
            if from >= to {
                errors.push("to", "after_from", "to must be later than from");
            }
        }
        match object_id {
            Some(object_id) if errors.is_empty() => Ok(Self {
                object_id,
                from: from.flatten(),
                to: to.flatten(),
            }),
            _ => Err(errors),
        }
    }

    /// The range of publish times erased, `[start, end)`, unbounded ends as the first
    /// and last instants; the store selects events by it.
    pub fn bounds(&self) -> (Timestamp, Timestamp) {
        (
            self.from.unwrap_or(Timestamp::from_micros(i64::MIN)),
            self.to.unwrap_or(Timestamp::from_micros(i64::MAX)),
        )
    }

    /// Whether an event published at `at` is in the range.
    pub fn covers(&self, at: Timestamp) -> bool {
        let (start, end) = self.bounds();
        start <= at && at < end
    }
}

fn parse_object_id(value: &Value, errors: &mut ValidationErrors) -> Option<String> {
    let Some(id) = value.as_str() else {
        type_error("objectId", "a string", errors);
        return None;
    };
    if id.is_empty() {
        errors.push("objectId", "min_length", "objectId must not be empty");
    } else if id.chars().count() > OBJECT_ID_MAX {
        let message = format!("objectId must be at most {OBJECT_ID_MAX} characters");
        errors.push("objectId", "max_length", message);
    } else {
        return Some(id.to_owned());
    }
    None
}

fn parse_time(field: &'static str, value: &Value, errors: &mut ValidationErrors) -> Option<Timestamp> {
    let Some(text) = value.as_str() else {
        type_error(field, "an RFC 3339 date-time string", errors);
        return None;
    };
    let parsed = Timestamp::parse_rfc3339(text);
    if parsed.is_none() {
        let message = format!("{field} must be an RFC 3339 date-time with an offset, e.g. 2030-01-01T00:00:00Z");
        errors.push(field, "format", message);
    }
    parsed
}

/// The record of an erasure: what was asked and what it did; never any data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// Its id.
    pub id: ErasureId,
    /// The space it erased in.
    pub space_id: SpaceId,
    /// What was asked.
    pub draft: ErasureDraft,
    /// Events whose data it removed.
    pub events_erased: u64,
    /// Pending deliveries of those events it cancelled.
    pub deliveries_cancelled: u64,
    /// When it was made.
    pub create_time: Timestamp,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: &ValidationErrors) -> Vec<(&str, &str)> {
        errors.0.iter().map(|e| (e.field.as_str(), e.rule)).collect()
    }

    #[test]
    fn an_object_id_alone_erases_every_event_of_the_object() {
        let draft = ErasureDraft::parse(&json!({"objectId": "cus_1"})).unwrap();
        assert_eq!(draft.object_id, "cus_1");
        assert!(draft.covers(Timestamp::from_micros(0)));
        assert!(
            draft.covers(Timestamp::from_micros(i64::MAX - 1)),
            "the last instant bounds the range"
        );
    }

    #[test]
    fn a_range_covers_from_inclusive_to_exclusive() {
        let body = json!({"objectId": "x", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"});
        let draft = ErasureDraft::parse(&body).unwrap();
        let from = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let to = Timestamp::parse_rfc3339("2026-01-02T00:00:00Z").unwrap();
        assert!(draft.covers(from));
        assert!(!draft.covers(from.plus_micros(-1)));
        assert!(draft.covers(to.plus_micros(-1)));
        assert!(!draft.covers(to));
    }

    #[test]
    fn broken_requests_name_each_field_and_rule() {
        let cases = [
            (json!({}), vec![("objectId", "required")]),
            (json!({"objectId": ""}), vec![("objectId", "min_length")]),
            (json!({"objectId": 7}), vec![("objectId", "type")]),
            (json!({"objectId": "x".repeat(256)}), vec![("objectId", "max_length")]),
            (json!({"objectId": "x", "from": "yesterday"}), vec![("from", "format")]),
            (json!({"objectId": "x", "to": 5}), vec![("to", "type")]),
            (
                json!({"objectId": "x", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
                vec![("to", "after_from")],
            ),
            (
                json!({"objectId": "x", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
                vec![("to", "after_from")],
            ),
            (json!({"objectId": "x", "data": {}}), vec![("data", "unknown_field")]),
        ];
        for (body, expected) in cases {
            let errors = ErasureDraft::parse(&body).unwrap_err();
            assert_eq!(fields(&errors), expected, "{body}");
        }
        let errors = ErasureDraft::parse(&json!([])).unwrap_err();
        assert_eq!(fields(&errors), vec![("body", "type")]);
    }
}
