//! `/v1/tokens` and scopes: what a token may do, through the API.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{create_token, with_token};
use crate::support::*;

const ALL_SCOPES: [&str; 8] = [
    "webhooks:read",
    "webhooks:write",
    "events:publish",
    "events:read",
    "deliveries:read",
    "deliveries:write",
    "tokens:manage",
    "events:erase",
];

#[tokio::test]
async fn a_token_is_shown_once_listed_without_its_secret_and_revoked() {
    let server = TestServer::start().await;
    let key = unique_key();
    let create = || {
        server
            .request(Method::POST, "/v1/tokens")
            .header("Idempotency-Key", &key)
            .json(&json!({"name": "reader", "scopes": ["webhooks:read"]}))
    };
    let (status, created) = send(create()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let result = &created["result"];
    let token = result["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("hrt_") && token.len() == 44, "{token}");
    assert_eq!(result["prefix"], json!(&token[4..12]));
    assert_eq!(result["scopes"], json!(["webhooks:read"]));
    assert!(result["id"].as_str().unwrap().starts_with("tok-"));
    assert_eq!(
        (&result["lastUsedTime"], &result["expireTime"]),
        (&Value::Null, &Value::Null)
    );
    // A retry with the same key answers the same, token included, and creates nothing.
    let (status, replayed) = send(create()).await;
    assert_eq!((status, &replayed), (StatusCode::OK, &created));

    // It reads, and does nothing else.
    let (status, _) = send(with_token(&server, &token, Method::GET, "/v1/webhooks")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        with_token(&server, &token, Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", unique_key())
            .json(&simple_webhook("w")),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope", None);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("webhooks:write"),
        "{body}"
    );

    // Listed with the bootstrap token, never with a token in it; its use is recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let (status, page) = send(server.request(Method::GET, "/v1/tokens")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let text = page.to_string();
        assert!(
            !text.contains(&token[4..]) && !text.contains(TOKEN),
            "a token is listed: {text}"
        );
        let reader = page["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == result["id"])
            .cloned();
        let reader = reader.expect("the new token is listed");
        if !reader["lastUsedTime"].is_null() || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tokens = listed["result"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "the bootstrap token and the new one: {listed}");
    assert_eq!(tokens[0]["name"], "reader", "newest first");
    assert!(tokens[0]["lastUsedTime"].is_string(), "its use is recorded: {listed}");
    assert!(tokens[0].get("token").is_none());
    assert_eq!(tokens[1]["name"], "bootstrap");
    assert_eq!(tokens[1]["scopes"], json!(ALL_SCOPES));

    // Revoked: refused at once on this node, and gone.
    let path = format!("/v1/tokens/{}", result["id"].as_str().unwrap());
    let (status, body) = send(server.request(Method::DELETE, &path)).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"success": true, "messages": []}))
    );
    let (status, body) = send(with_token(&server, &token, Method::GET, "/v1/webhooks")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated", None);
    let (status, body) = send(server.request(Method::DELETE, &path)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    let (status, body) = send(server.request(Method::DELETE, "/v1/tokens/whk-not-a-token")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
}

/// A request to each route, which a token with its scope gets past authentication and
/// authorisation (to a 2xx, 400 or 404), with the scope the route needs.
fn calls() -> Vec<(Method, &'static str, Option<Value>, &'static str)> {
    let none = "/v1/webhooks/whk-none";
    vec![
        (Method::GET, "/v1/webhooks", None, "webhooks:read"),
        (Method::POST, "/v1/webhooks", Some(json!({})), "webhooks:write"),
        (Method::GET, none, None, "webhooks:read"),
        (Method::PATCH, none, Some(json!({})), "webhooks:write"),
        (Method::DELETE, none, None, "webhooks:write"),
        (Method::GET, "/v1/webhooks/whk-none/alerts", None, "webhooks:read"),
        (Method::GET, "/v1/webhooks/whk-none/deliveries", None, "deliveries:read"),
        (
            Method::GET,
            "/v1/webhooks/whk-none/deliveries/dlv-none",
            None,
            "deliveries:read",
        ),
        (
            Method::POST,
            "/v1/webhooks/whk-none/deliveries/dlv-none/retry",
            None,
            "deliveries:write",
        ),
        (Method::POST, "/v1/webhooks/whk-none/test", None, "deliveries:write"),
        (Method::GET, "/v1/events", None, "events:read"),
        (Method::POST, "/v1/events", Some(json!({})), "events:publish"),
        (Method::GET, "/v1/events/evt-none", None, "events:read"),
        (Method::GET, "/v1/tokens", None, "tokens:manage"),
        (Method::POST, "/v1/tokens", Some(json!({})), "tokens:manage"),
        (Method::DELETE, "/v1/tokens/tok-none", None, "tokens:manage"),
    ]
}

#[tokio::test]
async fn every_route_needs_its_scope_and_names_it_when_missing() {
    let server = TestServer::start().await;
    let mut only = std::collections::HashMap::new();
    let mut all_but = std::collections::HashMap::new();
    for scope in ALL_SCOPES {
        let created = create_token(&server, &format!("only {scope}"), &[scope]).await;
        only.insert(scope, created["token"].as_str().unwrap().to_owned());
        let others: Vec<&str> = ALL_SCOPES.into_iter().filter(|s| *s != scope).collect();
        let created = create_token(&server, &format!("all but {scope}"), &others).await;
        all_but.insert(scope, created["token"].as_str().unwrap().to_owned());
    }
    for (method, path, body, scope) in calls() {
        let call = |token: &str| {
            let request = with_token(&server, token, method.clone(), path).header("Idempotency-Key", unique_key());
            match &body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        let (status, answer) = send(call(&only[scope])).await;
        assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND].contains(&status),
            "{method} {path} with {scope}: {status} {answer}"
        );
        let (status, answer) = send(call(&all_but[scope])).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "insufficient_scope", None);
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(scope), "{method} {path}: {message}");
    }
}

