//! HTTP routes, one module per resource, and the success envelope they share:
//! `{success: true, messages: [], result[, pagination]}`.

pub mod alerts;
pub mod deliveries;
pub mod erasures;
pub mod events;
mod health;
pub mod jwks;
pub mod metrics;
pub mod recoveries;
pub mod rotation;
mod routes;
pub mod tokens;
pub mod webhook_settings;
pub mod webhooks;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hookrelay_core::cursor;
use serde::Serialize;
use serde_json::Value;

pub use self::routes::{check_query, Access, QueryParams, RequiredScope, Route, RouteTable};

/// Query parameters of a route that takes none.
pub const NO_QUERY: QueryParams = &[];
/// Query parameters of a list: the page size and the cursor (`PageQuery`).
pub const PAGE_QUERY: QueryParams = &["limit", "after"];
use crate::error::ApiError;
use crate::state::AppState;
use health::health;

/// Every route of the API, registered and listed.
pub fn route_table() -> RouteTable {
    let resources = [
        webhooks::routes,
        rotation::routes,
        jwks::routes,
        webhook_settings::routes,
        events::routes,
        deliveries::routes,
        alerts::routes,
        tokens::routes,
        erasures::routes,
        recoveries::routes,
    ];
    resources
        .into_iter()
        .fold(RouteTable::default(), |table, add| add(table))
        .add(Method::GET, "/healthz", Access::Public, NO_QUERY, health)
        .add(Method::GET, "/openapi.json", Access::Public, NO_QUERY, openapi)
        .add(Method::GET, "/metrics", Access::Public, NO_QUERY, metrics::scrape)
}

/// Every route of the API, and the answers to requests no route takes.
pub fn router() -> Router<AppState> {
    route_table()
        .into_router()
        .fallback(|| async { ApiError::NotFound("no such route".to_owned()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(&state.catalog))
}

/// `{success: true, messages: [], result}` serialised.
pub fn success_bytes<T: Serialize>(result: &T) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        success: bool,
        messages: [(); 0],
        result: &'a T,
    }
    serde_json::to_vec(&Envelope {
        success: true,
        messages: [],
        result,
    })
    .expect("response types always serialise")
}

/// A list page: `{success, messages, result: [...], pagination: {count, next}}`.
pub fn list_response<T: Serialize>(items: &[T], next: Option<i64>) -> Response {
    #[derive(Serialize)]
    struct Pagination {
        count: usize,
        next: Option<String>,
    }
    #[derive(Serialize)]
    struct ListEnvelope<'a, T> {
        success: bool,
        messages: [(); 0],
        result: &'a [T],
        pagination: Pagination,
    }
    let envelope = ListEnvelope {
        success: true,
        messages: [],
        result: items,
        pagination: Pagination {
            count: items.len(),
            next: next.map(cursor::encode),
        },
    };
    (StatusCode::OK, Json(envelope)).into_response()
}

/// The page a list asks for, from its query string.
pub fn page_request(query: Result<Query<PageQuery>, QueryRejection>) -> Result<PageRequest, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::field("query", "format", e.body_text()))?;
    query.parse()
}

/// The id in a resource's path, as given and as `parse` reads it; a path without one,
/// or with one `parse` refuses, names nothing: `not_found`.
pub fn path_id<T>(
    path: Result<Path<String>, PathRejection>,
    parse: impl FnOnce(&str) -> Option<T>,
    not_found: impl Fn(&str) -> ApiError,
) -> Result<(String, T), ApiError> {
    let Path(id) = path.map_err(|_| not_found(""))?;
    let parsed = parse(&id).ok_or_else(|| not_found(&id))?;
    Ok((id, parsed))
}

/// Page size and cursor from the query string.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    /// Items per page, 1..=50.
    pub limit: u32,
    /// Continue after this position.
    pub after: Option<i64>,
}

/// The raw `limit` and `after` query parameters.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    /// `limit` as given.
    pub limit: Option<String>,
    /// `after` as given.
    pub after: Option<String>,
}

impl PageQuery {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 10;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 50;
    /// Longest cursor accepted.
    pub const AFTER_MAX: usize = 2000;

    /// Checks the parameters.
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit.as_deref() {
            None => Self::DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=Self::MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::field(
                        "limit",
                        "range",
                        format!("limit must be an integer from 1 to {}", Self::MAX_LIMIT),
                    )
                })?,
        };
        let after = match self.after.as_deref() {
            None | Some("") => None,
            Some(text) if text.len() > Self::AFTER_MAX => {
                return Err(ApiError::field(
                    "after",
                    "max_length",
                    "after must be at most 2000 characters",
                ))
            }
            Some(text) => Some(cursor::decode(text).ok_or_else(|| {
                ApiError::field("after", "format", "after must be the `next` cursor of a previous page")
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}
