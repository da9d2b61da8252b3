//! The erasure operations and their schemas.

use hookrelay_core::event::OBJECT_ID_MAX;
use hookrelay_core::ErasureId;
use serde_json::{json, Value};

use super::bodies::json_body;
use super::params::*;
use super::responses::{list_envelope, responses, success_envelope, Failure::*};
use super::{prefix_pattern, ERASURE_REF};

pub(super) fn list_erasures() -> Value {
    json!({
        "tags": ["Erasure"],
        "summary": "List Erasures",
        "description": "Retrieves the records of the space's erasures, newest first, one page at a time. A record \
            says what was asked and what it did; it holds no event data.",
        "operationId": "ListErasures",
        "parameters": [limit_param(), after_param(), version_param(), space_param()],
        "responses": responses(list_envelope(ERASURE_REF), &[InvalidRequest, Unauthenticated, Forbidden]),
    })
}

pub(super) fn create_erasure() -> Value {
    json!({
        "tags": ["Erasure"],
        "summary": "Create Erasure",
        "description": "Erase the data of every event of the space about one object (`object.id` as published), \
            optionally only those published in [`from`, `to`): each event keeps its id, name, object and times \
            and is shown with `dataRemoved: true` and without `data`; its attempts lose their response bodies; \
            its pending deliveries are cancelled (a retry of its deliveries is refused with 409 \
            `event_data_removed`). Other objects' events and other spaces are untouched. `eventsErased` counts \
            the events whose data this request removed (not those removed before). Replays under the same \
            Idempotency-Key answer the first result.",
        "operationId": "CreateErasure",
        "parameters": [idempotency_param(), version_param(), space_param()],
        "requestBody": json_body(create_erasure_schema()),
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": ERASURE_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, IdempotencyConflict, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

pub(super) fn get_erasure() -> Value {
    json!({
        "tags": ["Erasure"],
        "summary": "Get Erasure",
        "description": "Retrieve the record of one erasure of the space.",
        "operationId": "GetErasure",
        "parameters": [
            path_param("id", ErasureId::PREFIX, "Unique identifier of the erasure."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": ERASURE_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, ErasureNotFound],
        ),
    })
}

fn create_erasure_schema() -> Value {
    json!({
        "title": "CreateErasure",
        "required": ["objectId"],
        "type": "object",
        "properties": {
            "objectId": {
                "type": "string",
                "minLength": 1,
                "maxLength": OBJECT_ID_MAX,
                "description": "The object whose events lose their data: `object.id` as published.",
                "example": "cus_123",
            },
            "from": {
                "type": "string",
                "format": "date-time",
                "nullable": true,
                "description": "Only events published at or after this time. Absent or null: from the first.",
            },
            "to": {
                "type": "string",
                "format": "date-time",
                "nullable": true,
                "description": "Only events published before this time; later than `from`. Absent or null: up to now.",
            },
        },
        "additionalProperties": false,
        "description": "What to erase.",
    })
}

pub(super) fn erasure_schema() -> Value {
    json!({
        "title": "Erasure",
        "required": ["id", "objectId", "from", "to", "eventsErased", "deliveriesCancelled", "createTime"],
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "pattern": prefix_pattern(ErasureId::PREFIX),
                "description": "Unique identifier of the erasure.",
            },
            "objectId": { "type": "string", "description": "The object whose events were erased." },
            "from": { "type": "string", "format": "date-time", "nullable": true, "description": "As asked." },
            "to": { "type": "string", "format": "date-time", "nullable": true, "description": "As asked." },
            "eventsErased": {
                "type": "integer",
                "minimum": 0,
                "description": "Events whose data this request removed.",
            },
            "deliveriesCancelled": {
                "type": "integer",
                "minimum": 0,
                "description": "Pending deliveries of those events it cancelled.",
            },
            "createTime": { "type": "string", "format": "date-time", "description": "When it was made." },
        },
        "description": "The record of an erasure request; it holds no event data.",
    })
}
