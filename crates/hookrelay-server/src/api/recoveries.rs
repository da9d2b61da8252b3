//! `/v1/webhooks/{id}/recoveries`: bulk recovery. A request saves the recovery and is
//! answered at once (202); the recovery runner (`crate::recovery`) retries the
//! webhook's failed deliveries in the background, and the recovery reports its progress.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::recovery::{Recovery, RecoveryCounts, RecoveryDraft, RecoveryStatus};
use hookrelay_core::{RecoveryId, Timestamp, Webhook, WebhookId};
use serde::Serialize;

use super::webhooks::not_found;

use crate::api::{list_response, page_request, success_bytes, Access, PageQuery, RouteTable, NO_QUERY, PAGE_QUERY};
use crate::error::ApiError;
use crate::idempotency::{json_bytes_response, KeyedCreate};
use crate::request::{IdempotencyKey, JsonBody, Tenant};
use crate::state::AppState;

const READ: Access = Access::Scope(Scope::DeliveriesRead);
const WRITE: Access = Access::Scope(Scope::DeliveriesWrite);

/// The recovery routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(Method::GET, "/v1/webhooks/{id}/recoveries", READ, PAGE_QUERY, list)
        .add(Method::POST, "/v1/webhooks/{id}/recoveries", WRITE, NO_QUERY, create)
        .add(
            Method::GET,
            "/v1/webhooks/{id}/recoveries/{recovery_id}",
            READ,
            NO_QUERY,
            fetch,
        )
}

/// A recovery as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryOut<'a> {
    id: &'a str,
    webhook_id: &'a str,
    since: String,
    until: String,
    statuses: Vec<&'static str>,
    status: &'static str,
    matched: u64,
    requeued: u64,
    skipped: u64,
    create_time: String,
    finish_time: Option<String>,
}

impl<'a> From<&'a Recovery> for RecoveryOut<'a> {
    fn from(recovery: &'a Recovery) -> Self {
        Self {
            id: recovery.id.as_str(),
            webhook_id: recovery.webhook_id.as_str(),
            since: recovery.draft.since.to_rfc3339(),
            until: recovery.draft.until.to_rfc3339(),
            statuses: recovery.draft.statuses.iter().map(|s| s.as_str()).collect(),
            status: recovery.status.as_str(),
            matched: recovery.counts.matched,
            requeued: recovery.counts.requeued,
            skipped: recovery.counts.skipped,
            create_time: recovery.create_time.to_rfc3339(),
            finish_time: recovery.finish_time.map(Timestamp::to_rfc3339),
        }
    }
}

/// The webhook named in the path, which must exist in the caller's space.
async fn webhook(state: &AppState, tenant: &Tenant, id: &str) -> Result<Webhook, ApiError> {
    let parsed = WebhookId::parse(id).ok_or_else(|| not_found(id))?;
    state
        .store
        .get_webhook(&tenant.space_id, &parsed)
        .await?
        .ok_or_else(|| not_found(id))
}

async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|_| not_found(""))?;
    let webhook = webhook(&state, &tenant, &id).await?;
    let route = format!("/v1/webhooks/{id}/recoveries");
    let create = KeyedCreate::new(&state, &tenant.space_id, &key, &route, &body);
    if let Some(saved) = create.replay().await? {
        return Ok(saved);
    }
    if !webhook.enabled {
        return Err(ApiError::WebhookDisabled(webhook.id.to_string()));
    }
    let now = Timestamp::now();
    let recovery = Recovery {
        id: RecoveryId::generate(),
        space_id: tenant.space_id.clone(),
        webhook_id: webhook.id.clone(),
        draft: RecoveryDraft::parse(&body, now)?,
        status: RecoveryStatus::Running,
        counts: RecoveryCounts::default(),
        create_time: now,
        finish_time: None,
    };
    let answer = success_bytes(&RecoveryOut::from(&recovery));
    let mut record = create.record(&answer);
    record.status = StatusCode::ACCEPTED.as_u16();
    let write = state.store.create_recovery(&recovery, Some(&record));
    let mut response = create
        .answer(write, answer, || {
            state.recoveries.wake();
            tracing::info!(
                recovery = %recovery.id,
                webhook = %webhook.id,
                statuses = %recovery.draft.statuses_text(),
                by = %tenant.grant.token_id,
                "recovery created"
            );
        })
        .await?;
    // Only this request's own answer is new; a concurrent twin's replay keeps its status.
    if response.status() == StatusCode::OK && !response.headers().contains_key("Idempotent-Replayed") {
        *response.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(response)
}

async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|_| not_found(""))?;
    let page = page_request(query)?;
    let webhook = webhook(&state, &tenant, &id).await?;
    let found = state
        .store
        .list_recoveries(&tenant.space_id, &webhook.id, page.after, page.limit)
        .await?;
    let items: Vec<RecoveryOut<'_>> = found.items.iter().map(RecoveryOut::from).collect();
    Ok(list_response(&items, found.next))
}

async fn fetch(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let recovery_not_found = |id: &str| ApiError::NotFound(format!("recovery {id} was not found"));
    let Path((id, recovery_id)) = path.map_err(|_| recovery_not_found(""))?;
    let webhook = webhook(&state, &tenant, &id).await?;
    let parsed = RecoveryId::parse(&recovery_id).ok_or_else(|| recovery_not_found(&recovery_id))?;
    let recovery = state
        .store
        .get_recovery(&tenant.space_id, &webhook.id, &parsed)
        .await?
        .ok_or_else(|| recovery_not_found(&recovery_id))?;
    Ok(json_bytes_response(success_bytes(&RecoveryOut::from(&recovery))))
}
