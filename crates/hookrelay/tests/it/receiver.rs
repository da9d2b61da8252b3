//! A real HTTP receiver for delivery tests: records every request and answers as the
//! test scripts it (by request number), so a test can make it fail, hang or recover.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{watch, Notify};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// When the answer was ready (after any scripted delay).
    pub answered: Option<Instant>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How to answer a request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    StatusWith(u16, Vec<(&'static str, String)>),
    /// Answer 200 after this long (longer than the attempt timeout: a hang).
    After(Duration),
    /// Answer this status after this long.
    StatusAfter(u16, Duration),
    /// Answer 200 once the test calls [`Receiver::release`] (at once if it has).
    Held,
}

type Script = Box<dyn Fn(usize) -> Reply + Send + Sync>;

struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<Script>,
    arrived: Notify,
    /// Set once held requests may be answered.
    released: watch::Sender<bool>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    /// A receiver answering 200 to everything.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(Box::new(|_| Reply::Status(200))),
            arrived: Notify::new(),
            released: watch::channel(false).0,
        });
        let state = inner.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let inner = state.clone();
            async move { answer(inner, headers, body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// Answers request `n` (0-based) with `script(n)`.
    pub fn script(&self, script: impl Fn(usize) -> Reply + Send + Sync + 'static) {
        *self.inner.script.lock().unwrap() = Box::new(script);
    }

    /// Answers every request held by [`Reply::Held`], and every later one at once.
    pub fn release(&self) {
        self.inner.released.send_replace(true);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.inner.received.lock().unwrap().len()
    }

    /// Waits until at least `n` requests arrived; panics after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.inner.arrived.notified();
            if self.count() >= n {
                return self.received();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("expected {n} requests within {within:?}, got {}", self.count());
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn answer(inner: Arc<Inner>, headers: HeaderMap, body: Bytes) -> Response {
    let (n, reply) = {
        let mut received = inner.received.lock().unwrap();
        let n = received.len();
        received.push(Received {
            headers,
            body,
            at: Instant::now(),
            answered: None,
        });
        let script = inner.script.lock().unwrap();
        (n, script(n))
    };
    inner.arrived.notify_waiters();
    match &reply {
        Reply::After(delay) | Reply::StatusAfter(_, delay) => tokio::time::sleep(*delay).await,
        Reply::Held => {
            let _ = inner.released.subscribe().wait_for(|released| *released).await;
        }
        Reply::Status(_) | Reply::StatusWith(..) => {}
    }
    inner.received.lock().unwrap()[n].answered = Some(Instant::now());
    match reply {
        Reply::Status(code) | Reply::StatusAfter(code, _) => {
            (StatusCode::from_u16(code).unwrap(), format!("answer {code}")).into_response()
        }
        Reply::StatusWith(code, headers) => {
            let mut response = (StatusCode::from_u16(code).unwrap(), format!("answer {code}")).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::After(_) => (StatusCode::OK, "late").into_response(),
        Reply::Held => (StatusCode::OK, "released").into_response(),
    }
}
