//! hookrelay's domain: what a webhook, a space and an event are, the rules every value
//! must satisfy, and the cryptography that signs deliveries and seals secrets at rest.
//!
//! This crate does no I/O: no network, no database, no clock reads except through
//! [`Timestamp::now`], and no files. Everything above it (storage, server, SDK)
//! agrees on the wire contract by sharing these types.

pub mod access;
pub mod alert;
pub mod alert_limit;
pub mod catalog;
pub mod claim;
pub mod cursor;
pub mod delivery;
pub mod event;
pub mod id;
pub mod net;
pub mod node;
pub mod quota;
pub mod record;
pub mod recovery;
pub mod retention;
pub mod seal;
pub mod signing;
pub mod standard_webhooks;
pub mod timestamp;
pub mod token;
pub mod validation;
pub mod webhook;
pub mod webhook_change;
pub mod webhook_settings;

pub use catalog::EventCatalog;
pub use id::{AlertId, DeliveryId, ErasureId, EventId, RecoveryId, SpaceId, TokenId, WebhookId};
pub use timestamp::Timestamp;
pub use validation::{FieldError, ValidationErrors};
pub use webhook::{ApiRelease, VerificationMethod, Webhook, WebhookDraft, WebhookPatch};

/// An error and its causes, for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
