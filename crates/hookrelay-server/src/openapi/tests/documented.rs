//! What the document states about the event, delivery and alert operations, its error
//! responses and its references.

use std::collections::BTreeSet;
use std::time::Duration;

use hookrelay_core::alert::{AlertKind, AlertStatus};
use hookrelay_core::delivery::{DeliveryStatus, ErrorKind, RESPONSE_BODY_KEPT};
use hookrelay_core::event::{OBJECT_ID_MAX, OBJECT_TYPE_MAX, TEST_EVENT_NAME};
use hookrelay_core::quota::{Quota, QuotaExceeded};
use hookrelay_core::{AlertId, DeliveryId, EventCatalog, EventId, WebhookId};
use serde_json::{json, Value};

use crate::api::PageQuery;
use crate::openapi::responses::Failure::{self, *};
use crate::openapi::{document, prefix_pattern};
use crate::request::MAX_BODY_BYTES;

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
fn event_delivery_and_alert_operations_are_documented() {
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
        ("/v1/webhooks/{id}/alerts", "get", "ListWebhookAlerts"),
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
    for (path, method) in [
        ("/v1/events", "get"),
        ("/v1/webhooks/{id}/deliveries", "get"),
        ("/v1/webhooks/{id}/alerts", "get"),
    ] {
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
    let alert = &doc["components"]["schemas"]["Alert"];
    let alert_kinds: Vec<_> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
    let alert_statuses: Vec<_> = AlertStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(alert["properties"]["kind"]["enum"], json!(alert_kinds));
    assert_eq!(alert["properties"]["status"]["enum"], json!(alert_statuses));
    assert_eq!(alert["additionalProperties"], false);
    assert_eq!(alert["properties"]["id"]["pattern"], prefix_pattern(AlertId::PREFIX));
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
    let webhooks_exceeded = QuotaExceeded {
        quota: Quota::WebhooksPerSpace,
        limit: 100,
    };
    let rate_exceeded = QuotaExceeded {
        quota: Quota::PublishRate,
        limit: 100,
    };
    let cases = [
        (InvalidRequest, ApiError::field("limit", "range", "out of range")),
        (InvalidBody, ApiError::field("name", "required", "name is required")),
        (InvalidBody, ApiError::InvalidJson("eof".to_owned())),
        (Unauthenticated, ApiError::Unauthenticated("no token")),
        (Forbidden, ApiError::Forbidden("spc-x".to_owned())),
        (
            Forbidden,
            ApiError::InsufficientScope("lacks webhooks:write".to_owned()),
        ),
        (Forbidden, ApiError::SpaceDisabled("spc-x".to_owned())),
        (WebhookNotFound, not_found()),
        (EventNotFound, not_found()),
        (DeliveryNotFound, not_found()),
        (TokenNotFound, not_found()),
        (ErasureNotFound, not_found()),
        (RecoveryNotFound, not_found()),
        (IdempotencyConflict, ApiError::IdempotencyConflict("in progress")),
        (ConflictOrQuota, ApiError::IdempotencyConflict("in progress")),
        (ConflictOrQuota, ApiError::QuotaExceeded(webhooks_exceeded)),
        (WebhookDisabled, ApiError::WebhookDisabled("whk-x".to_owned())),
        (RetryRefused, ApiError::WebhookDisabled("whk-x".to_owned())),
        (RetryRefused, ApiError::EventDataRemoved("nothing to send".to_owned())),
        (KeyOrDisabled, ApiError::IdempotencyConflict("in progress")),
        (KeyOrDisabled, ApiError::WebhookDisabled("whk-x".to_owned())),
        (PayloadTooLarge, ApiError::PayloadTooLarge(MAX_BODY_BYTES)),
        (UnsupportedMediaType, ApiError::UnsupportedMediaType),
        (RequestTimeout, ApiError::RequestTimeout(Duration::from_secs(30))),
        (
            RateLimited,
            ApiError::RateLimited(rate_exceeded, Duration::from_millis(10)),
        ),
    ];
    let failures: BTreeSet<Failure> = cases.iter().map(|&(failure, _)| failure).collect();
    let mut seen = BTreeSet::new();
    for (failure, error) in cases {
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), failure.status(), "{failure:?}");
        // A rate limit says when to come back, in whole seconds, at least one.
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(retry_after.is_some(), failure == RateLimited, "{failure:?}");
        assert!(
            retry_after.as_deref().is_none_or(|v| v == "1"),
            "{failure:?}: {retry_after:?}"
        );
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
                // A JWK Set answers 304 to a current `If-None-Match`.
                // A recovery is answered before it runs: 202.
                let accepted = status == "202" && path == "/v1/webhooks/{id}/recoveries" && method == "post";
                let known = status == "200"
                    || accepted
                    || (path == "/healthz" && status == "503")
                    || (path.ends_with("/jwks.json") && status == "304")
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
