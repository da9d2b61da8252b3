//! Events: what producers publish, and the body every receiver gets for them.

use std::borrow::Cow;

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

impl Event {
    /// Whether `other` was published with the same name, object and `data`, the last
    /// compared as parsed JSON (key order, whitespace and escapes aside), as idempotency
    /// fingerprints compare the bodies of other requests; ids and times aside.
    pub fn same_content(&self, other: &Event) -> bool {
        let data = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
        self.name == other.name
            && self.object == other.object
            && matches!((data(&self.data), data(&other.data)), (Some(a), Some(b)) if a == b)
    }
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

/// Any JSON value, parsed as fully as into a `serde_json::Value` (string escapes, number
/// range, nesting depth) but kept nowhere: a check that allocates nothing for unescaped
/// strings.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Checked, A::Error> {
        while entries.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// `raw` JSON with the whitespace between tokens removed, and nothing else changed: key
/// order and number spelling stay exactly as the producer wrote them (re-serialising
/// through `serde_json::Value` would sort keys and round large numbers).
pub fn compact_json(raw: &str) -> Cow<'_, str> {
    // JSON's structure is ASCII, and the bytes of a multi-byte UTF-8 character are never
    // ASCII, so no cut splits one. Strings are skipped to their closing quote with
    // `memchr`; a body that is compact already (what producers' serialisers send) is
    // returned as it is, with no copy.
    let bytes = raw.as_bytes();
    let mut out: Option<String> = None;
    let (mut i, mut run_start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                // To the closing quote, stepping over escapes (`\"` included).
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
                        Some(found) if bytes[i + found] == b'\\' => i += found + 2,
                        Some(found) => {
                            i += found;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.get_or_insert_with(|| String::with_capacity(raw.len()))
                    .push_str(&raw[run_start..i]);
                run_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(raw),
        Some(mut out) => {
            out.push_str(&raw[run_start.min(raw.len())..]);
            Cow::Owned(out)
        }
    }
}

/// `data` compacted, as an owned value: copied when compact already (no second parse),
/// else compacted and parsed again.
fn compact_raw(data: &RawValue) -> Option<Box<RawValue>> {
    match compact_json(data.get()) {
        Cow::Borrowed(_) => Some(data.to_owned()),
        Cow::Owned(compacted) => RawValue::from_string(compacted).ok(),
    }
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
    compact_raw(raw.data)
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
        // Compact text is handed back as it is, not copied.
        assert!(matches!(
            compact_json("{\"k\":\"v w\"}"),
            Cow::Borrowed("{\"k\":\"v w\"}")
        ));
        // Cut short (never after validation): no panic, nothing invented.
        assert_eq!(compact_json("{\"a\": \"b\\"), "{\"a\":\"b\\");
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
    fn events_have_the_same_content_when_their_data_parses_the_same() {
        let event = |name: &str, id: &str, data: &str| Event {
            id: EventId::generate(),
            space_id: SpaceId::generate(),
            name: name.to_owned(),
            object: EventObject {
                id: id.to_owned(),
                object_type: "payment".to_owned(),
            },
            data: RawValue::from_string(data.to_owned()).unwrap(),
            create_time: Timestamp::now(),
        };
        let first = event("payment.completed", "p", r#"{"a":1,"b":{"c":"\u00e9","d":[1,2]}}"#);
        assert!(first.same_content(&event("payment.completed", "p", r#"{"b":{"d":[1,2],"c":"é"},"a":1}"#)));
        assert!(!first.same_content(&event("payment.completed", "p", r#"{"a":2,"b":{"c":"é","d":[1,2]}}"#)));
        assert!(!first.same_content(&event("payment.completed", "p", r#"{"a":1.0,"b":{"c":"é","d":[1,2]}}"#)));
        assert!(!first.same_content(&event("payment.completed", "q", r#"{"a":1,"b":{"c":"é","d":[1,2]}}"#)));
        assert!(!first.same_content(&event("payout.failed", "p", r#"{"a":1,"b":{"c":"é","d":[1,2]}}"#)));
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
