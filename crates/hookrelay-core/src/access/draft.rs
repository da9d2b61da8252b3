//! The token create request, and a token as it is stored: everything but the token
//! itself, which is shown once and kept only as a digest.

use std::collections::HashSet;

use serde_json::Value;

use super::{Scope, Scopes};
use crate::id::{SpaceId, TokenId};
use crate::timestamp::Timestamp;
use crate::token;
use crate::validation::ValidationErrors;
use crate::webhook::fields::{nullable, reject_unknown_fields, required, type_error};

/// Fields a create request may carry.
pub const CREATE_FIELDS: &[&str] = &["name", "scopes", "expireTime"];

/// Longest token name, in characters.
pub const TOKEN_NAME_MAX: usize = 100;

/// A valid create request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenDraft {
    /// What the token is for.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// When it stops working, if ever.
    pub expire_time: Option<Timestamp>,
}

impl TokenDraft {
    /// Parses a create request body at `now`, reporting every broken rule.
    pub fn parse(body: &Value, now: Timestamp) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single(
                "body",
                "type",
                "the request body must be a JSON object",
            ));
        };
        reject_unknown_fields(object, CREATE_FIELDS, "", &mut errors);
        let name = required(object, "name", &mut errors).and_then(|v| parse_name(v, &mut errors));
        let scopes = required(object, "scopes", &mut errors).and_then(|v| parse_scopes(v, &mut errors));
        let expire_time = match nullable(object, "expireTime") {
            None => Some(None),
            Some(value) => parse_expire_time(value, now, &mut errors).map(Some),
        };
        match (name, scopes, expire_time) {
            (Some(name), Some(scopes), Some(expire_time)) if errors.is_empty() => Ok(Self {
                name,
                scopes,
                expire_time,
            }),
            _ => Err(errors),
        }
    }
}

fn parse_name(value: &Value, errors: &mut ValidationErrors) -> Option<String> {
    let Some(name) = value.as_str() else {
        type_error("name", "a string", errors);
        return None;
    };
    if name.trim().is_empty() {
        errors.push("name", "min_length", "name must not be blank");
    } else if name.chars().count() > TOKEN_NAME_MAX {
        let message = format!("name must be at most {TOKEN_NAME_MAX} characters");
        errors.push("name", "max_length", message);
    } else if name.chars().any(char::is_control) {
        errors.push("name", "format", "name must not contain control characters");
    } else {
        return Some(name.to_owned());
    }
    None
}

fn parse_scopes(value: &Value, errors: &mut ValidationErrors) -> Option<Scopes> {
    let Some(items) = value.as_array() else {
        type_error("scopes", "an array of scope names", errors);
        return None;
    };
    let before = errors.0.len();
    if items.is_empty() {
        errors.push("scopes", "min_items", "scopes must name at least 1 scope");
    }
    let mut seen = HashSet::new();
    let mut scopes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("scopes[{i}]");
        match item.as_str().map(|name| (name, Scope::parse(name))) {
            None => type_error(&field, "a string", errors),
            Some((name, None)) => {
                let known = Scope::ALL.map(Scope::as_str).join(", ");
                errors.push(field, "enum", format!("{name:?} is not a scope; scopes are: {known}"));
            }
            Some((name, Some(scope))) if !seen.insert(scope) => {
                errors.push(field, "unique", format!("{name:?} is listed more than once"));
            }
            Some((_, Some(scope))) => scopes.push(scope),
        }
    }
    (errors.0.len() == before).then(|| scopes.into_iter().collect())
}

fn parse_expire_time(value: &Value, now: Timestamp, errors: &mut ValidationErrors) -> Option<Timestamp> {
    let Some(text) = value.as_str() else {
        type_error("expireTime", "an RFC 3339 date-time string", errors);
        return None;
    };
    let Some(at) = Timestamp::parse_rfc3339(text) else {
        let message = "expireTime must be an RFC 3339 date-time with an offset, e.g. 2030-01-01T00:00:00Z";
        errors.push("expireTime", "format", message);
        return None;
    };
    if at <= now {
        errors.push("expireTime", "future", "expireTime must be in the future");
        return None;
    }
    Some(at)
}

