//! The publish request: `{name, object: {id, type}, data: {…}}`, parsed with every
//! broken rule reported, or read in one pass when it is valid.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::json::{compact_raw, raw_data, Checked};
use super::{Event, EventObject, OBJECT_ID_MAX, OBJECT_TYPE_MAX};
use crate::catalog::EventCatalog;
use crate::id::{EventId, SpaceId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;

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

    /// A publish request read in one pass, for the common case of a valid body: `None`
    /// when the body is not a valid request in every respect (malformed JSON, a broken
    /// rule, an unknown or duplicated field, a `null`), for [`EventDraft::parse_published`]
    /// to find out why. Building a JSON tree of the body, then reading `data` from it
    /// again raw, cost about half of a publish's own CPU time.
    pub fn read_valid(raw: &[u8], catalog: &EventCatalog) -> Option<Self> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body<'a> {
            #[serde(borrow)]
            name: Cow<'a, str>,
            #[serde(borrow)]
            object: &'a RawValue,
            #[serde(borrow)]
            data: &'a RawValue,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object<'a> {
            #[serde(borrow)]
            id: Cow<'a, str>,
            #[serde(rename = "type", borrow)]
            object_type: Cow<'a, str>,
        }
        // serde reads a struct from a JSON array too: the body and `object` must be
        // objects, as the tree parse requires.
        let is_object = |text: &[u8]| text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !is_object(raw) {
            return None;
        }
        let body: Body<'_> = serde_json::from_slice(raw).ok()?;
        if !is_object(body.object.get().as_bytes()) || !is_object(body.data.get().as_bytes()) {
            return None;
        }
        let object: Object<'_> = serde_json::from_str(body.object.get()).ok()?;
        let text_ok = |text: &str, max: usize| {
            !text.is_empty() && !text.chars().any(char::is_control) && text.chars().count() <= max
        };
        let valid = catalog.contains(&body.name)
            && text_ok(&object.id, OBJECT_ID_MAX)
            && text_ok(&object.object_type, OBJECT_TYPE_MAX)
            // Raw text is only scanned for its extent: `data` must also be JSON that
            // parses (escapes, number range, nesting depth), as the tree parse checks.
            && serde_json::from_str::<Checked>(body.data.get()).is_ok();
        if !valid {
            return None;
        }
        Some(Self {
            name: body.name.into_owned(),
            object: EventObject {
                id: object.id.into_owned(),
                object_type: object.object_type.into_owned(),
            },
            data: compact_raw(body.data)?,
        })
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
            trace_parent: None,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
    fn a_valid_body_reads_in_one_pass_as_the_tree_parse_reads_it() {
        let catalog = EventCatalog::default();
        let valid: [&[u8]; 3] = [
            br#"{"name": "payment.completed", "object": {"id": "pmt-1", "type": "payment"}, "data": {"a": 1}}"#,
            br#"{ "data" : { "z" : [1, {"y": "\u00e9"}], "a": 1.10 }, "object": {"type": "pay\u006dent", "id": "p\"1"}, "name": "payout.failed" }"#,
            "{\"name\":\"payment.completed\",\"object\":{\"id\":\"\u{1f600}\",\"type\":\"t\"},\"data\":{}}".as_bytes(),
        ];
        for raw in valid {
            let fast = EventDraft::read_valid(raw, &catalog).expect("a valid body reads");
            let tree: Value = serde_json::from_slice(raw).unwrap();
            let slow = EventDraft::parse_published(&tree, raw, &catalog).unwrap();
            assert_eq!(
                (&fast.name, &fast.object, fast.data.get()),
                (&slow.name, &slow.object, slow.data.get())
            );
        }
        let long_id = format!(
            r#"{{"name":"payment.completed","object":{{"id":"{}","type":"t"}},"data":{{}}}}"#,
            "x".repeat(OBJECT_ID_MAX + 1)
        );
        let deep = format!(
            r#"{{"name":"payment.completed","object":{{"id":"p","type":"t"}},"data":{{"a":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let invalid: [&[u8]; 17] = [
            br#"["payment.completed", ["p", "t"], {}]"#,
            br#"{"name": "payment.completed", "object": ["p", "t"], "data": {}}"#,
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t"}, "data": {"s": "\ud800"}}"#,
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t"}, "data": {"n": 1e400}}"#,
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t"}, "data": {"\ud800": 1}}"#,
            deep.as_bytes(),
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t"}, "data": {}"#,
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t"}, "data": {}, "extra": 1}"#,
            br#"{"name": "payment.completed", "name": "payout.failed", "object": {"id": "p", "type": "t"}, "data": {}}"#,
            br#"{"name": null, "object": {"id": "p", "type": "t"}, "data": {}}"#,
            br#"{"name": "no.such.event", "object": {"id": "p", "type": "t"}, "data": {}}"#,
            br#"{"name": "webhook.test", "object": {"id": "p", "type": "t"}, "data": {}}"#,
            br#"{"name": "payment.completed", "object": {"id": "", "type": "t"}, "data": {}}"#,
            br#"{"name": "payment.completed", "object": {"id": "p\n", "type": "t"}, "data": {}}"#,
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t", "x": 1}, "data": {}}"#,
            br#"{"name": "payment.completed", "object": {"id": "p", "type": "t"}, "data": [1]}"#,
            long_id.as_bytes(),
        ];
        for raw in invalid {
            assert!(
                EventDraft::read_valid(raw, &catalog).is_none(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
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
