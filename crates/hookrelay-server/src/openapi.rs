//! hookrelay's own OpenAPI 3.0.3 document, served at `GET /openapi.json`.
//!
//! The document is generated, not hand-written, so that it cannot drift from what the
//! server accepts and returns: every length, count, id pattern and enum comes from the
//! constants the validators and handlers use (`hookrelay_core::webhook::limits`,
//! `ApiRelease::ALL`, the id types, the event catalog, the event object limits,
//! `DeliveryStatus::ALL`, `ErrorKind::ALL`, `RESPONSE_BODY_KEPT`, and this crate's page,
//! header and body limits). The webhook operations follow Monime's published contract,
//! vendored at `docs/reference/monime-webhooks-openapi.json`; the tests below check that
//! ours agrees with it on everything but prose. Ours is a superset: it adds the error
//! envelope, the error responses, the event and delivery operations (named in Monime's
//! style), `GET /healthz` and `GET /openapi.json`.

use hookrelay_core::delivery::{DeliveryStatus, ErrorKind, RESPONSE_BODY_KEPT};
use hookrelay_core::event::{OBJECT_ID_MAX, OBJECT_TYPE_MAX, TEST_EVENT_NAME};
use hookrelay_core::webhook::limits;
use hookrelay_core::{ApiRelease, DeliveryId, EventCatalog, EventId, SpaceId, WebhookId};
use serde_json::{json, Map, Value};

use crate::api::PageQuery;
use crate::request::{IDEMPOTENCY_KEY_MAX, MAX_BODY_BYTES, SUPPORTED_VERSIONS};
use Failure::*;

const WEBHOOK_REF: &str = "#/components/schemas/Webhook";
const EVENT_REF: &str = "#/components/schemas/Event";
const DELIVERY_REF: &str = "#/components/schemas/Delivery";
const ATTEMPT_REF: &str = "#/components/schemas/DeliveryAttempt";
const ERROR_REF: &str = "#/components/schemas/ErrorEnvelope";

/// The OpenAPI document for this build, listing `catalog`'s events where a request names
/// events.
pub fn document(catalog: &EventCatalog) -> Value {
    let events = catalog.names().collect::<Vec<_>>().join(", ");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hookrelay API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Webhook registration and delivery, wire-compatible with Monime's webhook \
                operations. Every response is a JSON envelope; errors use `ErrorEnvelope`.",
        },
        "security": [{ "bearerAuth": [] }],
        "tags": [
            { "name": "Webhook", "description": "Register the endpoints that receive events." },
            { "name": "Event", "description": "Publish events; each is delivered to the webhooks subscribed to it." },
            {
                "name": "Delivery",
                "description": "A webhook's delivery history, manual retries and test events.",
            },
            { "name": "Meta", "description": "Health and self-description; no token needed." },
        ],
        "paths": {
            "/v1/webhooks": {
                "get": list_webhooks(),
                "post": create_webhook(&events),
            },
            "/v1/webhooks/{id}": {
                "get": get_webhook(),
                "patch": update_webhook(&events),
                "delete": delete_webhook(),
            },
            "/v1/webhooks/{id}/deliveries": { "get": list_deliveries() },
            "/v1/webhooks/{id}/deliveries/{delivery_id}": { "get": get_delivery() },
            "/v1/webhooks/{id}/deliveries/{delivery_id}/retry": { "post": retry_delivery() },
            "/v1/webhooks/{id}/test": { "post": send_test_event() },
            "/v1/events": {
                "get": list_events(),
                "post": publish_event(catalog),
            },
            "/v1/events/{id}": { "get": get_event() },
            "/healthz": { "get": healthz() },
            "/openapi.json": { "get": openapi_json() },
        },
        "components": {
            "schemas": {
                "Webhook": webhook_schema(),
                "Event": event_schema(),
                "Delivery": delivery_schema(),
                "DeliveryAttempt": delivery_attempt_schema(),
                "ErrorEnvelope": error_envelope_schema(),
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "auth-scheme",
                    "description": "Bearer HTTP authentication specified with the header \
                        Authorization: Bearer <access_token>",
                },
            },
        },
    })
}

// ---- operations ---------------------------------------------------------------------

fn list_webhooks() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "List Webhooks",
        "description": "Retrieves the space's webhooks, newest first, one page at a time.",
        "operationId": "ListWebhooks",
        "parameters": [limit_param(), after_param(), version_param(), space_param()],
        "responses": responses(list_envelope(WEBHOOK_REF), &[InvalidRequest, Unauthenticated, Forbidden]),
    })
}

fn create_webhook(events: &str) -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Create Webhook",
        "description": "Create a new webhook with configuration for target URL, events, headers, and security.",
        "operationId": "CreateWebhook",
        "parameters": [idempotency_param(), version_param(), space_param()],
        "requestBody": json_body(create_webhook_schema(events)),
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": WEBHOOK_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, IdempotencyConflict, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