/// A token's record: what it may do, in which space, until when. The token itself is
/// not here; only its digest is stored beside this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// Its id.
    pub id: TokenId,
    /// The space it acts in.
    pub space_id: SpaceId,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// The start of the token, shown so a user can tell tokens apart
    /// ([`token::shown_prefix`]).
    pub prefix: String,
    /// When it was created.
    pub create_time: Timestamp,
    /// When it was last used, to the minute ([`super::LAST_USE_EVERY`]).
    pub last_used_time: Option<Timestamp>,
    /// When it stops working, if ever.
    pub expire_time: Option<Timestamp>,
}

impl AccessToken {
    /// The record of `secret`, a token made now for `space`.
    pub fn of_secret(secret: &str, space: SpaceId, draft: TokenDraft, now: Timestamp) -> Self {
        Self {
            id: TokenId::generate(),
            space_id: space,
            name: draft.name,
            scopes: draft.scopes,
            prefix: token::shown_prefix(secret),
            create_time: now,
            last_used_time: None,
            expire_time: draft.expire_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_795_860_000_000_000);

    fn rules_broken(body: Value) -> Vec<(String, &'static str)> {
        let errors = TokenDraft::parse(&body, NOW).unwrap_err();
        errors.0.into_iter().map(|e| (e.field, e.rule)).collect()
    }

    #[test]
    fn a_valid_request_parses() {
        let draft = TokenDraft::parse(
            &json!({"name": "ci", "scopes": ["events:publish", "webhooks:read"], "expireTime": "2026-11-29T10:00:00Z"}),
            NOW,
        )
        .unwrap();
        assert_eq!(draft.name, "ci");
        assert_eq!(draft.scopes.names(), ["webhooks:read", "events:publish"]);
        assert_eq!(draft.expire_time, Some(NOW.plus_micros(86_400_000_000)));
        let forever = TokenDraft::parse(
            &json!({"name": "x", "scopes": ["tokens:manage"], "expireTime": null}),
            NOW,
        );
        assert_eq!(forever.unwrap().expire_time, None);
    }

    #[test]
    fn every_broken_rule_is_named() {
        assert_eq!(
            rules_broken(json!({"scopes": [], "extra": 1})),
            [
                ("extra".to_owned(), "unknown_field"),
                ("name".to_owned(), "required"),
                ("scopes".to_owned(), "min_items")
            ]
        );
        assert_eq!(
            rules_broken(json!({"name": " ", "scopes": ["webhooks:read", "admin", 3, "webhooks:read"]})),
            [
                ("name".to_owned(), "min_length"),
                ("scopes[1]".to_owned(), "enum"),
                ("scopes[2]".to_owned(), "type"),
                ("scopes[3]".to_owned(), "unique")
            ]
        );
        let long = "n".repeat(TOKEN_NAME_MAX + 1);
        assert_eq!(
            rules_broken(json!({"name": long, "scopes": "webhooks:read"})),
            [("name".to_owned(), "max_length"), ("scopes".to_owned(), "type")]
        );
        assert_eq!(rules_broken(json!([])), [("body".to_owned(), "type")]);
    }

    #[test]
    fn the_expiry_must_be_a_future_instant() {
        let body = |at: Value| json!({"name": "x", "scopes": ["events:read"], "expireTime": at});
        assert_eq!(
            rules_broken(body(json!(NOW.to_rfc3339()))),
            [("expireTime".to_owned(), "future")]
        );
        assert_eq!(
            rules_broken(body(json!("2020-01-01T00:00:00Z"))),
            [("expireTime".to_owned(), "future")]
        );
        assert_eq!(
            rules_broken(body(json!("next week"))),
            [("expireTime".to_owned(), "format")]
        );
        assert_eq!(rules_broken(body(json!(12))), [("expireTime".to_owned(), "type")]);
        let message = TokenDraft::parse(&body(json!("2020-01-01T00:00:00Z")), NOW)
            .unwrap_err()
            .summary();
        assert!(
            message.contains("expireTime") && message.contains("future"),
            "{message}"
        );
    }

    #[test]
    fn a_record_shows_only_the_start_of_its_token() {
        let secret = token::generate();
        let draft = TokenDraft {
            name: "ci".into(),
            scopes: Scopes::all(),
            expire_time: None,
        };
        let record = AccessToken::of_secret(&secret, SpaceId::parse("spc-x").unwrap(), draft, NOW);
        assert_eq!(record.prefix, &secret[4..12]);
        assert!(record.id.as_str().starts_with("tok-"));
        assert!(!format!("{record:?}").contains(&secret[4..]));
    }
}
