//! The running server's answers against the schemas its own `/openapi.json` documents:
//! every property it returns is documented, with the right JSON type, and nothing a
//! schema closes with `additionalProperties: false` or leaves unlisted is added.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::smtp::SmtpServer;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

/// The JSON type of a (non-null) value, as OpenAPI names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Records where `value` breaks `schema`, resolving `$ref`s in `doc`.
fn check(doc: &Value, schema: &Value, value: &Value, place: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = doc.pointer(reference.trim_start_matches('#'));
        let target = target.unwrap_or_else(|| panic!("{reference} does not resolve"));
        return check(doc, target, value, place, errors);
    }
    if value.is_null() {
        if schema["nullable"] != json!(true) {
            errors.push(format!("{place}: null, but the schema is not nullable"));
        }
        return;
    }
    if let Some(expected) = schema["type"].as_str() {
        let actual = json_type(value);
        if actual != expected && !(expected == "number" && actual == "integer") {
            return errors.push(format!("{place}: {actual}, documented as {expected}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{place}: {value} is not in the documented enum {allowed:?}"));
        }
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        // The document's patterns are all an id prefix: `^prefix.*$`.
        let prefix = pattern.strip_prefix('^').and_then(|p| p.strip_suffix(".*$"));
        let prefix = prefix.unwrap_or_else(|| panic!("{place}: pattern {pattern} is not a prefix pattern"));
        if !value.as_str().is_some_and(|text| text.starts_with(prefix)) {
            errors.push(format!("{place}: {value} does not match {pattern}"));
        }
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let matching = variants.iter().filter(|variant| {
            let mut found = Vec::new();
            check(doc, variant, value, place, &mut found);
            found.is_empty()
        });
        let count = matching.count();
        if count != 1 {
            errors.push(format!("{place}: {value} matches {count} of the documented oneOf"));
        }
    }
    match value {
        Value::Object(object) => check_object(doc, schema, object, place, errors),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{place}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

/// Required properties present; every property documented, or allowed by
/// `additionalProperties`. An object schema that lists no properties (free-form, like
/// `metadata`) takes anything; one whose properties its `oneOf` variants list leaves
/// them to the variants.
fn check_object(
    doc: &Value,
    schema: &Value,
    object: &serde_json::Map<String, Value>,
    place: &str,
    errors: &mut Vec<String>,
) {
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().expect("a required property name");
        if !object.contains_key(name) {
            errors.push(format!("{place}.{name}: documented as required, but absent"));
        }
    }
    let properties = schema["properties"].as_object();
    for (name, value) in object {
        let at = format!("{place}.{name}");
        match (properties.and_then(|p| p.get(name)), &schema["additionalProperties"]) {
            (Some(property), _) => check(doc, property, value, &at, errors),
            (None, extra @ Value::Object(_)) => check(doc, extra, value, &at, errors),
            (None, Value::Bool(false)) => errors.push(format!("{at}: not allowed (additionalProperties: false)")),
            (None, _) if properties.is_some() && schema["oneOf"].is_null() => {
                errors.push(format!("{at}: returned, but not documented"))
            }
            (None, _) => {}
        }
    }
}

/// Asserts that `body`, answered with `status` by `method template`, has the shape the
/// document gives that response.
fn assert_documented(doc: &Value, method: &str, template: &str, status: StatusCode, body: &Value) {
    let response = &doc["paths"][template][method]["responses"][status.as_str()];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template}: no documented {status} response"
    );
    let mut errors = Vec::new();
    check(doc, schema, body, "body", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {template} {status} differs from the document:\n{}\n{body:#}",
        errors.join("\n")
    );
}

/// GETs `path` and checks the answer against `template`'s documented response.
async fn get_documented(server: &TestServer, doc: &Value, template: &str, path: &str) -> Value {
    let (status, body) = send(server.request(Method::GET, path)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert_documented(doc, "get", template, status, &body);
    body
}

/// Polls the webhook's alerts until the newest one satisfies `done`.
async fn newest_alert(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = server.get(path).await;
        if body["result"].get(0).is_some_and(&done) {
            return body;
        }
        assert!(Instant::now() < deadline, "the alert never got there: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn answers_have_the_documented_shapes() {
    let mut smtp = SmtpServer::start().await;
    smtp.stop();
    let args = [
        "--allow-private-targets",
        "--retry-schedule",
        "0s",
        "--alert-retry-schedule",
        "300ms",
        "--smtp-url",
        &smtp.url(),
        "--smtp-from",
        "hooks@example.com",
    ];
    let server = TestServer::launch(Launch {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Launch::default()
    })
    .await;
    let doc = send(server.bare(Method::GET, "/openapi.json")).await.1;
    let receiver = Receiver::start().await;
    receiver.script(|_| Reply::Status(500));
    let webhook = server
        .must_create(&json!({
            "name": "Shapes",
            "url": receiver.url,
            "events": ["payment.completed"],
            "headers": {"X-Env": "test"},
            "alertEmails": ["oncall@example.com"],
            "metadata": {"team": "payments"},
        }))
        .await;
    let id = webhook["id"].as_str().unwrap();
    let event = server.publish("payment.completed", "pmt-1", json!({"amount": 1})).await;

    // The one attempt fails; the mail server is down, so the alert waits, with an error.
    let alerts = format!("/v1/webhooks/{id}/alerts");
    let pending = newest_alert(&server, &alerts, |a| a["lastError"].is_string()).await;
    assert_eq!(pending["result"][0]["status"], "pending", "{pending}");
    assert!(pending["result"][0]["nextAttemptTime"].is_string(), "{pending}");
    assert_documented(&doc, "get", "/v1/webhooks/{id}/alerts", StatusCode::OK, &pending);
    smtp.restart().await;
    let sent = newest_alert(&server, &alerts, |a| a["status"] == "sent").await;
    assert!(sent["result"][0]["sentTime"].is_string(), "{sent}");
    assert_documented(&doc, "get", "/v1/webhooks/{id}/alerts", StatusCode::OK, &sent);

    let deliveries_path = format!("/v1/webhooks/{id}/deliveries");
    let deliveries = get_documented(&server, &doc, "/v1/webhooks/{id}/deliveries", &deliveries_path).await;
    let delivery = deliveries["result"][0]["id"].as_str().expect("a delivery");
    let detail = get_documented(
        &server,
        &doc,
        "/v1/webhooks/{id}/deliveries/{delivery_id}",
        &format!("/v1/webhooks/{id}/deliveries/{delivery}"),
    )
    .await;
    assert!(detail["result"]["attempts"][0]["errorKind"].is_string(), "{detail}");
    get_documented(&server, &doc, "/v1/webhooks", "/v1/webhooks").await;
    get_documented(&server, &doc, "/v1/webhooks/{id}", &format!("/v1/webhooks/{id}")).await;
    get_documented(&server, &doc, "/v1/events", "/v1/events").await;
    let event_path = format!("/v1/events/{}", event["id"].as_str().unwrap());
    get_documented(&server, &doc, "/v1/events/{id}", &event_path).await;

    let (status, missing) = send(server.request(Method::GET, "/v1/webhooks/whk-nope/alerts")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_documented(&doc, "get", "/v1/webhooks/{id}/alerts", status, &missing);
}
