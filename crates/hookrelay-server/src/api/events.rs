//! `/v1/events`: producers publish events here; each is stored with one delivery per
//! enabled webhook of the space subscribed to it, in one transaction.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use hookrelay_core::access::Scope;
use hookrelay_core::event::{Event, EventDraft, EventObject};
use hookrelay_core::quota::{Quota, QuotaExceeded};
use hookrelay_core::{EventId, SpaceId, Timestamp};
use hookrelay_store::{StoreError, StoredEvent};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::api::{
    list_response, page_request, path_id, success_bytes, Access, PageQuery, RouteTable, NO_QUERY, PAGE_QUERY,
};
use crate::error::ApiError;
use crate::idempotency::{self, json_bytes_response};
use crate::request::{IdempotencyKey, JsonBody, JsonBytes, Tenant};
use crate::state::AppState;
use crate::telemetry::metrics::{self, DbOperation};
use crate::telemetry::traces;
use tracing::Instrument;

const READ: Access = Access::Scope(Scope::EventsRead);

/// The event routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(Method::GET, "/v1/events", READ, PAGE_QUERY, list)
        .add(
            Method::POST,
            "/v1/events",
            Access::Scope(Scope::EventsPublish),
            NO_QUERY,
            publish,
        )
        .add(Method::GET, "/v1/events/{id}", READ, NO_QUERY, fetch)
}

/// An event as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventOut<'a> {
    id: &'a str,
    name: &'a str,
    object: &'a EventObject,
    /// Absent once removed (payload retention or erasure).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    data_removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_remove_time: Option<String>,
    create_time: String,
    delivery_count: u32,
}

impl<'a> EventOut<'a> {
    fn new(event: &'a Event, delivery_count: u32) -> Self {
        Self {
            id: event.id.as_str(),
            name: &event.name,
            object: &event.object,
            data: Some(&event.data),
            data_removed: false,
            data_remove_time: None,
            create_time: event.create_time.to_rfc3339(),
            delivery_count,
        }
    }
}

impl<'a> From<&'a StoredEvent> for EventOut<'a> {
    fn from(stored: &'a StoredEvent) -> Self {
        let mut out = Self::new(&stored.event, stored.delivery_count);
        if let Some(at) = stored.data_remove_time {
            out.data = None;
            out.data_removed = true;
            out.data_remove_time = Some(at.to_rfc3339());
        }
        out
    }
}

