//! Authentication and tenancy: who may call, and which space they see.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn missing_or_unknown_tokens_are_401() {
    let server = TestServer::start().await;
    let cases = [
        server
            .bare(Method::GET, "/v1/webhooks")
            .header("Monime-Space-Id", SPACE),
        server
            .bare(Method::GET, "/v1/webhooks")
            .header("Monime-Space-Id", SPACE)
            .bearer_auth("wrong-token"),
        server
            .bare(Method::GET, "/v1/webhooks")
            .header("Monime-Space-Id", SPACE)
            .header("Authorization", TOKEN),
        server
            .bare(Method::GET, "/v1/webhooks")
            .header("Monime-Space-Id", SPACE)
            .basic_auth("u", Some("p")),
        server
            .bare(Method::POST, "/v1/webhooks")
            .header("Monime-Space-Id", SPACE)
            .header("Idempotency-Key", "k")
            .json(&hmac_example()),
    ];
    for request in cases {
        let (status, body) = send(request).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated", None);
    }
}

#[tokio::test]
async fn missing_or_malformed_space_is_400() {
    let server = TestServer::start().await;
    let (status, body) = send(server.bare(Method::GET, "/v1/webhooks").bearer_auth(TOKEN)).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Monime-Space-Id", "required")),
    );
    for malformed in [
        "test",
        "spc-",
        "spc-has space",
        "whk-abc",
        &format!("spc-{}", "a".repeat(61)),
    ] {
        let (status, body) = send(
            server
                .bare(Method::GET, "/v1/webhooks")
                .bearer_auth(TOKEN)
                .header("Monime-Space-Id", malformed),
        )
        .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(("Monime-Space-Id", "format")),
        );
    }
}

#[tokio::test]
async fn spaces_are_isolated() {
    let server = TestServer::start().await;
    let other_token = cli_token(&server, "spc-other").await;
    let ours = server.must_create(&hmac_example()).await;
    let our_path = format!("/v1/webhooks/{}", ours["id"].as_str().unwrap());

    // Our token in another space, and theirs in ours: 403.
    let (status, body) = send(
        server
            .bare(Method::GET, "/v1/webhooks")
            .bearer_auth(TOKEN)
            .header("Monime-Space-Id", "spc-other"),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden", None);
    let (status, body) = send(
        server
            .bare(Method::GET, "/v1/webhooks")
            .bearer_auth(&other_token)
            .header("Monime-Space-Id", SPACE),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden", None);

    // The other space sees none of ours, and cannot reach it by id.
    let theirs = |method: Method, path: &str| {
        server
            .bare(method, path)
            .bearer_auth(&other_token)
            .header("Monime-Space-Id", "spc-other")
    };
    let (status, body) = send(theirs(Method::GET, "/v1/webhooks")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], json!([]));
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = send(theirs(method, &our_path)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    }
    let (status, body) = send(theirs(Method::PATCH, &our_path).json(&json!({"enabled": false}))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);

    // Theirs is theirs.
    let (status, body) = send(
        theirs(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", "k")
            .json(&simple_webhook("theirs")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(list["result"], json!([ours]), "our list shows only ours");
    let (_, fetched) = send(server.request(Method::GET, &our_path)).await;
    assert_eq!(fetched["result"]["enabled"], json!(true));
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let server = TestServer::start().await;
    for path in [
        "/v1/webhooks/whk-doesnotexist",
        "/v1/webhooks/spc-test",
        "/v1/webhooks/%FF",
    ] {
        let (status, body) = send(server.request(Method::GET, path)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    }
}

#[tokio::test]
async fn first_start_prints_a_working_space_and_token_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let launch = Launch {
        no_bootstrap: true,
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), launch.clone()).await;
    let created = server
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("Created space "))
        .expect("credentials printed")
        .to_owned();
    let (space, token) = created.split_once(" with access token ").expect("space and token");
    let (status, body) = send(
        server
            .bare(Method::GET, "/v1/webhooks")
            .bearer_auth(token)
            .header("Monime-Space-Id", space),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(server.stop().await.success());

    let again = TestServer::launch_in(dir.path(), launch).await;
    assert!(
        !again.stdout_lines.iter().any(|l| l.contains("Created space")),
        "credentials printed twice: {:?}",
        again.stdout_lines
    );
}
