//! `/v1/erasures`: erasure on request (what a GDPR request needs). The data of every
//! event of one object in the space, optionally within a time range, is removed, with
//! the response bodies of their attempts, and their pending deliveries are cancelled;
//! the record of the request (which holds no data) stays, to be listed and read.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::retention::{Erasure, ErasureDraft};
use hookrelay_core::{ErasureId, Timestamp};
use serde::Serialize;

use crate::api::{
    list_response, page_request, path_id, success_bytes, Access, PageQuery, RouteTable, NO_QUERY, PAGE_QUERY,
};
use crate::error::ApiError;
use crate::idempotency::{json_bytes_response, KeyedCreate};
use crate::request::{IdempotencyKey, JsonBody, Tenant};
use crate::state::AppState;

const ERASE: Access = Access::Scope(Scope::EventsErase);

/// The erasure routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(Method::GET, "/v1/erasures", ERASE, PAGE_QUERY, list)
        .add(Method::POST, "/v1/erasures", ERASE, NO_QUERY, create)
        .add(Method::GET, "/v1/erasures/{id}", ERASE, NO_QUERY, fetch)
}

/// An erasure as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErasureOut<'a> {
    id: &'a str,
    object_id: &'a str,
    from: Option<String>,
    to: Option<String>,
    events_erased: u64,
    deliveries_cancelled: u64,
    create_time: String,
}

impl<'a> From<&'a Erasure> for ErasureOut<'a> {
    fn from(erasure: &'a Erasure) -> Self {
        Self {
            id: erasure.id.as_str(),
            object_id: &erasure.draft.object_id,
            from: erasure.draft.from.map(Timestamp::to_rfc3339),
            to: erasure.draft.to.map(Timestamp::to_rfc3339),
            events_erased: erasure.events_erased,
            deliveries_cancelled: erasure.deliveries_cancelled,
            create_time: erasure.create_time.to_rfc3339(),
        }
    }
}

async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let create = KeyedCreate::new(&state, &tenant.space_id, &key, "/v1/erasures", &body);
    if let Some(saved) = create.replay().await? {
        return Ok(saved);
    }
    let draft = ErasureDraft::parse(&body)?;
    let now = Timestamp::now();
    let mut erasure = Erasure {
        id: ErasureId::generate(),
        space_id: tenant.space_id.clone(),
        draft,
        events_erased: 0,
        deliveries_cancelled: 0,
        create_time: now,
    };
    // Batch by batch, each a short transaction; a request cut short is finished by its
    // retry with the same key, whose record is saved only at the end.
    loop {
        let batch = state.store.erase_events(&tenant.space_id, &erasure.draft, now).await?;
        erasure.events_erased += batch.events;
        erasure.deliveries_cancelled += batch.deliveries_cancelled;
        if !batch.more {
            break;
        }
    }
    let answer = success_bytes(&ErasureOut::from(&erasure));
    let record = create.record(&answer);
    let write = state.store.save_erasure(&erasure, Some(&record));
    create
        .answer(write, answer, || {
            tracing::info!(
                erasure = %erasure.id,
                space = %tenant.space_id,
                events = erasure.events_erased,
                deliveries_cancelled = erasure.deliveries_cancelled,
                by = %tenant.grant.token_id,
                "events erased"
            );
        })
        .await
}

async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = page_request(query)?;
    let found = state
        .store
        .list_erasures(&tenant.space_id, page.after, page.limit)
        .await?;
    let items: Vec<ErasureOut<'_>> = found.items.iter().map(ErasureOut::from).collect();
    Ok(list_response(&items, found.next))
}

async fn fetch(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let not_found = |id: &str| ApiError::NotFound(format!("erasure {id} was not found"));
    let (id, erasure_id) = path_id(path, ErasureId::parse, not_found)?;
    let erasure = state
        .store
        .get_erasure(&tenant.space_id, &erasure_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(json_bytes_response(success_bytes(&ErasureOut::from(&erasure))))
}
