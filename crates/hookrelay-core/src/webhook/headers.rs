//! Custom request headers: which names a webhook may set, and their values.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::fields::type_error;
use super::limits;
use crate::validation::ValidationErrors;

/// Header names a webhook may not set: the delivery protocol owns them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "user-agent",
];

pub(super) fn parse_headers(value: &Value, errors: &mut ValidationErrors) -> Option<BTreeMap<String, String>> {
    let Some(object) = value.as_object() else {
        type_error("headers", "an object of header names to string values", errors);
        return None;
    };
    let before = errors.0.len();
    if object.len() > limits::HEADERS_MAX {
        errors.push(
            "headers",
            "max_properties",
            format!("headers may hold at most {} headers", limits::HEADERS_MAX),
        );
    }
    let mut seen = HashSet::new();
    let mut headers = BTreeMap::new();
    for (name, value) in object {
        let field = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(field, "format", format!("{name:?} is not a valid HTTP header name"));
        } else if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("monime-") {
            errors.push(
                field,
                "reserved",
                format!("header {name} is set by hookrelay and cannot be configured"),
            );
        } else if !seen.insert(lower) {
            errors.push(
                field,
                "unique",
                format!("header {name} is given more than once (names are case-insensitive)"),
            );
        } else if let Some(text) = value.as_str() {
            if text.chars().count() > limits::HEADER_VALUE_MAX {
                errors.push(
                    field,
                    "max_length",
                    format!("header {name} must be at most {} characters", limits::HEADER_VALUE_MAX),
                );
            } else if http::HeaderValue::from_str(text).is_err() {
                errors.push(
                    field,
                    "format",
                    format!("header {name} has characters not allowed in a header value"),
                );
            } else {
                headers.insert(name.clone(), text.to_owned());
            }
        } else {
            type_error(&field, "a string", errors);
        }
    }
    (errors.0.len() == before).then_some(headers)
}
