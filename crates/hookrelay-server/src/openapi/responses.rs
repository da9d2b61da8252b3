//! Response bodies: the success and list envelopes, and the error responses an
//! operation can give.

use serde_json::{json, Map, Value};

use super::ERROR_REF;
use crate::request::MAX_BODY_BYTES;
use Failure::*;

/// An error response, as one operation can give it. The tests check each status and
/// reason against what [`crate::error::ApiError`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Failure {
    /// A header or query parameter broke a rule.
    InvalidRequest,
    /// A header, query parameter or body field broke a rule, or the body is not JSON.
    InvalidBody,
    Unauthenticated,
    /// Another space's token, a token without the operation's scope, or a disabled space.
    Forbidden,
    WebhookNotFound,
    EventNotFound,
    /// No such webhook, or no such delivery of it.
    DeliveryNotFound,
    TokenNotFound,
    ErasureNotFound,
    /// No such webhook, or no such recovery of it.
    RecoveryNotFound,
    IdempotencyConflict,
    /// A creating POST whose key was used for another request, or that would exceed a
    /// quota.
    ConflictOrQuota,
    WebhookDisabled,
    /// A creating POST on a webhook: its key was used for another request, or the webhook
    /// is disabled.
    KeyOrDisabled,
    /// A retry: the webhook is disabled, or the delivery's event has no data any more.
    RetryRefused,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    /// The request was not received and answered within `http_request_timeout`.
    RequestTimeout,
}

impl Failure {
    /// The HTTP status.
    pub(super) fn status(self) -> u16 {
        match self {
            InvalidRequest | InvalidBody => 400,
            Unauthenticated => 401,
            Forbidden => 403,
            WebhookNotFound | EventNotFound | DeliveryNotFound | TokenNotFound | ErasureNotFound | RecoveryNotFound => {
                404
            }
            IdempotencyConflict | ConflictOrQuota | WebhookDisabled | RetryRefused | KeyOrDisabled => 409,
            RequestTimeout => 408,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            RateLimited => 429,
        }
    }

    /// The `error.reason`s it can carry.
    pub(super) fn reasons(self) -> &'static [&'static str] {
        match self {
            InvalidRequest => &["validation_failed"],
            InvalidBody => &["validation_failed", "invalid_json"],
            Unauthenticated => &["unauthenticated"],
            Forbidden => &["forbidden", "insufficient_scope", "space_disabled"],
            WebhookNotFound | EventNotFound | DeliveryNotFound | TokenNotFound | ErasureNotFound | RecoveryNotFound => {
                &["not_found"]
            }
            IdempotencyConflict => &["idempotency_conflict"],
            ConflictOrQuota => &["idempotency_conflict", "quota_exceeded"],
            WebhookDisabled => &["webhook_disabled"],
            RetryRefused => &["webhook_disabled", "event_data_removed"],
            KeyOrDisabled => &["idempotency_conflict", "webhook_disabled"],
            PayloadTooLarge => &["payload_too_large"],
            UnsupportedMediaType => &["unsupported_media_type"],
            RateLimited => &["rate_limited"],
            RequestTimeout => &["request_timeout"],
        }
    }

    /// What it means, then its reasons.
    pub(super) fn description(self) -> String {
        let meaning = match self {
            InvalidRequest => "A header or query parameter broke a rule, or a query parameter the operation does \
                not take was given (`unknown_parameter`, naming it), given twice (`repeated_parameter`) or without a \
                name. `error.details` lists each broken rule."
                .to_owned(),
            InvalidBody => "The request broke a rule (a header, a query parameter or a body field) or its body is \
                not valid JSON. `error.details` lists each broken rule."
                .to_owned(),
            Unauthenticated => "The Authorization header is missing, or its bearer token is not valid (unknown, \
                revoked or expired)."
                .to_owned(),
            Forbidden => "The token does not grant access to the space named by Monime-Space-Id (`forbidden`), \
                lacks the scope the operation needs, named in the message (`insufficient_scope`), or its space \
                is disabled by an operator (`space_disabled`)."
                .to_owned(),
            WebhookNotFound => "The space has no webhook with this id.".to_owned(),
            EventNotFound => "The space has no event with this id.".to_owned(),
            DeliveryNotFound => {
                "The space has no webhook with this id, or the webhook has no delivery with this id.".to_owned()
            }
            TokenNotFound => "The space has no token with this id (or it was revoked).".to_owned(),
            ErasureNotFound => "The space has no erasure with this id.".to_owned(),
            RecoveryNotFound => {
                "The space has no webhook with this id, or the webhook has no recovery with this id.".to_owned()
            }
            IdempotencyConflict => "The Idempotency-Key was already used for a different request, or the request \
                that used it is still in progress."
                .to_owned(),
            ConflictOrQuota => "The Idempotency-Key was already used for a different request, or the request \
                that used it is still in progress (`idempotency_conflict`); or the request would take the space \
                past a quota, named with its value in the message (`quota_exceeded`)."
                .to_owned(),
            WebhookDisabled => "The webhook is disabled; enable it first.".to_owned(),
            KeyOrDisabled => "The Idempotency-Key was already used for a different request, or the request \
                that used it is still in progress (`idempotency_conflict`); or the webhook is disabled, enable it \
                first (`webhook_disabled`)."
                .to_owned(),
            RetryRefused => "The webhook is disabled; enable it first (`webhook_disabled`). Or the delivery's \
                event has no data any more, removed by payload retention or an erasure: there is nothing to send \
                (`event_data_removed`)."
                .to_owned(),
            PayloadTooLarge => format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            UnsupportedMediaType => "The request body is not sent with Content-Type: application/json.".to_owned(),
            RequestTimeout => "The request was not received and answered within the server's \
                `http_request_timeout` after its headers (a body sent too slowly, say); the connection is closed."
                .to_owned(),
            RateLimited => "The space publishes faster than its quota `max_publish_rate` allows on this node (a \
                token bucket with bursts of twice the rate). The `Retry-After` header gives the seconds to wait."
                .to_owned(),
        };
        let reasons = self.reasons().iter().map(|r| format!("`{r}`")).collect::<Vec<_>>();
        format!("{meaning} `error.reason`: {}.", reasons.join(" or "))
    }
}

/// `200` with `ok` as its body schema, then each error response with the error envelope.
pub(super) fn responses(ok: Value, errors: &[Failure]) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({ "description": "OK", "content": { "application/json": { "schema": ok } } }),
    );
    for &failure in errors {
        let previous = responses.insert(failure.status().to_string(), error_response(failure));
        assert!(
            previous.is_none(),
            "two error responses with status {}",
            failure.status()
        );
    }
    Value::Object(responses)
}

/// Adds to every operation the failures every route can give: an unknown query
/// parameter (each route refuses those, public ones included) and the request timeout.
pub(super) fn add_server_wide_failures(paths: &mut Map<String, Value>) {
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for failure in [InvalidRequest, RequestTimeout] {
            let status = failure.status().to_string();
            if !responses.contains_key(&status) {
                responses.insert(status, error_response(failure));
            }
        }
    }
}

fn error_response(failure: Failure) -> Value {
    json!({
        "description": failure.description(),
        "content": { "application/json": { "schema": { "$ref": ERROR_REF } } },
    })
}

/// A list page's envelope: `result` holds the items, each an `item_ref`, and `pagination`
/// the count and the next page's cursor.
pub(super) fn list_envelope(item_ref: &str) -> Value {
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
pub(super) fn success_envelope(extra: Value) -> Value {
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
