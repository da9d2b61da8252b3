//! The create request: every field parsed, defaults applied, keys generated on the way
//! to a stored webhook.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::fields::{
    not_null, nullable, parse_alert_emails, parse_api_release, parse_bool, parse_events, parse_metadata, parse_name,
    parse_url, parse_verification, reject_unknown_fields, required,
};
use super::headers::parse_headers;
use super::{limits, ApiRelease, InputRules, VerificationMethod, Webhook};
use crate::id::{SpaceId, WebhookId};
use crate::signing;
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;

/// Fields a create request may carry (`additionalProperties: false`).
pub const CREATE_FIELDS: &[&str] = &[
    "name",
    "url",
    "enabled",
    "apiRelease",
    "events",
    "headers",
    "alertEmails",
    "verificationMethod",
    "metadata",
];

/// The verification method a create request asked for.
#[derive(Clone, PartialEq, Eq)]
pub enum VerificationRequest {
    /// HS256 with the client's secret.
    Hs256(String),
    /// HS256 with a server-generated secret (no method given).
    GeneratedHs256,
    /// ES256 with a server-generated key pair.
    Es256,
}

impl fmt::Debug for VerificationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            Self::GeneratedHs256 => f.write_str("GeneratedHs256"),
            Self::Es256 => f.write_str("Es256"),
        }
    }
}

/// A valid create request, before ids, keys and times are assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDraft {
    /// See [`Webhook::name`].
    pub name: String,
    /// See [`Webhook::url`].
    pub url: String,
    /// See [`Webhook::enabled`].
    pub enabled: bool,
    /// See [`Webhook::events`].
    pub events: Vec<String>,
    /// See [`Webhook::api_release`].
    pub api_release: ApiRelease,
    /// The requested signing method.
    pub verification: VerificationRequest,
    /// See [`Webhook::headers`].
    pub headers: BTreeMap<String, String>,
    /// See [`Webhook::alert_emails`].
    pub alert_emails: Vec<String>,
    /// See [`Webhook::metadata`].
    pub metadata: Map<String, Value>,
}

impl WebhookDraft {
    /// Parses a create request body, reporting every broken rule.
    pub fn parse(body: &Value, rules: &InputRules<'_>) -> Result<Self, ValidationErrors> {
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
        let url = required(object, "url", &mut errors).and_then(|v| parse_url(v, rules, &mut errors));
        let events = required(object, "events", &mut errors).and_then(|v| parse_events(v, rules, &mut errors));
        let enabled = not_null(object, "enabled", &mut errors)
            .map(|v| parse_bool(v, "enabled", &mut errors))
            .unwrap_or(Some(true));
        // The spec lists apiRelease as required but gives it a default; we apply the
        // default when it is absent, so older clients keep working.
        let api_release = not_null(object, "apiRelease", &mut errors)
            .map(|v| parse_api_release(v, &mut errors))
            .unwrap_or(Some(ApiRelease::Caph));
        let verification = nullable(object, "verificationMethod")
            .map(|v| parse_verification(v, &mut errors))
            .unwrap_or(Some(VerificationRequest::GeneratedHs256));
        let headers = nullable(object, "headers")
            .map(|v| parse_headers(v, &mut errors))
            .unwrap_or_else(|| Some(BTreeMap::new()));
        let alert_emails = nullable(object, "alertEmails")
            .map(|v| parse_alert_emails(v, &mut errors))
            .unwrap_or_else(|| Some(Vec::new()));
        let metadata = nullable(object, "metadata")
            .map(|v| parse_metadata(v, &mut errors))
            .unwrap_or_else(|| Some(Map::new()));

        match (
            name,
            url,
            events,
            enabled,
            api_release,
            verification,
            headers,
            alert_emails,
            metadata,
        ) {
            (
                Some(name),
                Some(url),
                Some(events),
                Some(enabled),
                Some(api_release),
                Some(verification),
                Some(headers),
                Some(alert_emails),
                Some(metadata),
            ) if errors.is_empty() => Ok(Self {
                name,
                url,
                enabled,
                events,
                api_release,
                verification,
                headers,
                alert_emails,
                metadata,
            }),
            _ => Err(errors),
        }
    }

    /// The webhook this draft describes: a new id, generated keys, both times `now`.
    pub fn into_webhook(self, space_id: SpaceId, now: Timestamp) -> Webhook {
        let verification = match self.verification {
            VerificationRequest::Hs256(secret) => VerificationMethod::Hs256 { secret },
            VerificationRequest::GeneratedHs256 => VerificationMethod::Hs256 {
                secret: generate_secret(),
            },
            VerificationRequest::Es256 => {
                let (private_key, public_key_pem) = signing::generate_es256();
                VerificationMethod::Es256 {
                    private_key,
                    public_key_pem,
                }
            }
        };
        Webhook {
            id: WebhookId::generate(),
            space_id,
            name: self.name,
            url: self.url,
            enabled: self.enabled,
            events: self.events,
            api_release: self.api_release,
            verification,
            headers: self.headers,
            alert_emails: self.alert_emails,
            metadata: self.metadata,
            create_time: now,
            update_time: now,
            settings: crate::webhook_settings::WebhookSettings::default(),
        }
    }
}

fn generate_secret() -> String {
    use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
    OsRng
        .sample_iter(&Alphanumeric)
        .take(limits::GENERATED_SECRET_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::EventCatalog;

    fn rules(catalog: &EventCatalog) -> InputRules<'_> {
        InputRules {
            catalog,
            allow_private_targets: false,
        }
    }

    #[test]
    fn seed_example_parses_with_defaults() {
        let catalog = EventCatalog::default();
        let draft = WebhookDraft::parse(
            &json!({"name": "n", "url": "https://yoursite.com/h", "events": ["payment.completed"]}),
            &rules(&catalog),
        )
        .unwrap();
        assert!(draft.enabled);
        assert_eq!(draft.api_release, ApiRelease::Caph);
        assert_eq!(draft.verification, VerificationRequest::GeneratedHs256);
        let webhook = draft.into_webhook(SpaceId::generate(), Timestamp::now());
        match webhook.verification {
            VerificationMethod::Hs256 { secret } => assert_eq!(secret.len(), limits::GENERATED_SECRET_LEN),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reports_every_broken_rule_at_once() {
        let catalog = EventCatalog::default();
        let errors = WebhookDraft::parse(
            &json!({"name": "", "url": "ftp://x", "events": [], "extra": 1}),
            &rules(&catalog),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| (e.field.as_str(), e.rule)).collect();
        assert_eq!(
            fields,
            [
                ("extra", "unknown_field"),
                ("name", "min_length"),
                ("url", "format"),
                ("events", "min_items")
            ]
        );
    }
}
