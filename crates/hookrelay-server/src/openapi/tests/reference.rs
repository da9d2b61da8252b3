//! Our document against Monime's published contract: the webhook operations agree on
//! everything but prose.

use std::collections::{BTreeMap, BTreeSet};

use hookrelay_core::EventCatalog;
use serde_json::Value;

use crate::openapi::document;

const REFERENCE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/reference/monime-webhooks-openapi.json"
));
/// Prose: allowed to differ from the reference.
const PROSE: [&str; 5] = ["description", "summary", "title", "example", "tags"];

fn reference() -> Value {
    serde_json::from_str(REFERENCE).expect("the vendored reference is valid JSON")
}

/// `value` without prose keys, at any depth. Inside `properties` the keys are property
/// names, so they are kept (their schemas are stripped).
fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !PROSE.contains(&key.as_str()))
                .map(|(key, v)| {
                    let v = match v {
                        Value::Object(props) if key == "properties" => {
                            Value::Object(props.iter().map(|(name, s)| (name.clone(), strip(s))).collect())
                        }
                        _ => strip(v),
                    };
                    (key.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Records where `ours` and `theirs` differ at `place`, prose ignored.
fn compare(diffs: &mut Vec<String>, place: &str, ours: Option<&Value>, theirs: Option<&Value>) {
    differences(diffs, place, ours.map(strip).as_ref(), theirs.map(strip).as_ref());
}

/// Records each innermost place where two values differ.
fn differences(diffs: &mut Vec<String>, place: &str, ours: Option<&Value>, theirs: Option<&Value>) {
    match (ours, theirs) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                differences(diffs, &format!("{place}.{key}"), a.get(key), b.get(key));
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(diffs, &format!("{place}[{i}]"), Some(x), Some(y));
            }
        }
        _ if ours != theirs => {
            let show = |v: Option<&Value>| v.map_or("(absent)".to_owned(), Value::to_string);
            diffs.push(format!("{place}: ours {}, reference {}", show(ours), show(theirs)));
        }
        _ => {}
    }
}

/// An operation's parameters keyed by (`in`, `name`).
fn parameters(diffs: &mut Vec<String>, place: &str, operation: &Value) -> BTreeMap<(String, String), Value> {
    let list = operation["parameters"].as_array().cloned().unwrap_or_default();
    let key = |p: &Value, field: &str| p[field].as_str().unwrap_or("").to_owned();
    let keyed: BTreeMap<_, _> = list
        .iter()
        .map(|p| ((key(p, "in"), key(p, "name")), p.clone()))
        .collect();
    if keyed.len() != list.len() {
        diffs.push(format!("{place}: a parameter is listed twice"));
    }
    keyed
}

#[test]
fn webhook_operations_agree_with_the_reference() {
    let ours = document(&EventCatalog::default());
    let reference = reference();
    let mut diffs = Vec::new();

    for (path, item) in reference["paths"].as_object().expect("the reference has paths") {
        for (method, theirs) in item.as_object().expect("a path item is an object") {
            let at = format!("{} {path}", method.to_uppercase());
            let Some(op) = ours["paths"][path].get(method) else {
                diffs.push(format!("{at}: missing from our document"));
                continue;
            };
            if op["operationId"] != theirs["operationId"] {
                diffs.push(format!(
                    "{at}: operationId {} != {}",
                    op["operationId"], theirs["operationId"]
                ));
            }
            let (our_params, their_params) = (parameters(&mut diffs, &at, op), parameters(&mut diffs, &at, theirs));
            let keys: BTreeSet<_> = our_params.keys().chain(their_params.keys()).collect();
            for key @ (location, name) in keys {
                let part = format!("{at} parameter {name} (in {location})");
                compare(&mut diffs, &part, our_params.get(key), their_params.get(key));
            }
            compare(
                &mut diffs,
                &format!("{at} requestBody"),
                op.get("requestBody"),
                theirs.get("requestBody"),
            );
            let part = format!("{at} responses.200");
            compare(
                &mut diffs,
                &part,
                op["responses"].get("200"),
                theirs["responses"].get("200"),
            );
        }
    }
    for pointer in [
        "/components/schemas/Webhook",
        "/components/securitySchemes/bearerAuth",
        "/security",
    ] {
        compare(&mut diffs, pointer, ours.pointer(pointer), reference.pointer(pointer));
    }
    assert!(
        diffs.is_empty(),
        "our OpenAPI document disagrees with the reference:\n{}",
        diffs.join("\n")
    );
}
