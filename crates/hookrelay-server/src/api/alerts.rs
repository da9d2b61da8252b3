//! `/v1/webhooks/{id}/alerts`: the alert e-mails raised for a webhook, sent or pending.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::alert::Alert;
use hookrelay_core::{Timestamp, WebhookId};
use serde::Serialize;

use crate::api::{list_response, Access, PageQuery, RouteTable, PAGE_QUERY};
use crate::error::ApiError;
use crate::request::Tenant;
use crate::state::AppState;

/// The alert routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table.add(
        Method::GET,
        "/v1/webhooks/{id}/alerts",
        Access::Scope(Scope::WebhooksRead),
        PAGE_QUERY,
        list,
    )
}

/// An alert as the API shows it (the e-mail's subject, not its body).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertOut<'a> {
    id: &'a str,
    webhook_id: &'a str,
    kind: &'static str,
    recipients: &'a [String],
    subject: &'a str,
    status: &'static str,
    attempts: u32,
    next_attempt_time: Option<String>,
    last_error: Option<&'a str>,
    create_time: String,
    sent_time: Option<String>,
}

impl<'a> From<&'a Alert> for AlertOut<'a> {
    fn from(alert: &'a Alert) -> Self {
        Self {
            id: alert.id.as_str(),
            webhook_id: alert.webhook_id.as_str(),
            kind: alert.kind.as_str(),
            recipients: &alert.recipients,
            subject: &alert.message.subject,
            status: alert.status.as_str(),
            attempts: alert.attempts,
            next_attempt_time: alert.next_attempt_time.map(Timestamp::to_rfc3339),
            last_error: alert.last_error.as_deref(),
            create_time: alert.create_time.to_rfc3339(),
            sent_time: alert.sent_time.map(Timestamp::to_rfc3339),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let not_found = |id: &str| ApiError::NotFound(format!("webhook {id} was not found"));
    let Path(id) = path.map_err(|_| not_found(""))?;
    let Query(query) = query.map_err(|e| ApiError::field("query", "format", e.body_text()))?;
    let webhook = WebhookId::parse(&id).ok_or_else(|| not_found(&id))?;
    state
        .store
        .get_webhook(&tenant.space_id, &webhook)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let page = query.parse()?;
    let found = state
        .store
        .list_alerts(&tenant.space_id, &webhook, page.after, page.limit)
        .await?;
    let items: Vec<AlertOut<'_>> = found.items.iter().map(AlertOut::from).collect();
    Ok(list_response(&items, found.next))
}
