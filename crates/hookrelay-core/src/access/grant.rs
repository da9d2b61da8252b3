//! What a token grants, and whether it grants what a request needs.

use std::time::Duration;

use super::{Scope, Scopes};
use crate::id::{SpaceId, TokenId};
use crate::quota::QuotaOverrides;
use crate::timestamp::Timestamp;

/// How often a token's last use is written at most: often enough to tell a token in use
/// from a forgotten one, rarely enough that requests do not each cost a write.
pub const LAST_USE_EVERY: Duration = Duration::from_secs(60);

/// A token as found by its digest, with the state of its space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The token's record.
    pub token_id: TokenId,
    /// The space it acts in.
    pub space_id: SpaceId,
    /// What it may do.
    pub scopes: Scopes,
    /// When it stops working, if ever.
    pub expire_time: Option<Timestamp>,
    /// When its use was last written.
    pub last_used_time: Option<Timestamp>,
    /// Whether an operator disabled its space.
    pub space_disabled: bool,
    /// Its space's own quotas.
    pub quotas: QuotaOverrides,
}

/// Why a token may not make a request, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its expiry time has passed: it is no longer a credential.
    Expired,
    /// The request names another space.
    OtherSpace,
    /// Its space is disabled.
    SpaceDisabled,
    /// It lacks the scope the operation needs.
    MissingScope(Scope),
}

impl Grant {
    /// Whether the token may act in `space` with `scope` at `now`: the first refusal
    /// that applies if not. A token's own space is judged only once it is known to be
    /// valid, and its scopes only in its own space, so nothing of another space shows.
    pub fn allows(&self, space: &SpaceId, scope: Scope, now: Timestamp) -> Result<(), Refusal> {
        if self.expire_time.is_some_and(|at| at <= now) {
            return Err(Refusal::Expired);
        }
        if *space != self.space_id {
            return Err(Refusal::OtherSpace);
        }
        if self.space_disabled {
            return Err(Refusal::SpaceDisabled);
        }
        if !self.scopes.contains(scope) {
            return Err(Refusal::MissingScope(scope));
        }
        Ok(())
    }
}

/// Whether a use at `now` is to be written, the last having been written at `last`.
pub fn last_use_due(last: Option<Timestamp>, now: Timestamp) -> bool {
    last.is_none_or(|last| now.duration_since(last) >= LAST_USE_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_795_860_000_000_000);

    fn grant() -> Grant {
        Grant {
            token_id: TokenId::generate(),
            space_id: SpaceId::parse("spc-ours").unwrap(),
            scopes: [Scope::WebhooksRead].into_iter().collect(),
            expire_time: None,
            last_used_time: None,
            space_disabled: false,
            quotas: QuotaOverrides::default(),
        }
    }

    #[test]
    fn a_grant_allows_its_scopes_in_its_space_until_it_expires() {
        let ours = SpaceId::parse("spc-ours").unwrap();
        let theirs = SpaceId::parse("spc-theirs").unwrap();
        let mut grant = grant();
        assert_eq!(grant.allows(&ours, Scope::WebhooksRead, NOW), Ok(()));
        assert_eq!(
            grant.allows(&ours, Scope::WebhooksWrite, NOW),
            Err(Refusal::MissingScope(Scope::WebhooksWrite))
        );
        assert_eq!(
            grant.allows(&theirs, Scope::WebhooksRead, NOW),
            Err(Refusal::OtherSpace)
        );
        grant.space_disabled = true;
        assert_eq!(
            grant.allows(&ours, Scope::WebhooksRead, NOW),
            Err(Refusal::SpaceDisabled)
        );
        assert_eq!(
            grant.allows(&theirs, Scope::WebhooksRead, NOW),
            Err(Refusal::OtherSpace)
        );
        grant.expire_time = Some(NOW.plus_micros(1));
        assert_eq!(
            grant.allows(&ours, Scope::WebhooksRead, NOW),
            Err(Refusal::SpaceDisabled)
        );
        grant.expire_time = Some(NOW);
        assert_eq!(grant.allows(&ours, Scope::WebhooksRead, NOW), Err(Refusal::Expired));
        assert_eq!(grant.allows(&theirs, Scope::WebhooksWrite, NOW), Err(Refusal::Expired));
    }

    #[test]
    fn a_use_is_written_at_most_once_a_minute() {
        assert!(last_use_due(None, NOW));
        assert!(!last_use_due(Some(NOW), NOW));
        assert!(!last_use_due(Some(NOW.plus_micros(-59_999_999)), NOW));
        assert!(last_use_due(Some(NOW.plus_micros(-60_000_000)), NOW));
        // A clock that stepped back does not write on every request.
        assert!(!last_use_due(Some(NOW.plus_micros(5_000_000)), NOW));
    }
}