fn get_webhook() -> Value {
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

fn update_webhook(events: &str) -> Value {
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

fn delete_webhook() -> Value {
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

fn publish_event(catalog: &EventCatalog) -> Value {
    json!({
        "tags": ["Event"],
        "summary": "Publish Event",
        "description": "Publish an event. In one transaction it is stored with one pending delivery for each \
            enabled webhook of the space subscribed to its name; `deliveryCount` says how many.",
        "operationId": "PublishEvent",
        "parameters": [idempotency_param(), version_param(), space_param()],
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": publish_event_schema(catalog) } },
        },
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": EVENT_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, IdempotencyConflict, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

fn list_events() -> Value {
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

fn get_event() -> Value {
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

fn list_deliveries() -> Value {
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

fn get_delivery() -> Value {
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

fn retry_delivery() -> Value {
    json!({
        "tags": ["Delivery"],
        "summary": "Retry Webhook Delivery",
        "description": "Schedule another attempt of a delivery now, whatever its status: it becomes `pending`, due \
            at once. Its attempt count and attempt log carry on, so if this attempt fails it is retried again \
            only while the retry schedule has attempts left. The webhook must be enabled. Takes no body and no \
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
            &[InvalidRequest, Unauthenticated, Forbidden, DeliveryNotFound, WebhookDisabled],
        ),
    })
}

fn send_test_event() -> Value {
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

/// `/healthz`'s `delivery`: the engine's status.
fn delivery_status() -> Value {
    json!({
        "type": "object",
        "required": ["idle", "attemptsInFlight", "queued", "unrecorded"],
        "properties": {
            "idle": { "type": "boolean" },
            "attemptsInFlight": { "type": "integer", "minimum": 0 },
            "queued": { "type": "integer", "minimum": 0 },
            "unrecorded": { "type": "integer", "minimum": 0 },
        },
    })
}

fn healthz() -> Value {
    json!({
        "tags": ["Meta"],
        "summary": "Health check",
        "description": "Answers 200 while the server accepts requests and its database answers, 503 when \
            the database does not (so a load balancer takes the node out). `delivery` says what this node's \
            delivery engine is doing: idle when nothing due is unclaimed and nothing it claimed is unfinished or \
            unrecorded (a retry whose delay has not passed is not due yet). Needs no token.",
        "operationId": "GetHealth",
        "security": [],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "database", "delivery"],
                            "properties": {
                                "status": { "type": "string", "enum": ["ok"] },
                                "database": { "type": "string", "enum": ["ok"] },
                                "delivery": delivery_status(),
                            },
                        },
                    },
                },
            },
            "503": {
                "description": "The database does not answer",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "database", "delivery"],
                            "properties": {
                                "status": { "type": "string", "enum": ["unavailable"] },
                                "database": { "type": "string", "enum": ["unreachable"] },
                                "delivery": delivery_status(),
                            },
                        },
                    },
                },
            },
        },
    })
}

fn openapi_json() -> Value {
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

// ---- parameters ---------------------------------------------------------------------

fn limit_param() -> Value {
    let (max, default) = (PageQuery::MAX_LIMIT, PageQuery::DEFAULT_LIMIT);
    let text = format!(
        "Maximum number of items to return in a single page. Must be between 1 and {max}. \
         Defaults to {default} if not specified."
    );
    json!({
        "name": "limit",
        "in": "query",
        "description": text,
        "schema": { "maximum": max, "minimum": 1, "type": "integer", "default": default },
    })
}

fn after_param() -> Value {
    json!({
        "name": "after",
        "in": "query",
        "description": "Pagination cursor for fetching the next page of results. Set this to the 'next' cursor \
            value from a previous response to continue paginating forward.",
        "schema": { "maxLength": PageQuery::AFTER_MAX, "type": "string", "nullable": true },
    })
}

fn idempotency_param() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "description": "This header is used to uniquely identify a logical request, ensuring that it is not \
            processed more than once during retries. Repeating a request with its key within 24 hours replays \
            the first response, marked `Idempotent-Replayed: true`.",
        "required": true,
        "schema": { "maxLength": IDEMPOTENCY_KEY_MAX, "type": "string" },
    })
}

fn version_param() -> Value {
    json!({
        "name": "Monime-Version",
        "in": "header",
        "description": "Specifies which version of the Monime API will handle this request.",
        "schema": { "enum": SUPPORTED_VERSIONS, "type": "string", "nullable": true },
    })
}

fn space_param() -> Value {
    json!({
        "name": "Monime-Space-Id",
        "in": "header",
        "description": "The value is the tenancy parameter that Monime uses to determine which space the request \
            is intended for.",
        "required": true,
        "schema": { "maxLength": SpaceId::MAX_LEN, "pattern": prefix_pattern(SpaceId::PREFIX), "type": "string" },
    })
}

fn id_param(action: &str) -> Value {
    webhook_param(&format!("Unique identifier of the webhook to {action}."))
}

fn webhook_param(description: &str) -> Value {
    path_param("id", WebhookId::PREFIX, description)
}

fn delivery_param(description: &str) -> Value {
    path_param("delivery_id", DeliveryId::PREFIX, description)
}

/// A path parameter holding an id with `prefix`. A malformed id is a 404, like an unknown one.
fn path_param(name: &str, prefix: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": { "pattern": prefix_pattern(prefix), "type": "string" },
    })
}

fn status_param() -> Value {
    json!({
        "name": "status",
        "in": "query",
        "description": "Only deliveries with this status; all of them when absent or empty.",
        "schema": { "enum": delivery_status_enum(), "type": "string" },
    })
}

/// The reference's id pattern: the prefix, then anything (the server checks the rest).
fn prefix_pattern(prefix: &str) -> String {
    format!("^{prefix}.*$")
}

// ---- request bodies -----------------------------------------------------------------

fn json_body(schema: Value) -> Value {
    json!({ "content": { "application/json": { "schema": schema } } })
}

fn api_release_enum() -> Vec<&'static str> {
    ApiRelease::ALL.iter().map(|r| r.as_str()).collect()
}

fn delivery_status_enum() -> Vec<&'static str> {
    DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect()
}

fn error_kind_enum() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.as_str()).collect()
}

