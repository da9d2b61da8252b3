//! The webhook settings operations and their schema.

use hookrelay_core::webhook_settings::{limits, DeliveryFormat, DeliveryOrdering, FIELDS};
use serde_json::{json, Value};

use super::bodies::json_body;
use super::params::*;
use super::responses::{responses, success_envelope, Failure::*};
use super::WEBHOOK_SETTINGS_REF;

pub(super) fn get_webhook_settings() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Get Webhook Settings",
        "description": "Retrieve a webhook's delivery settings. A webhook whose settings were never changed \
            shows every default.",
        "operationId": "GetWebhookSettings",
        "parameters": [id_param("read the settings of"), version_param(), space_param()],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": WEBHOOK_SETTINGS_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

pub(super) fn update_webhook_settings() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Update Webhook Settings",
        "description": "Partially update a webhook's delivery settings: a field given replaces the stored one, \
            `null` resets it to its default, a field left out is left alone. The answer is the whole settings \
            as they now stand. Changing the settings leaves the webhook's `updateTime` alone.",
        "operationId": "UpdateWebhookSettings",
        "parameters": [id_param("change the settings of"), version_param(), space_param()],
        "requestBody": json_body(settings_schema(false)),
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": WEBHOOK_SETTINGS_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, WebhookNotFound, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

/// The settings as shown (`shown`: every field required) or as a partial update.
pub(super) fn settings_schema(shown: bool) -> Value {
    let mut schema = json!({
        "title": if shown { "WebhookSettings" } else { "UpdateWebhookSettings" },
        "type": "object",
        "properties": {
            "format": {
                "type": "string",
                "enum": DeliveryFormat::NAMES,
                "nullable": !shown,
                "description": "How deliveries are put on the wire: `monime` (the `Monime-Signature` header) or \
                    `standard-webhooks` (the Standard Webhooks headers). Default `monime`.",
            },
            "ordering": {
                "type": "string",
                "enum": DeliveryOrdering::NAMES,
                "nullable": !shown,
                "description": "`none`: deliveries go out concurrently as they fall due. `object`: those of one \
                    `object.id` go out one at a time, in publish order. Default `none`.",
            },
            "maxDeliveriesPerSecond": {
                "type": "integer",
                "minimum": 1,
                "maximum": limits::RATE_MAX,
                "nullable": true,
                "description": "At most this many deliveries a second, all nodes together; null: no limit.",
            },
            "retrySchedule": {
                "type": "array",
                "minItems": 1,
                "maxItems": limits::SCHEDULE_ATTEMPTS_MAX,
                "items": {
                    "type": "string",
                    "pattern": "^[0-9]+(ms|s|m|h|d)$",
                    "description": "A delay from the first attempt, at most 7d.",
                },
                "nullable": true,
                "description": "The delay before each attempt (the first is usually `0s`), overriding the \
                    server's schedule; null: the server's.",
                "example": ["0s", "5s", "5m", "1h"],
            },
        },
        "additionalProperties": false,
        "description": "A webhook's delivery settings.",
    });
    if shown {
        schema["required"] = json!(FIELDS);
    }
    schema
}
