//! Field access and the parsers of single fields, each reporting its broken rules.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::draft::VerificationRequest;
use super::{limits, ApiRelease, InputRules};
use crate::validation::ValidationErrors;

/// The field's value, or `None` (with a `required` error) when absent or null.
pub(crate) fn required<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<&'a Value> {
    let value = nullable(object, field);
    if value.is_none() {
        errors.push(field, "required", format!("{field} is required"));
    }
    value
}

/// The field's value; absent and null are both `None`.
pub(crate) fn nullable<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|v| !v.is_null())
}

/// The field's value when present; an explicit null is a type error (non-nullable field).
pub(super) fn not_null<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<&'a Value> {
    match object.get(field) {
        Some(Value::Null) => {
            errors.push(field, "type", format!("{field} may not be null"));
            None
        }
        other => other,
    }
}

pub(crate) fn reject_unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    errors: &mut ValidationErrors,
) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(
            format!("{prefix}{key}"),
            "unknown_field",
            format!("{prefix}{key} is not a known field"),
        );
    }
}

pub(crate) fn type_error(field: &str, expected: &str, errors: &mut ValidationErrors) {
    errors.push(field, "type", format!("{field} must be {expected}"));
}

// ---- field parsers ------------------------------------------------------------------

pub(super) fn parse_string_between(
    value: &Value,
    field: &str,
    min: usize,
    max: usize,
    errors: &mut ValidationErrors,
) -> Option<String> {
    let Some(text) = value.as_str() else {
        type_error(field, "a string", errors);
        return None;
    };
    if text.chars().any(char::is_control) {
        errors.push(field, "format", format!("{field} must not contain control characters"));
        return None;
    }
    let chars = text.chars().count();
    if chars < min {
        let message = match min {
            1 => format!("{field} must not be empty"),
            _ => format!("{field} must be at least {min} characters"),
        };
        errors.push(field, "min_length", message);
        None
    } else if chars > max {
        errors.push(field, "max_length", format!("{field} must be at most {max} characters"));
        None
    } else {
        Some(text.to_owned())
    }
}

pub(super) fn parse_name(value: &Value, errors: &mut ValidationErrors) -> Option<String> {
    let name = parse_string_between(value, "name", 1, limits::NAME_MAX, errors)?;
    if name.trim().is_empty() {
        errors.push("name", "min_length", "name must not be blank");
        return None;
    }
    Some(name)
}

pub(super) fn parse_bool(value: &Value, field: &str, errors: &mut ValidationErrors) -> Option<bool> {
    let parsed = value.as_bool();
    if parsed.is_none() {
        type_error(field, "a boolean", errors);
    }
    parsed
}

pub(super) fn parse_api_release(value: &Value, errors: &mut ValidationErrors) -> Option<ApiRelease> {
    let parsed = value.as_str().and_then(ApiRelease::parse);
    if parsed.is_none() {
        errors.push("apiRelease", "enum", "apiRelease must be one of: caph, siriusb");
    }
    parsed
}

pub(super) fn parse_url(value: &Value, rules: &InputRules<'_>, errors: &mut ValidationErrors) -> Option<String> {
    let text = parse_string_between(value, "url", 1, limits::URL_MAX, errors)?;
    let url = match url::Url::parse(&text) {
        Ok(url) => url,
        Err(_) => {
            errors.push("url", "format", "url must be an absolute http or https URL");
            return None;
        }
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        errors.push("url", "format", "url must be an absolute http or https URL");
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        errors.push("url", "credentials", "url must not contain a user name or password");
        return None;
    }
    if !rules.allow_private_targets {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if ip.is_some_and(|ip| !crate::net::is_public(ip)) {
            errors.push(
                "url",
                "private_address",
                "url must not point to a private, loopback or otherwise non-public address",
            );
            return None;
        }
    }
    Some(text)
}