#[tokio::test]
async fn a_token_grants_only_scopes_it_has() {
    let server = TestServer::start().await;
    let manager = create_token(&server, "manager", &["tokens:manage", "webhooks:read"]).await;
    let manager = manager["token"].as_str().unwrap();
    let create = |scopes: Value| {
        with_token(&server, manager, Method::POST, "/v1/tokens")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "derived", "scopes": scopes}))
    };
    let (status, body) = send(create(json!(["webhooks:read"]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(create(json!(["webhooks:read", "webhooks:write", "events:publish"]))).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope", None);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("webhooks:write, events:publish") && !message.contains("webhooks:read"),
        "{message}"
    );
}

#[tokio::test]
async fn a_create_request_breaking_a_rule_is_told_which() {
    let server = TestServer::start().await;
    let create = |body: Value| {
        server
            .request(Method::POST, "/v1/tokens")
            .header("Idempotency-Key", unique_key())
            .json(&body)
    };
    for (body, field, rule) in [
        (json!({"scopes": ["events:read"]}), "name", "required"),
        (json!({"name": "x"}), "scopes", "required"),
        (json!({"name": "x", "scopes": []}), "scopes", "min_items"),
        (json!({"name": "x", "scopes": ["events:write"]}), "scopes[0]", "enum"),
        (
            json!({"name": "x", "scopes": ["events:read"], "expireTime": "2020-01-01T00:00:00Z"}),
            "expireTime",
            "future",
        ),
        (
            json!({"name": "x", "scopes": ["events:read"], "expireTime": "soon"}),
            "expireTime",
            "format",
        ),
        (
            json!({"name": "x", "scopes": ["events:read"], "token": "hrt_mine"}),
            "token",
            "unknown_field",
        ),
    ] {
        let (status, answer) = send(create(body)).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
    }
    let (status, answer) = send(
        server
            .request(Method::POST, "/v1/tokens")
            .json(&json!({"name": "x", "scopes": ["events:read"]})),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "required")),
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_as_soon_as_it_expires() {
    let server = TestServer::start().await;
    let expiry = hookrelay_core::Timestamp::now().plus(Duration::from_secs(2));
    let (status, created) = send(
        server
            .request(Method::POST, "/v1/tokens")
            .header("Idempotency-Key", unique_key())
            .json(&json!({"name": "brief", "scopes": ["events:read"], "expireTime": expiry.to_rfc3339()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["result"]["expireTime"], json!(expiry.to_rfc3339()));
    let token = created["result"]["token"].as_str().unwrap();
    let (status, _) = send(with_token(&server, token, Method::GET, "/v1/events")).await;
    assert_eq!(status, StatusCode::OK, "works until it expires");
    let refused = loop {
        let (status, body) = send(with_token(&server, token, Method::GET, "/v1/events")).await;
        if status != StatusCode::OK {
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated", None);
            assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
            break hookrelay_core::Timestamp::now();
        }
        assert!(
            hookrelay_core::Timestamp::now() < expiry.plus(Duration::from_secs(5)),
            "never refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let late = refused.duration_since(expiry);
    assert!(late < Duration::from_secs(1), "refused {late:?} after it expired");
}
