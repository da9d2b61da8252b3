//! Query parameters: each route accepts the ones it declares and refuses any other with
//! 400 naming it, on lists and on routes that take none.

use reqwest::{Method, StatusCode};

use crate::support::*;

async fn refused(server: &TestServer, method: Method, path: &str, field: &str, rule: &str) -> String {
    let (status, body) = send(server.request(method.clone(), path)).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some((field, rule)),
    );
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(field), "{method} {path}: {message}");
    message
}

#[tokio::test]
async fn a_typo_in_a_list_query_is_refused_naming_the_parameter() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("q")).await;
    let id = webhook["id"].as_str().unwrap();
    let lists = [
        "/v1/webhooks".to_owned(),
        "/v1/events".to_owned(),
        "/v1/tokens".to_owned(),
        format!("/v1/webhooks/{id}/deliveries"),
        format!("/v1/webhooks/{id}/alerts"),
    ];
    for list in &lists {
        let message = refused(
            &server,
            Method::GET,
            &format!("{list}?limt=5"),
            "limt",
            "unknown_parameter",
        )
        .await;
        assert!(message.contains("limit"), "names what is accepted: {message}");
        let (status, body) = send(server.request(Method::GET, &format!("{list}?limit=5"))).await;
        assert_eq!(status, StatusCode::OK, "{list}: {body}");
    }
    // `status` filters deliveries only.
    refused(
        &server,
        Method::GET,
        "/v1/webhooks?status=pending",
        "status",
        "unknown_parameter",
    )
    .await;
    let deliveries = format!("/v1/webhooks/{id}/deliveries?status=pending&limit=2");
    assert_eq!(send(server.request(Method::GET, &deliveries)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn routes_that_take_no_parameters_refuse_any() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("q")).await;
    let id = webhook["id"].as_str().unwrap();
    refused(
        &server,
        Method::GET,
        &format!("/v1/webhooks/{id}?foo=1"),
        "foo",
        "unknown_parameter",
    )
    .await;
    refused(
        &server,
        Method::DELETE,
        &format!("/v1/webhooks/{id}?force=true"),
        "force",
        "unknown_parameter",
    )
    .await;
    refused(&server, Method::GET, "/healthz?verbose", "verbose", "unknown_parameter").await;
    // A refused query changes nothing: the webhook is still there.
    assert_eq!(
        server.get(&format!("/v1/webhooks/{id}")).await["result"]["id"],
        webhook["id"]
    );
    // An unknown parameter on a create writes nothing either.
    let (status, body) = send(
        server
            .request(Method::POST, "/v1/webhooks?dryRun=1")
            .header("Idempotency-Key", unique_key())
            .json(&simple_webhook("never")),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("dryRun", "unknown_parameter")),
    );
    let list = server.get("/v1/webhooks?limit=50").await;
    assert_eq!(list["pagination"]["count"], 1, "{list}");
}

#[tokio::test]
async fn repeated_and_empty_parameters() {
    let server = TestServer::start().await;
    refused(
        &server,
        Method::GET,
        "/v1/webhooks?limit=5&limit=6",
        "limit",
        "repeated_parameter",
    )
    .await;
    refused(&server, Method::GET, "/v1/webhooks?=5", "query", "format").await;
    // An empty value is checked by the parameter's own rule.
    refused(&server, Method::GET, "/v1/webhooks?limit=", "limit", "range").await;
    // Empty pieces name nothing and pass; an empty cursor is the first page.
    for path in ["/v1/webhooks?", "/v1/webhooks?&&", "/v1/webhooks?after=&limit=3&"] {
        let (status, body) = send(server.request(Method::GET, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}
