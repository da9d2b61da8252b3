//! The component schemas: the objects the API returns, and the error envelope.

use hookrelay_core::alert::{AlertKind, AlertStatus};
use hookrelay_core::delivery::{DeliveryStatus, ErrorKind, RESPONSE_BODY_KEPT};
use hookrelay_core::event::TEST_EVENT_NAME;
use hookrelay_core::{AlertId, DeliveryId, EventId, WebhookId};
use serde_json::{json, Value};

use super::bodies::{event_object_schema, metadata_schema, verification_method_schema};
use super::{
    alert_kind_enum, alert_status_enum, api_release_enum, delivery_status_enum, error_kind_enum, meanings,
    prefix_pattern, ATTEMPT_REF,
};

pub(super) fn webhook_schema() -> Value {
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

pub(super) fn event_schema() -> Value {
    json!({
        "title": "Event",
        "required": ["id", "name", "object", "dataRemoved", "createTime", "deliveryCount"],
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
            "data": {
                "type": "object",
                "description": "The object as the producer published it; absent once removed (`dataRemoved`).",
            },
            "dataRemoved": {
                "type": "boolean",
                "description": "Whether the event's data was removed, by payload retention or an erasure: the \
                    event and its delivery history stay, without `data` and without response bodies.",
            },
            "dataRemoveTime": {
                "type": "string",
                "format": "date-time",
                "description": "When the data was removed; present only then.",
            },
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

pub(super) fn delivery_schema() -> Value {
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

pub(super) fn delivery_attempt_schema() -> Value {
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

/// What each alert kind means; a new kind fails to compile until it is described.
fn alert_kind_meaning(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Failing => {
            "deliveries to the webhook keep failing (its last several attempts failed, or a delivery ran out of attempts)"
        }
        AlertKind::Recovered => "a delivery succeeded again after a `failing` alert",
        AlertKind::Disabled => "no delivery succeeded for too long, so the webhook was disabled",
    }
}

/// What each alert status means; a new status fails to compile until it is described.
fn alert_status_meaning(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Pending => {
            "waiting to be sent, or to be sent again after the mail server failed, at `nextAttemptTime`"
        }
        AlertStatus::Sent => "the mail server accepted it, at `sentTime`",
        AlertStatus::Skipped => "not sent because the server has no mail server configured; it was logged instead",
        AlertStatus::Suppressed => {
            "not e-mailed because every recipient had reached its alert e-mail limit; each recipient gets it \
             listed in a digest when its window closes"
        }
    }
}

/// An alert as `ListWebhookAlerts` answers it: every property, always present.
pub(super) fn alert_schema() -> Value {
    let date_time = |description: &str, nullable: bool| {
        let mut schema = json!({ "type": "string", "description": description, "format": "date-time" });
        if nullable {
            schema["nullable"] = json!(true);
        }
        schema
    };
    json!({
        "title": "Alert",
        "required": [
            "id",
            "webhookId",
            "kind",
            "recipients",
            "subject",
            "status",
            "attempts",
            "nextAttemptTime",
            "lastError",
            "createTime",
            "sentTime",
        ],
        "type": "object",
        "properties": {
            "id": {
                "pattern": prefix_pattern(AlertId::PREFIX),
                "type": "string",
                "description": "Unique identifier of the alert.",
            },
            "webhookId": {
                "pattern": prefix_pattern(WebhookId::PREFIX),
                "type": "string",
                "description": "The webhook the alert is about.",
            },
            "kind": {
                "enum": alert_kind_enum(),
                "type": "string",
                "description": format!(
                    "Why the alert was raised. {}.",
                    meanings(&AlertKind::ALL, AlertKind::as_str, alert_kind_meaning)
                ),
            },
            "recipients": {
                "type": "array",
                "items": { "type": "string" },
                "description": "The webhook's `alertEmails` when the alert was raised.",
            },
            "subject": { "type": "string", "description": "The e-mail's subject line." },
            "status": {
                "enum": alert_status_enum(),
                "type": "string",
                "description": format!(
                    "Where the alert stands. {}.",
                    meanings(&AlertStatus::ALL, AlertStatus::as_str, alert_status_meaning)
                ),
            },
            "attempts": {
                "minimum": 0,
                "type": "integer",
                "description": "Sending attempts made so far (a skipped alert counts one).",
            },
            "nextAttemptTime": date_time("When the next sending attempt is due; null unless the alert is `pending`.", true),
            "lastError": {
                "type": "string",
                "description": "Why the last failed sending attempt failed; null when none failed.",
                "nullable": true,
            },
            "createTime": date_time("Timestamp when the alert was raised.", false),
            "sentTime": date_time("Timestamp when the mail server accepted the alert; null until then.", true),
        },
        "additionalProperties": false,
        "description": "An e-mail about a webhook's health, sent to its `alertEmails`: when its deliveries keep \
            failing (at most once per quiet period), when they recover, and when it is disabled.",
    })
}

pub(super) fn error_envelope_schema() -> Value {
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
