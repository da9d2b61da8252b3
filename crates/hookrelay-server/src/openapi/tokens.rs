//! The token operations, their schemas, and the scopes every operation is listed with.

use hookrelay_core::access::{Scope, TOKEN_NAME_MAX};
use hookrelay_core::token::{SHOWN_CHARS, TOKEN_PREFIX};
use hookrelay_core::TokenId;
use serde_json::{json, Map, Value};

use super::bodies::json_body;
use super::params::*;
use super::responses::{list_envelope, responses, success_envelope, Failure::*};
use super::{meanings, prefix_pattern, CREATED_TOKEN_REF, SCOPE_REF, TOKEN_REF};
use crate::api::{route_table, Access};

/// The extension naming the scope an operation needs.
pub(super) const SCOPE_EXTENSION: &str = "x-hookrelay-scope";

pub(super) fn list_tokens() -> Value {
    json!({
        "tags": ["Token"],
        "summary": "List Tokens",
        "description": "Retrieves the space's access tokens, newest first, one page at a time: never the tokens \
            themselves, only the first characters of each (`prefix`).",
        "operationId": "ListTokens",
        "parameters": [limit_param(), after_param(), version_param(), space_param()],
        "responses": responses(list_envelope(TOKEN_REF), &[InvalidRequest, Unauthenticated, Forbidden]),
    })
}

pub(super) fn create_token() -> Value {
    json!({
        "tags": ["Token"],
        "summary": "Create Token",
        "description": "Create an access token for the space. The token is in `result.token`, in this answer \
            only (and in its replays under the same Idempotency-Key within 24 hours): only its digest is kept. \
            A token can only grant scopes it has itself (403 `insufficient_scope` naming those it lacks).",
        "operationId": "CreateToken",
        "parameters": [idempotency_param(), version_param(), space_param()],
        "requestBody": json_body(create_token_schema()),
        "responses": responses(
            success_envelope(json!({ "result": { "$ref": CREATED_TOKEN_REF } })),
            &[InvalidBody, Unauthenticated, Forbidden, IdempotencyConflict, PayloadTooLarge, UnsupportedMediaType],
        ),
    })
}

pub(super) fn revoke_token() -> Value {
    json!({
        "tags": ["Token"],
        "summary": "Revoke Token",
        "description": "Revoke an access token of the space: it is refused on every node within a second. A token \
            may revoke itself.",
        "operationId": "RevokeToken",
        "parameters": [
            path_param("id", TokenId::PREFIX, "Unique identifier of the token to revoke."),
            version_param(),
            space_param(),
        ],
        "responses": responses(
            success_envelope(json!({})),
            &[InvalidRequest, Unauthenticated, Forbidden, TokenNotFound],
        ),
    })
}

pub(super) fn create_token_schema() -> Value {
    json!({
        "title": "CreateToken",
        "required": ["name", "scopes"],
        "type": "object",
        "properties": {
            "name": {
                "maxLength": TOKEN_NAME_MAX,
                "minLength": 1,
                "type": "string",
                "description": "What the token is for, to tell it apart in lists.",
                "example": "checkout service",
            },
            "scopes": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": true,
                "items": { "$ref": SCOPE_REF },
                "description": "What the token may do: each a scope the calling token has.",
            },
            "expireTime": {
                "type": "string",
                "format": "date-time",
                "nullable": true,
                "description": "When the token stops working: an RFC 3339 date-time in the future. Absent or null: \
                    never.",
            },
        },
        "additionalProperties": false,
        "description": "A new access token.",
    })
}

/// The `Token` schema, and with `token` the `CreatedToken` one.
pub(super) fn token_schema(with_token: bool) -> Value {
    let mut properties = json!({
        "id": {
            "type": "string",
            "pattern": prefix_pattern(TokenId::PREFIX),
            "description": "Unique identifier of the token's record (not the token).",
        },
        "name": { "type": "string", "description": "What the token is for." },
        "scopes": { "type": "array", "items": { "$ref": SCOPE_REF }, "description": "What the token may do." },
        "prefix": {
            "type": "string",
            "maxLength": SHOWN_CHARS,
            "description": format!(
                "The first {SHOWN_CHARS} characters after `{TOKEN_PREFIX}` of the token, to tell tokens apart; \
                 fewer for a token an operator chose, and empty for one made before tokens had records."
            ),
        },
        "createTime": { "type": "string", "format": "date-time", "description": "When the token was created." },
        "lastUsedTime": {
            "type": "string",
            "format": "date-time",
            "nullable": true,
            "description": "When the token was last used, to the minute; null if never.",
        },
        "expireTime": {
            "type": "string",
            "format": "date-time",
            "nullable": true,
            "description": "When the token stops working; null if never.",
        },
    });
    let mut required = vec![
        "id",
        "name",
        "scopes",
        "prefix",
        "createTime",
        "lastUsedTime",
        "expireTime",
    ];
    if with_token {
        properties["token"] = json!({
            "type": "string",
            "description": format!("The token, `{TOKEN_PREFIX}` and 40 letters and digits: shown in this answer only."),
        });
        required.push("token");
    }
    json!({
        "title": if with_token { "CreatedToken" } else { "Token" },
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
        "description": "An access token of the space. Send it as `Authorization: Bearer <token>`.",
    })
}

pub(super) fn scope_schema() -> Value {
    json!({
        "title": "Scope",
        "type": "string",
        "enum": Scope::ALL.map(Scope::as_str),
        "description": format!(
            "A permission of an access token; each operation names the one it needs in `{SCOPE_EXTENSION}`. {}.",
            meanings(&Scope::ALL, Scope::as_str, Scope::meaning)
        ),
    })
}

/// Lists in each routed operation of `paths` the scope its route needs, as the route
/// table declares it; a public route needs no token (`security: []`).
pub(super) fn list_scopes(paths: &mut Map<String, Value>) {
    for route in route_table().listed() {
        let method = route.method.as_str().to_lowercase();
        let Some(operation) = paths.get_mut(route.path).and_then(|item| item.get_mut(&method)) else {
            continue;
        };
        match route.access {
            Access::Scope(scope) => operation[SCOPE_EXTENSION] = json!(scope.as_str()),
            Access::Public => operation["security"] = json!([]),
        }
    }
}
