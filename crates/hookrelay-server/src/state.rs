//! What every request handler can reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_core::webhook::InputRules;
use hookrelay_core::{EventCatalog, SpaceId};
use hookrelay_store::Store;

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
    /// Recently verified token digests, so most requests skip the token lookup.
    pub tokens: TokenCache,
}

/// How long a verified token is trusted without looking it up again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most digests remembered; the cache is emptied when full (it refills from the store).
const TOKEN_CACHE_MAX: usize = 10_000;

/// Token digests recently found in the store, with their space. Only digests are held,
/// never tokens, and only for [`TOKEN_CACHE_TTL`].
#[derive(Clone, Debug, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<[u8; 32], VerifiedToken>>>);

/// The space a digest grants, and when the store said so.
type VerifiedToken = (SpaceId, Instant);

impl TokenCache {
    /// The space of a digest verified within the TTL.
    pub fn get(&self, digest: &[u8; 32]) -> Option<SpaceId> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(digest)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(space, _)| space.clone())
    }

    /// Remembers a digest the store vouched for.
    pub fn insert(&self, digest: [u8; 32], space: SpaceId) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(digest, (space, Instant::now()));
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
}