fn create_webhook_schema(events: &str) -> Value {
    json!({
        "title": "CreateWebhook",
        // `apiRelease` is required here, as in the reference, although it has a default:
        // the server applies the default when it is absent.
        "required": ["name", "url", "apiRelease", "events"],
        "type": "object",
        "properties": {
            "name": {
                "maxLength": limits::NAME_MAX,
                "minLength": 1,
                "type": "string",
                "description": "Human-readable name for the webhook configuration.",
                "example": "My Ecommerce Webhook",
            },
            "url": {
                "maxLength": limits::URL_MAX,
                "type": "string",
                "description": "Target URL that will receive webhook event payloads: an absolute http or https \
                    URL without user name or password.",
            },
            "enabled": {
                "type": "boolean",
                "description": "Flag indicating if the webhook should be active upon creation.",
                "default": true,
            },
            "apiRelease": {
                "enum": api_release_enum(),
                "type": "string",
                "description": "Defines the target API release for this webhook. A release represents a stable \
                    snapshot of the API schema. Ensures the webhook receives the latest object schema for a given \
                    release cycle. Defaults to the current release when absent.",
                "default": ApiRelease::Caph.as_str(),
            },
            "events": events_schema(
                &format!("List of event types that should trigger this webhook, each from this server's event \
                    catalog: {events}."),
            ),
            "headers": headers_schema("Optional HTTP headers to include in outbound webhook requests."),
            "alertEmails": alert_emails_schema("Optional email addresses to notify on repeated delivery failures."),
            "verificationMethod": verification_method_schema(&format!(
                "Method to be used to verify the integrity of incoming webhook requests. When absent, the server \
                 uses HS256 with a generated {}-character secret and returns it in the response.",
                limits::GENERATED_SECRET_LEN
            )),
            "metadata": metadata_schema("Custom metadata for tagging or annotating this webhook."),
        },
        "additionalProperties": false,
        "description": "Create a new webhook with configuration for target URL, events, headers, and security.",
    })
}

fn update_webhook_schema(events: &str) -> Value {
    json!({
        "title": "UpdateWebhook",
        "type": "object",
        "properties": {
            "name": {
                "maxLength": limits::NAME_MAX,
                "minLength": 1,
                "type": "string",
                "description": "Updated name for the webhook.",
                "nullable": true,
            },
            "url": {
                "maxLength": limits::URL_MAX,
                "type": "string",
                "description": "New URL to send webhook requests to.",
                "nullable": true,
            },
            "enabled": { "type": "boolean", "description": "Enable or disable the webhook.", "nullable": true },
            "apiRelease": {
                "enum": api_release_enum(),
                "type": "string",
                "description": "Updated API release name for webhook payloads.",
                "nullable": true,
            },
            "events": events_schema(
                &format!("Updated list of events that trigger the webhook (replaces the old list), each from this \
                    server's event catalog: {events}."),
            ),
            "headers": headers_schema("Updated HTTP headers to include in webhook requests (replace the old ones)."),
            "alertEmails": alert_emails_schema("Updated alert email list for delivery failures."),
            "metadata": metadata_schema("Updated custom metadata for the webhook (replaces the old one)."),
        },
        "additionalProperties": false,
        "description": "Partially update an existing webhook's configuration and behavior.",
    })
}

fn events_schema(description: &str) -> Value {
    json!({
        "maxItems": limits::EVENTS_MAX,
        "minItems": 1,
        "uniqueItems": true,
        "type": "array",
        "items": { "type": "string" },
        "description": description,
        "nullable": true,
    })
}

fn headers_schema(description: &str) -> Value {
    let rules = format!(
        " Values are at most {} characters; Content-Type, Content-Length, Host, Transfer-Encoding, Connection, \
         User-Agent and names starting with Monime- are reserved.",
        limits::HEADER_VALUE_MAX
    );
    json!({
        "maxProperties": limits::HEADERS_MAX,
        "type": "object",
        "additionalProperties": { "type": "string" },
        "description": format!("{description}{rules}"),
        "nullable": true,
    })
}

fn alert_emails_schema(description: &str) -> Value {
    json!({
        "maxItems": limits::ALERT_EMAILS_MAX,
        "uniqueItems": true,
        "type": "array",
        "items": { "type": "string" },
        "description": description,
        "nullable": true,
    })
}

fn metadata_schema(description: &str) -> Value {
    json!({
        "maxProperties": limits::METADATA_MAX,
        "type": "object",
        "description": description,
        "nullable": true,
    })
}

/// HS256 or ES256; the same schema in requests and in the `Webhook` object.
fn verification_method_schema(description: &str) -> Value {
    json!({
        "required": ["type"],
        "type": "object",
        "oneOf": [
            {
                "title": "HMAC SHA256",
                "required": ["type", "secret"],
                "type": "object",
                "properties": {
                    "type": {
                        "enum": ["HS256"],
                        "type": "string",
                        "description": "Indicates the use of HMAC (HS256) as the signature verification method.",
                    },
                    "secret": {
                        "maxLength": limits::SECRET_MAX,
                        "minLength": limits::SECRET_MIN,
                        "type": "string",
                        "description": "The shared secret used to compute and verify the HMAC signature.",
                    },
                },
                "additionalProperties": false,
            },
            {
                "title": "ECDSA SHA256",
                "required": ["type"],
                "type": "object",
                "properties": {
                    "type": {
                        "enum": ["ES256"],
                        "type": "string",
                        "description": "Indicates the use of ECDSA (ES256) as the signature verification method.",
                    },
                    "publicKey": {
                        "type": "string",
                        "description": "The ECDSA public key used to verify the webhook signature: a PEM-encoded \
                            key on the NIST P-256 (prime256v1 / secp256r1) curve. Generated by the server.",
                        "readOnly": true,
                    },
                },
                "additionalProperties": false,
            },
        ],
        "properties": {
            "type": {
                "enum": ["ES256", "HS256"],
                "type": "string",
                "description": "The type of verification method in use. Either 'HS256' for HMAC or 'ES256' for ECDSA.",
            },
        },
        "description": description,
        "nullable": true,
    })
}

fn publish_event_schema(catalog: &EventCatalog) -> Value {
    json!({
        "title": "PublishEvent",
        "required": ["name", "object", "data"],
        "type": "object",
        "properties": {
            "name": {
                "enum": catalog.names().collect::<Vec<_>>(),
                "type": "string",
                "description": "The event's name, from this server's event catalog.",
            },
            "object": event_object_schema("The resource the event is about."),
            "data": {
                "type": "object",
                "description": "The object as it is now, in the form its receivers expect: any JSON object, \
                    delivered as the `data` of the delivery body.",
            },
        },
        "additionalProperties": false,
        "description": "Publish an event about an object.",
    })
}

