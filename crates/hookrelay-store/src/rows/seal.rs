//! The associated data that binds each sealed value to its row: a value sealed for one
//! row (or one backend's idea of it) never opens as another's.

use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{SpaceId, WebhookId};

use crate::IdempotencyRecord;

/// Associated data of a webhook's sealed secret or private key.
pub(crate) fn secret_context(id: &WebhookId) -> &[u8] {
    id.as_str().as_bytes()
}

/// Associated data of a webhook's sealed headers.
pub(crate) fn headers_context(id: &WebhookId) -> Vec<u8> {
    format!("{id}/headers").into_bytes()
}

/// Associated data of a sealed idempotent response.
pub(crate) fn idempotency_context(space: &SpaceId, key: &str) -> Vec<u8> {
    format!("idempotency/{space}/{key}").into_bytes()
}

/// The record with its body sealed, as it is saved: a saved response can contain a
/// webhook's secret. Sealed before the write, so the writer does not spend its time on it.
pub(crate) fn seal_idempotency(cipher: &SecretCipher, mut record: IdempotencyRecord) -> IdempotencyRecord {
    record.body = cipher.seal(&record.body, &idempotency_context(&record.space_id, &record.key));
    record
}

/// A webhook's sealed columns, as both backends store them.
pub(crate) struct SealedWebhook {
    /// The HS256 secret or the ES256 private key.
    pub secret: Vec<u8>,
    /// The custom headers, as JSON: their values often carry credentials.
    pub headers: Vec<u8>,
    /// The ES256 public key, in clear (it is public).
    pub public_key: Option<String>,
}

/// Seals what a new webhook's row keeps secret.
pub(crate) fn seal_webhook(cipher: &SecretCipher, webhook: &hookrelay_core::Webhook) -> SealedWebhook {
    use hookrelay_core::VerificationMethod;
    SealedWebhook {
        secret: cipher.seal(webhook.verification.secret_material(), secret_context(&webhook.id)),
        headers: seal_headers(cipher, webhook),
        public_key: match &webhook.verification {
            VerificationMethod::Es256 { public_key_pem, .. } => Some(public_key_pem.clone()),
            VerificationMethod::Hs256 { .. } => None,
        },
    }
}

/// A webhook's custom headers, sealed.
pub(crate) fn seal_headers(cipher: &SecretCipher, webhook: &hookrelay_core::Webhook) -> Vec<u8> {
    cipher.seal(
        super::to_json(&webhook.headers).as_bytes(),
        &headers_context(&webhook.id),
    )
}
