//! `Idempotency-Key` semantics: the first successful response to a key is saved in
//! the same transaction as the change it made, and replayed for 24 hours to the same
//! request; the same key on a different request is a conflict. (A publish saves its
//! event's id instead, and its replay renders the answer from the event: `api::events`.)

use std::future::Future;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookrelay_core::{SpaceId, Timestamp};
use hookrelay_store::{IdempotencyRecord, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// A digest of what the request asked for. Bodies are compared as parsed JSON (object
/// keys sorted), so a client that re-serialises the same request still gets a replay.
pub fn fingerprint(method: &str, path: &str, body: &Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    // Serialised straight into the digest: the same bytes as `body.to_string()`, without
    // building that string.
    serde_json::to_writer(DigestWriter(&mut hasher), body).expect("a JSON value serialises");
    hasher.finalize().to_vec()
}

/// Feeds what is written into a digest.
struct DigestWriter<'a>(&'a mut Sha256);

impl std::io::Write for DigestWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The saved record for this key, if one exists and was saved for this request.
pub async fn matching_record(
    state: &AppState,
    space: &SpaceId,
    key: &str,
    fingerprint: &[u8],
) -> Result<Option<IdempotencyRecord>, ApiError> {
    match live_record(state, space, key).await? {
        None => Ok(None),
        Some(record) if record.fingerprint == fingerprint => Ok(Some(record)),
        Some(_) => Err(CONFLICT),
    }
}

/// The saved record for this key within its window, whatever request saved it.
pub async fn live_record(state: &AppState, space: &SpaceId, key: &str) -> Result<Option<IdempotencyRecord>, ApiError> {
    Ok(state
        .store
        .find_idempotency_record(space, key, Timestamp::now())
        .await?)
}

/// The answer when a key was saved for a different request.
pub const CONFLICT: ApiError = ApiError::IdempotencyConflict(
    "this Idempotency-Key was already used for a different request; use a new key for a new request",
);

/// The fingerprint a publish saves. A retried publish is compared with the event it
/// stored instead (`api::events`), so that the first publish of a valid body never
/// parses it into a tree; being no digest (those are 32 bytes), it matches no other
/// request's.
pub const PUBLISH_FINGERPRINT: &[u8] = b"POST /v1/events: compared with the stored event";

/// The saved response for this key, if one exists and matches the request.
pub async fn replay(
    state: &AppState,
    space: &SpaceId,
    key: &str,
    fingerprint: &[u8],
) -> Result<Option<Response>, ApiError> {
    Ok(matching_record(state, space, key, fingerprint)
        .await?
        .map(|record| replayed(record.status, record.body)))
}

/// The answer when saving a change found its key already taken by a concurrent request:
/// that request's saved response, or a conflict if it was a different request.
pub async fn replay_taken(
    state: &AppState,
    space: &SpaceId,
    key: &str,
    fingerprint: &[u8],
) -> Result<Response, ApiError> {
    replay(state, space, key, fingerprint).await?.ok_or(IN_PROGRESS)
}

/// A creating request under an `Idempotency-Key` whose answer is saved whole with its
/// change (a publish saves its event's id instead: `api::events`).
pub struct KeyedCreate<'a> {
    state: &'a AppState,
    space: &'a SpaceId,
    key: &'a str,
    fingerprint: Vec<u8>,
}

impl<'a> KeyedCreate<'a> {
    /// A `POST` to `path` with `body`.
    pub fn new(state: &'a AppState, space: &'a SpaceId, key: &'a str, path: &str, body: &Value) -> Self {
        Self {
            state,
            space,
            key,
            fingerprint: fingerprint("POST", path, body),
        }
    }

    /// The saved answer, if this request was answered before under this key.
    pub async fn replay(&self) -> Result<Option<Response>, ApiError> {
        replay(self.state, self.space, self.key, &self.fingerprint).await
    }

    /// The record to save with the change whose answer is `answer`.
    pub fn record(&self, answer: &[u8]) -> IdempotencyRecord {
        record(
            self.state,
            self.space,
            self.key,
            self.fingerprint.clone(),
            answer.to_vec(),
        )
    }

    /// Answers `answer` once `write` (which saves the change with [`Self::record`]) has
    /// saved it, calling `on_saved` first; if a concurrent request with the same key
    /// took it first, answers as that request was answered.
    pub async fn answer<T>(
        &self,
        write: impl Future<Output = Result<T, StoreError>>,
        answer: Vec<u8>,
        on_saved: impl FnOnce(),
    ) -> Result<Response, ApiError> {
        match write.await {
            Ok(_) => {
                on_saved();
                Ok(json_bytes_response(answer))
            }
            Err(StoreError::IdempotencyKeyTaken) => {
                replay_taken(self.state, self.space, self.key, &self.fingerprint).await
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The answer when a key is taken but its record is not there to read: the request
/// that took it has not committed yet.
pub const IN_PROGRESS: ApiError =
    ApiError::IdempotencyConflict("a request with this Idempotency-Key is still in progress");

/// The record to save with a change made under `key`, live for the server's window.
pub fn record(state: &AppState, space: &SpaceId, key: &str, fingerprint: Vec<u8>, body: Vec<u8>) -> IdempotencyRecord {
    let create_time = Timestamp::now();
    IdempotencyRecord {
        space_id: space.clone(),
        key: key.to_owned(),
        fingerprint,
        status: StatusCode::OK.as_u16(),
        body,
        create_time,
        expire_time: create_time.plus(state.idempotency_window),
    }
}

/// A saved answer sent again, marked as such.
pub fn replayed(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    response
}

/// A JSON response from already-serialised bytes.
pub fn json_bytes_response(body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sha2::{Digest, Sha256};

    use super::fingerprint;

    #[test]
    fn a_fingerprint_digests_method_path_and_the_body_with_sorted_keys() {
        let body = json!({"name": "payment.completed", "data": {"z": 1, "a": [1, "x"]}});
        let reordered = json!({"data": {"a": [1, "x"], "z": 1}, "name": "payment.completed"});
        let expected = Sha256::digest(
            br#"POST
/v1/events
{"data":{"a":[1,"x"],"z":1},"name":"payment.completed"}"#,
        );
        assert_eq!(fingerprint("POST", "/v1/events", &body), expected.to_vec());
        assert_eq!(fingerprint("POST", "/v1/events", &reordered), expected.to_vec());
        assert_ne!(fingerprint("POST", "/v1/webhooks", &body), expected.to_vec());
    }
}