/// `{id, type}`: what an event is about; the same in requests and in the `Event` object.
fn event_object_schema(description: &str) -> Value {
    json!({
        "required": ["id", "type"],
        "type": "object",
        "properties": {
            "id": {
                "maxLength": OBJECT_ID_MAX,
                "minLength": 1,
                "type": "string",
                "description": "The resource's id.",
                "example": "pmt-Z4k3Xq",
            },
            "type": {
                "maxLength": OBJECT_TYPE_MAX,
                "minLength": 1,
                "type": "string",
                "description": "The resource's type.",
                "example": "payment",
            },
        },
        "additionalProperties": false,
        "description": description,
    })
}

// ---- responses ----------------------------------------------------------------------

/// An error response, as one operation can give it. The tests check each status and
/// reason against what [`crate::error::ApiError`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    /// A header or query parameter broke a rule.
    InvalidRequest,
    /// A header, query parameter or body field broke a rule, or the body is not JSON.
    InvalidBody,
    Unauthenticated,
    Forbidden,
    WebhookNotFound,
    EventNotFound,
    /// No such webhook, or no such delivery of it.
    DeliveryNotFound,
    IdempotencyConflict,
    WebhookDisabled,
    PayloadTooLarge,
    UnsupportedMediaType,
}

impl Failure {
    /// The HTTP status.
    fn status(self) -> u16 {
        match self {
            InvalidRequest | InvalidBody => 400,
            Unauthenticated => 401,
            Forbidden => 403,
            WebhookNotFound | EventNotFound | DeliveryNotFound => 404,
            IdempotencyConflict | WebhookDisabled => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
        }
    }

    /// The `error.reason`s it can carry.
    fn reasons(self) -> &'static [&'static str] {
        match self {
            InvalidRequest => &["validation_failed"],
            InvalidBody => &["validation_failed", "invalid_json"],
            Unauthenticated => &["unauthenticated"],
            Forbidden => &["forbidden"],
            WebhookNotFound | EventNotFound | DeliveryNotFound => &["not_found"],
            IdempotencyConflict => &["idempotency_conflict"],
            WebhookDisabled => &["webhook_disabled"],
            PayloadTooLarge => &["payload_too_large"],
            UnsupportedMediaType => &["unsupported_media_type"],
        }
    }

    /// What it means, then its reasons.
    fn description(self) -> String {
        let meaning = match self {
            InvalidRequest => {
                "A header or query parameter broke a rule. `error.details` lists each broken rule.".to_owned()
            }
            InvalidBody => "The request broke a rule (a header, a query parameter or a body field) or its body is \
                not valid JSON. `error.details` lists each broken rule."
                .to_owned(),
            Unauthenticated => "The Authorization header is missing or its bearer token is not valid.".to_owned(),
            Forbidden => "The token does not grant access to the space named by Monime-Space-Id.".to_owned(),
            WebhookNotFound => "The space has no webhook with this id.".to_owned(),
            EventNotFound => "The space has no event with this id.".to_owned(),
            DeliveryNotFound => {
                "The space has no webhook with this id, or the webhook has no delivery with this id.".to_owned()
            }
            IdempotencyConflict => "The Idempotency-Key was already used for a different request, or the request \
                that used it is still in progress."
                .to_owned(),
            WebhookDisabled => "The webhook is disabled; enable it first.".to_owned(),
            PayloadTooLarge => format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            UnsupportedMediaType => "The request body is not sent with Content-Type: application/json.".to_owned(),
        };
        let reasons = self.reasons().iter().map(|r| format!("`{r}`")).collect::<Vec<_>>();
        format!("{meaning} `error.reason`: {}.", reasons.join(" or "))
    }
}

/// `200` with `ok` as its body schema, then each error response with the error envelope.
fn responses(ok: Value, errors: &[Failure]) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({ "description": "OK", "content": { "application/json": { "schema": ok } } }),
    );
    for &failure in errors {
        let previous = responses.insert(
            failure.status().to_string(),
            json!({
                "description": failure.description(),
                "content": { "application/json": { "schema": { "$ref": ERROR_REF } } },
            }),
        );
        assert!(
            previous.is_none(),
            "two error responses with status {}",
            failure.status()
        );
    }
    Value::Object(responses)
}

/// A list page's envelope: `result` holds the items, each an `item_ref`, and `pagination`
/// the count and the next page's cursor.
fn list_envelope(item_ref: &str) -> Value {
    success_envelope(json!({
        "result": {
            "type": "array",
            "items": { "$ref": item_ref },
            "description": "The list of items in the response",
            "nullable": true,
        },
        "pagination": {
            "type": "object",
            "properties": {
                "count": {
                    "type": "integer",
                    "description": "Number of items returned in the current page.",
                },
                "next": {
                    "type": "string",
                    "description": "Cursor pointing to the next page of results. Use this value as \
                        the 'after' query parameter in your next request to fetch the following page. \
                        If null, you have reached the end of the result set.",
                    "nullable": true,
                },
            },
            "description": "The pagination info associated with the response",
        },
    }))
}

/// The success envelope: `success` and `messages`, plus `extra`'s properties.
fn success_envelope(extra: Value) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "success".to_owned(),
        json!({
            "type": "boolean",
            "description": "Represents the status of the query operation, confirming if it was successful. \
                This field is always true",
        }),
    );
    properties.insert(
        "messages".to_owned(),
        json!({
            "type": "array",
            "items": {},
            "description": "Contains a list of messages providing relevant information or feedback related to \
                the query or operation",
        }),
    );
    if let Value::Object(extra) = extra {
        properties.extend(extra);
    }
    json!({ "type": "object", "properties": properties })
}

// ---- component schemas --------------------------------------------------------------

