//! `Debug` for the wire types that hold secrets: HS256 secrets, custom header values
//! (which often carry credentials) and new access tokens print as `<redacted>`, so logging a request or a
//! webhook does not leak them. Each impl destructures its type, so a new field does not
//! compile until it is printed here too.

use std::collections::BTreeMap;
use std::fmt;

use crate::types::{CreateWebhook, CreatedToken, NewVerificationMethod, UpdateWebhook, VerificationMethod, Webhook};

/// Prints as `<redacted>` in place of a secret.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Header names, each with its value redacted.
struct Headers<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|name| (name, Redacted)))
            .finish()
    }
}

impl fmt::Debug for NewVerificationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256 { secret: _ } => f.debug_struct("Hs256").field("secret", &Redacted).finish(),
            Self::Es256 => f.write_str("Es256"),
        }
    }
}

impl fmt::Debug for VerificationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256 { secret: _ } => f.debug_struct("Hs256").field("secret", &Redacted).finish(),
            Self::Es256 { public_key } => f.debug_struct("Es256").field("public_key", public_key).finish(),
        }
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            id,
            name,
            url,
            enabled,
            events,
            api_release,
            verification_method,
            headers,
            alert_emails,
            create_time,
            update_time,
            metadata,
        } = self;
        f.debug_struct("Webhook")
            .field("id", id)
            .field("name", name)
            .field("url", url)
            .field("enabled", enabled)
            .field("events", events)
            .field("api_release", api_release)
            .field("verification_method", verification_method)
            .field("headers", &Headers(headers))
            .field("alert_emails", alert_emails)
            .field("create_time", create_time)
            .field("update_time", update_time)
            .field("metadata", metadata)
            .finish()
    }
}

impl fmt::Debug for CreateWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            url,
            api_release,
            events,
            enabled,
            verification_method,
            headers,
            alert_emails,
            metadata,
        } = self;
        f.debug_struct("CreateWebhook")
            .field("name", name)
            .field("url", url)
            .field("api_release", api_release)
            .field("events", events)
            .field("enabled", enabled)
            .field("verification_method", verification_method)
            .field("headers", &headers.as_ref().map(Headers))
            .field("alert_emails", alert_emails)
            .field("metadata", metadata)
            .finish()
    }
}

impl fmt::Debug for UpdateWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            url,
            enabled,
            api_release,
            events,
            headers,
            alert_emails,
            metadata,
        } = self;
        f.debug_struct("UpdateWebhook")
            .field("name", name)
            .field("url", url)
            .field("enabled", enabled)
            .field("api_release", api_release)
            .field("events", events)
            .field("headers", &headers.as_ref().map(Headers))
            .field("alert_emails", alert_emails)
            .field("metadata", metadata)
            .finish()
    }
}

impl fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { record, token: _ } = self;
        f.debug_struct("CreatedToken")
            .field("record", record)
            .field("token", &Redacted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ApiRelease;

    const SECRET: &str = "hs256-secret-that-must-not-print-0123";
    const HEADER_VALUE: &str = "header-credential-that-must-not-print";

    fn headers() -> BTreeMap<String, String> {
        BTreeMap::from([("X-Custom-Auth".to_owned(), HEADER_VALUE.to_owned())])
    }

    /// The Debug output, checked to hold neither secret but the header's name.
    fn shown(value: &impl fmt::Debug) -> String {
        let text = format!("{value:?}");
        for secret in [SECRET, HEADER_VALUE] {
            assert!(!text.contains(secret), "{secret} printed: {text}");
        }
        text
    }

    #[test]
    fn secrets_and_header_values_are_redacted() {
        let method = NewVerificationMethod::Hs256 { secret: SECRET.into() };
        assert!(shown(&method).contains("Hs256") && shown(&method).contains("<redacted>"));
        let create = CreateWebhook {
            name: "shown-name".into(),
            verification_method: Some(method),
            headers: Some(headers()),
            ..Default::default()
        };
        let text = shown(&create);
        assert!(text.contains("shown-name") && text.contains("X-Custom-Auth"), "{text}");
        let update = UpdateWebhook {
            headers: Some(headers()),
            ..Default::default()
        };
        assert!(shown(&update).contains("X-Custom-Auth"));
        let webhook = Webhook {
            id: "whk-shown".into(),
            name: "n".into(),
            url: "https://example.com/h".into(),
            enabled: true,
            events: vec!["payment.completed".into()],
            api_release: ApiRelease::Caph,
            verification_method: VerificationMethod::Hs256 { secret: SECRET.into() },
            headers: headers(),
            alert_emails: Vec::new(),
            create_time: "2026-01-01T00:00:00.000Z".into(),
            update_time: None,
            metadata: Default::default(),
        };
        let text = shown(&webhook);
        assert!(text.contains("whk-shown") && text.contains("X-Custom-Auth"), "{text}");
    }

    #[test]
    fn a_new_token_is_redacted() {
        let created = CreatedToken {
            record: crate::types::Token {
                id: "tok-shown".into(),
                name: "ci".into(),
                scopes: vec!["events:publish".into()],
                prefix: "AbCdEfGh".into(),
                create_time: "2026-01-01T00:00:00.000Z".into(),
                last_used_time: None,
                expire_time: None,
            },
            token: format!("hrt_{SECRET}"),
        };
        let text = shown(&created);
        assert!(text.contains("tok-shown") && text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn an_es256_public_key_is_shown() {
        let method = VerificationMethod::Es256 {
            public_key: "-----BEGIN PUBLIC KEY-----".into(),
        };
        assert!(format!("{method:?}").contains("BEGIN PUBLIC KEY"));
    }
}
