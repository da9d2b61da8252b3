//! `/v1/webhooks/{id}/rotate` and `/v1/webhooks/{id}/rotation`: rotating a webhook's
//! signing key with an overlap, reading the rotation's state and ending it early. The
//! webhook body stays Monime's: the rotation's state is its own object beside it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::webhook::RotationRequest;
use hookrelay_core::{Timestamp, Webhook, WebhookId};
use serde::Serialize;

use super::webhooks::{not_found, webhook_id, WebhookOut};
use crate::api::{success_bytes, Access, RouteTable, NO_QUERY};
use crate::error::ApiError;
use crate::idempotency::{json_bytes_response, KeyedCreate};
use crate::request::{IdempotencyKey, JsonBody, Tenant};
use crate::state::AppState;

const READ: Access = Access::Scope(Scope::WebhooksRead);
const WRITE: Access = Access::Scope(Scope::WebhooksWrite);

/// How often a rotation reads the webhook again when another rotation of it committed
/// between its read and its write.
const TRIES: usize = 5;

/// The rotation routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(Method::POST, "/v1/webhooks/{id}/rotate", WRITE, NO_QUERY, rotate)
        .add(Method::GET, "/v1/webhooks/{id}/rotation", READ, NO_QUERY, fetch)
        .add(Method::DELETE, "/v1/webhooks/{id}/rotation", WRITE, NO_QUERY, end)
}

/// A webhook's rotation state as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationOut<'a> {
    webhook_id: &'a str,
    current_key_id: &'a str,
    /// The retired key's id while it still signs.
    previous_key_id: Option<&'a str>,
    /// When the retired key stops signing; `null` without an overlap.
    overlap_end_time: Option<String>,
}

impl<'a> RotationOut<'a> {
    /// The state of `webhook` at `now`: an overlap past its end is over.
    pub fn of(webhook: &'a Webhook, now: Timestamp) -> Self {
        let previous = webhook.live_previous_key(now);
        Self {
            webhook_id: webhook.id.as_str(),
            current_key_id: webhook.key_id.as_str(),
            previous_key_id: previous.map(|key| key.key_id.as_str()),
            overlap_end_time: previous.map(|key| key.until.to_rfc3339()),
        }
    }
}

/// The answer to a rotation: the webhook as Monime shows it (its
/// `verificationMethod` the new key) and the rotation's state.
#[derive(Serialize)]
struct RotatedOut<'a> {
    webhook: WebhookOut<'a>,
    rotation: RotationOut<'a>,
}

fn rotated_bytes(webhook: &Webhook, now: Timestamp) -> Vec<u8> {
    success_bytes(&RotatedOut {
        webhook: WebhookOut::from(webhook),
        rotation: RotationOut::of(webhook, now),
    })
}

async fn current(state: &AppState, tenant: &Tenant, id: &WebhookId) -> Result<Webhook, ApiError> {
    state
        .store
        .get_webhook(&tenant.space_id, id)
        .await?
        .ok_or_else(|| not_found(id.as_str()))
}

async fn rotate(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    let route = format!("/v1/webhooks/{id}/rotate");
    let create = KeyedCreate::new(&state, &tenant.space_id, &key, &route, &body);
    if let Some(saved) = create.replay().await? {
        return Ok(saved);
    }
    for _ in 0..TRIES {
        let webhook = current(&state, &tenant, &id).await?;
        let request = RotationRequest::parse(&body, &webhook.verification)?;
        let now = Timestamp::now();
        let rotated = webhook.rotated(request, now);
        let answer = rotated_bytes(&rotated, now);
        let record = create.record(&answer);
        // Saved only over the key it read: a rotation in between makes this one read again.
        match state
            .store
            .save_webhook_keys(&rotated, &webhook.key_id, Some(&record))
            .await
        {
            Ok(false) => continue,
            saved => {
                return create
                    .answer(std::future::ready(saved), answer, || {
                        tracing::info!(webhook = %id, key = %rotated.key_id, "webhook key rotated");
                    })
                    .await
            }
        }
    }
    Err(CONTENDED)
}

/// The answer when other rotations of the webhook kept committing first.
const CONTENDED: ApiError =
    ApiError::IdempotencyConflict("the webhook's key changed while this request was being applied; send it again");

async fn fetch(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    let webhook = current(&state, &tenant, &id).await?;
    Ok(json_bytes_response(success_bytes(&RotationOut::of(
        &webhook,
        Timestamp::now(),
    ))))
}

async fn end(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    for _ in 0..TRIES {
        let webhook = current(&state, &tenant, &id).await?;
        let now = Timestamp::now();
        let ended = webhook.overlap_ended(now);
        if ended == webhook || state.store.save_webhook_keys(&ended, &webhook.key_id, None).await? {
            if ended != webhook {
                tracing::info!(webhook = %id, "webhook key rotation overlap ended");
            }
            return Ok(json_bytes_response(success_bytes(&RotationOut::of(&ended, now))));
        }
    }
    Err(CONTENDED)
}
