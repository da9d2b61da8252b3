//! A verifier of ES256 deliveries built from a JWKS URL (`/v1/webhooks/{id}/jwks.json`
//! or `/v1/spaces/{id}/jwks.json`): it fetches the key set, caches it, picks the keys a
//! delivery names in `Monime-Signature-Key-Id`, and fetches the set again once when a
//! delivery names none it knows (a rotation's new key), at most once per
//! [`JwksOptions::min_refetch_interval`], so a flood of forged key ids cannot make it
//! hammer the server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrelay_core::signing::{es256_from_jwk, VerificationKey, DEFAULT_TOLERANCE_SECS};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::verify::{Verifier, VerifyError, VerifyErrorKind, WebhookEvent};

/// How a [`JwksVerifier`] caches and refetches.
#[derive(Clone, Debug)]
pub struct JwksOptions {
    /// Largest accepted distance between a signature's time and now (default 300 s).
    pub tolerance: Duration,
    /// The least time between two fetches caused by unknown key ids (default 10 s).
    pub min_refetch_interval: Duration,
    /// How long a fetched set is used before it is fetched again on the next delivery
    /// (default 300 s, the server's `Cache-Control` max-age).
    pub max_age: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            tolerance: Duration::from_secs(DEFAULT_TOLERANCE_SECS),
            min_refetch_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
        }
    }
}

/// Why a key set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The request failed.
    #[error("cannot fetch the key set: {0}")]
    Fetch(String),
    /// The server answered with another status than 200.
    #[error("the key set URL answered {0}")]
    Status(u16),
    /// The answer is not a JWK Set.
    #[error("the answer is not a JWK Set: {0}")]
    Invalid(String),
}

/// Verifies ES256 deliveries with the keys of a JWKS URL. Cheap to clone: clones share
/// the cache.
#[derive(Clone, Debug)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    http: reqwest::Client,
    options: JwksOptions,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    keys: HashMap<String, VerificationKey>,
    fetched: Option<Instant>,
}

impl Cache {
    /// The keys named by `key_ids`; every key when the delivery names none.
    fn candidates(&self, key_ids: &[&str]) -> Vec<VerificationKey> {
        if key_ids.is_empty() {
            return self.keys.values().cloned().collect();
        }
        key_ids.iter().filter_map(|id| self.keys.get(*id).cloned()).collect()
    }

    fn older_than(&self, age: Duration) -> bool {
        self.fetched.is_none_or(|at| at.elapsed() >= age)
    }
}

impl JwksVerifier {
    /// Fetches the key set at `url` with the default options: a wrong URL fails here,
    /// not at the first delivery.
    pub async fn new(url: impl Into<String>) -> Result<Self, JwksError> {
        Self::with_options(url, JwksOptions::default()).await
    }

    /// [`Self::new`] with `options`.
    pub async fn with_options(url: impl Into<String>, options: JwksOptions) -> Result<Self, JwksError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        let inner = Inner {
            url: url.into(),
            http,
            options,
            cache: Mutex::new(Cache::default()),
        };
        let keys = inner.fetch().await?;
        *inner.cache.lock().await = Cache {
            keys,
            fetched: Some(Instant::now()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Verifies `body` against the `Monime-Signature` header with the keys the
    /// `Monime-Signature-Key-Id` header names (every key of the set when it is absent),
    /// fetching the set again first if it names none the cache holds.
    pub async fn verify(
        &self,
        body: &[u8],
        signature_header: &str,
        key_id_header: Option<&str>,
    ) -> Result<WebhookEvent, VerifyError> {
        let key_ids: Vec<&str> = key_id_header
            .map(|ids| ids.split(',').map(str::trim).filter(|id| !id.is_empty()).collect())
            .unwrap_or_default();
        let keys = self.keys_for(&key_ids).await?;
        if keys.is_empty() {
            return Err(VerifyError::new(
                VerifyErrorKind::UnknownKey,
                "the key set has no key the delivery names",
            ));
        }
        Verifier::with_keys(keys)
            .with_tolerance(self.inner.options.tolerance)
            .verify(body, signature_header)
    }

    async fn keys_for(&self, key_ids: &[&str]) -> Result<Vec<VerificationKey>, VerifyError> {
        let options = &self.inner.options;
        let mut cache = self.inner.cache.lock().await;
        let stale = cache.older_than(options.max_age);
        let unknown = cache.candidates(key_ids).is_empty();
        if stale || (unknown && cache.older_than(options.min_refetch_interval)) {
            // Counted as a fetch even when it fails: a server that is down is not asked
            // again for every delivery.
            cache.fetched = Some(Instant::now());
            match self.inner.fetch().await {
                Ok(keys) => cache.keys = keys,
                // A stale set still verifies what it can; an unknown key cannot be had.
                Err(error) if unknown => {
                    return Err(VerifyError::new(VerifyErrorKind::KeySetUnavailable, error.to_string()))
                }
                Err(_) => {}
            }
        }
        Ok(cache.candidates(key_ids))
    }
}

impl Inner {
    /// The set's usable keys by id: P-256 signing keys with a `kid`; others are skipped.
    async fn fetch(&self) -> Result<HashMap<String, VerificationKey>, JwksError> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let set: Value = response.json().await.map_err(|e| JwksError::Invalid(e.to_string()))?;
        let keys = set["keys"]
            .as_array()
            .ok_or_else(|| JwksError::Invalid("no keys array".to_owned()))?;
        Ok(keys
            .iter()
            .filter_map(|jwk| Some((jwk["kid"].as_str()?.to_owned(), es256_from_jwk(jwk)?)))
            .collect())
    }
}
