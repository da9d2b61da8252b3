//! Access tokens and what they may do: scopes ([`Scope`], [`Scopes`]), the create
//! request ([`TokenDraft`]), the stored token ([`AccessToken`]), and the rules a request
//! is checked against ([`Grant`]).

mod draft;
mod grant;

pub use draft::{AccessToken, TokenDraft, CREATE_FIELDS, TOKEN_NAME_MAX};
pub use grant::{last_use_due, Grant, Refusal, LAST_USE_EVERY};

use std::fmt;

/// One permission of a token. Every API operation needs exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read webhooks and their alerts.
    WebhooksRead,
    /// Create, change and delete webhooks.
    WebhooksWrite,
    /// Publish events.
    EventsPublish,
    /// Read published events.
    EventsRead,
    /// Read a webhook's deliveries and their attempts.
    DeliveriesRead,
    /// Retry deliveries and send test events.
    DeliveriesWrite,
    /// Create, list and revoke access tokens.
    TokensManage,
    /// Erase events' data.
    EventsErase,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 8] = [
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::EventsPublish,
        Scope::EventsRead,
        Scope::DeliveriesRead,
        Scope::DeliveriesWrite,
        Scope::TokensManage,
        Scope::EventsErase,
    ];

    /// Its name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhooksRead => "webhooks:read",
            Self::WebhooksWrite => "webhooks:write",
            Self::EventsPublish => "events:publish",
            Self::EventsRead => "events:read",
            Self::DeliveriesRead => "deliveries:read",
            Self::DeliveriesWrite => "deliveries:write",
            Self::TokensManage => "tokens:manage",
            Self::EventsErase => "events:erase",
        }
    }

    /// What it allows, for documentation.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::WebhooksRead => "list and read webhooks and their alerts",
            Self::WebhooksWrite => "create, change and delete webhooks",
            Self::EventsPublish => "publish events",
            Self::EventsRead => "list and read published events",
            Self::DeliveriesRead => "list and read a webhook's deliveries and their attempts",
            Self::DeliveriesWrite => "retry deliveries and send test events",
            Self::TokensManage => "create, list and revoke access tokens (only with scopes the token itself has)",
            Self::EventsErase => "erase events' data and read erasures",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

impl Scopes {
    /// No scope.
    pub const NONE: Scopes = Scopes(0);

    /// Every scope.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set has no scope.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes of `wanted` this set lacks.
    pub fn lacking(self, wanted: Scopes) -> Scopes {
        Scopes(wanted.0 & !self.0)
    }

    /// The scopes, in [`Scope::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.contains(*scope))
    }

    /// Their names, in [`Scope::ALL`]'s order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// The set named by `names`; the first unknown name if one is not a scope.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        names.into_iter().map(|name| Scope::parse(name).ok_or(name)).collect()
    }

    /// The set as a JSON array of names, as stored.
    pub fn to_json(self) -> String {
        serde_json::to_string(&self.names()).expect("names serialise")
    }

    /// A set stored by [`Scopes::to_json`]; `None` if it is not an array of scope names.
    pub fn from_json(text: &str) -> Option<Self> {
        let names: Vec<String> = serde_json::from_str(text).ok()?;
        Self::from_names(names.iter().map(String::as_str)).ok()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Scopes(scopes.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl fmt::Display for Scopes {
    /// The names, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_back_from_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        for bad in ["", "webhooks", "WEBHOOKS:READ", "webhooks:read ", "tokens:*"] {
            assert_eq!(Scope::parse(bad), None, "{bad:?}");
        }
        let names: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "two scopes share a name");
    }

    #[test]
    fn sets_hold_what_they_are_given_and_name_what_they_lack() {
        let read: Scopes = [Scope::WebhooksRead, Scope::EventsRead].into_iter().collect();
        assert!(read.contains(Scope::WebhooksRead) && read.contains(Scope::EventsRead));
        assert!(!read.contains(Scope::WebhooksWrite));
        let wanted: Scopes = [Scope::WebhooksRead, Scope::TokensManage, Scope::EventsErase]
            .into_iter()
            .collect();
        assert_eq!(read.lacking(wanted).names(), ["tokens:manage", "events:erase"]);
        assert!(Scopes::all().lacking(wanted).is_empty());
        assert!(read.lacking(read).is_empty());
        assert_eq!(Scopes::all().iter().count(), Scope::ALL.len());
        assert!(Scopes::NONE.is_empty() && Scopes::NONE.iter().next().is_none());
    }

    #[test]
    fn sets_round_trip_through_json_in_a_fixed_order() {
        let set: Scopes = [Scope::TokensManage, Scope::WebhooksRead].into_iter().collect();
        assert_eq!(set.to_json(), r#"["webhooks:read","tokens:manage"]"#);
        assert_eq!(Scopes::from_json(&set.to_json()), Some(set));
        assert_eq!(Scopes::from_json(&Scopes::all().to_json()), Some(Scopes::all()));
        assert_eq!(Scopes::from_json("[]"), Some(Scopes::NONE));
        for bad in ["", "{}", r#"["webhooks:admin"]"#, "[1]", r#""webhooks:read""#] {
            assert_eq!(Scopes::from_json(bad), None, "{bad:?}");
        }
        assert_eq!(Scopes::from_names(["events:read", "nope"]), Err("nope"));
        assert_eq!(format!("{set}"), "webhooks:read, tokens:manage");
    }
}
