//! Events: what producers publish, and the body every receiver gets for them.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::catalog::EventCatalog;
use crate::id::{EventId, SpaceId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;
use crate::webhook::ApiRelease;

/// The event sent by `POST /v1/webhooks/{id}/test`; it is not in the catalog, so
/// producers cannot publish it and webhooks cannot subscribe to it.
pub const TEST_EVENT_NAME: &str = "webhook.test";

/// Longest `object.id`.
pub const OBJECT_ID_MAX: usize = 255;
/// Longest `object.type`.
pub const OBJECT_TYPE_MAX: usize = 64;

/// The resource an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventObject {
    /// Its id, e.g. `pmt-…`.
    pub id: String,
    /// Its type, e.g. `payment`.
    #[serde(rename = "type")]
    pub object_type: String,
}

/// A stored event.
#[derive(Clone, Debug)]
pub struct Event {
    /// `evt-…`, stable across every attempt and webhook.
    pub id: EventId,
    /// The publishing space.
    pub space_id: SpaceId,
    /// The event name, e.g. `payment.completed`.
    pub name: String,
    /// What it is about.
    pub object: EventObject,
    /// The object as the producer published it: a JSON object, kept as its text.
    pub data: Box<RawValue>,
    /// When it was published.
    pub create_time: Timestamp,
}

/// A valid publish request.
#[derive(Clone, Debug)]
pub struct EventDraft {
    /// See [`Event::name`].
    pub name: String,
    /// See [`Event::object`].
    pub object: EventObject,
    /// See [`Event::data`].
    pub data: Box<RawValue>,
}

impl EventDraft {
    /// Parses `{name, object: {id, type}, data: {…}}`, reporting every broken rule.
    pub fn parse(body: &Value, catalog: &EventCatalog) -> Result<Self, ValidationErrors> {
        Self::parse_inner(body, None, catalog)
    }

    /// [`EventDraft::parse`] for a request whose raw bytes are at hand: `data` is kept as
    /// the producer wrote it (compacted: key order and number text unchanged), read from
    /// `raw`, and only serialised from the parsed copy when it cannot be read there.
    pub fn parse_published(body: &Value, raw: &[u8], catalog: &EventCatalog) -> Result<Self, ValidationErrors> {
        Self::parse_inner(body, Some(raw), catalog)
    }

    fn parse_inner(body: &Value, raw: Option<&[u8]>, catalog: &EventCatalog) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single(
                "body",
                "type",
                "the request body must be a JSON object",
            ));
        };
        for key in object
            .keys()
            .filter(|k| !["name", "object", "data"].contains(&k.as_str()))
        {
            errors.push(key.as_str(), "unknown_field", format!("{key} is not a known field"));
        }
        let name = match object.get("name") {
            None | Some(Value::Null) => {
                errors.push("name", "required", "name is required");
                None
            }
            Some(Value::String(name)) if catalog.contains(name) => Some(name.clone()),
            Some(Value::String(name)) => {
                errors.push("name", "unknown_event", format!("{name:?} is not a known event"));
                None
            }
            Some(_) => {
                errors.push("name", "type", "name must be a string");
                None
            }
        };
        let event_object = match object.get("object") {
            None | Some(Value::Null) => {
                errors.push("object", "required", "object is required: {id, type}");
                None
            }
            Some(Value::Object(fields)) => parse_object(fields, &mut errors),
            Some(_) => {
                errors.push("object", "type", "object must be an object: {id, type}");
                None
            }
        };
        let data = match object.get("data") {
            None | Some(Value::Null) => {
                errors.push("data", "required", "data is required: the object as published");
                None
            }
            Some(data @ Value::Object(_)) => raw
                .and_then(raw_data)
                .or_else(|| serde_json::value::to_raw_value(data).ok()),
            Some(_) => {
                errors.push("data", "type", "data must be a JSON object");
                None
            }
        };
        match (name, event_object, data) {
            (Some(name), Some(object), Some(data)) if errors.is_empty() => Ok(Self { name, object, data }),
            _ => Err(errors),
        }
    }

    /// The event this draft describes, with a new id.
    pub fn into_event(self, space_id: SpaceId, now: Timestamp) -> Event {
        Event {
            id: EventId::generate(),
            space_id,
            name: self.name,
            object: self.object,
            data: self.data,
            create_time: now,
        }
    }
}

fn parse_object(fields: &Map<String, Value>, errors: &mut ValidationErrors) -> Option<EventObject> {
    for key in fields.keys().filter(|k| !["id", "type"].contains(&k.as_str())) {
        errors.push(
            format!("object.{key}"),
            "unknown_field",
            format!("object.{key} is not a known field"),
        );
    }
    let mut text = |key: &str, max: usize| -> Option<String> {
        let field = format!("object.{key}");
        match fields.get(key) {
            None | Some(Value::Null) => errors.push(field.clone(), "required", format!("{field} is required")),
            Some(Value::String(s)) if s.is_empty() => {
                errors.push(field.clone(), "min_length", format!("{field} must not be empty"))
            }
            Some(Value::String(s)) if s.chars().any(char::is_control) => errors.push(
                field.clone(),
                "format",
                format!("{field} must not contain control characters"),
            ),
            Some(Value::String(s)) if s.chars().count() > max => errors.push(
                field.clone(),
                "max_length",
                format!("{field} must be at most {max} characters"),
            ),
            Some(Value::String(s)) => return Some(s.clone()),
            Some(_) => errors.push(field.clone(), "type", format!("{field} must be a string")),
        }
        None
    };
    let id = text("id", OBJECT_ID_MAX);
    let object_type = text("type", OBJECT_TYPE_MAX);
    Some(EventObject {
        id: id?,
        object_type: object_type?,
    })
}

