//! The limits the document states.

use hookrelay_core::webhook::limits;
use hookrelay_core::{ApiRelease, EventCatalog};
use serde_json::json;

use crate::api::PageQuery;
use crate::openapi::document;
use crate::request::IDEMPOTENCY_KEY_MAX;

#[test]
fn limits_are_the_validators_limits() {
    let doc = document(&EventCatalog::default());
    for body in ["/paths/~1v1~1webhooks/post", "/paths/~1v1~1webhooks~1{id}/patch"] {
        let properties = format!("{body}/requestBody/content/application~1json/schema/properties");
        for (field, expected) in [
            ("name/maxLength", limits::NAME_MAX),
            ("url/maxLength", limits::URL_MAX),
            ("events/maxItems", limits::EVENTS_MAX),
            ("headers/maxProperties", limits::HEADERS_MAX),
            ("alertEmails/maxItems", limits::ALERT_EMAILS_MAX),
            ("metadata/maxProperties", limits::METADATA_MAX),
        ] {
            let pointer = format!("{properties}/{field}");
            assert_eq!(doc.pointer(&pointer), Some(&json!(expected)), "{pointer}");
        }
        let releases: Vec<_> = ApiRelease::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            doc.pointer(&format!("{properties}/apiRelease/enum")),
            Some(&json!(releases)),
            "{body}"
        );
    }
    let secret = doc
        .pointer("/components/schemas/Webhook/properties/verificationMethod/oneOf/0/properties/secret")
        .expect("the HS256 secret schema");
    assert_eq!(secret["minLength"], json!(limits::SECRET_MIN));
    assert_eq!(secret["maxLength"], json!(limits::SECRET_MAX));
    let list = &doc["paths"]["/v1/webhooks"]["get"]["parameters"];
    assert_eq!(list[0]["schema"]["maximum"], json!(PageQuery::MAX_LIMIT));
    let create = &doc["paths"]["/v1/webhooks"]["post"]["parameters"];
    assert_eq!(create[0]["schema"]["maxLength"], json!(IDEMPOTENCY_KEY_MAX));
}
