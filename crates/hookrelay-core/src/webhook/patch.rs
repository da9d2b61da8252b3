//! The update request: only the fields given change.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{
    nullable, parse_alert_emails, parse_api_release, parse_bool, parse_events, parse_metadata, parse_name, parse_url,
    reject_unknown_fields,
};
use super::headers::parse_headers;
use super::{ApiRelease, InputRules, Webhook};
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;

/// Fields an update request may carry. `verificationMethod` is not among them.
pub const UPDATE_FIELDS: &[&str] = &[
    "name",
    "url",
    "enabled",
    "apiRelease",
    "events",
    "headers",
    "alertEmails",
    "metadata",
];

/// A valid update request: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookPatch {
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New release.
    pub api_release: Option<ApiRelease>,
    /// New subscriptions (replace the old ones).
    pub events: Option<Vec<String>>,
    /// New headers (replace the old ones).
    pub headers: Option<BTreeMap<String, String>>,
    /// New alert e-mails (replace the old ones).
    pub alert_emails: Option<Vec<String>>,
    /// New metadata (replaces the old one).
    pub metadata: Option<Map<String, Value>>,
}

impl WebhookPatch {
    /// Parses an update request body, reporting every broken rule.
    pub fn parse(body: &Value, rules: &InputRules<'_>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(object) = body.as_object() else {
            return Err(ValidationErrors::single(
                "body",
                "type",
                "the request body must be a JSON object",
            ));
        };
        if object.contains_key("verificationMethod") {
            errors.push(
                "verificationMethod",
                "immutable",
                "verificationMethod cannot be changed after creation; create a new webhook instead",
            );
        }
        let known: Vec<&str> = UPDATE_FIELDS.iter().copied().chain(["verificationMethod"]).collect();
        reject_unknown_fields(object, &known, "", &mut errors);

        let patch = Self {
            name: nullable(object, "name").and_then(|v| parse_name(v, &mut errors)),
            url: nullable(object, "url").and_then(|v| parse_url(v, rules, &mut errors)),
            enabled: nullable(object, "enabled").and_then(|v| parse_bool(v, "enabled", &mut errors)),
            api_release: nullable(object, "apiRelease").and_then(|v| parse_api_release(v, &mut errors)),
            events: nullable(object, "events").and_then(|v| parse_events(v, rules, &mut errors)),
            headers: nullable(object, "headers").and_then(|v| parse_headers(v, &mut errors)),
            alert_emails: nullable(object, "alertEmails").and_then(|v| parse_alert_emails(v, &mut errors)),
            metadata: nullable(object, "metadata").and_then(|v| parse_metadata(v, &mut errors)),
        };
        errors.into_result(|| patch)
    }

    /// Applies the patch, moving `update_time` strictly forward so that clients can
    /// tell that a change happened even within one millisecond.
    pub fn apply(&self, webhook: &mut Webhook, now: Timestamp) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                target.clone_from(value);
            }
        }
        set(&mut webhook.name, &self.name);
        set(&mut webhook.url, &self.url);
        set(&mut webhook.enabled, &self.enabled);
        set(&mut webhook.api_release, &self.api_release);
        set(&mut webhook.events, &self.events);
        set(&mut webhook.headers, &self.headers);
        set(&mut webhook.alert_emails, &self.alert_emails);
        set(&mut webhook.metadata, &self.metadata);
        webhook.update_time = now.max(webhook.update_time.plus_micros(1_000));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::EventCatalog;
    use crate::id::SpaceId;
    use crate::webhook::WebhookDraft;

    #[test]
    fn patch_moves_update_time_forward() {
        let catalog = EventCatalog::default();
        let rules = InputRules {
            catalog: &catalog,
            allow_private_targets: false,
        };
        let now = Timestamp::now();
        let mut webhook = WebhookDraft::parse(
            &json!({"name": "n", "url": "https://a.example/h", "events": ["payment.completed"]}),
            &rules,
        )
        .unwrap()
        .into_webhook(SpaceId::generate(), now);
        let patch = WebhookPatch::parse(&json!({"enabled": false, "name": null}), &rules).unwrap();
        patch.apply(&mut webhook, now);
        assert!(!webhook.enabled);
        assert_eq!(webhook.name, "n");
        assert!(webhook.update_time > webhook.create_time);
    }
}
