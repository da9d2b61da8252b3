//! The ES256 public keys as RFC 7517 JWK Sets, served without a token: one webhook's
//! (`/v1/webhooks/{id}/jwks.json`) and a space's (`/v1/spaces/{id}/jwks.json`), each
//! with its current key and, during a rotation's overlap, the key before it. Only public
//! keys and their ids are read; see `docs/decisions.md` for what this reveals.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hookrelay_core::signing::es256_jwk;
use hookrelay_core::{SpaceId, Timestamp};
use hookrelay_store::{KeyOwner, PublishedKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::webhooks::{not_found, webhook_id};
use crate::api::{Access, RouteTable, NO_QUERY};
use crate::error::ApiError;
use crate::state::AppState;

/// How long a receiver may cache a key set: short, so a rotation's new key is fetched
/// within minutes (a verifier that meets an unknown key id refetches at once anyway).
pub const MAX_AGE_SECS: u32 = 300;
/// The media type of a JWK Set (RFC 7517, section 8.5).
const JWK_SET: &str = "application/jwk-set+json";

/// The key set routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(
            Method::GET,
            "/v1/webhooks/{id}/jwks.json",
            Access::Public,
            NO_QUERY,
            webhook_keys,
        )
        .add(
            Method::GET,
            "/v1/spaces/{id}/jwks.json",
            Access::Public,
            NO_QUERY,
            space_keys,
        )
}

/// One webhook's keys; 404 for an unknown webhook and for an HS256 one, whose secret has
/// no public part.
async fn webhook_keys(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = webhook_id(path)?;
    let keys = state
        .store
        .published_keys(KeyOwner::Webhook(&id), Timestamp::now())
        .await?;
    if keys.is_empty() {
        return Err(not_found(id.as_str()));
    }
    key_set(&keys, &headers)
}

/// Every ES256 webhook's keys in a space: an empty set for a space without any, and for
/// an id no space has (the answer does not tell the two apart).
async fn space_keys(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let keys = match path.ok().and_then(|Path(id)| SpaceId::parse(&id)) {
        Some(space) => {
            state
                .store
                .published_keys(KeyOwner::Space(&space), Timestamp::now())
                .await?
        }
        None => Vec::new(),
    };
    key_set(&keys, &headers)
}

/// The set as JSON, with its cache headers; `304` when the client holds this version.
fn key_set(keys: &[PublishedKey], request: &HeaderMap) -> Result<Response, ApiError> {
    let mut set = Vec::with_capacity(keys.len());
    for key in keys {
        match es256_jwk(&key.public_key_pem, key.key_id.as_str()) {
            Some(jwk) => set.push(jwk),
            // A stored key that does not parse signs nothing either; the others still publish.
            None => tracing::error!(webhook = %key.webhook_id, key = %key.key_id, "stored public key is unusable"),
        }
    }
    let body = serde_json::to_vec(&json!({ "keys": Value::Array(set) })).expect("a JSON value serialises");
    let etag = format!("\"{}\"", hex(&Sha256::digest(&body)[..16]));
    let cache = [
        (
            CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECS}")).expect("ASCII"),
        ),
        (ETAG, HeaderValue::from_str(&etag).expect("hex digits are header text")),
    ];
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((cache, [(CONTENT_TYPE, HeaderValue::from_static(JWK_SET))], body).into_response())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
