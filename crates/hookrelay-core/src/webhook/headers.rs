//! Custom request headers: which names a webhook may set, and their values.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::fields::type_error;
use super::limits;
use crate::validation::ValidationErrors;

/// Header names (lower case) a webhook may not set, each with the reason its message
/// gives. Every one would duplicate or contradict a header a delivery already carries,
/// or take over what HTTP/1.1 framing and connection handling own. Besides these,
/// hookrelay sends `Monime-*` (see [`RESERVED_PREFIX`]).
///
/// Left allowed on purpose: `Authorization` and other headers for the receiver (what
/// custom headers are for); `Date` (neither hookrelay nor hyper sends one, and nothing
/// in the request depends on it); `Accept-Encoding` (only the response excerpt kept in
/// the attempt log could come back compressed).
pub const RESERVED_HEADERS: &[(&str, &str)] = &[
    // What every delivery sends (`delivery/attempt.rs` in the server): a second value
    // would be appended beside hookrelay's, or replace what the body is.
    ("accept", "every delivery sends Accept: */*"),
    ("content-type", "every delivery sends Content-Type: application/json"),
    ("user-agent", "every delivery sends hookrelay's User-Agent"),
    (
        "content-encoding",
        "the body is sent as plain JSON, and a receiver would misread it",
    ),
    // What hyper derives from the URL and the body.
    ("host", "the HTTP client sends the URL's host"),
    ("content-length", "the HTTP client frames the body"),
    ("transfer-encoding", "the HTTP client frames the body"),
    ("trailer", "the HTTP client frames the body and sends no trailers"),
    ("te", "the HTTP client chooses the connection's transfer codings"),
    // Hop-by-hop headers and connection handling: a delivery is one HTTP/1.1 request
    // on a pooled connection, straight to the receiver.
    ("connection", "the HTTP client manages its connections"),
    ("keep-alive", "the HTTP client manages its connections"),
    ("proxy-connection", "the HTTP client manages its connections"),
    (
        "upgrade",
        "a delivery is one HTTP/1.1 request and cannot switch protocols",
    ),
    (
        "expect",
        "the HTTP client sends the body at once, without waiting for 100 Continue",
    ),
    ("proxy-authorization", "deliveries go through no proxy"),
];

/// The prefix of the delivery protocol's own headers (case-insensitive).
pub const RESERVED_PREFIX: &str = "monime-";

/// Why a webhook may not set a header named `lower` (lower case), if it may not.
fn reserved_reason(lower: &str) -> Option<&'static str> {
    if lower.starts_with(RESERVED_PREFIX) {
        return Some("names starting with Monime- belong to the delivery protocol");
    }
    RESERVED_HEADERS
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, reason)| *reason)
}

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
        } else if let Some(reason) = reserved_reason(&lower) {
            errors.push(
                field,
                "reserved",
                format!("header {name} cannot be configured: {reason}"),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(headers: Value) -> Vec<(String, &'static str, String)> {
        let mut errors = ValidationErrors::default();
        assert!(parse_headers(&headers, &mut errors).is_none(), "{headers}");
        errors.0.into_iter().map(|e| (e.field, e.rule, e.message)).collect()
    }

    #[test]
    fn reserved_names_are_refused_in_any_case_with_their_reason() {
        for (lower, reason) in RESERVED_HEADERS {
            let upper = lower.to_ascii_uppercase();
            let errors = refused(json!({ upper.clone(): "x" }));
            let message = format!("header {upper} cannot be configured: {reason}");
            assert_eq!(errors, [(format!("headers.{upper}"), "reserved", message)]);
        }
        let errors = refused(json!({"Monime-Signature": "x"}));
        assert_eq!(errors[0].1, "reserved");
        assert!(errors[0].2.starts_with("header Monime-Signature cannot be configured"));
    }

    #[test]
    fn the_list_holds_what_deliveries_send_and_http_framing_owns() {
        let names: Vec<&str> = RESERVED_HEADERS.iter().map(|(name, _)| *name).collect();
        for name in [
            "accept",
            "content-type",
            "user-agent",
            "content-encoding",
            "host",
            "content-length",
            "transfer-encoding",
            "trailer",
            "te",
            "connection",
            "keep-alive",
            "proxy-connection",
            "upgrade",
            "expect",
            "proxy-authorization",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()));
    }

    #[test]
    fn receiver_headers_are_kept() {
        let mut errors = ValidationErrors::default();
        let headers = json!({"Authorization": "Bearer t", "Date": "x", "Accept-Encoding": "gzip", "X-Tenant": "7"});
        let parsed = parse_headers(&headers, &mut errors).unwrap();
        assert!(errors.is_empty());
        assert_eq!(parsed.len(), 4);
    }
}
