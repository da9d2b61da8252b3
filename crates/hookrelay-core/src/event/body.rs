//! The body every receiver gets for an event.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Event, EventObject};
use crate::webhook::ApiRelease;

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
    use serde_json::json;

    use super::*;
    use crate::catalog::EventCatalog;
    use crate::event::EventDraft;
    use crate::id::{EventId, SpaceId};
    use crate::timestamp::Timestamp;

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
}
