//! What every request handler can reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_core::access::Grant;
use hookrelay_core::quota::{Quotas, TokenBucket};
use hookrelay_core::webhook::InputRules;
use hookrelay_core::{token, EventCatalog, SpaceId, Timestamp, TokenId};
use hookrelay_store::{Store, StoreError};

use crate::delivery::{EngineStatus, Wakeup};

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// Known event names.
    pub catalog: Arc<EventCatalog>,
    /// Whether webhook URLs may point at private and loopback addresses.
    pub allow_private_targets: bool,
    /// Tells the delivery engine about new work.
    pub wakeup: Wakeup,
    /// What the delivery engine is doing (woken by `wakeup`).
    pub engine: EngineStatus,
    /// Recently read grants, so most requests skip the token lookup.
    pub tokens: TokenCache,
    /// The quotas of a space that has none of its own.
    pub quotas: Quotas,
    /// Each space's publishes on this node, against its rate.
    pub publish_limits: PublishLimits,
    /// Whether the API's listener answers `GET /metrics` (no `metrics_listen`).
    pub metrics_on_api: bool,
    /// How long an `Idempotency-Key`'s first answer is replayed.
    pub idempotency_window: Duration,
}

/// How long a grant read from the store is trusted: a token revoked or expired, or its
/// space disabled, is refused on every node within this time. Reading a grant again
/// costs one lookup by primary key per active token per node twice a second, whatever
/// the request rate; a `LISTEN/NOTIFY` invalidation would save that, but would need this
/// bound anyway for changes made while a node's listener reconnects, and for SQLite,
/// where `hookrelay token revoke` runs in another process.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_millis(500);
/// Most grants remembered; the cache is emptied when full (it refills from the store).
const TOKEN_CACHE_MAX: usize = 10_000;

/// Grants recently read from the store, by token digest. Only digests are held, never
/// tokens, and only for [`TOKEN_CACHE_TTL`].
#[derive(Clone, Debug, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<[u8; 32], ReadGrant>>>);

/// A grant, and when the store gave it.
#[derive(Debug)]
struct ReadGrant {
    grant: Arc<Grant>,
    at: Instant,
}

impl TokenCache {
    /// The grant of a digest read within the TTL.
    pub fn get(&self, digest: &[u8; 32]) -> Option<Arc<Grant>> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(digest)
            .filter(|read| read.at.elapsed() < TOKEN_CACHE_TTL)
            .map(|read| read.grant.clone())
    }

    /// Remembers a grant the store gave. A use this node recorded later than the store
    /// says (its write has not landed yet) is kept, so it is not written again.
    pub fn insert(&self, digest: [u8; 32], mut grant: Grant) -> Arc<Grant> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        if let Some(earlier) = cache.get(&digest) {
            grant.last_used_time = grant.last_used_time.max(earlier.grant.last_used_time);
        }
        let grant = Arc::new(grant);
        let at = Instant::now();
        cache.insert(
            digest,
            ReadGrant {
                grant: grant.clone(),
                at,
            },
        );
        grant
    }

    /// Notes a use being recorded at `at`, so the next requests do not record it again.
    pub fn note_use(&self, digest: &[u8; 32], at: Timestamp) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(read) = cache.get_mut(digest) {
            let mut grant = Grant::clone(&read.grant);
            grant.last_used_time = Some(at);
            read.grant = Arc::new(grant);
        }
    }

    /// Forgets a token at once (it was revoked through this node).
    pub fn forget(&self, id: &TokenId) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, read| read.grant.token_id != *id);
    }
}

/// Each space's token bucket of publishes on this node.
#[derive(Clone, Debug, Default)]
pub struct PublishLimits(Arc<Mutex<HashMap<SpaceId, TokenBucket>>>);

