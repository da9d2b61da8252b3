//! `GET /metrics`: the Prometheus scrape, on the API's listener unless `metrics_listen`
//! gives it one of its own. Aggregate numbers only: no label names a space, webhook or
//! event, so it needs no token.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hookrelay_store::Store;
use std::sync::Arc;

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::metrics;

/// Prometheus' text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The scrape on the API's listener: 404 when the metrics have a listener of their own.
pub async fn scrape(State(state): State<AppState>) -> Response {
    if !state.metrics_on_api {
        return ApiError::NotFound("no such route".to_owned()).into_response();
    }
    answer(state.store.as_ref()).await
}

/// The router of a listener serving only the scrape.
pub fn own_listener(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/metrics", get(move || async move { answer(store.as_ref()).await }))
        .fallback(|| async { ApiError::NotFound("no such route".to_owned()) })
}

async fn answer(store: &dyn Store) -> Response {
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], metrics::render(store).await).into_response()
}