pub(super) fn parse_events(
    value: &Value,
    rules: &InputRules<'_>,
    errors: &mut ValidationErrors,
) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        type_error("events", "an array of event names", errors);
        return None;
    };
    let before = errors.0.len();
    if items.is_empty() {
        errors.push("events", "min_items", "events must name at least 1 event");
    } else if items.len() > limits::EVENTS_MAX {
        errors.push(
            "events",
            "max_items",
            format!("events must name at most {} events", limits::EVENTS_MAX),
        );
    }
    let mut seen = HashSet::new();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("events[{i}]");
        match item.as_str() {
            None => type_error(&field, "a string", errors),
            Some(name) if !rules.catalog.contains(name) => {
                errors.push(field, "unknown_event", format!("{name:?} is not a known event"));
            }
            Some(name) if !seen.insert(name) => {
                errors.push(field, "unique", format!("{name:?} is listed more than once"));
            }
            Some(name) => events.push(name.to_owned()),
        }
    }
    (errors.0.len() == before).then_some(events)
}

pub(super) fn parse_alert_emails(value: &Value, errors: &mut ValidationErrors) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        type_error("alertEmails", "an array of e-mail addresses", errors);
        return None;
    };
    let before = errors.0.len();
    if items.len() > limits::ALERT_EMAILS_MAX {
        errors.push(
            "alertEmails",
            "max_items",
            format!("alertEmails may hold at most {} addresses", limits::ALERT_EMAILS_MAX),
        );
    }
    let mut seen = HashSet::new();
    let mut emails = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("alertEmails[{i}]");
        match item.as_str() {
            None => type_error(&field, "a string", errors),
            Some(email) if !is_email_address(email) => {
                errors.push(field, "format", format!("{email:?} is not a valid e-mail address"));
            }
            Some(email) if !seen.insert(email.to_ascii_lowercase()) => {
                errors.push(field, "unique", format!("{email:?} is listed more than once"));
            }
            Some(email) => emails.push(email.to_owned()),
        }
    }
    (errors.0.len() == before).then_some(emails)
}

pub(super) fn parse_metadata(value: &Value, errors: &mut ValidationErrors) -> Option<Map<String, Value>> {
    let Some(object) = value.as_object() else {
        type_error("metadata", "an object", errors);
        return None;
    };
    if object.len() > limits::METADATA_MAX {
        errors.push(
            "metadata",
            "max_properties",
            format!("metadata may hold at most {} keys", limits::METADATA_MAX),
        );
        return None;
    }
    Some(object.clone())
}

pub(super) fn parse_verification(value: &Value, errors: &mut ValidationErrors) -> Option<VerificationRequest> {
    const FIELD: &str = "verificationMethod";
    let Some(object) = value.as_object() else {
        type_error(FIELD, "an object", errors);
        return None;
    };
    let before = errors.0.len();
    let request = match object.get("type").and_then(Value::as_str) {
        None => {
            errors.push(
                "verificationMethod.type",
                "required",
                "verificationMethod.type is required: HS256 or ES256",
            );
            None
        }
        Some("HS256") => {
            reject_unknown_fields(object, &["type", "secret"], "verificationMethod.", errors);
            match nullable(object, "secret") {
                None => {
                    errors.push(
                        "verificationMethod.secret",
                        "required",
                        "verificationMethod.secret is required for HS256",
                    );
                    None
                }
                Some(secret) => parse_string_between(
                    secret,
                    "verificationMethod.secret",
                    limits::SECRET_MIN,
                    limits::SECRET_MAX,
                    errors,
                )
                .map(VerificationRequest::Hs256),
            }
        }
        Some("ES256") => {
            if object.contains_key("publicKey") {
                errors.push(
                    "verificationMethod.publicKey",
                    "read_only",
                    "verificationMethod.publicKey is generated by the server and cannot be sent",
                );
            }
            reject_unknown_fields(object, &["type", "publicKey"], "verificationMethod.", errors);
            Some(VerificationRequest::Es256)
        }
        Some(_) => {
            errors.push(
                "verificationMethod.type",
                "enum",
                "verificationMethod.type must be one of: HS256, ES256",
            );
            None
        }
    };
    (errors.0.len() == before).then_some(request).flatten()
}

/// A pragmatic e-mail check: `local@domain`, the domain a dotted host name.
pub(super) fn is_email_address(email: &str) -> bool {
    const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c));
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let domain_ok = domain.len() <= 253 && domain.contains('.') && domain.split('.').all(label_ok);
    email.len() <= 254 && local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        for ok in ["a@b.co", "alerts@yoursite.com", "first.last+tag@sub.example.org"] {
            assert!(is_email_address(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b..co", ".a@b.co", "a@-b.co",
        ] {
            assert!(!is_email_address(bad), "{bad}");
        }
    }
}
