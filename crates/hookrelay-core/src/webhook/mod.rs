//! Webhooks: the validated domain type, and the parsers that turn a create or update
//! request body into one. Parsing works on a `serde_json::Value` rather than through
//! derived deserializers so that every broken rule is reported with its field and rule
//! name, all at once, instead of serde's first-error-only messages.

mod draft;
pub(crate) mod fields;
mod headers;
pub mod limits;
mod patch;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::catalog::EventCatalog;
use crate::id::{SpaceId, WebhookId};
use crate::signing;
use crate::timestamp::Timestamp;
use crate::webhook_settings::WebhookSettings;

pub use draft::{VerificationRequest, WebhookDraft, CREATE_FIELDS};
pub use headers::{RESERVED_HEADERS, RESERVED_PREFIX};
pub use patch::{WebhookPatch, UPDATE_FIELDS};

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

/// A stored webhook. Its `Debug` shows custom header names but not their values, which
/// often carry credentials.
#[derive(Clone, PartialEq)]
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
    /// How its deliveries are formatted, ordered, paced and retried (its own resource,
    /// outside Monime's webhook body; changing it leaves `update_time` alone).
    pub settings: WebhookSettings,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&String> = self.headers.keys().collect();
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("space_id", &self.space_id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("events", &self.events)
            .field("api_release", &self.api_release)
            .field("verification", &self.verification)
            .field("header_names", &header_names)
            .field("alert_emails", &self.alert_emails)
            .field("metadata", &self.metadata)
            .field("create_time", &self.create_time)
            .field("update_time", &self.update_time)
            .field("settings", &self.settings)
            .finish()
    }
}

/// What the validation of a URL may allow.
#[derive(Clone, Copy, Debug)]
pub struct InputRules<'a> {
    /// Known event names.
    pub catalog: &'a EventCatalog,
    /// Whether URLs may name private, loopback and other non-public IP literals.
    pub allow_private_targets: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhooks_debug_names_headers_without_their_values() {
        let webhook = Webhook {
            id: WebhookId::parse("whk-1").unwrap(),
            space_id: SpaceId::parse("spc-1").unwrap(),
            name: "n".into(),
            url: "https://example.com/h".into(),
            enabled: true,
            events: vec![],
            api_release: ApiRelease::Caph,
            verification: VerificationMethod::Hs256 { secret: "s".repeat(32) },
            headers: [("Authorization".to_owned(), "Bearer do-not-print".to_owned())].into(),
            alert_emails: vec![],
            metadata: Map::new(),
            create_time: Timestamp::from_micros(0),
            update_time: Timestamp::from_micros(0),
            settings: WebhookSettings::default(),
        };
        let printed = format!("{webhook:?}");
        assert!(printed.contains("Authorization"), "{printed}");
        assert!(!printed.contains("do-not-print"), "{printed}");
        assert!(!printed.contains(&"s".repeat(32)), "{printed}");
    }
}
