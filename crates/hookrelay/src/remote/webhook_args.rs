//! The flags of `hookrelay webhook create` and `update`, and the requests they make.

use std::collections::BTreeMap;

use clap::Args;
use hookrelay_client::{ApiRelease, CreateWebhook, NewVerificationMethod, UpdateWebhook};
use serde_json::{Map, Value};

#[derive(Args)]
pub(super) struct CreateArgs {
    /// Name (1–100 characters).
    #[arg(long)]
    name: String,
    /// Where deliveries go (absolute http or https URL).
    #[arg(long)]
    url: String,
    /// An event to subscribe to; repeat for more.
    #[arg(long = "event", required = true, value_name = "EVENT")]
    events: Vec<String>,
    /// Payload release.
    #[arg(long, default_value = "caph", value_parser = ["caph", "siriusb"])]
    api_release: String,
    /// Sign with HS256 and this secret (32–256 characters). Default: a generated secret.
    #[arg(long, conflicts_with = "es256", value_name = "SECRET")]
    hs256_secret: Option<String>,
    /// Sign with ES256: the server generates the key pair and prints the public key.
    #[arg(long)]
    es256: bool,
    /// A header sent with every delivery; repeat for more.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// An address told about repeated failures (at most 2).
    #[arg(long = "alert-email", value_name = "EMAIL")]
    alert_emails: Vec<String>,
    /// A metadata entry; repeat for more.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Create it enabled (the default).
    #[arg(long, conflicts_with = "disabled")]
    enabled: bool,
    /// Create it disabled.
    #[arg(long)]
    disabled: bool,
    /// Idempotency-Key for the request (default: a random one).
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Args)]
pub(super) struct UpdateArgs {
    /// The webhook, `whk-…`.
    id: String,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New URL.
    #[arg(long)]
    url: Option<String>,
    /// Subscribe to exactly these events (repeat); replaces the current list.
    #[arg(long = "event", value_name = "EVENT")]
    events: Vec<String>,
    /// New payload release.
    #[arg(long, value_parser = ["caph", "siriusb"])]
    api_release: Option<String>,
    /// Replace the headers with these (repeat).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Remove every custom header.
    #[arg(long, conflicts_with = "headers")]
    clear_headers: bool,
    /// Replace the alert e-mails with these (repeat).
    #[arg(long = "alert-email", value_name = "EMAIL")]
    alert_emails: Vec<String>,
    /// Remove every alert e-mail.
    #[arg(long, conflicts_with = "alert_emails")]
    clear_alert_emails: bool,
    /// Replace the metadata with these entries (repeat).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Remove all metadata.
    #[arg(long, conflicts_with = "metadata")]
    clear_metadata: bool,
    /// Enable the webhook.
    #[arg(long, conflicts_with = "disabled")]
    enabled: bool,
    /// Disable the webhook.
    #[arg(long)]
    disabled: bool,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

fn release(name: &str) -> ApiRelease {
    if name == "siriusb" {
        ApiRelease::Siriusb
    } else {
        ApiRelease::Caph
    }
}

fn metadata(entries: Vec<(String, String)>) -> Map<String, Value> {
    entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

impl CreateArgs {
    /// The request, and the Idempotency-Key to send it under, if one was given.
    pub(super) fn into_request(self) -> (CreateWebhook, Option<String>) {
        let request = CreateWebhook {
            name: self.name,
            url: self.url,
            api_release: release(&self.api_release),
            events: self.events,
            enabled: self.disabled.then_some(false),
            verification_method: match (self.hs256_secret, self.es256) {
                (Some(secret), _) => Some(NewVerificationMethod::Hs256 { secret }),
                (None, true) => Some(NewVerificationMethod::Es256),
                (None, false) => None,
            },
            headers: (!self.headers.is_empty()).then(|| self.headers.into_iter().collect()),
            alert_emails: (!self.alert_emails.is_empty()).then_some(self.alert_emails),
            metadata: (!self.metadata.is_empty()).then(|| metadata(self.metadata)),
        };
        (request, self.idempotency_key)
    }
}

impl UpdateArgs {
    /// The webhook to change, and the change.
    pub(super) fn into_request(self) -> (String, UpdateWebhook) {
        let request = UpdateWebhook {
            name: self.name,
            url: self.url,
            enabled: match (self.enabled, self.disabled) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            api_release: self.api_release.as_deref().map(release),
            events: (!self.events.is_empty()).then_some(self.events),
            headers: if self.clear_headers {
                Some(BTreeMap::new())
            } else {
                (!self.headers.is_empty()).then(|| self.headers.into_iter().collect())
            },
            alert_emails: if self.clear_alert_emails {
                Some(Vec::new())
            } else {
                (!self.alert_emails.is_empty()).then_some(self.alert_emails)
            },
            metadata: if self.clear_metadata {
                Some(Map::new())
            } else {
                (!self.metadata.is_empty()).then(|| metadata(self.metadata))
            },
        };
        (self.id, request)
    }
}
