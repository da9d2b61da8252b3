//! Webhooks: the validated domain type, and the parsers that turn a create or update
//! request body into one. Parsing works on a `serde_json::Value` rather than through
//! derived deserializers so that every broken rule is reported with its field and rule
//! name, all at once, instead of serde's first-error-only messages.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::catalog::EventCatalog;
use crate::id::{SpaceId, WebhookId};
use crate::signing;
use crate::timestamp::Timestamp;
use crate::validation::ValidationErrors;

/// Limits of the reference contract, shared by validation and the OpenAPI document.
pub mod limits {
    /// `name`: 1..=100 characters.
    pub const NAME_MAX: usize = 100;
    /// `url`: at most 255 characters.
    pub const URL_MAX: usize = 255;
    /// `events`: 1..=100 items.
    pub const EVENTS_MAX: usize = 100;
    /// `headers`: at most 10.
    pub const HEADERS_MAX: usize = 10;
    /// A custom header value: at most 1,024 characters (our bound; the spec has none).
    pub const HEADER_VALUE_MAX: usize = 1024;
    /// `alertEmails`: at most 2.
    pub const ALERT_EMAILS_MAX: usize = 2;
    /// `metadata`: at most 64 keys.
    pub const METADATA_MAX: usize = 64;
    /// HS256 secret: 32..=256 characters.
    pub const SECRET_MIN: usize = 32;
    /// HS256 secret: 32..=256 characters.
    pub const SECRET_MAX: usize = 256;
    /// Length of a secret the server generates when none is given.
    pub const GENERATED_SECRET_LEN: usize = 48;
}

/// Header names a webhook may not set: the delivery protocol owns them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "user-agent",
];

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

/// The API release whose object schemas a webhook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiRelease {
    /// `caph`, the current release.
    Caph,
    /// `siriusb`, the previous release.
    Siriusb,
}

impl ApiRelease {
    /// Every release, in the order the spec lists them.
    pub const ALL: [ApiRelease; 2] = [ApiRelease::Caph, ApiRelease::Siriusb];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Caph => "caph",
            Self::Siriusb => "siriusb",
        }
    }

    /// From the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// How deliveries to a webhook are signed.
#[derive(Clone, PartialEq, Eq)]
pub enum VerificationMethod {
    /// HMAC-SHA-256 with a shared secret, returned to the API client.
    Hs256 {
        /// The shared secret (32–256 characters).
        secret: String,
    },
    /// ECDSA P-256; the private key never leaves the server.
    Es256 {
        /// The 32-byte private scalar.
        private_key: Vec<u8>,
        /// The public key, PEM SubjectPublicKeyInfo.
        public_key_pem: String,
    },
}

impl VerificationMethod {
    /// `HS256` or `ES256`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Hs256 { .. } => "HS256",
            Self::Es256 { .. } => "ES256",
        }
    }

    /// The secret material that must be sealed at rest.
    pub fn secret_material(&self) -> &[u8] {
        match self {
            Self::Hs256 { secret } => secret.as_bytes(),
            Self::Es256 { private_key, .. } => private_key,
        }
    }

    /// The key that signs deliveries, or `None` if stored key material is corrupt.
    pub fn signature_key(&self) -> Option<signing::SignatureKey> {
        match self {
            Self::Hs256 { secret } => Some(signing::SignatureKey::hs256(secret.as_bytes())),
            Self::Es256 { private_key, .. } => {
                signing::es256_signing_key(private_key).map(|k| signing::SignatureKey::Es256(Box::new(k)))
            }
        }
    }
}

impl fmt::Debug for VerificationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, even in debug logs.
        write!(f, "VerificationMethod::{}(<redacted>)", self.type_name())
    }
}

/// A stored webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// `whk-…`.
    pub id: WebhookId,
    /// The owning space.
    pub space_id: SpaceId,
    /// Human-readable name.
    pub name: String,
    /// Where deliveries go, exactly as the client gave it.
    pub url: String,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Subscribed event names, in the order given.
    pub events: Vec<String>,
    /// Release of the payload schema.
    pub api_release: ApiRelease,
    /// How deliveries are signed.
    pub verification: VerificationMethod,
    /// Extra request headers, sent verbatim.
    pub headers: BTreeMap<String, String>,
    /// Who hears about repeated failures.
    pub alert_emails: Vec<String>,
    /// The client's own key-value annotations.
    pub metadata: Map<String, Value>,
    /// When it was created.
    pub create_time: Timestamp,
    /// When it was last changed (equal to `create_time` until the first update).
    pub update_time: Timestamp,
}

