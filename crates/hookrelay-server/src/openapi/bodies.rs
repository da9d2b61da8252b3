//! Request bodies, and the schemas they share with the component schemas.

use hookrelay_core::event::{OBJECT_ID_MAX, OBJECT_TYPE_MAX};
use hookrelay_core::webhook::{limits, RESERVED_HEADERS, RESERVED_PREFIX};
use hookrelay_core::{ApiRelease, EventCatalog};
use serde_json::{json, Value};

use super::api_release_enum;

pub(super) fn json_body(schema: Value) -> Value {
    json!({ "content": { "application/json": { "schema": schema } } })
}

pub(super) fn create_webhook_schema(events: &str) -> Value {
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

pub(super) fn update_webhook_schema(events: &str) -> Value {
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
    let reserved: Vec<&str> = RESERVED_HEADERS.iter().map(|(name, _)| *name).collect();
    let rules = format!(
        " Values are at most {} characters; these names (case-insensitive) and names starting with {} are \
         reserved: {}.",
        limits::HEADER_VALUE_MAX,
        RESERVED_PREFIX,
        reserved.join(", ")
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

pub(super) fn metadata_schema(description: &str) -> Value {
    json!({
        "maxProperties": limits::METADATA_MAX,
        "type": "object",
        "description": description,
        "nullable": true,
    })
}

/// HS256 or ES256; the same schema in requests and in the `Webhook` object.
pub(super) fn verification_method_schema(description: &str) -> Value {
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

pub(super) fn publish_event_schema(catalog: &EventCatalog) -> Value {
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
pub(super) fn event_object_schema(description: &str) -> Value {
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
