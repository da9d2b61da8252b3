//! The signature headers of one attempt, in the webhook's delivery format: Monime's
//! `Monime-Signature`, or the Standard Webhooks `webhook-id`, `webhook-timestamp` and
//! `webhook-signature`.

use axum::http::header::{HeaderMap, HeaderName, HeaderValue};
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::signing::SignatureKey;
use hookrelay_core::standard_webhooks;
use hookrelay_core::webhook_settings::DeliveryFormat;

const MONIME_SIGNATURE: HeaderName = HeaderName::from_static("monime-signature");
const STANDARD_ID: HeaderName = HeaderName::from_static(standard_webhooks::ID_HEADER);
const STANDARD_TIMESTAMP: HeaderName = HeaderName::from_static(standard_webhooks::TIMESTAMP_HEADER);
const STANDARD_SIGNATURE: HeaderName = HeaderName::from_static(standard_webhooks::SIGNATURE_HEADER);

/// Appends the signature headers of an attempt at `now` (unix seconds) of `event_id`'s
/// `body`. The values are base64, decimal digits and an id of `[A-Za-z0-9_-]`: always
/// valid header text, so the error is never expected.
pub(super) fn append(
    headers: &mut HeaderMap,
    key: &SignatureKey,
    format: DeliveryFormat,
    event_id: &str,
    now: i64,
    body: &[u8],
) -> Result<(), ErrorKind> {
    let value = |text: String| HeaderValue::try_from(text).map_err(|_| ErrorKind::Request);
    match format {
        DeliveryFormat::Monime => {
            headers.append(MONIME_SIGNATURE, value(key.header_value(now, body))?);
        }
        DeliveryFormat::StandardWebhooks => {
            let signature = standard_webhooks::signature(key, event_id, now, body);
            headers.append(STANDARD_ID, value(event_id.to_owned())?);
            headers.append(STANDARD_TIMESTAMP, HeaderValue::from(now));
            headers.append(STANDARD_SIGNATURE, value(signature)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monime_signature_header_is_the_protocols() {
        let protocol = hookrelay_core::signing::SIGNATURE_HEADER;
        assert_eq!(MONIME_SIGNATURE.as_str(), protocol.to_ascii_lowercase());
    }

    #[test]
    fn each_format_sends_its_own_headers_only() {
        let key = SignatureKey::hs256(&[7; 32]);
        let mut monime = HeaderMap::new();
        append(&mut monime, &key, DeliveryFormat::Monime, "evt-1", 1_000, b"{}").unwrap();
        assert_eq!(
            monime.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["monime-signature"]
        );
        let mut standard = HeaderMap::new();
        append(
            &mut standard,
            &key,
            DeliveryFormat::StandardWebhooks,
            "evt-1",
            1_000,
            b"{}",
        )
        .unwrap();
        let names: Vec<&str> = standard.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
        assert_eq!(standard["webhook-id"], "evt-1");
        assert_eq!(standard["webhook-timestamp"], "1000");
        assert!(standard["webhook-signature"].to_str().unwrap().starts_with("v1,"));
    }
}
