//! hookrelay's own OpenAPI 3.0.3 document, served at `GET /openapi.json`.
//!
//! The document is generated, not hand-written, so that it cannot drift from what the
//! server accepts and returns: every length, count, id pattern and enum comes from the
//! constants the validators and handlers use (`hookrelay_core::webhook::limits`,
//! `ApiRelease::ALL`, the id types, the event catalog, the event object limits,
//! `DeliveryStatus::ALL`, `ErrorKind::ALL`, `AlertKind::ALL`, `AlertStatus::ALL`,
//! `RESPONSE_BODY_KEPT`, and this crate's page, header and body limits). The webhook
//! operations follow Monime's published contract, vendored at
//! `docs/reference/monime-webhooks-openapi.json`; the tests check that ours agrees with it
//! on everything but prose. Ours is a superset: it adds the error envelope, the error
//! responses, the event, delivery, alert and token operations (named in Monime's
//! style), each operation's scope (`x-hookrelay-scope`, from the route table),
//! key rotation, the JWK Sets, `GET /healthz`, `GET /openapi.json` and `GET /metrics`.
//!
//! `paths` holds the operations, `params` their parameters, `bodies` the request bodies,
//! `responses` the envelopes and error responses, `schemas` the component schemas,
//! `tokens` the token operations and schemas and the scopes, `erasures` and `settings`
//! theirs, `rotation` the key rotation and JWK Set operations.

mod bodies;
mod erasures;
mod params;
mod paths;
mod recoveries;
mod responses;
mod rotation;
mod schemas;
mod settings;
#[cfg(test)]
mod tests;
mod tokens;

use hookrelay_core::alert::{AlertKind, AlertStatus};
use hookrelay_core::delivery::{DeliveryStatus, ErrorKind};
use hookrelay_core::{ApiRelease, EventCatalog};
use serde_json::{json, Value};

use erasures::*;
use paths::*;
use recoveries::*;
use rotation::*;
use schemas::*;
use settings::*;
use tokens::*;

const WEBHOOK_REF: &str = "#/components/schemas/Webhook";
const EVENT_REF: &str = "#/components/schemas/Event";
const DELIVERY_REF: &str = "#/components/schemas/Delivery";
const ATTEMPT_REF: &str = "#/components/schemas/DeliveryAttempt";
const ALERT_REF: &str = "#/components/schemas/Alert";
const ERROR_REF: &str = "#/components/schemas/ErrorEnvelope";
const TOKEN_REF: &str = "#/components/schemas/Token";
const CREATED_TOKEN_REF: &str = "#/components/schemas/CreatedToken";
const SCOPE_REF: &str = "#/components/schemas/Scope";
const ERASURE_REF: &str = "#/components/schemas/Erasure";
const ROTATION_REF: &str = "#/components/schemas/WebhookKeyRotation";
const WEBHOOK_SETTINGS_REF: &str = "#/components/schemas/WebhookSettings";
const RECOVERY_REF: &str = "#/components/schemas/WebhookRecovery";

/// The OpenAPI document for this build, listing `catalog`'s events where a request names
/// events.
pub fn document(catalog: &EventCatalog) -> Value {
    let events = catalog.names().collect::<Vec<_>>().join(", ");
    let mut document = json!({
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
                "description": "A webhook's delivery history, manual retries, bulk recoveries and test events.",
            },
            { "name": "Alert", "description": "The e-mails raised about a webhook's failing deliveries." },
            {
                "name": "Token",
                "description": "The space's access tokens: created with scopes, listed, revoked.",
            },
            {
                "name": "Erasure",
                "description": "Erasing the data of an object's events on request (GDPR), and the records of it.",
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
            "/v1/webhooks/{id}/rotate": { "post": rotate_webhook_key() },
            "/v1/webhooks/{id}/rotation": {
                "get": get_webhook_rotation(),
                "delete": end_webhook_rotation(),
            },
            "/v1/webhooks/{id}/jwks.json": { "get": get_webhook_jwks() },
            "/v1/spaces/{id}/jwks.json": { "get": get_space_jwks() },
            "/v1/webhooks/{id}/settings": {
                "get": get_webhook_settings(),
                "put": update_webhook_settings(),
            },
            "/v1/webhooks/{id}/deliveries": { "get": list_deliveries() },
            "/v1/webhooks/{id}/deliveries/{delivery_id}": { "get": get_delivery() },
            "/v1/webhooks/{id}/deliveries/{delivery_id}/retry": { "post": retry_delivery() },
            "/v1/webhooks/{id}/test": { "post": send_test_event() },
            "/v1/webhooks/{id}/recoveries": {
                "get": list_recoveries(),
                "post": create_recovery(),
            },
            "/v1/webhooks/{id}/recoveries/{recovery_id}": { "get": get_recovery() },
            "/v1/webhooks/{id}/alerts": { "get": list_alerts() },
            "/v1/events": {
                "get": list_events(),
                "post": publish_event(catalog),
            },
            "/v1/events/{id}": { "get": get_event() },
            "/v1/tokens": {
                "get": list_tokens(),
                "post": create_token(),
            },
            "/v1/tokens/{id}": { "delete": revoke_token() },
            "/v1/erasures": {
                "get": list_erasures(),
                "post": create_erasure(),
            },
            "/v1/erasures/{id}": { "get": get_erasure() },
            "/healthz": { "get": healthz() },
            "/openapi.json": { "get": openapi_json() },
            "/metrics": { "get": metrics() },
        },
        "components": {
            "schemas": {
                "Webhook": webhook_schema(),
                "Event": event_schema(),
                "Delivery": delivery_schema(),
                "DeliveryAttempt": delivery_attempt_schema(),
                "Alert": alert_schema(),
                "ErrorEnvelope": error_envelope_schema(),
                "Token": token_schema(false),
                "CreatedToken": token_schema(true),
                "Scope": scope_schema(),
                "Erasure": erasure_schema(),
                "WebhookKeyRotation": rotation_schema(),
                "WebhookSettings": settings_schema(true),
                "WebhookRecovery": recovery_schema(),
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
    });
    if let Some(paths) = document["paths"].as_object_mut() {
        list_scopes(paths);
        responses::add_server_wide_failures(paths);
    }
    document
}

/// The reference's id pattern: the prefix, then anything (the server checks the rest).
fn prefix_pattern(prefix: &str) -> String {
    format!("^{prefix}.*$")
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

fn alert_kind_enum() -> Vec<&'static str> {
    AlertKind::ALL.iter().map(|k| k.as_str()).collect()
}

fn alert_status_enum() -> Vec<&'static str> {
    AlertStatus::ALL.iter().map(|s| s.as_str()).collect()
}

/// `` `name`: meaning; `name`: meaning`` for every value of an enum.
fn meanings<T: Copy>(values: &[T], name: impl Fn(T) -> &'static str, meaning: impl Fn(T) -> &'static str) -> String {
    let each = values.iter().map(|&v| format!("`{}`: {}", name(v), meaning(v)));
    each.collect::<Vec<_>>().join("; ")
}
