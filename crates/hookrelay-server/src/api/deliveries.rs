//! A webhook's delivery history (`/v1/webhooks/{id}/deliveries`), manual retries, and
//! the test event (`/v1/webhooks/{id}/test`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::delivery::{Delivery, DeliveryAttempt, DeliveryStatus};
use hookrelay_core::event::{EventObject, TEST_EVENT_NAME};
use hookrelay_core::{DeliveryId, Timestamp, Webhook, WebhookId};
use hookrelay_store::DeliveryDetail;
use serde::{Deserialize, Serialize};

use crate::api::{list_response, success_bytes, Access, PageQuery, QueryParams, RouteTable, NO_QUERY};
use crate::error::ApiError;
use crate::idempotency::json_bytes_response;
use crate::request::Tenant;
use crate::state::AppState;
use crate::telemetry::traces;
use tracing::Instrument;

const READ: Access = Access::Scope(Scope::DeliveriesRead);
const WRITE: Access = Access::Scope(Scope::DeliveriesWrite);

/// A delivery list's query parameters: a status filter and the page (`DeliveryQuery`).
const DELIVERY_LIST_QUERY: QueryParams = &["status", "limit", "after"];

/// The delivery routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(
            Method::GET,
            "/v1/webhooks/{id}/deliveries",
            READ,
            DELIVERY_LIST_QUERY,
            list,
        )
        .add(
            Method::GET,
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            READ,
            NO_QUERY,
            fetch,
        )
        .add(
            Method::POST,
            "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            WRITE,
            NO_QUERY,
            retry,
        )
        .add(Method::POST, "/v1/webhooks/{id}/test", WRITE, NO_QUERY, test)
}

/// A delivery as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryOut<'a> {
    id: &'a str,
    webhook_id: &'a str,
    event_id: &'a str,
    event_name: &'a str,
    status: &'static str,
    attempt_count: u32,
    next_attempt_time: Option<String>,
    create_time: String,
    update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<Vec<AttemptOut<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptOut<'a> {
    attempt: u32,
    start_time: String,
    duration_ms: u32,
    status_code: Option<u16>,
    error_kind: Option<&'static str>,
    response_body: Option<&'a str>,
}

impl<'a> DeliveryOut<'a> {
    fn new(delivery: &'a Delivery, attempts: Option<&'a [DeliveryAttempt]>) -> Self {
        Self {
            id: delivery.id.as_str(),
            webhook_id: delivery.webhook_id.as_str(),
            event_id: delivery.event_id.as_str(),
            event_name: &delivery.event_name,
            status: delivery.status.as_str(),
            attempt_count: delivery.attempt_count,
            next_attempt_time: delivery.next_attempt_time.map(Timestamp::to_rfc3339),
            create_time: delivery.create_time.to_rfc3339(),
            update_time: delivery.update_time.to_rfc3339(),
            attempts: attempts.map(|attempts| {
                attempts
                    .iter()
                    .map(|a| AttemptOut {
                        attempt: a.attempt,
                        start_time: a.start_time.to_rfc3339(),
                        duration_ms: a.duration_ms,
                        status_code: a.status_code,
                        error_kind: a.error_kind.map(|k| k.as_str()),
                        response_body: a.response_body.as_deref(),
                    })
                    .collect()
            }),
        }
    }
}

impl<'a> From<&'a DeliveryDetail> for DeliveryOut<'a> {
    fn from(detail: &'a DeliveryDetail) -> Self {
        Self::new(&detail.delivery, Some(&detail.attempts))
    }
}

#[derive(Deserialize)]
struct DeliveryQuery {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// The webhook named in the path, which must exist in the caller's space.
async fn webhook(state: &AppState, tenant: &Tenant, id: &str) -> Result<Webhook, ApiError> {
    let not_found = || ApiError::NotFound(format!("webhook {id} was not found"));
    let id = WebhookId::parse(id).ok_or_else(not_found)?;
    state
        .store
        .get_webhook(&tenant.space_id, &id)
        .await?
        .ok_or_else(not_found)
}

fn delivery_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("delivery {id} was not found"))
}

async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::NotFound("webhook was not found".into()))?;
    let Query(query) = query.map_err(|e| ApiError::field("query", "format", e.body_text()))?;
    let webhook = webhook(&state, &tenant, &id).await?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::field(
                "status",
                "enum",
                "status must be one of: pending, succeeded, failed, cancelled",
            )
        })?),
    };
    let page = PageQuery {
        limit: query.limit,
        after: query.after,
    }
    .parse()?;
    let found = state
        .store
        .list_deliveries(&tenant.space_id, &webhook.id, status, page.after, page.limit)
        .await?;
    let items: Vec<DeliveryOut<'_>> = found.items.iter().map(|d| DeliveryOut::new(d, None)).collect();
    Ok(list_response(&items, found.next))
}

async fn fetch(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((id, delivery_id)) = path.map_err(|_| delivery_not_found(""))?;
    let webhook = webhook(&state, &tenant, &id).await?;
    let delivery = DeliveryId::parse(&delivery_id).ok_or_else(|| delivery_not_found(&delivery_id))?;
    let detail = state
        .store
        .get_delivery(&tenant.space_id, &webhook.id, &delivery)
        .await?
        .ok_or_else(|| delivery_not_found(&delivery_id))?;
    Ok(json_bytes_response(success_bytes(&DeliveryOut::from(&detail))))
}

async fn retry(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((id, delivery_id)) = path.map_err(|_| delivery_not_found(""))?;
    let webhook = webhook(&state, &tenant, &id).await?;
    if !webhook.enabled {
        return Err(ApiError::WebhookDisabled(webhook.id.to_string()));
    }
    let delivery = DeliveryId::parse(&delivery_id).ok_or_else(|| delivery_not_found(&delivery_id))?;
    let retried = state
        .store
        .retry_delivery(&tenant.space_id, &webhook.id, &delivery, Timestamp::now())
        .await?
        .ok_or_else(|| delivery_not_found(&delivery_id))?;
    state.wakeup.wake();
    tracing::info!(delivery = %retried.id, webhook = %webhook.id, "manual retry");
    Ok(json_bytes_response(success_bytes(&DeliveryOut::new(&retried, None))))
}

async fn test(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::NotFound("webhook was not found".into()))?;
    let webhook = webhook(&state, &tenant, &id).await?;
    if !webhook.enabled {
        return Err(ApiError::WebhookDisabled(webhook.id.to_string()));
    }
    let mut event = hookrelay_core::event::Event {
        id: hookrelay_core::EventId::generate(),
        space_id: tenant.space_id.clone(),
        name: TEST_EVENT_NAME.to_owned(),
        object: EventObject {
            id: webhook.id.to_string(),
            object_type: "webhook".to_owned(),
        },
        data: serde_json::value::to_raw_value(&serde_json::json!({
            "message": "A test event from hookrelay: your endpoint received and can verify deliveries."
        }))
        .expect("a literal serialises"),
        create_time: Timestamp::now(),
        trace_parent: None,
    };
    let (span, trace_parent) = traces::publish_span(&event);
    event.trace_parent = trace_parent;
    let delivery = state
        .store
        .publish_test_event(&event, &webhook.id)
        .instrument(span)
        .await?;
    state.wakeup.wake();
    Ok(json_bytes_response(success_bytes(&DeliveryOut::new(&delivery, None))))
}
