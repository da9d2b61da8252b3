//! The recovery operations and their schemas.

use hookrelay_core::recovery::RECOVERABLE;
use hookrelay_core::RecoveryId;
use serde_json::{json, Value};

use super::bodies::json_body;
use super::params::*;
use super::responses::{list_envelope, responses, success_envelope, Failure::*};
use super::{prefix_pattern, RECOVERY_REF};

fn recoverable_enum() -> Vec<&'static str> {
    RECOVERABLE.iter().map(|s| s.as_str()).collect()
}

pub(super) fn list_recoveries() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "List Webhook Recoveries",
        "description": "Retrieves a webhook's bulk recoveries, newest first, one page at a time.",
        "operationId": "ListWebhookRecoveries",
        "parameters": [
            webhook_param("Unique identifier of the webhook whose recoveries to list."),
            limit_param(),
            after_param(),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            list_envelope(RECOVERY_REF),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

pub(super) fn create_recovery() -> Value {
    let mut responses = responses(
        success_envelope(json!({ "result": { "$ref": RECOVERY_REF } })),
        &[
            InvalidBody,
            Unauthenticated,
            Forbidden,
            WebhookNotFound,
            KeyOrDisabled,
            PayloadTooLarge,
            UnsupportedMediaType,
        ],
    );
    // Answered before the work is done: 202, with the recovery as it starts.
    if let Some(map) = responses.as_object_mut() {
        if let Some(mut ok) = map.remove("200") {
            ok["description"] = json!("Accepted: the recovery runs in the background.");
            map.insert("202".to_owned(), ok);
        }
    }
    json!({
        "tags": ["Delivery"],
        "summary": "Create Webhook Recovery",
        "description": "Retry, in bulk, every delivery of the webhook that ended (last changed) in [`since`, \
            `until`) with one of `statuses`, as RetryWebhookDelivery would: each becomes `pending`, due at once, \
            its attempt count and log carrying on. It runs in the background, in batches; follow it with \
            GetWebhookRecovery. Deliveries whose event has no data any more are counted in `skipped` and left as \
            they are; pending ones are never queued twice. Deliveries made after the request are not part of it. \
            If the webhook is deleted or disabled before the recovery ends, it stops as `cancelled`. The webhook \
            must be enabled. Replays under the same Idempotency-Key answer the first result.",
        "operationId": "CreateWebhookRecovery",
        "parameters": [
            webhook_param("Unique identifier of the webhook whose deliveries to recover."),
            idempotency_param(),
            version_param(),
            space_param(),
        ],
        "requestBody": json_body(create_recovery_schema()),
        "responses": responses,
    })
}

pub(super) fn get_recovery() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "Get Webhook Recovery",
        "description": "Retrieve a bulk recovery and its progress.",
        "operationId": "GetWebhookRecovery",
        "parameters": [
            webhook_param("Unique identifier of the webhook the recovery belongs to."),
            path_param("recovery_id", RecoveryId::PREFIX, "Unique identifier of the recovery."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": RECOVERY_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, RecoveryNotFound],
        ),
    })
}

fn create_recovery_schema() -> Value {
    json!({
        "title": "CreateWebhookRecovery",
        "required": ["since"],
        "type": "object",
        "properties": {
            "since": {
                "type": "string",
                "format": "date-time",
                "description": "Deliveries that ended at or after this time; in the past.",
            },
            "until": {
                "type": "string",
                "format": "date-time",
                "nullable": true,
                "description": "…and before this time: later than `since`, not in the future. Absent or null: now.",
            },
            "statuses": {
                "type": "array",
                "minItems": 1,
                "items": { "type": "string", "enum": recoverable_enum() },
                "nullable": true,
                "description": "The statuses to recover. Absent or null: all of them, `failed` (attempts ran out, \
                    or the receiver answered 410) and `cancelled` (dropped when the webhook was disabled).",
            },
        },
        "additionalProperties": false,
        "description": "What to recover.",
    })
}

pub(super) fn recovery_schema() -> Value {
    json!({
        "title": "WebhookRecovery",
        "required": ["id", "webhookId", "since", "until", "statuses", "status", "matched", "requeued", "skipped",
            "createTime", "finishTime"],
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "pattern": prefix_pattern(RecoveryId::PREFIX),
                "description": "Unique identifier of the recovery.",
            },
            "webhookId": { "type": "string", "description": "The webhook whose deliveries it retries." },
            "since": { "type": "string", "format": "date-time", "description": "As asked." },
            "until": { "type": "string", "format": "date-time", "description": "As asked, or the request's time." },
            "statuses": {
                "type": "array",
                "items": { "type": "string", "enum": recoverable_enum() },
                "description": "The statuses it recovers.",
            },
            "status": {
                "type": "string",
                "enum": ["running", "completed", "cancelled"],
                "description": "`running`: batches remain; `completed`: every delivery in the window was read; \
                    `cancelled`: the webhook was deleted or disabled first (what was done stays done).",
            },
            "matched": {
                "type": "integer",
                "minimum": 0,
                "description": "Deliveries read so far that ended in the window with one of the statuses.",
            },
            "requeued": { "type": "integer", "minimum": 0, "description": "Of those, retried." },
            "skipped": {
                "type": "integer",
                "minimum": 0,
                "description": "Of those, left as they were: their event's data was removed.",
            },
            "createTime": { "type": "string", "format": "date-time", "description": "When it was asked for." },
            "finishTime": {
                "type": "string",
                "format": "date-time",
                "nullable": true,
                "description": "When it completed or was cancelled.",
            },
        },
        "description": "A bulk recovery of a webhook's failed deliveries, and its progress.",
    })
}
