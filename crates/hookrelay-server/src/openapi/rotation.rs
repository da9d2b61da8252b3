//! The key rotation operations, the JWK Set operations, and their schemas.

use hookrelay_core::webhook::{limits, DEFAULT_OVERLAP, MAX_OVERLAP};
use hookrelay_core::{KeyId, SpaceId};
use serde_json::{json, Value};

use super::bodies::json_body;
use super::params::*;
use super::responses::{responses, success_envelope, Failure::*};
use super::{prefix_pattern, ROTATION_REF, WEBHOOK_REF};
use crate::api::jwks::MAX_AGE_SECS;

pub(super) fn rotate_webhook_key() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Rotate Webhook Key",
        "description": format!(
            "Replace the webhook's signing key: HS256 takes `secret` or generates one, ES256 generates a new P-256 \
             key pair (a `secret` is refused). The retired key keeps signing beside the new one for `overlap` \
             (default {}h, at most {}d, `0s` for none): each delivery then carries `v1=<new>,v1=<old>` in \
             `Monime-Signature` and both key ids in `Monime-Signature-Key-Id`. At most two keys are live: a \
             rotation during an overlap drops the oldest. The answer holds the webhook, its `verificationMethod` \
             the new key, and the rotation's state. Replays under the same Idempotency-Key answer the first \
             result and rotate once.",
            DEFAULT_OVERLAP.as_secs() / 3600,
            MAX_OVERLAP.as_secs() / 86_400,
        ),
        "operationId": "RotateWebhookKey",
        "parameters": [id_param("rotate the key of"), idempotency_param(), version_param(), space_param()],
        "requestBody": json_body(rotate_body_schema()),
        "responses": responses(
            success_envelope(json!({
                "result": {
                    "type": "object",
                    "required": ["webhook", "rotation"],
                    "properties": { "webhook": { "$ref": WEBHOOK_REF }, "rotation": { "$ref": ROTATION_REF } },
                },
            })),
            &[
                InvalidBody,
                Unauthenticated,
                Forbidden,
                WebhookNotFound,
                IdempotencyConflict,
                PayloadTooLarge,
                UnsupportedMediaType,
            ],
        ),
    })
}

fn rotate_body_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Every field is optional: `{}` rotates with a generated key and the default overlap.",
        "properties": {
            "secret": {
                "type": "string",
                "minLength": limits::SECRET_MIN,
                "maxLength": limits::SECRET_MAX,
                "description": "HS256 only: the new secret, different from the current one. Generated when absent.",
            },
            "overlap": {
                "type": "string",
                "pattern": "^[0-9]+(ms|s|m|h|d)$",
                "default": "24h",
                "description": "How long the retired key keeps signing: a whole number and a unit (ms, s, m, h, d), \
                    at most 7d; `0s` retires it at once.",
            },
        },
    })
}

pub(super) fn get_webhook_rotation() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "Get Webhook Key Rotation",
        "description": "The webhook's current key id and, while a rotation's overlap lasts, the retired key's id \
            and when it stops signing. An overlap ends by time alone.",
        "operationId": "GetWebhookKeyRotation",
        "parameters": [id_param("read the key rotation of"), version_param(), space_param()],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": ROTATION_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound],
        ),
    })
}

pub(super) fn end_webhook_rotation() -> Value {
    json!({
        "tags": ["Webhook"],
        "summary": "End Webhook Key Rotation",
        "description": "End the overlap now: from the next attempt on only the current key signs. Answers the \
            rotation's state; ending a rotation that has no overlap changes nothing.",
        "operationId": "EndWebhookKeyRotation",
        "parameters": [id_param("end the key rotation of"), version_param(), space_param()],
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": ROTATION_REF } })),
            &[InvalidRequest, Unauthenticated, Forbidden, WebhookNotFound, IdempotencyConflict],
        ),
    })
}

pub(super) fn rotation_schema() -> Value {
    let key_id = || json!({ "type": "string", "pattern": prefix_pattern(KeyId::PREFIX) });
    json!({
        "title": "WebhookKeyRotation",
        "type": "object",
        "required": ["webhookId", "currentKeyId", "previousKeyId", "overlapEndTime"],
        "properties": {
            "webhookId": { "type": "string" },
            "currentKeyId": key_id(),
            "previousKeyId": {
                "allOf": [key_id()],
                "nullable": true,
                "description": "The retired key's id while it still signs; null otherwise.",
            },
            "overlapEndTime": {
                "type": "string",
                "format": "date-time",
                "nullable": true,
                "description": "When the retired key stops signing; null without an overlap.",
            },
        },
    })
}

fn jwk_set(description: &str, not_found: bool) -> Value {
    let mut answers = json!({
        "200": {
            "description": "The JWK Set (RFC 7517)",
            "headers": {
                "Cache-Control": { "schema": { "type": "string", "example": format!("public, max-age={MAX_AGE_SECS}") } },
                "ETag": { "schema": { "type": "string" } },
            },
            "content": { "application/jwk-set+json": { "schema": jwk_set_schema() } },
        },
        "304": { "description": "Not modified: the `If-None-Match` ETag is current" },
    });
    if not_found {
        answers["404"] = responses(json!({}), &[WebhookNotFound])["404"].clone();
    }
    json!({ "description": description, "responses": answers })
}

fn jwk_set_schema() -> Value {
    json!({
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "crv", "x", "y", "kid", "use", "alg"],
                    "properties": {
                        "kty": { "enum": ["EC"], "type": "string" },
                        "crv": { "enum": ["P-256"], "type": "string" },
                        "x": { "type": "string", "description": "base64url, unpadded" },
                        "y": { "type": "string", "description": "base64url, unpadded" },
                        "kid": { "type": "string", "pattern": prefix_pattern(KeyId::PREFIX) },
                        "use": { "enum": ["sig"], "type": "string" },
                        "alg": { "enum": ["ES256"], "type": "string" },
                    },
                },
            },
        },
    })
}

pub(super) fn get_webhook_jwks() -> Value {
    let mut operation = jwk_set(
        "The ES256 webhook's public keys: its current key and, during a rotation's overlap, the retired one, \
         named by the `kid` each delivery's `Monime-Signature-Key-Id` carries. Needs no token; cacheable. \
         404 for an unknown webhook and for an HS256 one (a shared secret has no public part).",
        true,
    );
    operation["tags"] = json!(["Webhook"]);
    operation["summary"] = json!("Get Webhook JWKS");
    operation["operationId"] = json!("GetWebhookJwks");
    operation["parameters"] = json!([id_param("publish the keys of")]);
    operation
}

pub(super) fn get_space_jwks() -> Value {
    let mut operation = jwk_set(
        "The public keys of every ES256 webhook of the space, each current key and each retired key still \
         in its overlap. Needs no token; cacheable. A space without ES256 webhooks, or an id no space has, \
         answers an empty set.",
        false,
    );
    operation["tags"] = json!(["Webhook"]);
    operation["summary"] = json!("Get Space JWKS");
    operation["operationId"] = json!("GetSpaceJwks");
    operation["parameters"] = json!([path_param("id", SpaceId::PREFIX, "Unique identifier of the space.")]);
    operation
}
