//! The operations' parameters: paging, headers and path ids.

use hookrelay_core::{DeliveryId, SpaceId, WebhookId};
use serde_json::{json, Value};

use super::{delivery_status_enum, prefix_pattern};
use crate::api::PageQuery;
use crate::request::{IDEMPOTENCY_KEY_MAX, SUPPORTED_VERSIONS};

pub(super) fn limit_param() -> Value {
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

pub(super) fn after_param() -> Value {
    json!({
        "name": "after",
        "in": "query",
        "description": "Pagination cursor for fetching the next page of results. Set this to the 'next' cursor \
            value from a previous response to continue paginating forward.",
        "schema": { "maxLength": PageQuery::AFTER_MAX, "type": "string", "nullable": true },
    })
}

pub(super) fn idempotency_param() -> Value {
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

pub(super) fn version_param() -> Value {
    json!({
        "name": "Monime-Version",
        "in": "header",
        "description": "Specifies which version of the Monime API will handle this request.",
        "schema": { "enum": SUPPORTED_VERSIONS, "type": "string", "nullable": true },
    })
}

pub(super) fn space_param() -> Value {
    json!({
        "name": "Monime-Space-Id",
        "in": "header",
        "description": "The value is the tenancy parameter that Monime uses to determine which space the request \
            is intended for.",
        "required": true,
        "schema": { "maxLength": SpaceId::MAX_LEN, "pattern": prefix_pattern(SpaceId::PREFIX), "type": "string" },
    })
}

pub(super) fn id_param(action: &str) -> Value {
    webhook_param(&format!("Unique identifier of the webhook to {action}."))
}

pub(super) fn webhook_param(description: &str) -> Value {
    path_param("id", WebhookId::PREFIX, description)
}

pub(super) fn delivery_param(description: &str) -> Value {
    path_param("delivery_id", DeliveryId::PREFIX, description)
}

/// A path parameter holding an id with `prefix`. A malformed id is a 404, like an unknown one.
pub(super) fn path_param(name: &str, prefix: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": { "pattern": prefix_pattern(prefix), "type": "string" },
    })
}

pub(super) fn status_param() -> Value {
    json!({
        "name": "status",
        "in": "query",
        "description": "Only deliveries with this status; all of them when absent or empty.",
        "schema": { "enum": delivery_status_enum(), "type": "string" },
    })
}
