//! `GET /healthz`: whether the database answers, and what the delivery engine is doing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookrelay_store::StoreError;
use serde_json::json;

use crate::state::AppState;

/// 200 when the database answers, 503 when it does not or can no longer be written to
/// (a load balancer takes the node out). `delivery` says whether the engine is idle (nothing due unclaimed, nothing
/// claimed unfinished or unrecorded) and what it holds.
pub async fn health(State(state): State<AppState>) -> Response {
    let delivery = state.engine.snapshot();
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "ok", "delivery": delivery})),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(error = %crate::error_chain(&error), "health check: the database does not answer");
            let database = match error {
                StoreError::WriterStopped => "writer_stopped",
                _ => "unreachable",
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": database, "delivery": delivery})),
            )
                .into_response()
        }
    }
}