/// What the validation of a URL may allow.
#[derive(Clone, Copy, Debug)]
pub struct InputRules<'a> {
    /// Known event names.
    pub catalog: &'a EventCatalog,
    /// Whether URLs may name private, loopback and other non-public IP literals.
    pub allow_private_targets: bool,
}

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

// ---- field access -------------------------------------------------------------------

/// The field's value, or `None` (with a `required` error) when absent or null.
fn required<'a>(object: &'a Map<String, Value>, field: &str, errors: &mut ValidationErrors) -> Option<&'a Value> {
    let value = nullable(object, field);
    if value.is_none() {
        errors.push(field, "required", format!("{field} is required"));
    }
    value
}

/// The field's value; absent and null are both `None`.
fn nullable<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|v| !v.is_null())
}

/// The field's value when present; an explicit null is a type error (non-nullable field).
fn not_null<'a>(object: &'a Map<String, Value>, field: &str, errors: &mut ValidationErrors) -> Option<&'a Value> {
    match object.get(field) {
        Some(Value::Null) => {
            errors.push(field, "type", format!("{field} may not be null"));
            None
        }
        other => other,
    }
}

fn reject_unknown_fields(object: &Map<String, Value>, known: &[&str], prefix: &str, errors: &mut ValidationErrors) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(
            format!("{prefix}{key}"),
            "unknown_field",
            format!("{prefix}{key} is not a known field"),
        );
    }
}

fn type_error(field: &str, expected: &str, errors: &mut ValidationErrors) {
    errors.push(field, "type", format!("{field} must be {expected}"));
}

// ---- field parsers ------------------------------------------------------------------

fn parse_string_between(
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

fn parse_name(value: &Value, errors: &mut ValidationErrors) -> Option<String> {
    let name = parse_string_between(value, "name", 1, limits::NAME_MAX, errors)?;
    if name.trim().is_empty() {
        errors.push("name", "min_length", "name must not be blank");
        return None;
    }
    Some(name)
}

fn parse_bool(value: &Value, field: &str, errors: &mut ValidationErrors) -> Option<bool> {
    let parsed = value.as_bool();
    if parsed.is_none() {
        type_error(field, "a boolean", errors);
    }
    parsed
}

fn parse_api_release(value: &Value, errors: &mut ValidationErrors) -> Option<ApiRelease> {
    let parsed = value.as_str().and_then(ApiRelease::parse);
    if parsed.is_none() {
        errors.push("apiRelease", "enum", "apiRelease must be one of: caph, siriusb");
    }
    parsed
}

fn parse_url(value: &Value, rules: &InputRules<'_>, errors: &mut ValidationErrors) -> Option<String> {
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

fn parse_events(value: &Value, rules: &InputRules<'_>, errors: &mut ValidationErrors) -> Option<Vec<String>> {
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

fn parse_headers(value: &Value, errors: &mut ValidationErrors) -> Option<BTreeMap<String, String>> {
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

fn parse_alert_emails(value: &Value, errors: &mut ValidationErrors) -> Option<Vec<String>> {
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

fn parse_metadata(value: &Value, errors: &mut ValidationErrors) -> Option<Map<String, Value>> {
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

fn parse_verification(value: &Value, errors: &mut ValidationErrors) -> Option<VerificationRequest> {
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
fn is_email_address(email: &str) -> bool {
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
    use serde_json::json;

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

    #[test]
    fn patch_moves_update_time_forward() {
        let catalog = EventCatalog::default();
        let now = Timestamp::now();
        let mut webhook = WebhookDraft::parse(
            &json!({"name": "n", "url": "https://a.example/h", "events": ["payment.completed"]}),
            &rules(&catalog),
        )
        .unwrap()
        .into_webhook(SpaceId::generate(), now);
        let patch = WebhookPatch::parse(&json!({"enabled": false, "name": null}), &rules(&catalog)).unwrap();
        patch.apply(&mut webhook, now);
        assert!(!webhook.enabled);
        assert_eq!(webhook.name, "n");
        assert!(webhook.update_time > webhook.create_time);
    }
}
