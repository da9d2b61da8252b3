//! Each limit the document states on a request is where the parsers draw the line: a
//! request at the limit is accepted, one just past it is rejected naming the field. The
//! limits are read from the document, never from the constants it is built from, so a
//! document that disagrees with the parsers fails here.

use axum::extract::FromRequestParts;
use hookrelay_core::webhook::InputRules;
use hookrelay_core::{EventCatalog, ValidationErrors, WebhookDraft, WebhookPatch};
use serde_json::{json, Map, Value};

use crate::api::PageQuery;
use crate::error::ApiError;
use crate::openapi::document;
use crate::request::IdempotencyKey;

const CREATE: &str = "/paths/~1v1~1webhooks/post/requestBody/content/application~1json/schema";
const UPDATE: &str = "/paths/~1v1~1webhooks~1{id}/patch/requestBody/content/application~1json/schema";

/// What a parser made of a request: accepted, or the fields its errors name.
type Outcome = Result<(), Vec<String>>;

/// The built-in events and enough more to fill `events` past any limit.
fn catalog() -> EventCatalog {
    EventCatalog::with_extra((0..1000).map(|i| format!("limit.e{i}"))).expect("well-formed names")
}

fn number(doc: &Value, pointer: &str) -> usize {
    let value = doc.pointer(pointer).and_then(Value::as_u64);
    let value = value.unwrap_or_else(|| panic!("the document states no number at {pointer}"));
    usize::try_from(value).expect("a limit fits in usize")
}

fn fields(errors: ValidationErrors) -> Vec<String> {
    errors.0.into_iter().map(|e| e.field).collect()
}

fn api_fields(error: ApiError) -> Vec<String> {
    match error {
        ApiError::Validation(errors) => fields(errors),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Runs a create or update body (by the schema it follows) through its parser.
fn parse(schema: &str, body: &Value, catalog: &EventCatalog) -> Outcome {
    let rules = InputRules {
        catalog,
        allow_private_targets: false,
    };
    if schema == CREATE {
        WebhookDraft::parse(body, &rules).map(drop).map_err(fields)
    } else {
        WebhookPatch::parse(body, &rules).map(drop).map_err(fields)
    }
}

/// A body for `schema` whose `field` is `value`: a valid create request around it, or
/// an update of that field alone.
fn body(schema: &str, field: &str, value: Value) -> Value {
    let mut body = match schema {
        CREATE => json!({"name": "limits", "url": "https://example.com/hook", "events": ["payment.completed"]}),
        _ => json!({}),
    };
    body[field] = value;
    body
}

/// A valid value of `field` whose length or count is `n`.
fn sized(field: &str, n: usize) -> Value {
    let object = |key: &dyn Fn(usize) -> String| -> Value {
        Value::Object((0..n).map(|i| (key(i), json!("v"))).collect::<Map<_, _>>())
    };
    match field {
        "name" => json!("n".repeat(n)),
        "url" => {
            let base = "https://example.com/";
            json!(format!(
                "{base}{}",
                "a".repeat(n.checked_sub(base.len()).expect("a long enough URL limit"))
            ))
        }
        "events" => json!((0..n).map(|i| format!("limit.e{i}")).collect::<Vec<_>>()),
        "headers" => object(&|i| format!("X-Limit-{i}")),
        "alertEmails" => json!((0..n).map(|i| format!("ops{i}@example.com")).collect::<Vec<_>>()),
        "metadata" => object(&|i| format!("key{i}")),
        other => panic!("no sized value for {other}"),
    }
}

/// The value just past a limit: one more for a maximum, one fewer for a minimum.
fn past(keyword: &str, limit: usize) -> usize {
    if keyword.starts_with("max") {
        limit + 1
    } else {
        limit.checked_sub(1).expect("a minimum above zero")
    }
}

fn assert_line(what: &str, field: &str, at: Outcome, past: Outcome) {
    assert_eq!(at, Ok(()), "{what}: a request at the limit is rejected");
    match past {
        Ok(()) => panic!("{what}: a request past the limit is accepted"),
        Err(named) => assert!(
            named.iter().any(|f| f == field),
            "{what}: past the limit the errors name {named:?}, not {field}"
        ),
    }
}

#[test]
fn webhook_field_limits_are_the_parsers() {
    let catalog = catalog();
    let doc = document(&catalog);
    let limits = [
        ("name", "maxLength"),
        ("name", "minLength"),
        ("url", "maxLength"),
        ("events", "maxItems"),
        ("events", "minItems"),
        ("headers", "maxProperties"),
        ("alertEmails", "maxItems"),
        ("metadata", "maxProperties"),
    ];
    for schema in [CREATE, UPDATE] {
        for (field, keyword) in limits {
            let limit = number(&doc, &format!("{schema}/properties/{field}/{keyword}"));
            let outcome = |n| parse(schema, &body(schema, field, sized(field, n)), &catalog);
            let what = format!("{schema} {field} {keyword} {limit}");
            assert_line(&what, field, outcome(limit), outcome(past(keyword, limit)));
        }
    }
}

#[test]
fn hs256_secret_lengths_are_the_parsers() {
    let catalog = catalog();
    let doc = document(&catalog);
    let methods = doc.pointer(&format!("{CREATE}/properties/verificationMethod/oneOf"));
    let hs256 = methods
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find(|m| m["properties"]["type"]["enum"] == json!(["HS256"])))
        .expect("the document describes HS256 in the create body");
    for keyword in ["minLength", "maxLength"] {
        let limit = number(hs256, &format!("/properties/secret/{keyword}"));
        let outcome = |n: usize| {
            let method = json!({"type": "HS256", "secret": "s".repeat(n)});
            parse(CREATE, &body(CREATE, "verificationMethod", method), &catalog)
        };
        let what = format!("HS256 secret {keyword} {limit}");
        let field = "verificationMethod.secret";
        assert_line(&what, field, outcome(limit), outcome(past(keyword, limit)));
    }
}

#[test]
fn api_releases_are_the_parsers() {
    let catalog = catalog();
    let doc = document(&catalog);
    for schema in [CREATE, UPDATE] {
        let pointer = format!("{schema}/properties/apiRelease/enum");
        let releases = doc
            .pointer(&pointer)
            .and_then(Value::as_array)
            .expect("an apiRelease enum");
        assert!(!releases.is_empty(), "{pointer}");
        let unlisted = format!("{}x", releases.iter().filter_map(Value::as_str).collect::<String>());
        for release in releases {
            let outcome = |value: &Value| parse(schema, &body(schema, "apiRelease", value.clone()), &catalog);
            let what = format!("{schema} apiRelease {release} and {unlisted}");
            assert_line(&what, "apiRelease", outcome(release), outcome(&json!(unlisted)));
        }
    }
}

/// Every operation in the document with a parameter named `name`, and that parameter.
fn operations_with(doc: &Value, name: &str) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let parameters = operation["parameters"].as_array().into_iter().flatten();
            if let Some(parameter) = parameters.into_iter().find(|p| p["name"] == name) {
                found.push((format!("{method} {path}"), parameter.clone()));
            }
        }
    }
    assert!(!found.is_empty(), "no operation takes {name}");
    found
}

