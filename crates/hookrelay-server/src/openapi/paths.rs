//! The operations, one function each, named after their `operationId`s.

use hookrelay_core::event::TEST_EVENT_NAME;
use hookrelay_core::{EventCatalog, EventId};
use serde_json::{json, Value};

use super::bodies::{create_webhook_schema, json_body, publish_event_schema, update_webhook_schema};
use super::params::*;
use super::responses::{list_envelope, responses, success_envelope, Failure::*};
use super::{ALERT_REF, DELIVERY_REF, EVENT_REF, WEBHOOK_REF};

pub(super) fn list_webhooks() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "List Webhooks",
        "description": "Retrieves the space's webhooks, newest first, one page at a time.",
        "operationId": "ListWebhooks",
        "parameters": [limit_param(), after_param(), version_param(), space_param()],
        "responses": responses(list_envelope(WEBHOOK_REF), &[InvalidRequest, Unauthenticated, Forbidden]),
    })
}

pub(super) fn create_webhook(events: &str) -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Create Webhook",
        "description": "Create a new webhook with configuration for target URL, events, headers, and security. \
            A space has at most `max_webhooks_per_space` webhooks (409 `quota_exceeded` beyond).",
        "operationId": "CreateWebhook",
        "parameters": [idempotency_param(), version_param(), space_param()],
        "requestBody": json_body(create_webhook_schema(events)),
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": WEBHOOK_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, ConflictOrQuota, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

pub(super) fn get_webhook() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Get Webhook",
        "description": "Retrieve details of a specific webhook by its ID.",
        "operationId": "GetWebhook",
        "parameters": [id_param("retrieve"), version_param(), space_param()],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": WEBHOOK_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

pub(super) fn update_webhook(events: &str) -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Update Webhook",
        "description": "Partially update an existing webhook's configuration and behavior. Absent and null \
            fields are left unchanged; `verificationMethod` cannot be changed.",
        "operationId": "UpdateWebhook",
        "parameters": [id_param("update"), version_param(), space_param()],
        "requestBody": json_body(update_webhook_schema(events)),
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": WEBHOOK_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, WebhookNotFound, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

pub(super) fn delete_webhook() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Delete Webhook",
        "description": "Delete a webhook by its ID. This action is irreversible.",
        "operationId": "DeleteWebhook",
        "parameters": [id_param("delete"), version_param(), space_param()],
        "responses": responses(
            success_envelope(json!({})),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

pub(super) fn publish_event(catalog: &EventCatalog) -> Value {
    json!({
        "tags": ["Event"],
        "summary": "Publish Event",
        "description": "Publish an event. In one transaction it is stored with one pending delivery for each \
            enabled webhook of the space subscribed to its name; `deliveryCount` says how many. A space publishes \
            at most `max_publish_rate` events a second on each node (429 beyond), and an event with more \
            subscribers than `max_fan_out` is refused with nothing stored (409 `quota_exceeded`).",
        "operationId": "PublishEvent",
        "parameters": [idempotency_param(), version_param(), space_param()],
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": publish_event_schema(catalog) } },
        },
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": EVENT_REF } })),
            &[
                InvalidBody,
                Unauthenticated,
                Forbidden,
                ConflictOrQuota,
                PayloadTooLarge,
                UnsupportedMediaType,
                RateLimited,
            ],
        ),
    })
}

pub(super) fn list_events() -> Value {
    json!({
        "tags": ["Event"],
        "summary": "List Events",
        "description": format!(
            "Retrieves the space's events, newest first, one page at a time, including the `{TEST_EVENT_NAME}` \
             events created by SendTestEvent."
        ),
        "operationId": "ListEvents",
        "parameters": [limit_param(), after_param(), version_param(), space_param()],
        "responses": responses(list_envelope(EVENT_REF), &[InvalidRequest, Unauthenticated, Forbidden]),
    })
}

pub(super) fn get_event() -> Value {
    json!({
        "tags": ["Event"],
        "summary": "Get Event",
        "description": "Retrieve details of a specific event by its ID.",
        "operationId": "GetEvent",
        "parameters": [
            path_param("id", EventId::PREFIX, "Unique identifier of the event to retrieve."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": EVENT_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, EventNotFound],
        ),
    })
}

pub(super) fn list_deliveries() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "List Webhook Deliveries",
        "description": "Retrieves the webhook's deliveries, newest first, one page at a time, optionally only those \
            with one status. Listed deliveries omit `attempts`; GetWebhookDelivery includes them.",
        "operationId": "ListWebhookDeliveries",
        "parameters": [
            webhook_param("Unique identifier of the webhook whose deliveries to list."),
            status_param(),
            limit_param(),
            after_param(),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            list_envelope(DELIVERY_REF),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

pub(super) fn get_delivery() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "Get Webhook Delivery",
        "description": "Retrieve one of the webhook's deliveries by its ID, with every attempt made so far.",
        "operationId": "GetWebhookDelivery",
        "parameters": [
            webhook_param("Unique identifier of the webhook the delivery belongs to."),
            delivery_param("Unique identifier of the delivery to retrieve."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": DELIVERY_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, DeliveryNotFound],
        ),
    })
}

