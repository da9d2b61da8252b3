//! Every validation rule of the contract, one row each: the request, then the status,
//! `reason`, field and rule the client must see. Nothing is written by a rejected request.

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::support::*;

/// A valid create body with `change` applied: `Some(v)` sets a field, `None` removes it.
fn create_with(field: &str, change: Option<Value>) -> Value {
    let mut body = hmac_example();
    match change {
        Some(v) => body[field] = v,
        None => {
            body.as_object_mut().unwrap().remove(field);
        }
    }
    body
}

fn n_headers(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("X-H{i}"), json!("v"))).collect::<Map<_, _>>())
}

fn create_rows() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let secret = |s: String| json!({"type": "HS256", "secret": s});
    vec![
        ("name missing", create_with("name", None), "name", "required"),
        ("name null", create_with("name", Some(Value::Null)), "name", "required"),
        ("name empty", create_with("name", Some(json!(""))), "name", "min_length"),
        (
            "name too long",
            create_with("name", Some(json!("n".repeat(101)))),
            "name",
            "max_length",
        ),
        ("name not a string", create_with("name", Some(json!(7))), "name", "type"),
        (
            "name with a control character",
            create_with("name", Some(json!("a\u{0}b"))),
            "name",
            "format",
        ),
        (
            "url with a control character",
            create_with("url", Some(json!("https://a.example/\u{0}"))),
            "url",
            "format",
        ),
        ("url missing", create_with("url", None), "url", "required"),
        (
            "url relative",
            create_with("url", Some(json!("/webhooks/monime"))),
            "url",
            "format",
        ),
        (
            "url not http",
            create_with("url", Some(json!("ftp://yoursite.com/x"))),
            "url",
            "format",
        ),
        (
            "url too long",
            create_with("url", Some(json!(format!("https://yoursite.com/{}", "a".repeat(235))))),
            "url",
            "max_length",
        ),
        (
            "url with credentials",
            create_with("url", Some(json!("https://user:pass@yoursite.com/x"))),
            "url",
            "credentials",
        ),
        (
            "url on loopback",
            create_with("url", Some(json!("http://127.0.0.1:9000/x"))),
            "url",
            "private_address",
        ),
        (
            "url on private v6",
            create_with("url", Some(json!("http://[fd00::1]/x"))),
            "url",
            "private_address",
        ),
        ("events missing", create_with("events", None), "events", "required"),
        (
            "events empty",
            create_with("events", Some(json!([]))),
            "events",
            "min_items",
        ),
        (
            "events over 100",
            create_with("events", Some(Value::Array(vec![json!("payment.completed"); 101]))),
            "events",
            "max_items",
        ),
        (
            "events repeated",
            create_with("events", Some(json!(["payment.completed", "payment.completed"]))),
            "events[1]",
            "unique",
        ),
        (
            "events unknown",
            create_with("events", Some(json!(["payment.exploded"]))),
            "events[0]",
            "unknown_event",
        ),
        (
            "events not an array",
            create_with("events", Some(json!("payment.completed"))),
            "events",
            "type",
        ),
        (
            "events item not a string",
            create_with("events", Some(json!([1]))),
            "events[0]",
            "type",
        ),
        (
            "apiRelease unknown",
            create_with("apiRelease", Some(json!("v2"))),
            "apiRelease",
            "enum",
        ),
        (
            "enabled not a boolean",
            create_with("enabled", Some(json!("yes"))),
            "enabled",
            "type",
        ),
        (
            "headers over 10",
            create_with("headers", Some(n_headers(11))),
            "headers",
            "max_properties",
        ),
        (
            "header Content-Type reserved",
            create_with("headers", Some(json!({"Content-Type": "text/plain"}))),
            "headers.Content-Type",
            "reserved",
        ),
        (
            "header Monime-* reserved",
            create_with("headers", Some(json!({"monime-signature": "x"}))),
            "headers.monime-signature",
            "reserved",
        ),
        (
            "header Host reserved",
            create_with("headers", Some(json!({"Host": "x"}))),
            "headers.Host",
            "reserved",
        ),
        (
            "header value not a string",
            create_with("headers", Some(json!({"X-A": 1}))),
            "headers.X-A",
            "type",
        ),
        (
            "header name invalid",
            create_with("headers", Some(json!({"X Bad": "v"}))),
            "headers.X Bad",
            "format",
        ),
        (
            "header value with newline",
            create_with("headers", Some(json!({"X-A": "a\r\nInjected: yes"}))),
            "headers.X-A",
            "format",
        ),
        (
            "header names equal ignoring case",
            create_with("headers", Some(json!({"X-A": "1", "x-a": "2"}))),
            "headers.x-a",
            "unique",
        ),
        (
            "headers not an object",
            create_with("headers", Some(json!(["X-A"]))),
            "headers",
            "type",
        ),
        (
            "alertEmails over 2",
            create_with("alertEmails", Some(json!(["a@x.com", "b@x.com", "c@x.com"]))),
            "alertEmails",
            "max_items",
        ),
        (
            "alertEmails repeated",
            create_with("alertEmails", Some(json!(["a@x.com", "A@x.com"]))),
            "alertEmails[1]",
            "unique",
        ),
        (
            "alertEmails invalid",
            create_with("alertEmails", Some(json!(["not-an-email"]))),
            "alertEmails[0]",
            "format",
        ),
        (
            "metadata over 64 keys",
            create_with(
                "metadata",
                Some(Value::Object((0..65).map(|i| (format!("k{i}"), json!(i))).collect())),
            ),
            "metadata",
            "max_properties",
        ),
        (
            "metadata not an object",
            create_with("metadata", Some(json!([1]))),
            "metadata",
            "type",
        ),
        (
            "secret shorter than 32",
            create_with("verificationMethod", Some(secret("s".repeat(31)))),
            "verificationMethod.secret",
            "min_length",
        ),
        (
            "secret longer than 256",
            create_with("verificationMethod", Some(secret("s".repeat(257)))),
            "verificationMethod.secret",
            "max_length",
        ),
        (
            "HS256 without secret",
            create_with("verificationMethod", Some(json!({"type": "HS256"}))),
            "verificationMethod.secret",
            "required",
        ),
        (
            "ES256 with a public key",
            create_with(
                "verificationMethod",
                Some(json!({"type": "ES256", "publicKey": "-----BEGIN PUBLIC KEY-----"})),
            ),
            "verificationMethod.publicKey",
            "read_only",
        ),
        (
            "ES256 with a secret",
            create_with(
                "verificationMethod",
                Some(json!({"type": "ES256", "secret": "s".repeat(40)})),
            ),
            "verificationMethod.secret",
            "unknown_field",
        ),
        (
            "verification type unknown",
            create_with("verificationMethod", Some(json!({"type": "RS256"}))),
            "verificationMethod.type",
            "enum",
        ),
        (
            "verification type missing",
            create_with("verificationMethod", Some(json!({"secret": "s".repeat(40)}))),
            "verificationMethod.type",
            "required",
        ),
        (
            "unknown field",
            create_with("colour", Some(json!("blue"))),
            "colour",
            "unknown_field",
        ),
        ("body not an object", json!(["name"]), "body", "type"),
    ]
}

