//! The associated data that binds each sealed value to its row: a value sealed for one
//! row (or one backend's idea of it) never opens as another's.

use hookrelay_core::seal::SecretCipher;
use hookrelay_core::{SpaceId, VerificationMethod, Webhook, WebhookId};

use crate::IdempotencyRecord;

/// Associated data of a webhook's sealed secret or private key.
pub(crate) fn secret_context(id: &WebhookId) -> &[u8] {
    id.as_str().as_bytes()
}

/// Associated data of a webhook's sealed previous secret or private key: it never opens
/// as the current one, nor the current one as it.
pub(crate) fn previous_secret_context(id: &WebhookId) -> Vec<u8> {
    format!("{id}/previous-key").into_bytes()
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
    /// The key a rotation retired, if kept.
    pub previous: SealedPrevious,
}

/// The previous key's columns, all `None` when there is none.
#[derive(Default)]
pub(crate) struct SealedPrevious {
    pub key_id: Option<String>,
    pub secret: Option<Vec<u8>>,
    pub public_key: Option<String>,
    pub until: Option<i64>,
}

fn public_key(method: &VerificationMethod) -> Option<String> {
    match method {
        VerificationMethod::Es256 { public_key_pem, .. } => Some(public_key_pem.clone()),
        VerificationMethod::Hs256 { .. } => None,
    }
}

/// Seals what a webhook's row keeps secret.
pub(crate) fn seal_webhook(cipher: &SecretCipher, webhook: &Webhook) -> SealedWebhook {
    SealedWebhook {
        secret: cipher.seal(webhook.verification.secret_material(), secret_context(&webhook.id)),
        headers: seal_headers(cipher, webhook),
        public_key: public_key(&webhook.verification),
        previous: seal_previous(cipher, webhook),
    }
}

/// The previous key's columns, its secret sealed.
pub(crate) fn seal_previous(cipher: &SecretCipher, webhook: &Webhook) -> SealedPrevious {
    let Some(previous) = &webhook.previous_key else {
        return SealedPrevious::default();
    };
    SealedPrevious {
        key_id: Some(previous.key_id.as_str().to_owned()),
        secret: Some(cipher.seal(
            previous.verification.secret_material(),
            &previous_secret_context(&webhook.id),
        )),
        public_key: public_key(&previous.verification),
        until: Some(previous.until.as_micros()),
    }
}

/// A webhook's custom headers, sealed.
pub(crate) fn seal_headers(cipher: &SecretCipher, webhook: &Webhook) -> Vec<u8> {
    cipher.seal(
        super::to_json(&webhook.headers).as_bytes(),
        &headers_context(&webhook.id),
    )
}
