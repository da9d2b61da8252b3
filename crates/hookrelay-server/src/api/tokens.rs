//! `/v1/tokens`: a space's access tokens, created (the token shown in that answer
//! only), listed (never the token) and revoked.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookrelay_core::access::{AccessToken, Scope, TokenDraft};
use hookrelay_core::{token, Timestamp, TokenId};
use serde::Serialize;
use serde_json::json;

use crate::api::{
    list_response, page_request, path_id, success_bytes, Access, PageQuery, RouteTable, NO_QUERY, PAGE_QUERY,
};
use crate::error::ApiError;
use crate::idempotency::KeyedCreate;
use crate::request::{IdempotencyKey, JsonBody, Tenant};
use crate::state::AppState;

const MANAGE: Access = Access::Scope(Scope::TokensManage);

/// The token routes.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .add(Method::GET, "/v1/tokens", MANAGE, PAGE_QUERY, list)
        .add(Method::POST, "/v1/tokens", MANAGE, NO_QUERY, create)
        .add(Method::DELETE, "/v1/tokens/{id}", MANAGE, NO_QUERY, revoke)
}

/// A token as the API shows it: the token itself only in the answer that created it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenOut<'a> {
    id: &'a str,
    name: &'a str,
    scopes: Vec<&'static str>,
    prefix: &'a str,
    create_time: String,
    last_used_time: Option<String>,
    expire_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

impl<'a> TokenOut<'a> {
    fn new(record: &'a AccessToken, token: Option<&'a str>) -> Self {
        Self {
            id: record.id.as_str(),
            name: &record.name,
            scopes: record.scopes.names(),
            prefix: &record.prefix,
            create_time: record.create_time.to_rfc3339(),
            last_used_time: record.last_used_time.map(Timestamp::to_rfc3339),
            expire_time: record.expire_time.map(Timestamp::to_rfc3339),
            token,
        }
    }
}

async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body, _): JsonBody,
) -> Result<Response, ApiError> {
    let create = KeyedCreate::new(&state, &tenant.space_id, &key, "/v1/tokens", &body);
    if let Some(saved) = create.replay().await? {
        return Ok(saved);
    }
    let now = Timestamp::now();
    let draft = TokenDraft::parse(&body, now)?;
    let lacking = tenant.grant.scopes.lacking(draft.scopes);
    if !lacking.is_empty() {
        return Err(ApiError::InsufficientScope(format!(
            "this access token cannot grant scopes it does not have: {lacking}"
        )));
    }
    let secret = token::generate();
    let record = AccessToken::of_secret(&secret, tenant.space_id.clone(), draft, now);
    // The answer holds the token: its idempotency record is sealed like every other.
    let answer = success_bytes(&TokenOut::new(&record, Some(&secret)));
    let saved = create.record(&answer);
    let digest = token::digest(&secret);
    let write = state.store.add_token(&record, &digest, Some(&saved));
    create
        .answer(write, answer, || {
            tracing::info!(token = %record.id, space = %tenant.space_id, by = %tenant.grant.token_id, "token created");
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
        .list_tokens(&tenant.space_id, page.after, page.limit)
        .await?;
    let items: Vec<TokenOut<'_>> = found.items.iter().map(|record| TokenOut::new(record, None)).collect();
    Ok(list_response(&items, found.next))
}

async fn revoke(
    State(state): State<AppState>,
    tenant: Tenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let not_found = |id: &str| ApiError::NotFound(format!("token {id} was not found"));
    let (id, token_id) = path_id(path, TokenId::parse, not_found)?;
    if !state.store.revoke_token(&tenant.space_id, &token_id).await? {
        return Err(not_found(&id));
    }
    // This node refuses it at once; the others when their copy of its grant expires.
    state.tokens.forget(&token_id);
    tracing::info!(token = %token_id, space = %tenant.space_id, by = %tenant.grant.token_id, "token revoked");
    Ok(Json(json!({"success": true, "messages": []})).into_response())
}