#[tokio::test]
async fn create_rejects_each_broken_rule_and_writes_nothing() {
    let server = TestServer::start().await;
    for (case, body, field, rule) in create_rows() {
        let (status, answer) = server.create_webhook(&body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {answer}");
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
    }
    let (_, list) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(list["result"], json!([]), "a rejected create wrote something");
}

#[tokio::test]
async fn boundary_values_are_accepted() {
    let server = TestServer::start().await;
    let catalog: Vec<Value> = [
        "payment.created",
        "payment.completed",
        "payment.failed",
        "payout.created",
        "payout.processing",
        "payout.completed",
        "payout.failed",
        "checkout_session.completed",
        "checkout_session.expired",
        "checkout_session.cancelled",
        "payment_code.created",
        "payment_code.processed",
        "payment_code.completed",
        "payment_code.expired",
        "payment_code.cancelled",
        "internal_transfer.completed",
        "internal_transfer.failed",
    ]
    .into_iter()
    .map(Value::from)
    .collect();
    let webhook = server
        .must_create(&json!({
            "name": "n".repeat(100),
            "url": format!("https://yoursite.com/{}", "a".repeat(234)),
            "events": catalog,
            "apiRelease": "siriusb",
            "enabled": false,
            "verificationMethod": {"type": "HS256", "secret": "s".repeat(256)},
            "headers": n_headers(10),
            "alertEmails": ["a@x.com", "b@x.com"],
            "metadata": Value::Object((0..64).map(|i| (format!("k{i}"), json!({"nested": [i]}))).collect()),
        }))
        .await;
    assert_eq!(webhook["events"].as_array().unwrap().len(), 17);
    assert_eq!(webhook["url"].as_str().unwrap().len(), 255);
    assert_eq!(webhook["enabled"], json!(false));
    let short = server
        .must_create(&create_with(
            "verificationMethod",
            Some(json!({"type": "HS256", "secret": "s".repeat(32)})),
        ))
        .await;
    assert_eq!(short["verificationMethod"]["secret"].as_str().unwrap().len(), 32);
    // Absent apiRelease takes the spec's default.
    let defaulted = server.must_create(&create_with("apiRelease", None)).await;
    assert_eq!(defaulted["apiRelease"], "caph");
}

#[tokio::test]
async fn update_rejects_each_broken_rule_and_changes_nothing() {
    let server = TestServer::start().await;
    let created = server.must_create(&hmac_example()).await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    let rows: Vec<(&str, Value, &str, &str)> = vec![
        (
            "verificationMethod is immutable",
            json!({"verificationMethod": {"type": "ES256"}}),
            "verificationMethod",
            "immutable",
        ),
        ("unknown field", json!({"colour": "blue"}), "colour", "unknown_field"),
        ("name empty", json!({"name": ""}), "name", "min_length"),
        ("name too long", json!({"name": "n".repeat(101)}), "name", "max_length"),
        ("url not http", json!({"url": "mailto:a@b.co"}), "url", "format"),
        (
            "url on loopback",
            json!({"url": "http://[::1]/x"}),
            "url",
            "private_address",
        ),
        ("events empty", json!({"events": []}), "events", "min_items"),
        (
            "events unknown",
            json!({"events": ["payment.exploded"]}),
            "events[0]",
            "unknown_event",
        ),
        ("enabled not a boolean", json!({"enabled": "no"}), "enabled", "type"),
        ("apiRelease unknown", json!({"apiRelease": "x"}), "apiRelease", "enum"),
        (
            "header reserved",
            json!({"headers": {"User-Agent": "me"}}),
            "headers.User-Agent",
            "reserved",
        ),
        (
            "alertEmails invalid",
            json!({"alertEmails": ["a@b"]}),
            "alertEmails[0]",
            "format",
        ),
        ("metadata not an object", json!({"metadata": "x"}), "metadata", "type"),
        ("body not an object", json!("x"), "body", "type"),
    ];
    for (case, body, field, rule) in rows {
        let (status, answer) = send(server.request(Method::PATCH, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {answer}");
        assert_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some((field, rule)),
        );
    }
    let (_, fetched) = send(server.request(Method::GET, &path)).await;
    assert_eq!(fetched["result"], created, "a rejected update changed the webhook");
}

/// Custom headers that a delivery already carries, or that HTTP/1.1 framing and
/// connection handling own, in the case a client might write them.
const RESERVED_HEADER_NAMES: [&str; 9] = [
    "Accept",
    "content-encoding",
    "EXPECT",
    "Te",
    "Trailer",
    "Keep-Alive",
    "Proxy-Authorization",
    "upgrade",
    "Proxy-Connection",
];

#[tokio::test]
async fn headers_the_client_or_framing_owns_are_refused_on_create_and_update() {
    let server = TestServer::start().await;
    let created = server.must_create(&hmac_example()).await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    for name in RESERVED_HEADER_NAMES {
        let headers = json!({ name: "x", "X-Kept": "fine" });
        let (status, answer) = server
            .create_webhook(&create_with("headers", Some(headers.clone())))
            .await;
        assert_reserved(status, &answer, name);
        let (status, answer) = send(
            server
                .request(Method::PATCH, &path)
                .json(&json!({ "headers": headers })),
        )
        .await;
        assert_reserved(status, &answer, name);
    }
    // Several at once: each is named.
    let several = json!({"Accept": "a", "Transfer-Encoding": "chunked", "connection": "close", "X-Kept": "v"});
    let (status, answer) = server.create_webhook(&create_with("headers", Some(several))).await;
    for name in ["Accept", "Transfer-Encoding", "connection"] {
        assert_reserved(status, &answer, name);
    }
    assert_eq!(answer["error"]["details"].as_array().unwrap().len(), 3, "{answer}");

    let (_, list) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(
        list["pagination"]["count"],
        json!(1),
        "a refused create wrote something"
    );
    let (_, fetched) = send(server.request(Method::GET, &path)).await;
    assert_eq!(fetched["result"], created, "a refused update changed the webhook");
}

#[track_caller]
fn assert_reserved(status: StatusCode, answer: &Value, name: &str) {
    let field = format!("headers.{name}");
    assert_error(
        status,
        answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some((&field, "reserved")),
    );
    let details = answer["error"]["details"].as_array().unwrap();
    let detail = details.iter().find(|d| d["field"] == json!(field)).unwrap();
    let message = detail["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("header {name} ")), "{message}");
}

#[tokio::test]
async fn header_and_query_rules() {
    let server = TestServer::start().await;
    let post = || server.request(Method::POST, "/v1/webhooks").json(&hmac_example());

    let (status, body) = send(post()).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "required")),
    );
    let (status, body) = send(post().header("Idempotency-Key", "k".repeat(65))).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Idempotency-Key", "max_length")),
    );
    let (status, _) = send(post().header("Idempotency-Key", "k".repeat(64))).await;
    assert_eq!(status, StatusCode::OK);

    for version in ["caph.2025-08-23", "caph.2025-06-20"] {
        let (status, _) = send(
            server
                .request(Method::GET, "/v1/webhooks")
                .header("Monime-Version", version),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{version}");
    }
    let (status, body) = send(
        server
            .request(Method::GET, "/v1/webhooks")
            .header("Monime-Version", "caph.2024-01-01"),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("Monime-Version", "enum")),
    );

    for limit in ["0", "51", "ten", "-1", "1.5"] {
        let (status, body) = send(server.request(Method::GET, &format!("/v1/webhooks?limit={limit}"))).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            Some(("limit", "range")),
        );
    }
    let (status, body) = send(server.request(Method::GET, "/v1/webhooks?after=not-a-cursor")).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("after", "format")),
    );
    let long_cursor = "a".repeat(2001);
    let (status, body) = send(server.request(Method::GET, &format!("/v1/webhooks?after={long_cursor}"))).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some(("after", "max_length")),
    );
}

#[tokio::test]
async fn malformed_bodies_get_the_envelope_not_a_500() {
    let server = TestServer::start().await;
    let post = || {
        server
            .request(Method::POST, "/v1/webhooks")
            .header("Idempotency-Key", unique_key())
    };

    let (status, body) = send(post().header("Content-Type", "application/json").body("{\"name\": ")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json", None);
    let (status, body) = send(post().header("Content-Type", "application/json").body("")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json", None);
    let (status, body) = send(
        post()
            .header("Content-Type", "text/plain")
            .body(hmac_example().to_string()),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    );
    let (status, body) = send(post().body(hmac_example().to_string())).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    );
    let huge = json!({"name": "x", "url": "https://a.example", "events": ["payment.completed"],
                      "metadata": {"blob": "x".repeat(1024 * 1024)}});
    let (status, body) = send(post().json(&huge)).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None);

    let (status, body) = send(
        server
            .request(Method::PATCH, "/v1/webhooks/whk-nope")
            .header("Content-Type", "application/json")
            .body("[1,"),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_json", None);

    // A charset parameter is still JSON.
    let (status, body) = send(
        post()
            .header("Content-Type", "application/json; charset=utf-8")
            .body(hmac_example().to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(list["pagination"]["count"], json!(1));
}
