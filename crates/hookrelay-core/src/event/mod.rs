//! Events: what producers publish, and the body every receiver gets for them.

mod body;
mod draft;
mod json;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::id::{EventId, SpaceId};
use crate::timestamp::Timestamp;

pub use body::delivery_body;
pub use draft::EventDraft;
pub use json::compact_json;

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
    /// The W3C `traceparent` of the publish, when traces are exported: its attempts'
    /// spans join the publish's trace.
    pub trace_parent: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            trace_parent: None,
        };
        let first = event("payment.completed", "p", r#"{"a":1,"b":{"c":"\u00e9","d":[1,2]}}"#);
        assert!(first.same_content(&event("payment.completed", "p", r#"{"b":{"d":[1,2],"c":"é"},"a":1}"#)));
        assert!(!first.same_content(&event("payment.completed", "p", r#"{"a":2,"b":{"c":"é","d":[1,2]}}"#)));
        assert!(!first.same_content(&event("payment.completed", "p", r#"{"a":1.0,"b":{"c":"é","d":[1,2]}}"#)));
        assert!(!first.same_content(&event("payment.completed", "q", r#"{"a":1,"b":{"c":"é","d":[1,2]}}"#)));
        assert!(!first.same_content(&event("payout.failed", "p", r#"{"a":1,"b":{"c":"é","d":[1,2]}}"#)));
    }
}
