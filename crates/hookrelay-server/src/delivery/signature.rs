//! The signature headers of one attempt, in the webhook's delivery format: Monime's
//! `Monime-Signature`, or the Standard Webhooks `webhook-id`, `webhook-timestamp` and
//! `webhook-signature`; in either, one signature per live key (two during a rotation's
//! overlap, newest first) and `Monime-Signature-Key-Id` naming those keys in order.

use axum::http::header::{HeaderMap, HeaderName, HeaderValue};
use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::signing::KeyRing;
use hookrelay_core::standard_webhooks;
use hookrelay_core::webhook_settings::DeliveryFormat;
use hookrelay_core::Timestamp;

const MONIME_SIGNATURE: HeaderName = HeaderName::from_static("monime-signature");
const KEY_ID: HeaderName = HeaderName::from_static("monime-signature-key-id");
const STANDARD_ID: HeaderName = HeaderName::from_static(standard_webhooks::ID_HEADER);
const STANDARD_TIMESTAMP: HeaderName = HeaderName::from_static(standard_webhooks::TIMESTAMP_HEADER);
const STANDARD_SIGNATURE: HeaderName = HeaderName::from_static(standard_webhooks::SIGNATURE_HEADER);

/// Appends the signature headers of an attempt at `now` of `event_id`'s `body`, signed
/// by the keys of `keys` live then. The values are base64, decimal digits, commas,
/// spaces and ids of `[A-Za-z0-9_-]`: always valid header text, so the error is never
/// expected.
pub(super) fn append(
    headers: &mut HeaderMap,
    keys: &KeyRing,
    format: DeliveryFormat,
    event_id: &str,
    now: Timestamp,
    body: &[u8],
) -> Result<(), ErrorKind> {
    let value = |text: String| HeaderValue::try_from(text).map_err(|_| ErrorKind::Request);
    // Each format signs once per live key: an ES256 signature is not cheap.
    let key_ids = match format {
        DeliveryFormat::Monime => {
            let signed = keys.sign(now, body);
            headers.append(MONIME_SIGNATURE, value(signed.signature)?);
            signed.key_ids
        }
        DeliveryFormat::StandardWebhooks => {
            let timestamp = now.as_unix_seconds();
            // The specification's list of signatures is how it carries a rotation.
            let signatures: Vec<String> = keys
                .live(now)
                .map(|named| standard_webhooks::signature(&named.key, event_id, timestamp, body))
                .collect();
            headers.append(STANDARD_ID, value(event_id.to_owned())?);
            headers.append(STANDARD_TIMESTAMP, HeaderValue::from(timestamp));
            headers.append(STANDARD_SIGNATURE, value(signatures.join(" "))?);
            let ids: Vec<&str> = keys.live(now).map(|named| named.id.as_str()).collect();
            ids.join(",")
        }
    };
    headers.append(KEY_ID, value(key_ids)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use hookrelay_core::signing::{NamedKey, SignatureKey};

    use super::*;

    #[test]
    fn the_monime_signature_header_is_the_protocols() {
        let protocol = hookrelay_core::signing::SIGNATURE_HEADER;
        assert_eq!(MONIME_SIGNATURE.as_str(), protocol.to_ascii_lowercase());
    }

    fn ring(previous: bool) -> KeyRing {
        let named = |id: &str, byte: u8| NamedKey {
            id: id.to_owned(),
            key: SignatureKey::hs256(&[byte; 32]),
        };
        let until = Timestamp::from_micros(2_000_000_000);
        KeyRing::new(named("key-new", 7), previous.then(|| (named("key-old", 8), until)))
    }

    #[test]
    fn each_format_sends_its_own_headers_and_the_key_ids() {
        let at = Timestamp::from_micros(1_000_000_000);
        let mut monime = HeaderMap::new();
        append(&mut monime, &ring(false), DeliveryFormat::Monime, "evt-1", at, b"{}").unwrap();
        assert_eq!(
            monime.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["monime-signature", "monime-signature-key-id"]
        );
        assert_eq!(monime["monime-signature-key-id"], "key-new");
        let mut standard = HeaderMap::new();
        let format = DeliveryFormat::StandardWebhooks;
        append(&mut standard, &ring(false), format, "evt-1", at, b"{}").unwrap();
        let names: Vec<&str> = standard.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "monime-signature-key-id"
            ]
        );
        assert_eq!(standard["webhook-id"], "evt-1");
        assert_eq!(standard["webhook-timestamp"], "1000");
        assert!(standard["webhook-signature"].to_str().unwrap().starts_with("v1,"));
    }

    #[test]
    fn during_an_overlap_each_format_carries_both_signatures_newest_first() {
        let at = Timestamp::from_micros(1_000_000_000);
        let mut standard = HeaderMap::new();
        let format = DeliveryFormat::StandardWebhooks;
        append(&mut standard, &ring(true), format, "evt-1", at, b"{}").unwrap();
        let signatures: Vec<&str> = standard["webhook-signature"].to_str().unwrap().split(' ').collect();
        let new = standard_webhooks::signature(&SignatureKey::hs256(&[7; 32]), "evt-1", 1_000, b"{}");
        let old = standard_webhooks::signature(&SignatureKey::hs256(&[8; 32]), "evt-1", 1_000, b"{}");
        assert_eq!(signatures, [new, old]);
        assert_eq!(standard["monime-signature-key-id"], "key-new,key-old");
        let mut monime = HeaderMap::new();
        append(&mut monime, &ring(true), DeliveryFormat::Monime, "evt-1", at, b"{}").unwrap();
        assert_eq!(monime["monime-signature"].to_str().unwrap().matches(",v1=").count(), 2);
    }
}