#[test]
fn page_sizes_are_the_parsers() {
    let doc = document(&EventCatalog::default());
    for (operation, parameter) in operations_with(&doc, "limit") {
        for keyword in ["maximum", "minimum"] {
            let limit = number(&parameter, &format!("/schema/{keyword}"));
            let outcome = |n: usize| {
                let query = PageQuery {
                    limit: Some(n.to_string()),
                    after: None,
                };
                query.parse().map(drop).map_err(api_fields)
            };
            let what = format!("{operation} limit {keyword} {limit}");
            let beyond = if keyword == "maximum" {
                limit + 1
            } else {
                past("min", limit)
            };
            assert_line(&what, "limit", outcome(limit), outcome(beyond));
        }
    }
}

async fn check_idempotency_key(key: &str) -> Outcome {
    let request = axum::http::Request::builder().header("Idempotency-Key", key).body(());
    let (mut parts, ()) = request.expect("a well-formed request").into_parts();
    IdempotencyKey::from_request_parts(&mut parts, &())
        .await
        .map(drop)
        .map_err(api_fields)
}

#[tokio::test]
async fn idempotency_key_length_is_the_extractors() {
    let doc = document(&EventCatalog::default());
    for (operation, parameter) in operations_with(&doc, "Idempotency-Key") {
        let limit = number(&parameter, "/schema/maxLength");
        let at = check_idempotency_key(&"k".repeat(limit)).await;
        let past = check_idempotency_key(&"k".repeat(limit + 1)).await;
        assert_line(
            &format!("{operation} Idempotency-Key maxLength {limit}"),
            "Idempotency-Key",
            at,
            past,
        );
    }
}