pub(super) fn retry_delivery() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "Retry Webhook Delivery",
        "description": "Schedule another attempt of a delivery now, whatever its status: it becomes `pending`, due \
            at once. Its attempt count and attempt log carry on, so if this attempt fails it is retried again \
            only while the retry schedule has attempts left. The webhook must be enabled, and the event must still \
            have its data (not removed by payload retention or an erasure). Takes no body and no \
            Idempotency-Key. Returns the delivery without `attempts`.",
        "operationId": "RetryWebhookDelivery",
        "parameters": [
            webhook_param("Unique identifier of the webhook the delivery belongs to."),
            delivery_param("Unique identifier of the delivery to retry."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": DELIVERY_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, DeliveryNotFound, RetryRefused],
        ),
    })
}

pub(super) fn send_test_event() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "Send Test Event",
        "description": format!(
            "Create a `{TEST_EVENT_NAME}` event, about the webhook itself (`object` is `{{\"id\": <webhook id>, \
             \"type\": \"webhook\"}}`), and one delivery of it to this webhook alone, due at once. The event is \
             not in the catalog: it cannot be published or subscribed to. The webhook must be enabled. Takes no \
             body and no Idempotency-Key. Returns the new delivery; follow it with GetWebhookDelivery."
        ),
        "operationId": "SendTestEvent",
        "parameters": [
            webhook_param("Unique identifier of the webhook to send a test event to."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": DELIVERY_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound, WebhookDisabled],
        ),
    })
}

pub(super) fn list_alerts() -> Value {
    json!({
        "tags": ["Alert"],
        "summary": "List Webhook Alerts",
        "description": "Retrieves the alert e-mails raised for the webhook, sent or not, newest first, one page at \
            a time.",
        "operationId": "ListWebhookAlerts",
        "parameters": [
            webhook_param("Unique identifier of the webhook whose alerts to list."),
            limit_param(),
            after_param(),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            list_envelope(ALERT_REF),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

/// A `/healthz` answer: `status` and `database` as given, and the engine's status.
fn health_body(status: &str, database: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": ["status", "database", "delivery"],
        "properties": {
            "status": { "type": "string", "enum": [status] },
            "database": { "type": "string", "enum": database },
            "delivery": {
                "type": "object",
                "required": ["node", "fenced", "idle", "attemptsInFlight", "queued", "unrecorded"],
                "properties": {
                    "node": { "type": "string", "description": "This node's id, as its leases and heartbeat name it." },
                    "fenced": {
                        "type": "boolean",
                        "description": "This node starts no attempt: it could not write its heartbeat in time, so \
                            other nodes may take its deliveries over.",
                    },
                    "idle": { "type": "boolean" },
                    "attemptsInFlight": { "type": "integer", "minimum": 0 },
                    "queued": { "type": "integer", "minimum": 0 },
                    "unrecorded": { "type": "integer", "minimum": 0 },
                },
            },
        },
    })
}

pub(super) fn healthz() -> Value {
    json!({
        "tags": ["Meta"],
        "summary": "Health check",
        "description": "Answers 200 while the server accepts requests and its database answers, 503 when \
            the database does not, or can no longer be written to (`writer_stopped`: the process is stopping), so \
            a load balancer takes the node out. `delivery` says what this node's delivery engine is doing: idle \
            when nothing due is unclaimed and nothing it claimed is unfinished or unrecorded (a retry whose delay \
            has not passed is not due yet). Needs no token.",
        "operationId": "GetHealth",
        "security": [],
        "responses": {
            "200": {
                "description": "OK",
                "content": { "application/json": { "schema": health_body("ok", &["ok"]) } },
            },
            "503": {
                "description": "The database does not answer or cannot be written to",
                "content": {
                    "application/json": {
                        "schema": health_body("unavailable", &["unreachable", "writer_stopped"]),
                    },
                },
            },
        },
    })
}

pub(super) fn metrics() -> Value {
    json!({
        "tags": ["Meta"],
        "summary": "Prometheus metrics",
        "description": "Counters, gauges and histograms in Prometheus' text format (docs/operations/metrics.md \
            lists them). Aggregate numbers only: no label names a space, webhook or event, so it needs no token. \
            Served here unless `metrics_listen` gives it an address of its own; then this path answers 404.",
        "operationId": "GetMetrics",
        "security": [],
        "responses": {
            "200": {
                "description": "OK",
                "content": { "text/plain; version=0.0.4": { "schema": { "type": "string" } } },
            },
        },
    })
}

pub(super) fn openapi_json() -> Value {
    json!({
        "tags": ["Meta"],
        "summary": "OpenAPI document",
        "description": "This document, generated from the limits the server enforces. Needs no token.",
        "operationId": "GetOpenApiDocument",
        "security": [],
        "responses": {
            "200": {
                "description": "OK",
                "content": { "application/json": { "schema": { "type": "object" } } },
            },
        },
    })
}