async fn publish(
    State(state): State<AppState>,
    tenant: Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBytes(raw): JsonBytes,
) -> Result<Response, ApiError> {
    let quotas = tenant.quotas(&state);
    let rate = quotas.max_publish_rate;
    if let Err(wait) = state.publish_limits.take(&tenant.space_id, rate, Timestamp::now()) {
        let exceeded = QuotaExceeded {
            quota: Quota::PublishRate,
            limit: rate,
        };
        return Err(ApiError::RateLimited(exceeded, wait));
    }
    // A valid body is read in one pass; anything else is parsed as a tree, which names
    // every broken rule.
    let draft = match EventDraft::read_valid(&raw, &state.catalog) {
        Some(draft) => draft,
        None => {
            let JsonBody(body, raw) = JsonBody::parse(raw.clone())?;
            EventDraft::parse_published(&body, &raw, &state.catalog)?
        }
    };
    // No look for a saved record first: the write saves the key with the event, and
    // fails if the key is taken, which is when the record is looked for. A retry costs
    // a write that writes nothing (SQLite rolls it back; PostgreSQL's one statement
    // inserts no event); every first publish saves a read.
    let mut event = draft.into_event(tenant.space_id.clone(), Timestamp::now());
    let (span, trace_parent) = traces::publish_span(&event);
    event.trace_parent = trace_parent;
    // The record keeps the event's id, not a copy of its answer: a replay renders the
    // answer again from the stored event, and every publish writes its data once.
    let pointer = event.id.as_str().as_bytes().to_vec();
    let fingerprint = idempotency::PUBLISH_FINGERPRINT.to_vec();
    let record = idempotency::record(&state, &tenant.space_id, &key, fingerprint, pointer);
    let write = state
        .store
        .publish_event_within(&event, Some(record), Some(quotas.max_fan_out));
    match metrics::time_db(DbOperation::Publish, write).instrument(span).await {
        Ok(delivery_count) => {
            metrics::event_published();
            if delivery_count > 0 {
                state.wakeup.wake();
            }
            tracing::debug!(event = %event.id, name = %event.name, deliveries = delivery_count, "event published");
            Ok(json_bytes_response(success_bytes(&EventOut::new(
                &event,
                delivery_count,
            ))))
        }
        Err(StoreError::IdempotencyKeyTaken) => replay_publish(&state, &tenant.space_id, &key, &event, &raw).await,
        // Over the quota now, but perhaps not when this key's publish was made: a retry
        // of a publish that went through gets its answer.
        Err(StoreError::QuotaExceeded(exceeded)) => {
            match idempotency::live_record(&state, &tenant.space_id, &key).await? {
                Some(_) => replay_publish(&state, &tenant.space_id, &key, &event, &raw).await,
                None => Err(ApiError::QuotaExceeded(exceeded)),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// The answer to a publish whose key an earlier request took: that publish's answer,
/// rendered again from its event, if it asked for the same event; a conflict otherwise.
async fn replay_publish(
    state: &AppState,
    space: &SpaceId,
    key: &str,
    asked: &Event,
    raw: &Bytes,
) -> Result<Response, ApiError> {
    let Some(record) = idempotency::live_record(state, space, key).await? else {
        return Err(idempotency::IN_PROGRESS);
    };
    let compare_with_event = record.fingerprint == idempotency::PUBLISH_FINGERPRINT;
    // Saved by another kind of request, or by a version that digested the whole body.
    if !compare_with_event {
        let JsonBody(body, _) = JsonBody::parse(raw.clone())?;
        if record.fingerprint != idempotency::fingerprint("POST", "/v1/events", &body) {
            return Err(idempotency::CONFLICT);
        }
    }
    let id = match saved_publish(&record.body) {
        SavedPublish::Answer => return Ok(idempotency::replayed(record.status, record.body)),
        SavedPublish::Event(id) => id,
        SavedPublish::Unreadable => {
            return Err(ApiError::Internal(
                "a publish's idempotency record holds no event id".into(),
            ))
        }
    };
    // Saved in the transaction that saved the record; gone only if its retention,
    // shorter than the key's window, deleted it.
    let stored = state
        .store
        .get_event(space, &id)
        .await?
        .ok_or(ApiError::IdempotencyConflict(
            "the event published with this Idempotency-Key was deleted by retention; publish with a new key",
        ))?;
    if stored.data_remove_time.is_some() {
        return Err(ApiError::IdempotencyConflict(
            "the event published with this Idempotency-Key had its data removed; publish with a new key",
        ));
    }
    if compare_with_event && !asked.same_content(&stored.event) {
        return Err(idempotency::CONFLICT);
    }
    Ok(idempotency::replayed(
        record.status,
        success_bytes(&EventOut::from(&stored)),
    ))
}

/// What a publish's idempotency record holds.
#[derive(Debug, PartialEq)]
enum SavedPublish {
    /// A whole JSON answer, as versions before the event id was kept saved it.
    Answer,
    /// The event's id.
    Event(EventId),
    /// Neither: never sent to a client.
    Unreadable,
}

fn saved_publish(body: &[u8]) -> SavedPublish {
    if body.first() == Some(&b'{') {
        return SavedPublish::Answer;
    }
    match std::str::from_utf8(body).ok().and_then(EventId::parse) {
        Some(id) => SavedPublish::Event(id),
        None => SavedPublish::Unreadable,
    }
}

async fn fetch(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let not_found = |id: &str| ApiError::NotFound(format!("event {id} was not found"));
    let (id, event_id) = path_id(path, EventId::parse, not_found)?;
    let stored = state
        .store
        .get_event(&tenant.space_id, &event_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(json_bytes_response(success_bytes(&EventOut::from(&stored))))
}

async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = page_request(query)?;
    let found = state
        .store
        .list_events(&tenant.space_id, page.after, page.limit)
        .await?;
    let items: Vec<EventOut<'_>> = found.items.iter().map(EventOut::from).collect();
    Ok(list_response(&items, found.next))
}

#[cfg(test)]
mod tests {
    use super::{saved_publish, SavedPublish};
    use hookrelay_core::EventId;

    #[test]
    fn publish_records_hold_an_event_id_or_an_earlier_versions_answer() {
        let id = EventId::generate();
        assert_eq!(saved_publish(id.as_str().as_bytes()), SavedPublish::Event(id));
        assert_eq!(saved_publish(br#"{"success":true,"result":{}}"#), SavedPublish::Answer);
        for unreadable in [&b""[..], b"whk-123", b"evt-", b"\xff\xfe", b"evt-a b"] {
            assert_eq!(saved_publish(unreadable), SavedPublish::Unreadable, "{unreadable:?}");
        }
    }
}