fn webhook_schema() -> Value {
    json!({
        "title": "Webhook",
        "type": "object",
        "properties": {
            "id": { "type": "string", "description": "Unique identifier of the webhook object." },
            "name": {
                "type": "string",
                "description": "Human-readable name for the webhook configuration. Useful for identifying its \
                    purpose in dashboards or logs.",
                "example": "My Ecommerce Webhook",
            },
            "url": {
                "type": "string",
                "description": "Publicly accessible URL that will receive event POST requests from this webhook.",
            },
            "enabled": {
                "type": "boolean",
                "description": "Indicates whether the webhook is currently enabled. If false, events will not be sent.",
            },
            "events": {
                "type": "array",
                "items": { "type": "string" },
                "description": "List of event types (e.g., 'payment.created') that will trigger this webhook.",
                "nullable": true,
            },
            "apiRelease": {
                "enum": api_release_enum(),
                "type": "string",
                "description": "The release identifier of the API expected by this webhook. Ensures the webhook \
                    receives the latest object schema for a given release cycle.",
            },
            "verificationMethod": verification_method_schema(
                "Method used to verify the integrity of incoming webhook requests.",
            ),
            "headers": {
                "type": "object",
                "additionalProperties": { "type": "string" },
                "description": "Optional HTTP headers to include in webhook requests. Useful for passing \
                    authentication or context info.",
                "nullable": true,
            },
            "alertEmails": {
                "type": "array",
                "items": { "type": "string" },
                "description": "Email addresses to notify when delivery to this webhook repeatedly fails.",
                "nullable": true,
            },
            "createTime": {
                "type": "string",
                "description": "Timestamp when the webhook was created.",
                "format": "date-time",
            },
            "updateTime": {
                "type": "string",
                "description": "Timestamp when the webhook was last updated.",
                "format": "date-time",
                "nullable": true,
            },
            "metadata": metadata_schema("Custom metadata for storing additional context or labels for this webhook."),
        },
        "description": "A webhook is an HTTP endpoint that hookrelay sends a POST request to whenever one of its \
            subscribed events occurs, such as `payment.completed` or `payout.failed`.",
    })
}

fn event_schema() -> Value {
    json!({
        "title": "Event",
        "required": ["id", "name", "object", "data", "createTime", "deliveryCount"],
        "type": "object",
        "properties": {
            "id": {
                "pattern": prefix_pattern(EventId::PREFIX),
                "type": "string",
                "description": "Unique identifier of the event; receivers get it as `event.id` and in the \
                    Monime-Event-Id header.",
            },
            "name": {
                "type": "string",
                "description": format!(
                    "The event's name: one from the event catalog, or `{TEST_EVENT_NAME}` for an event created by \
                     SendTestEvent."
                ),
                "example": "payment.completed",
            },
            "object": event_object_schema("The resource the event is about."),
            "data": { "type": "object", "description": "The object as the producer published it." },
            "createTime": {
                "type": "string",
                "description": "Timestamp when the event was published.",
                "format": "date-time",
            },
            "deliveryCount": {
                "minimum": 0,
                "type": "integer",
                "description": "How many deliveries publishing the event created: one for each enabled webhook of \
                    the space subscribed to its name at that moment.",
            },
        },
        "description": "Something that happened to an object, published by a producer and delivered to every \
            enabled webhook of the space subscribed to its name.",
    })
}

/// What each delivery status means; a new status fails to compile until it is described.
fn status_meaning(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "waiting for its next attempt, due at `nextAttemptTime`",
        DeliveryStatus::Succeeded => "the receiver answered with a 2xx status",
        DeliveryStatus::Failed => {
            "every scheduled attempt failed, or the receiver answered 410 Gone (which also disables the webhook)"
        }
        DeliveryStatus::Cancelled => "its webhook was disabled or deleted before it was delivered",
    }
}

/// What each attempt error kind means; a new kind fails to compile until it is described.
fn error_kind_meaning(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::HttpStatus => "the receiver answered with a status other than 2xx (see `statusCode`)",
        ErrorKind::Timeout => "no complete answer within the attempt timeout",
        ErrorKind::Connect => "the connection was refused or reset, or could not be made in time",
        ErrorKind::Dns => "the host name did not resolve",
        ErrorKind::Tls => "the TLS handshake failed",
        ErrorKind::BlockedAddress => "the host resolved only to addresses deliveries may not reach",
        ErrorKind::Request => "anything else that broke the request",
    }
}

/// `` `name`: meaning; `name`: meaning`` for every value of an enum.
fn meanings<T: Copy>(values: &[T], name: impl Fn(T) -> &'static str, meaning: impl Fn(T) -> &'static str) -> String {
    let each = values.iter().map(|&v| format!("`{}`: {}", name(v), meaning(v)));
    each.collect::<Vec<_>>().join("; ")
}

fn delivery_schema() -> Value {
    json!({
        "title": "Delivery",
        "required": [
            "id",
            "webhookId",
            "eventId",
            "eventName",
            "status",
            "attemptCount",
            "nextAttemptTime",
            "createTime",
            "updateTime",
        ],
        "type": "object",
        "properties": {
            "id": {
                "pattern": prefix_pattern(DeliveryId::PREFIX),
                "type": "string",
                "description": "Unique identifier of the delivery.",
            },
            "webhookId": {
                "pattern": prefix_pattern(WebhookId::PREFIX),
                "type": "string",
                "description": "The webhook the event is delivered to.",
            },
            "eventId": {
                "pattern": prefix_pattern(EventId::PREFIX),
                "type": "string",
                "description": "The event delivered.",
            },
            "eventName": {
                "type": "string",
                "description": format!("The event's name (`{TEST_EVENT_NAME}` for a test event)."),
            },
            "status": {
                "enum": delivery_status_enum(),
                "type": "string",
                "description": format!(
                    "Where the delivery stands. {}.",
                    meanings(&DeliveryStatus::ALL, DeliveryStatus::as_str, status_meaning)
                ),
            },
            "attemptCount": { "minimum": 0, "type": "integer", "description": "Attempts made so far." },
            "nextAttemptTime": {
                "type": "string",
                "description": "When the next attempt is due; null unless the delivery is `pending`.",
                "format": "date-time",
                "nullable": true,
            },
            "createTime": {
                "type": "string",
                "description": "Timestamp when the delivery was created, with its event.",
                "format": "date-time",
            },
            "updateTime": {
                "type": "string",
                "description": "Timestamp when the delivery last changed.",
                "format": "date-time",
            },
            "attempts": {
                "type": "array",
                "items": { "$ref": ATTEMPT_REF },
                "description": "Every attempt made so far, oldest first. Only GetWebhookDelivery includes it.",
            },
        },
        "description": "One event's delivery to one webhook, retried on a schedule until the receiver answers \
            with a 2xx status or the attempts run out.",
    })
}

