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
    /// The least time between two fetches caused by unknown key ids (default 10 s);
    /// the first such fetch is made at once.
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

#[derive(Debug)]
struct Cache {
    keys: HashMap<String, VerificationKey>,
    /// When the set was last fetched, for any reason.
    fetched: Instant,
    /// When an unknown key id last made it fetch the set.
    refetched: Option<Instant>,
}

impl Cache {
    /// The keys named by `key_ids`; every key when the delivery names none.
    fn candidates(&self, key_ids: &[&str]) -> Vec<VerificationKey> {
        if key_ids.is_empty() {
            return self.keys.values().cloned().collect();
        }
        key_ids.iter().filter_map(|id| self.keys.get(*id).cloned()).collect()
    }

    /// Whether an unknown key id may fetch the set now.
    fn may_refetch(&self, interval: Duration) -> bool {
        self.refetched.is_none_or(|at| at.elapsed() >= interval)
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
        let (url, fetched) = (url.into(), Instant::now());
        let keys = fetch(&http, &url).await?;
        let cache = Mutex::new(Cache {
            keys,
            fetched,
            refetched: None,
        });
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                http,
                options,
                cache,
            }),
        })
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
        let stale = cache.fetched.elapsed() >= options.max_age;
        let unknown = cache.candidates(key_ids).is_empty();
        let refetch = unknown && cache.may_refetch(options.min_refetch_interval);
        if stale || refetch {
            // Counted even when it fails: a server that is down is not asked again for
            // every delivery.
            cache.fetched = Instant::now();
            if refetch {
                cache.refetched = Some(cache.fetched);
            }
            match fetch(&self.inner.http, &self.inner.url).await {
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

/// The set's usable keys by id: P-256 signing keys with a `kid`; others are skipped.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<HashMap<String, VerificationKey>, JwksError> {
    let response = http
        .get(url)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex as StdMutex;

    use hookrelay_core::signing::{es256_jwk, es256_signing_key, generate_es256, SignatureKey};
    use serde_json::json;

    use super::*;

    /// A key set server whose set the test swaps, counting the fetches.
    struct KeySetServer {
        url: String,
        set: Arc<StdMutex<Value>>,
        fetches: Arc<AtomicUsize>,
    }

    async fn key_set_server(set: Value) -> KeySetServer {
        let (set, fetches) = (Arc::new(StdMutex::new(set)), Arc::new(AtomicUsize::new(0)));
        let (served, counted) = (set.clone(), fetches.clone());
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap().to_string();
            async move { body }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        KeySetServer { url, set, fetches }
    }

    fn key(id: &str) -> (Value, SignatureKey) {
        let (private, pem) = generate_es256();
        let signer = SignatureKey::Es256(Box::new(es256_signing_key(&private).unwrap()));
        (es256_jwk(&pem, id).unwrap(), signer)
    }

    #[tokio::test]
    async fn an_unknown_key_id_refetches_once_and_then_not_again_within_the_interval() {
        let (old, _) = key("key-old");
        let (new, signer) = key("key-new");
        let server = key_set_server(json!({ "keys": [old.clone()] })).await;
        let verifier = JwksVerifier::new(&server.url).await.unwrap();
        assert_eq!(server.fetches.load(Ordering::SeqCst), 1);

        *server.set.lock().unwrap() = json!({ "keys": [new, old] });
        let body = br#"{"apiVersion":"caph","event":{"id":"evt-1","name":"payment.completed","timestamp":"t"},"object":{"id":"pmt-1","type":"payment"},"data":{}}"#;
        let header = signer.header_value(crate::verify::unix_now(), body);
        let event = verifier.verify(body, &header, Some("key-new")).await.unwrap();
        assert_eq!(event.event.id, "evt-1");
        assert_eq!(
            server.fetches.load(Ordering::SeqCst),
            2,
            "one fetch for the unknown key id"
        );

        // Known now: no fetch. A forged id: refused without a fetch within the interval.
        assert!(verifier.verify(body, &header, Some("key-new")).await.is_ok());
        let forged = verifier.verify(body, &header, Some("key-forged")).await.unwrap_err();
        assert_eq!(forged.kind(), VerifyErrorKind::UnknownKey);
        assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
        // The old key is still in the set, but did not sign this delivery.
        let wrong = verifier.verify(body, &header, Some("key-old")).await.unwrap_err();
        assert_eq!(wrong.kind(), VerifyErrorKind::SignatureMismatch);
    }
}