/// `raw` JSON with the whitespace between tokens removed, and nothing else changed: key
/// order and number spelling stay exactly as the producer wrote them (re-serialising
/// through `serde_json::Value` would sort keys and round large numbers).
pub fn compact_json(raw: &str) -> String {
    // Byte by byte, copying runs between whitespace: JSON's structure is ASCII, and the
    // bytes of a multi-byte UTF-8 character are never ASCII, so none is split.
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            out.push_str(&raw[run_start..i]);
            run_start = i + 1;
        } else if byte == b'"' {
            in_string = true;
        }
    }
    out.push_str(&raw[run_start..]);
    out
}

/// The producer's own text of `data` in a request body, compacted; `None` when it cannot
/// be read raw (a duplicated key, say).
fn raw_data(body: &[u8]) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct RawBody<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let raw = serde_json::from_slice::<RawBody<'_>>(body).ok()?;
    RawValue::from_string(compact_json(raw.data.get())).ok()
}

/// The body of a delivery, exactly as `delivery-protocol.md` specifies it:
/// `{"apiVersion", "event": {"id", "name", "timestamp"}, "object", "data"}`, compact.
pub fn delivery_body(release: ApiRelease, event: &Event) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        api_version: &'static str,
        event: EventHeader<'a>,
        object: &'a EventObject,
        data: &'a RawValue,
    }
    #[derive(Serialize)]
    struct EventHeader<'a> {
        id: &'a str,
        name: &'a str,
        timestamp: String,
    }
    serde_json::to_vec(&Body {
        api_version: release.as_str(),
        event: EventHeader {
            id: event.id.as_str(),
            name: &event.name,
            timestamp: event.create_time.to_rfc3339(),
        },
        object: &event.object,
        data: &event.data,
    })
    .expect("delivery bodies always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compacting_removes_whitespace_between_tokens_only() {
        let raw = "{ \"a b\" :\t[ 1 ,\n 2.50 ],\r\n \"q\\\" x\": \"Fr\u{e9}e town \u{1f600}\" , \"z\":{ } }";
        assert_eq!(
            compact_json(raw),
            "{\"a b\":[1,2.50],\"q\\\" x\":\"Fr\u{e9}e town \u{1f600}\",\"z\":{}}"
        );
        assert_eq!(compact_json("{\"k\":\"v\"}"), "{\"k\":\"v\"}");
        // An escaped backslash ends just before the closing quote.
        assert_eq!(compact_json("{\"a\\\\\" : \"b\" }"), "{\"a\\\\\":\"b\"}");
    }

    #[test]
    fn parses_a_payment_event_and_renders_the_protocol_body() {
        let catalog = EventCatalog::default();
        let draft = EventDraft::parse(
            &json!({"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {"amount": {"value": 100}}}),
            &catalog,
        )
        .unwrap();
        let mut event = draft.into_event(SpaceId::generate(), Timestamp::from_micros(1_795_860_000_000_000));
        event.id = EventId::parse("evt-abc").unwrap();
        let body = String::from_utf8(delivery_body(ApiRelease::Caph, &event)).unwrap();
        assert_eq!(
            body,
            r#"{"apiVersion":"caph","event":{"id":"evt-abc","name":"payment.completed","timestamp":"2026-11-28T10:00:00.000Z"},"object":{"id":"pmt-1","type":"payment"},"data":{"amount":{"value":100}}}"#
        );
    }

    #[test]
    fn raw_data_keeps_key_order_and_number_text() {
        let body = br#"{"name": "payment.completed", "object": {"id": "p", "type": "payment"},
            "data": { "z": 1, "a": 123456789012345678901234567890, "s": "a \" b  c", "f": 1.10 }}"#;
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        let draft = EventDraft::parse_published(&value, body, &EventCatalog::default()).unwrap();
        assert_eq!(
            draft.data.get(),
            r#"{"z":1,"a":123456789012345678901234567890,"s":"a \" b  c","f":1.10}"#
        );
    }

    #[test]
    fn names_each_broken_rule() {
        let catalog = EventCatalog::default();
        let errors = EventDraft::parse(
            &json!({"name": "webhook.test", "object": {"id": "", "kind": "x"}, "data": [1], "extra": 1}),
            &catalog,
        )
        .unwrap_err();
        let got: Vec<_> = errors.0.iter().map(|e| (e.field.as_str(), e.rule)).collect();
        assert_eq!(
            got,
            [
                ("extra", "unknown_field"),
                ("name", "unknown_event"),
                ("object.kind", "unknown_field"),
                ("object.id", "min_length"),
                ("object.type", "required"),
                ("data", "type"),
            ]
        );
    }
}