fn delivery_attempt_schema() -> Value {
    json!({
        "title": "DeliveryAttempt",
        "required": ["attempt", "startTime", "durationMs", "statusCode", "errorKind", "responseBody"],
        "type": "object",
        "properties": {
            "attempt": {
                "minimum": 1,
                "type": "integer",
                "description": "1 for the first attempt, then 2, 3, ...; receivers get it in the \
                    Monime-Delivery-Attempt header.",
            },
            "startTime": {
                "type": "string",
                "description": "Timestamp when the request started.",
                "format": "date-time",
            },
            "durationMs": {
                "minimum": 0,
                "type": "integer",
                "description": "How long the attempt took, in milliseconds.",
            },
            "statusCode": {
                "type": "integer",
                "description": "The HTTP status the receiver answered with; null when no answer came.",
                "nullable": true,
            },
            "errorKind": {
                "enum": error_kind_enum(),
                "type": "string",
                "description": format!(
                    "Why the attempt failed; null when it succeeded. {}.",
                    meanings(&ErrorKind::ALL, ErrorKind::as_str, error_kind_meaning)
                ),
                "nullable": true,
            },
            "responseBody": {
                "maxLength": RESPONSE_BODY_KEPT,
                "type": "string",
                "description": format!(
                    "The first {RESPONSE_BODY_KEPT} bytes of the response body, as UTF-8 (invalid sequences \
                     replaced by U+FFFD); null when no answer came."
                ),
                "nullable": true,
            },
        },
        "description": "One attempt to deliver an event: one signed POST to the webhook's URL.",
    })
}

