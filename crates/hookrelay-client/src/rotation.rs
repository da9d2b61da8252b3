//! `client.webhook().rotate(…)`, `.rotation(…)` and `.end_rotation(…)`: rotating a
//! webhook's signing key with an overlap, reading and ending the rotation.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::redact::Redacted;
use crate::resources::{WebhookApi, NO_BODY};
use crate::types::{ApiResponse, Webhook};

/// The body of a rotation; `Default` is a generated key and the default overlap (24 h).
#[derive(Clone, Default, Serialize, PartialEq, Eq)]
pub struct RotateWebhook {
    /// HS256 only: the new secret (32–256 characters); generated when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long the retired key keeps signing, e.g. `"1h"`; `"0s"` for no overlap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
}

impl std::fmt::Debug for RotateWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { secret, overlap } = self;
        f.debug_struct("RotateWebhook")
            .field("secret", &secret.as_ref().map(|_| Redacted))
            .field("overlap", overlap)
            .finish()
    }
}

/// A webhook's key rotation state.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotation {
    /// The webhook.
    pub webhook_id: String,
    /// The id of the key that signs (`key-…`), as `Monime-Signature-Key-Id` names it.
    pub current_key_id: String,
    /// The retired key's id while it still signs.
    pub previous_key_id: Option<String>,
    /// When the retired key stops signing (RFC 3339); `None` without an overlap.
    pub overlap_end_time: Option<String>,
}

/// The answer to a rotation: the webhook, its `verificationMethod` the new key, and the
/// rotation's state.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RotatedWebhook {
    /// The webhook with its new key.
    pub webhook: Webhook,
    /// The rotation.
    pub rotation: KeyRotation,
}

impl WebhookApi<'_> {
    /// Rotates the webhook's key (with a generated `Idempotency-Key`, the same on every
    /// retry).
    pub async fn rotate(&self, id: &str, rotate: &RotateWebhook) -> Result<ApiResponse<RotatedWebhook>, Error> {
        let path = format!("/v1/webhooks/{id}/rotate");
        self.client().call(Method::POST, &path, &[], Some(rotate), None).await
    }

    /// [`Self::rotate`] under your own `Idempotency-Key`: repeating it answers the first
    /// result and rotates once.
    pub async fn rotate_with_idempotency_key(
        &self,
        id: &str,
        rotate: &RotateWebhook,
        key: impl Into<String>,
    ) -> Result<ApiResponse<RotatedWebhook>, Error> {
        let path = format!("/v1/webhooks/{id}/rotate");
        self.client()
            .call(Method::POST, &path, &[], Some(rotate), Some(key.into()))
            .await
    }

    /// The webhook's rotation state.
    pub async fn rotation(&self, id: &str) -> Result<ApiResponse<KeyRotation>, Error> {
        let path = format!("/v1/webhooks/{id}/rotation");
        self.client().call(Method::GET, &path, &[], NO_BODY, None).await
    }

    /// Ends the rotation's overlap now: only the current key signs from then on.
    pub async fn end_rotation(&self, id: &str) -> Result<ApiResponse<KeyRotation>, Error> {
        let path = format!("/v1/webhooks/{id}/rotation");
        self.client().call(Method::DELETE, &path, &[], NO_BODY, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_request_never_prints_its_secret() {
        let rotate = RotateWebhook {
            secret: Some("rotation-secret-do-not-print-0123456789".into()),
            overlap: Some("1h".into()),
        };
        let printed = format!("{rotate:?}");
        assert!(!printed.contains("do-not-print") && printed.contains("1h"), "{printed}");
    }
}
