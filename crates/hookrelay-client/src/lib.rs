//! # hookrelay-client
//!
//! The Rust SDK for [hookrelay](https://github.com/) — a self-hosted webhook service that
//! speaks Monime's webhook API — and the verifier receivers use to trust a delivery.
//!
//! Every call answers what the API answers: [`ApiResponse`] (`success`, `messages`,
//! `result`) or, for lists, [`ApiListResponse`] (plus `pagination`).
//!
//! ## The seed examples, in Rust
//!
//! ```no_run
//! use hookrelay_client::{ApiRelease, Client, CreateWebhook, NewVerificationMethod, UpdateWebhook};
//! use std::collections::BTreeMap;
//!
//! # async fn run() -> Result<(), hookrelay_client::Error> {
//! let client = Client::builder("spc-…", "hrt_…").base_url("http://127.0.0.1:8080").build()?;
//!
//! // create with HMAC verification
//! let created = client
//!     .webhook()
//!     .create(&CreateWebhook {
//!         name: "Production Webhook".into(),
//!         url: "https://yoursite.com/webhooks/monime".into(),
//!         api_release: ApiRelease::Caph,
//!         events: vec!["payment.completed".into(), "payment.failed".into(), "payout.completed".into()],
//!         verification_method: Some(NewVerificationMethod::Hs256 {
//!             secret: "your-32-character-minimum-secret-key-here".into(),
//!         }),
//!         alert_emails: Some(vec!["alerts@yoursite.com".into()]),
//!         metadata: Some(serde_json::json!({"environment": "production"}).as_object().unwrap().clone()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let webhook_id = created.result.id;
//!
//! // create with ECDSA verification: the server generates the key pair
//! let secure = client
//!     .webhook()
//!     .create(&CreateWebhook {
//!         name: "Secure ECDSA Webhook".into(),
//!         url: "https://yoursite.com/webhooks/monime-secure".into(),
//!         events: vec!["payment.completed".into(), "payout.failed".into()],
//!         verification_method: Some(NewVerificationMethod::Es256),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{:?}", secure.result.verification_method);
//!
//! // create with custom headers
//! let headers = BTreeMap::from([("X-Custom-Auth".to_string(), "your-auth-token-here".to_string())]);
//! client
//!     .webhook()
//!     .create(&CreateWebhook {
//!         name: "Authenticated Webhook".into(),
//!         url: "https://yoursite.com/webhooks/monime".into(),
//!         events: vec!["payment.completed".into(), "checkout_session.completed".into()],
//!         headers: Some(headers),
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! // get, list
//! let webhook = client.webhook().get(&webhook_id).await?;
//! let page = client.webhook().list(Default::default()).await?;
//! println!("{} of them, next: {:?}", page.pagination.count, page.pagination.next);
//!
//! // update: disable, enable, reconfigure
//! client.webhook().update(&webhook_id, &UpdateWebhook { enabled: Some(false), ..Default::default() }).await?;
//! client.webhook().update(&webhook_id, &UpdateWebhook { enabled: Some(true), ..Default::default() }).await?;
//! client
//!     .webhook()
//!     .update(
//!         &webhook_id,
//!         &UpdateWebhook {
//!             url: Some("https://yoursite.com/webhooks/monime-v2".into()),
//!             events: Some(vec!["payment.completed".into(), "checkout_session.completed".into()]),
//!             ..Default::default()
//!         },
//!     )
//!     .await?;
//!
//! // delete
//! client.webhook().delete(&webhook.result.id).await?;
//! # Ok(()) }
//! ```
//!
//! ## Verifying deliveries (receivers)
//!
//! With `default-features = false`, the crate is only the verifier: no HTTP client.
//!
//! ```
//! use hookrelay_client::verify::Verifier;
//!
//! let verifier = Verifier::hs256("your-32-character-minimum-secret-key-here");
//! # let (body, header) = (b"{}".as_slice(), "t=0,v1=AAAA");
//! match verifier.verify(body, header) {
//!     Ok(event) => println!("{} {}", event.event.name, event.event.id),
//!     Err(error) => println!("rejected: {}", error.kind()), // e.g. signature_mismatch
//! }
//! ```
//!
//! During a key rotation (`client.webhook().rotate(…)`) deliveries carry one signature
//! per live key: hold both keys until the overlap ends, with
//! `Verifier::hs256(new).or_hs256(old)` (or `or_es256`). For ES256, `JwksVerifier`
//! (feature `client`) takes the keys from the webhook's JWKS URL instead, picks them by
//! the `Monime-Signature-Key-Id` header, and fetches the set again when a delivery names
//! a key it has not seen.
#![deny(missing_docs)]

pub mod verify;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod erasures;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
mod jwks;
#[cfg(feature = "client")]
mod recoveries;
mod redact;
#[cfg(feature = "client")]
mod resources;
#[cfg(feature = "client")]
mod rotation;
mod settings;
mod types;

#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder};
#[cfg(feature = "client")]
pub use erasures::ErasureApi;
#[cfg(feature = "client")]
pub use error::{ApiErrorDetail, Error};
#[cfg(feature = "client")]
pub use jwks::{JwksError, JwksOptions, JwksVerifier};
#[cfg(feature = "client")]
pub use recoveries::RecoveryApi;
#[cfg(feature = "client")]
pub use resources::{DeliveryApi, EventApi, TokenApi, WebhookApi};
#[cfg(feature = "client")]
pub use rotation::{KeyRotation, RotateWebhook, RotatedWebhook};
pub use settings::{DeliveryFormat, DeliveryOrdering, UpdateWebhookSettings, WebhookSettings};
pub use types::*;
