//! `/v1/webhooks`: create, get, list, update and delete, as Monime's `caph` contract
//! defines them.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookrelay_core::access::Scope;
use hookrelay_core::{Timestamp, VerificationMethod, Webhook, WebhookDraft, WebhookId, WebhookPatch};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::{list_response, page_request, success_bytes, Access, PageQuery, RouteTable, NO_QUERY, PAGE_QUERY};
use crate::error::ApiError;
use crate::idempotency::{json_bytes_response, KeyedCreate};
use crate::request::{IdempotencyKey, JsonBody, Tenant};
use crate::state::AppState;

const READ: Access = Access::Scope(Scope::WebhooksRead);
const WRITE: Access = Access::Scope(Scope::WebhooksWrite);

/// The webhook routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(Method::GET, "/v1/webhooks", READ, PAGE_QUERY, list)
        .add(Method::POST, "/v1/webhooks", WRITE, NO_QUERY, create)
        .add(Method::GET, "/v1/webhooks/{id}", READ, NO_QUERY, fetch)
        .add(Method::PATCH, "/v1/webhooks/{id}", WRITE, NO_QUERY, update)
        .add(Method::DELETE, "/v1/webhooks/{id}", WRITE, NO_QUERY, remove)
}

/// A webhook as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOut<'a> {
    id: &'a str,
    name: &'a str,
    url: &'a str,
    enabled: bool,
    events: &'a [String],
    api_release: &'static str,
    verification_method: VerificationMethodOut<'a>,
    headers: &'a BTreeMap<String, String>,
    alert_emails: &'a [String],
    create_time: String,
    update_time: String,
    metadata: &'a Map<String, Value>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum VerificationMethodOut<'a> {
    #[serde(rename = "HS256")]
    Hs256 { secret: &'a str },
    #[serde(rename = "ES256")]
    Es256 {
        #[serde(rename = "publicKey")]
        public_key: &'a str,
    },
}

impl<'a> From<&'a Webhook> for WebhookOut<'a> {
    fn from(webhook: &'a Webhook) -> Self {
        Self {
            id: webhook.id.as_str(),
            name: &webhook.name,
            url: &webhook.url,
            enabled: webhook.enabled,
            events: &webhook.events,
            api_release: webhook.api_release.as_str(),
            verification_method: match &webhook.verification {
                VerificationMethod::Hs256 { secret } => VerificationMethodOut::Hs256 { secret },
                VerificationMethod::Es256 { public_key_pem, .. } => VerificationMethodOut::Es256 {
                    public_key: public_key_pem,
                },
            },
            headers: &webhook.headers,
            alert_emails: &webhook.alert_emails,
            create_time: webhook.create_time.to_rfc3339(),
            update_time: webhook.update_time.to_rfc3339(),
            metadata: &webhook.metadata,
        }
    }
}

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("webhook {id} was not found"))
}

pub(super) fn webhook_id(path: Result<Path<String>, PathRejection>) -> Result<WebhookId, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::NotFound("webhook was not found".to_owned()))?;
    WebhookId::parse(&id).ok_or_else(|| not_found(&id))
}

async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let create = KeyedCreate::new(&state, &tenant.space_id, &key, "/v1/webhooks", &body);
    if let Some(saved) = create.replay().await? {
        return Ok(saved);
    }
    let draft = WebhookDraft::parse(&body, &state.input_rules())?;
    let webhook = draft.into_webhook(tenant.space_id.clone(), Timestamp::now());
    let answer = success_bytes(&WebhookOut::from(&webhook));
    let record = create.record(&answer);
    let quota = Some(tenant.quotas(&state).max_webhooks);
    let write = state.store.create_webhook_within(&webhook, Some(&record), quota);
    create
        .answer(write, answer, || {
            tracing::info!(webhook = %webhook.id, space = %tenant.space_id, "webhook created");
        })
        .await
}

async fn fetch(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    let webhook = state
        .store
        .get_webhook(&tenant.space_id, &id)
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    Ok(json_bytes_response(success_bytes(&WebhookOut::from(&webhook))))
}

async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = page_request(query)?;
    let found = state
        .store
        .list_webhooks(&tenant.space_id, page.after, page.limit)
        .await?;
    let items: Vec<WebhookOut<'_>> = found.items.iter().map(WebhookOut::from).collect();
    Ok(list_response(&items, found.next))
}

async fn update(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    let patch = WebhookPatch::parse(&body, &state.input_rules())?;
    let webhook = state
        .store
        .update_webhook(&tenant.space_id, &id, &patch, Timestamp::now())
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    tracing::info!(webhook = %webhook.id, enabled = webhook.enabled, "webhook updated");
    Ok(json_bytes_response(success_bytes(&WebhookOut::from(&webhook))))
}

async fn remove(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    if !state.store.delete_webhook(&tenant.space_id, &id).await? {
        return Err(not_found(id.as_str()));
    }
    tracing::info!(webhook = %id, "webhook deleted");
    Ok(Json(json!({"success": true, "messages": []})).into_response())
}
