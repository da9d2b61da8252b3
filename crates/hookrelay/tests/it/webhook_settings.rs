//! `GET/PUT /v1/webhooks/{id}/settings` through the real binary: defaults, partial
//! updates and resets, validation naming the field and the rule with nothing written,
//! tenancy and scopes, the webhook's own body left as Monime defines it; the SDK and the
//! CLI.

use hookrelay_client::{Client, DeliveryFormat, DeliveryOrdering, UpdateWebhookSettings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;
use crate::tenancy::{create_token, with_token};

async fn put(server: &TestServer, webhook: &str, body: &Value) -> (StatusCode, Value) {
    send(
        server
            .request(Method::PUT, &format!("/v1/webhooks/{webhook}/settings"))
            .json(body),
    )
    .await
}

fn defaults() -> Value {
    json!({"format": "monime", "ordering": "none", "maxDeliveriesPerSecond": null, "retrySchedule": null})
}

#[tokio::test]
async fn settings_start_at_their_defaults_and_change_only_where_named() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("settings")).await;
    let id = webhook["id"].as_str().unwrap();
    let path = format!("/v1/webhooks/{id}/settings");
    assert_eq!(server.get(&path).await["result"], defaults());

    let (status, body) = put(&server, id, &json!({"maxDeliveriesPerSecond": 25})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put(&server, id, &json!({"retrySchedule": ["0s", "30s", "2h"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = json!({
        "format": "monime",
        "ordering": "none",
        "maxDeliveriesPerSecond": 25,
        "retrySchedule": ["0s", "30s", "2h"],
    });
    assert_eq!(body["result"], expected, "the second update keeps the first");
    assert_eq!(server.get(&path).await["result"], expected);

    // null resets a field to its default; the others stay.
    let (_, body) = put(&server, id, &json!({"maxDeliveriesPerSecond": null})).await;
    assert_eq!(body["result"]["maxDeliveriesPerSecond"], Value::Null, "{body}");
    assert_eq!(body["result"]["retrySchedule"], json!(["0s", "30s", "2h"]), "{body}");

    // Monime's webhook body is untouched: no settings field, the same updateTime.
    let after = server.get(&format!("/v1/webhooks/{id}")).await["result"].clone();
    assert_eq!(after, webhook, "the webhook itself did not change");
}

#[tokio::test]
async fn invalid_settings_are_refused_by_field_and_rule_and_change_nothing() {
    let server = TestServer::start().await;
    let id = server.must_create(&simple_webhook("strict")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = put(&server, &id, &json!({"maxDeliveriesPerSecond": 7})).await;
    let stored = body["result"].clone();
    let refused: [(Value, &str, &str); 8] = [
        (json!({"colour": "red"}), "colour", "unknown_field"),
        (json!({"format": "xml"}), "format", "enum"),
        (json!({"ordering": 3}), "ordering", "type"),
        (json!({"maxDeliveriesPerSecond": 0}), "maxDeliveriesPerSecond", "range"),
        (json!({"maxDeliveriesPerSecond": "5"}), "maxDeliveriesPerSecond", "type"),
        (json!({"retrySchedule": []}), "retrySchedule", "length"),
        (
            json!({"retrySchedule": ["0s", "5 minutes"]}),
            "retrySchedule[1]",
            "format",
        ),
        (json!({"retrySchedule": ["8d"]}), "retrySchedule[0]", "range"),
    ];
    for (body, field, rule) in refused {
        // A valid field beside the invalid one is not applied either.
        let mut request = body.clone();
        request["ordering"] = request.get("ordering").cloned().unwrap_or(json!("object"));
        let (status, answer) = put(&server, &id, &request).await;
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let (status, answer) = put(&server, &id, &json!(["format"])).await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("body", "type")),
    );
    let path = format!("/v1/webhooks/{id}/settings");
    assert_eq!(server.get(&path).await["result"], stored, "nothing was written");
}

#[tokio::test]
async fn settings_belong_to_the_webhooks_space_and_need_its_scopes() {
    let server = TestServer::start().await;
    let id = server.must_create(&simple_webhook("scoped")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/webhooks/{id}/settings");
    let (status, body) = send(server.request(Method::GET, "/v1/webhooks/whk-unknown/settings")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    let (status, body) = put(&server, "whk-unknown", &json!({"ordering": "object"})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);

    let reader = create_token(&server, "reader", &["webhooks:read"]).await;
    let reader = reader["token"].as_str().unwrap();
    let (status, body) = send(with_token(&server, reader, Method::GET, &path)).await;
    assert_eq!((status, &body["result"]), (StatusCode::OK, &defaults()), "{body}");
    let (status, body) =
        send(with_token(&server, reader, Method::PUT, &path).json(&json!({"ordering": "object"}))).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_scope", None);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("webhooks:write"),
        "{body}"
    );
    assert_eq!(server.get(&path).await["result"], defaults());
}

#[tokio::test]
async fn the_sdk_and_the_cli_read_and_change_settings() {
    let server = TestServer::start().await;
    let id = server.must_create(&simple_webhook("tools")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = Client::builder(SPACE, TOKEN).base_url(&server.base).build().unwrap();
    let api = client.webhook();
    assert_eq!(api.settings(&id).await.unwrap().result, Default::default());
    let changed = api
        .update_settings(
            &id,
            &UpdateWebhookSettings {
                format: Some(DeliveryFormat::StandardWebhooks),
                ordering: Some(DeliveryOrdering::Object),
                max_deliveries_per_second: Some(Some(40)),
                retry_schedule: Some(Some(vec!["0s".into(), "1m".into()])),
            },
        )
        .await
        .unwrap()
        .result;
    assert_eq!(changed.format, DeliveryFormat::StandardWebhooks);
    assert_eq!(changed.ordering, DeliveryOrdering::Object);
    assert_eq!(changed.max_deliveries_per_second, Some(40));
    assert_eq!(changed.retry_schedule, Some(vec!["0s".to_owned(), "1m".to_owned()]));
    assert_eq!(api.settings(&id).await.unwrap().result, changed);

    let cli = |args: &[&str]| {
        let mut command = command(&server.dir);
        command
            .env("HOOKRELAY_URL", &server.base)
            .env("HOOKRELAY_SPACE_ID", SPACE)
            .env("HOOKRELAY_TOKEN", TOKEN)
            .args(args);
        command
    };
    let args = [
        "webhook",
        "settings",
        &id,
        "--no-rate-limit",
        "--server-retry-schedule",
        "--json",
    ];
    let output = cli(&args).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["result"]["maxDeliveriesPerSecond"], Value::Null, "{answer}");
    assert_eq!(answer["result"]["retrySchedule"], Value::Null, "{answer}");
    assert_eq!(answer["result"]["format"], "standard-webhooks", "{answer}");
    let output = cli(&["webhook", "settings", &id, "--format", "monime"])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for line in ["monime", "object", "no limit", "the server's"] {
        assert!(shown.contains(line), "{line} missing from {shown}");
    }
    let output = cli(&["webhook", "settings", &id, "--retry-schedule", "0s,9d"])
        .output()
        .await
        .unwrap();
    let refused = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && refused.contains("retrySchedule[1]"),
        "{refused}"
    );
}
