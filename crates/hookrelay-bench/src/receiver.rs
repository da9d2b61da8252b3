//! The webhook receiver hookrelay delivers to during a run.
//!
//! It has to be cheap enough that the figures measure hookrelay and not the receiver:
//! it answers 200 at once, keeps one small record per (event, webhook) pair, and checks
//! the signature of only every Nth delivery. Paths under `/slow/` answer after
//! [`SLOW_DELAY`], playing a sluggish customer endpoint (W5).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::serve::ListenerExt;
use base64::prelude::{Engine, BASE64_STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::AbortHandle;

/// The largest delivery body read (hookrelay's bodies are a few KiB).
const MAX_BODY: usize = 1 << 20;
/// How long a slow webhook takes to answer.
pub const SLOW_DELAY: Duration = Duration::from_secs(2);

/// What arrived for one (event, webhook) pair.
#[derive(Clone, Copy, Debug)]
pub struct Receipt {
    /// When the first delivery arrived (before any slow answer's sleep).
    pub first: Instant,
    /// Deliveries received; more than 1 is a duplicate.
    pub count: u32,
}

/// (event id, webhook id).
pub type Pair = (String, String);

struct Inner {
    receipts: Mutex<HashMap<Pair, Receipt>>,
    /// HS256 secrets by webhook id, registered when the webhooks are created.
    secrets: Mutex<HashMap<String, Vec<u8>>>,
    /// Check one delivery in this many (0: never).
    verify_every: u64,
    requests: AtomicU64,
    checked: AtomicU64,
    bad_signatures: AtomicU64,
    /// Requests without the Monime-Event-Id / Monime-Webhook-Id headers.
    malformed: AtomicU64,
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    inner: Arc<Inner>,
    task: AbortHandle,
}

/// Signature checks made so far.
#[derive(Clone, Copy, Debug)]
pub struct SignatureTally {
    pub checked: u64,
    pub bad: u64,
    pub malformed: u64,
}

impl Receiver {
    pub async fn start(verify_every: u64) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            receipts: Mutex::new(HashMap::new()),
            secrets: Mutex::new(HashMap::new()),
            verify_every,
            requests: AtomicU64::new(0),
            checked: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        });
        let state = inner.clone();
        // The whole request, not extractors: a `HeaderMap` extractor would copy every
        // header of every delivery.
        let app = axum::Router::new().fallback(move |request: Request| {
            let inner = state.clone();
            async move {
                let (parts, body) = request.into_parts();
                let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
                    // Too large or cut off: not something hookrelay sends.
                    return StatusCode::BAD_REQUEST;
                };
                answer(&inner, &parts.uri, &parts.headers, &body).await
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        // Answers go out at once, not held back to be merged with later writes.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("receiver stopped: {error}");
            }
        })
        .abort_handle();
        Ok(Self { base_url, inner, task })
    }

    /// Lets the receiver check deliveries to `webhook` against `secret`.
    pub fn add_secret(&self, webhook: &str, secret: &str) {
        let mut secrets = self.inner.secrets.lock().unwrap_or_else(|p| p.into_inner());
        secrets.insert(webhook.to_owned(), secret.as_bytes().to_vec());
    }

    /// Distinct pairs received whose event is in `events` and webhook in `webhooks`.
    pub fn arrived(&self, events: &HashSet<String>, webhooks: &HashSet<String>) -> usize {
        let receipts = self.inner.receipts.lock().unwrap_or_else(|p| p.into_inner());
        receipts
            .keys()
            .filter(|(event, webhook)| webhooks.contains(webhook) && events.contains(event))
            .count()
    }

    /// Distinct pairs received so far, whatever they are.
    pub fn distinct(&self) -> usize {
        self.inner.receipts.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A copy of every receipt.
    pub fn receipts(&self) -> HashMap<Pair, Receipt> {
        self.inner.receipts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn signatures(&self) -> SignatureTally {
        SignatureTally {
            checked: self.inner.checked.load(Ordering::Relaxed),
            bad: self.inner.bad_signatures.load(Ordering::Relaxed),
            malformed: self.inner.malformed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(inner: &Inner, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(event), Some(webhook)) = (header("monime-event-id"), header("monime-webhook-id")) else {
        inner.malformed.fetch_add(1, Ordering::Relaxed);
        // Still 2xx: a 4xx would only make the server retry.
        return StatusCode::OK;
    };
    {
        let mut receipts = inner.receipts.lock().unwrap_or_else(|p| p.into_inner());
        receipts
            .entry((event.to_owned(), webhook.to_owned()))
            .and_modify(|r| r.count += 1)
            .or_insert(Receipt { first: at, count: 1 });
    }
    let n = inner.requests.fetch_add(1, Ordering::Relaxed);
    if inner.verify_every > 0 && n.is_multiple_of(inner.verify_every) {
        let secret = inner
            .secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(webhook)
            .cloned();
        let good = match (secret, header("monime-signature")) {
            (Some(secret), Some(signature)) => verify_hs256(&secret, signature, body),
            _ => false,
        };
        inner.checked.fetch_add(1, Ordering::Relaxed);
        if !good {
            inner.bad_signatures.fetch_add(1, Ordering::Relaxed);
        }
    }
    if uri.path().starts_with("/slow/") {
        tokio::time::sleep(SLOW_DELAY).await;
    }
    StatusCode::OK
}

/// Checks `Monime-Signature: t=<secs>,v1=<base64 HMAC-SHA256(secret, "<t>_<body>")>`.
/// The timestamp's age is not checked: the run measures delivery, not clocks.
pub fn verify_hs256(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if t.is_none() => t = Some(value),
            Some(("v1", value)) if v1.is_none() => v1 = Some(value),
            _ => return false,
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(signature) = BASE64_STANDARD.decode(v1) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b"_");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}_").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", BASE64_STANDARD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn verifies_hs256_signatures() {
        let secret = b"bench-secret-0123456789abcdefghijklmnopq";
        let header = sign(secret, "1700000000", b"{\"a\":1}");
        assert!(verify_hs256(secret, &header, b"{\"a\":1}"));
        assert!(!verify_hs256(secret, &header, b"{\"a\":2}"));
        assert!(!verify_hs256(
            b"another-secret-0123456789abcdefghijklmn",
            &header,
            b"{\"a\":1}"
        ));
        assert!(!verify_hs256(secret, "t=1700000000", b"{\"a\":1}"));
        assert!(!verify_hs256(secret, &format!("{header},v1=x"), b"{\"a\":1}"));
    }
}
