//! `/v1/webhooks/{id}/settings`: a webhook's delivery settings, in a resource of their
//! own because Monime's webhook body admits no fields beyond its contract.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::webhook_settings::SettingsPatch;

use super::webhooks::{not_found, webhook_id};
use crate::api::{success_bytes, Access, RouteTable, NO_QUERY};
use crate::error::ApiError;
use crate::idempotency::json_bytes_response;
use crate::request::{JsonBody, Tenant};
use crate::state::AppState;

/// The settings routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(
            Method::GET,
            "/v1/webhooks/{id}/settings",
            Access::Scope(Scope::WebhooksRead),
            NO_QUERY,
            fetch,
        )
        .add(
            Method::PUT,
            "/v1/webhooks/{id}/settings",
            Access::Scope(Scope::WebhooksWrite),
            NO_QUERY,
            update,
        )
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
    Ok(json_bytes_response(success_bytes(&webhook.settings.to_json())))
}

/// A partial update: the fields given replace the stored ones, `null` resets a field to
/// its default, and the answer is the whole settings as they now stand.
async fn update(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    let patch = SettingsPatch::parse(&body)?;
    let settings = state
        .store
        .update_webhook_settings(&tenant.space_id, &id, &patch)
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    tracing::info!(webhook = %id, ?settings, "webhook settings updated");
    // Turning ordering off frees deliveries that waited for an earlier one of their object.
    state.wakeup.wake();
    Ok(json_bytes_response(success_bytes(&settings.to_json())))
}