impl PublishLimits {
    /// Takes one publish of `space` at `rate` a second, or says how long until one is
    /// allowed.
    pub fn take(&self, space: &SpaceId, rate: u32, now: Timestamp) -> Result<(), Duration> {
        let mut buckets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(space) {
            return bucket.take(rate, now);
        }
        let mut bucket = TokenBucket::new(rate, now);
        let taken = bucket.take(rate, now);
        buckets.insert(space.clone(), bucket);
        taken
    }
}

impl AppState {
    /// The rules request bodies are validated against.
    pub fn input_rules(&self) -> InputRules<'_> {
        InputRules {
            catalog: &self.catalog,
            allow_private_targets: self.allow_private_targets,
        }
    }

    /// What the token with this digest grants, from the cache or the store; `None` for
    /// a token that does not exist (or no longer does).
    pub async fn grant(&self, digest: &[u8; 32]) -> Result<Option<Arc<Grant>>, StoreError> {
        if let Some(grant) = self.tokens.get(digest) {
            return Ok(Some(grant));
        }
        match self.store.find_access_token(digest).await? {
            Some((grant, stored)) if token::digests_match(&stored, digest) => {
                Ok(Some(self.tokens.insert(*digest, grant)))
            }
            _ => Ok(None),
        }
    }

    /// Records in the background that a token was used at `at`: a lost write only
    /// leaves its last use a little older.
    pub fn record_use(&self, digest: &[u8; 32], grant: &Grant, at: Timestamp) {
        self.tokens.note_use(digest, at);
        let (store, id) = (self.store.clone(), grant.token_id.clone());
        tokio::spawn(async move {
            if let Err(error) = store.record_token_use(&id, at).await {
                tracing::warn!(token = %id, %error, "recording a token's use failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use hookrelay_core::access::Scopes;
    use hookrelay_core::quota::QuotaOverrides;

    use super::*;

    fn grant(id: &TokenId) -> Grant {
        Grant {
            token_id: id.clone(),
            space_id: SpaceId::parse("spc-x").unwrap(),
            scopes: Scopes::all(),
            expire_time: None,
            last_used_time: None,
            space_disabled: false,
            quotas: QuotaOverrides::default(),
        }
    }

    #[test]
    fn a_cached_grant_lasts_well_under_a_second_and_a_revoked_one_goes_at_once() {
        assert!(TOKEN_CACHE_TTL < Duration::from_secs(1));
        let cache = TokenCache::default();
        let (id, other) = (TokenId::generate(), TokenId::generate());
        cache.insert([1; 32], grant(&id));
        cache.insert([2; 32], grant(&other));
        assert_eq!(cache.get(&[1; 32]).unwrap().token_id, id);
        cache.forget(&id);
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_some());
        let stale = Instant::now().checked_sub(TOKEN_CACHE_TTL).unwrap();
        cache.0.lock().unwrap().get_mut(&[2; 32]).unwrap().at = stale;
        assert!(
            cache.get(&[2; 32]).is_none(),
            "a grant older than the TTL is read again"
        );
    }

    #[test]
    fn a_use_noted_here_outlives_an_older_read_of_the_store() {
        let cache = TokenCache::default();
        let id = TokenId::generate();
        cache.insert([1; 32], grant(&id));
        let used = Timestamp::from_micros(1_000);
        cache.note_use(&[1; 32], used);
        assert_eq!(cache.get(&[1; 32]).unwrap().last_used_time, Some(used));
        // Read again before the write landed: the store still says never.
        assert_eq!(cache.insert([1; 32], grant(&id)).last_used_time, Some(used));
    }

    #[test]
    fn each_space_has_a_bucket_of_its_own() {
        let limits = PublishLimits::default();
        let now = Timestamp::from_micros(1_000_000);
        let (a, b) = (SpaceId::parse("spc-a").unwrap(), SpaceId::parse("spc-b").unwrap());
        assert!((0..4).all(|_| limits.take(&a, 2, now).is_ok()));
        assert!(limits.take(&a, 2, now).is_err());
        assert!(limits.take(&b, 2, now).is_ok(), "another space is not held back");
    }
}