fn error_envelope_schema() -> Value {
    json!({
        "title": "ErrorEnvelope",
        "type": "object",
        "required": ["success", "messages", "error"],
        "properties": {
            "success": { "type": "boolean", "enum": [false], "description": "Always false for an error." },
            "messages": {
                "type": "array",
                "items": { "type": "string" },
                "description": "The error message, for clients that only read `messages`.",
            },
            "error": {
                "type": "object",
                "required": ["code", "reason", "message", "details"],
                "properties": {
                    "code": { "type": "integer", "description": "The HTTP status code." },
                    "reason": {
                        "type": "string",
                        "description": "A machine-readable reason in snake_case, such as `validation_failed`, \
                            `unauthenticated` or `not_found`.",
                    },
                    "message": { "type": "string", "description": "What went wrong, for humans." },
                    "details": {
                        "type": "array",
                        "description": "Every rule the request broke; empty for other errors.",
                        "items": {
                            "type": "object",
                            "required": ["field", "rule", "message"],
                            "properties": {
                                "field": {
                                    "type": "string",
                                    "description": "Where the problem is: `name`, `events[2]`, `headers.X-Foo`, \
                                        `Idempotency-Key`.",
                                },
                                "rule": {
                                    "type": "string",
                                    "description": "Which rule, snake_case: `required`, `max_length`, \
                                        `unknown_field`, ...",
                                },
                                "message": { "type": "string", "description": "A sentence for humans." },
                            },
                        },
                    },
                },
            },
        },
        "description": "The body of every error response.",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const REFERENCE: &str = include_str!("../../../docs/reference/monime-webhooks-openapi.json");
    /// Prose: allowed to differ from the reference.
    const PROSE: [&str; 5] = ["description", "summary", "title", "example", "tags"];

    fn reference() -> Value {
        serde_json::from_str(REFERENCE).expect("the vendored reference is valid JSON")
    }

    /// `value` without prose keys, at any depth. Inside `properties` the keys are property
    /// names, so they are kept (their schemas are stripped).
    fn strip(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(key, _)| !PROSE.contains(&key.as_str()))
                    .map(|(key, v)| {
                        let v = match v {
                            Value::Object(props) if key == "properties" => {
                                Value::Object(props.iter().map(|(name, s)| (name.clone(), strip(s))).collect())
                            }
                            _ => strip(v),
                        };
                        (key.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }

    /// Records where `ours` and `theirs` differ at `place`, prose ignored.
    fn compare(diffs: &mut Vec<String>, place: &str, ours: Option<&Value>, theirs: Option<&Value>) {
        differences(diffs, place, ours.map(strip).as_ref(), theirs.map(strip).as_ref());
    }

    /// Records each innermost place where two values differ.
    fn differences(diffs: &mut Vec<String>, place: &str, ours: Option<&Value>, theirs: Option<&Value>) {
        match (ours, theirs) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                    differences(diffs, &format!("{place}.{key}"), a.get(key), b.get(key));
                }
            }
            (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    differences(diffs, &format!("{place}[{i}]"), Some(x), Some(y));
                }
            }
            _ if ours != theirs => {
                let show = |v: Option<&Value>| v.map_or("(absent)".to_owned(), Value::to_string);
                diffs.push(format!("{place}: ours {}, reference {}", show(ours), show(theirs)));
            }
            _ => {}
        }
    }

    /// An operation's parameters keyed by (`in`, `name`).
    fn parameters(diffs: &mut Vec<String>, place: &str, operation: &Value) -> BTreeMap<(String, String), Value> {
        let list = operation["parameters"].as_array().cloned().unwrap_or_default();
        let key = |p: &Value, field: &str| p[field].as_str().unwrap_or("").to_owned();
        let keyed: BTreeMap<_, _> = list
            .iter()
            .map(|p| ((key(p, "in"), key(p, "name")), p.clone()))
            .collect();
        if keyed.len() != list.len() {
            diffs.push(format!("{place}: a parameter is listed twice"));
        }
        keyed
    }

    #[test]
    fn webhook_operations_agree_with_the_reference() {
        let ours = document(&EventCatalog::default());
        let reference = reference();
        let mut diffs = Vec::new();

        for (path, item) in reference["paths"].as_object().expect("the reference has paths") {
            for (method, theirs) in item.as_object().expect("a path item is an object") {
                let at = format!("{} {path}", method.to_uppercase());
                let Some(op) = ours["paths"][path].get(method) else {
                    diffs.push(format!("{at}: missing from our document"));
                    continue;
                };
                if op["operationId"] != theirs["operationId"] {
                    diffs.push(format!(
                        "{at}: operationId {} != {}",
                        op["operationId"], theirs["operationId"]
                    ));
                }
                let (our_params, their_params) = (parameters(&mut diffs, &at, op), parameters(&mut diffs, &at, theirs));
                let keys: BTreeSet<_> = our_params.keys().chain(their_params.keys()).collect();
                for key @ (location, name) in keys {
                    let part = format!("{at} parameter {name} (in {location})");
                    compare(&mut diffs, &part, our_params.get(key), their_params.get(key));
                }
                compare(
                    &mut diffs,
                    &format!("{at} requestBody"),
                    op.get("requestBody"),
                    theirs.get("requestBody"),
                );
                let part = format!("{at} responses.200");
                compare(
                    &mut diffs,
                    &part,
                    op["responses"].get("200"),
                    theirs["responses"].get("200"),
                );
            }
        }
        for pointer in [
            "/components/schemas/Webhook",
            "/components/securitySchemes/bearerAuth",
            "/security",
        ] {
            compare(&mut diffs, pointer, ours.pointer(pointer), reference.pointer(pointer));
        }
        assert!(
            diffs.is_empty(),
            "our OpenAPI document disagrees with the reference:\n{}",
            diffs.join("\n")
        );
    }

    #[test]
    fn limits_are_the_validators_limits() {
        let doc = document(&EventCatalog::default());
        for body in ["/paths/~1v1~1webhooks/post", "/paths/~1v1~1webhooks~1{id}/patch"] {
            let properties = format!("{body}/requestBody/content/application~1json/schema/properties");
            for (field, expected) in [
                ("name/maxLength", limits::NAME_MAX),
                ("url/maxLength", limits::URL_MAX),
                ("events/maxItems", limits::EVENTS_MAX),
                ("headers/maxProperties", limits::HEADERS_MAX),
                ("alertEmails/maxItems", limits::ALERT_EMAILS_MAX),
                ("metadata/maxProperties", limits::METADATA_MAX),
            ] {
                let pointer = format!("{properties}/{field}");
                assert_eq!(doc.pointer(&pointer), Some(&json!(expected)), "{pointer}");
            }
            let releases: Vec<_> = ApiRelease::ALL.iter().map(|r| r.as_str()).collect();
            assert_eq!(
                doc.pointer(&format!("{properties}/apiRelease/enum")),
                Some(&json!(releases)),
                "{body}"
            );
        }
        let secret = doc
            .pointer("/components/schemas/Webhook/properties/verificationMethod/oneOf/0/properties/secret")
            .expect("the HS256 secret schema");
        assert_eq!(secret["minLength"], json!(limits::SECRET_MIN));
        assert_eq!(secret["maxLength"], json!(limits::SECRET_MAX));
        let list = &doc["paths"]["/v1/webhooks"]["get"]["parameters"];
        assert_eq!(list[0]["schema"]["maximum"], json!(PageQuery::MAX_LIMIT));
        let create = &doc["paths"]["/v1/webhooks"]["post"]["parameters"];
        assert_eq!(create[0]["schema"]["maxLength"], json!(IDEMPOTENCY_KEY_MAX));
    }

    #[test]
    fn event_descriptions_list_the_catalog() {
        let catalog = EventCatalog::with_extra(["order.shipped"]).expect("a well-formed name");
        let doc = document(&catalog);
        let pointer = "/paths/~1v1~1webhooks/post/requestBody/content/application~1json/schema/properties/events";
        let description = doc.pointer(pointer).expect("the events schema")["description"]
            .as_str()
            .unwrap_or("");
        assert!(catalog.names().all(|name| description.contains(name)), "{description}");
    }

    /// An operation's parameter named `name`.
    fn parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
        operation["parameters"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }

    #[test]
    fn event_and_delivery_operations_are_documented() {
        let catalog = EventCatalog::with_extra(["order.shipped"]).expect("a well-formed name");
        let doc = document(&catalog);
        let operations = [
            ("/v1/events", "post", "PublishEvent"),
            ("/v1/events", "get", "ListEvents"),
            ("/v1/events/{id}", "get", "GetEvent"),
            ("/v1/webhooks/{id}/deliveries", "get", "ListWebhookDeliveries"),
            (
                "/v1/webhooks/{id}/deliveries/{delivery_id}",
                "get",
                "GetWebhookDelivery",
            ),
            (
                "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
                "post",
                "RetryWebhookDelivery",
            ),
            ("/v1/webhooks/{id}/test", "post", "SendTestEvent"),
        ];
        for (path, method, id) in operations {
            let operation = &doc["paths"][path][method];
            assert_eq!(operation["operationId"], id, "{method} {path}");
            assert_eq!(parameter(operation, "Monime-Space-Id")["required"], true, "{id}");
            assert!(
                parameter(operation, "Monime-Version")["schema"]["enum"].is_array(),
                "{id}"
            );
            let takes_key = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "Idempotency-Key");
            assert_eq!(takes_key, id == "PublishEvent", "{id}: Idempotency-Key");
            for name in ["id", "delivery_id"]
                .into_iter()
                .filter(|name| path.contains(&format!("{{{name}}}")))
            {
                let prefix = match (name, path.starts_with("/v1/events")) {
                    ("delivery_id", _) => DeliveryId::PREFIX,
                    (_, true) => EventId::PREFIX,
                    _ => WebhookId::PREFIX,
                };
                let param = parameter(operation, name);
                assert_eq!(param["in"], "path", "{id} {name}");
                assert_eq!(param["schema"]["pattern"], prefix_pattern(prefix), "{id} {name}");
            }
            assert_eq!(
                operation["responses"]["404"].is_object(),
                path.contains("{id}"),
                "{id}: 404"
            );
        }
        for (path, method) in [("/v1/events", "get"), ("/v1/webhooks/{id}/deliveries", "get")] {
            let limit = parameter(&doc["paths"][path][method], "limit");
            assert_eq!(limit["schema"]["maximum"], json!(PageQuery::MAX_LIMIT), "{path}");
            assert_eq!(limit["schema"]["default"], json!(PageQuery::DEFAULT_LIMIT), "{path}");
        }
        for (path, method) in [
            ("/v1/webhooks/{id}/deliveries/{delivery_id}/retry", "post"),
            ("/v1/webhooks/{id}/test", "post"),
        ] {
            assert!(doc["paths"][path][method]["responses"]["409"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("webhook_disabled")));
        }

        let statuses: Vec<_> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
        let list = &doc["paths"]["/v1/webhooks/{id}/deliveries"]["get"];
        assert_eq!(parameter(list, "status")["schema"]["enum"], json!(statuses));
        assert_eq!(
            doc["components"]["schemas"]["Delivery"]["properties"]["status"]["enum"],
            json!(statuses)
        );
        let kinds: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        let attempt = &doc["components"]["schemas"]["DeliveryAttempt"]["properties"];
        assert_eq!(attempt["errorKind"]["enum"], json!(kinds));
        assert_eq!(attempt["responseBody"]["maxLength"], json!(RESPONSE_BODY_KEPT));

        let body = doc
            .pointer("/paths/~1v1~1events/post/requestBody/content/application~1json/schema")
            .expect("the publish body");
        assert_eq!(body["required"], json!(["name", "object", "data"]));
        assert_eq!(body["additionalProperties"], false);
        assert_eq!(
            body["properties"]["name"]["enum"],
            json!(catalog.names().collect::<Vec<_>>())
        );
        let object = &body["properties"]["object"];
        assert_eq!(object["additionalProperties"], false);
        assert_eq!(object["properties"]["id"]["maxLength"], json!(OBJECT_ID_MAX));
        assert_eq!(object["properties"]["type"]["maxLength"], json!(OBJECT_TYPE_MAX));
        let event = &doc["components"]["schemas"]["Event"];
        assert_eq!(event["properties"]["object"], *object);
        assert!(event["properties"]["name"]["description"]
            .as_str()
            .unwrap()
            .contains(TEST_EVENT_NAME));
    }

    /// Each documented error response is one the server gives: the same status, and a
    /// reason it can carry.
    #[tokio::test]
    async fn documented_errors_are_the_servers() {
        use axum::response::IntoResponse;

        use crate::error::ApiError;

        let not_found = || ApiError::NotFound("not found".to_owned());
        let cases = [
            (InvalidRequest, ApiError::field("limit", "range", "out of range")),
            (InvalidBody, ApiError::field("name", "required", "name is required")),
            (InvalidBody, ApiError::InvalidJson("eof".to_owned())),
            (Unauthenticated, ApiError::Unauthenticated("no token")),
            (Forbidden, ApiError::Forbidden("spc-x".to_owned())),
            (WebhookNotFound, not_found()),
            (EventNotFound, not_found()),
            (DeliveryNotFound, not_found()),
            (IdempotencyConflict, ApiError::IdempotencyConflict("in progress")),
            (WebhookDisabled, ApiError::WebhookDisabled("whk-x".to_owned())),
            (PayloadTooLarge, ApiError::PayloadTooLarge(MAX_BODY_BYTES)),
            (UnsupportedMediaType, ApiError::UnsupportedMediaType),
        ];
        let failures: BTreeSet<Failure> = cases.iter().map(|&(failure, _)| failure).collect();
        let mut seen = BTreeSet::new();
        for (failure, error) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), failure.status(), "{failure:?}");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            let body: Value = serde_json::from_slice(&body).expect("a JSON body");
            let reason = body["error"]["reason"].as_str().expect("a reason").to_owned();
            assert!(failure.reasons().contains(&reason.as_str()), "{failure:?}: {reason}");
            seen.insert((failure, reason));
        }
        for &failure in &failures {
            for &reason in failure.reasons() {
                assert!(
                    seen.contains(&(failure, reason.to_owned())),
                    "{failure:?}: no case for {reason}"
                );
            }
        }
        // Every error response in the document is one of these.
        let doc = document(&EventCatalog::default());
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    // /healthz's 503 is its own small body, not the error envelope.
                    let known = status == "200"
                        || (path == "/healthz" && status == "503")
                        || failures
                            .iter()
                            .any(|f| f.status().to_string() == *status && response["description"] == f.description());
                    assert!(known, "{method} {path}: response {status} is no known failure");
                }
            }
        }
    }

    #[test]
    fn every_ref_resolves() {
        fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    found.extend(map.get("$ref").and_then(Value::as_str));
                    map.values().for_each(|v| refs(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let doc = document(&EventCatalog::default());
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let pointer = reference.strip_prefix('#').unwrap_or(reference);
            assert!(doc.pointer(pointer).is_some(), "{reference} does not resolve");
        }
    }
}
