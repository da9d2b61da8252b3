//! What the engine's unit tests share: a real SQLite store in a temporary directory,
//! webhooks and events stored in it, and a real HTTP receiver on loopback that can hold
//! its answers until a test lets them go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::RetrySchedule;
use hookrelay_core::event::EventDraft;
use hookrelay_core::node::Liveness;
use hookrelay_core::seal::{MasterKey, SecretCipher};
use hookrelay_core::webhook::{InputRules, WebhookDraft};
use hookrelay_core::{EventCatalog, SpaceId, Timestamp, WebhookId};
use hookrelay_store::{SpaceStore, SqliteStore, Store};
use serde_json::json;
use tokio::sync::watch;

use super::{DeliveryConfig, Fence};

/// A delivery configuration for tests: loopback targets allowed, a short retry schedule.
pub fn config() -> DeliveryConfig {
    DeliveryConfig {
        retry_schedule: RetrySchedule::parse("0s,1s").expect("a valid schedule"),
        attempt_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_in_flight_per_webhook: 10,
        max_in_flight: 256,
        allow_private_targets: true,
        shutdown_grace: Duration::from_secs(10),
        idle_poll: Duration::from_secs(5),
        alert_policy: AlertPolicy::default(),
        liveness: Liveness::default(),
    }
}

/// A fence whose heartbeat was just written and stays fresh for a day: attempts start.
pub fn open_fence() -> Fence {
    let fence = Fence::new(Liveness {
        heartbeat_interval: Duration::from_secs(1),
        node_timeout: Duration::from_secs(24 * 3600),
    });
    let _ = fence.beat_began(std::time::Instant::now());
    fence
}

/// A fresh SQLite store, removed with its directory when dropped.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub space: SpaceId,
    _dir: tempfile::TempDir,
}

impl TestStore {
    pub async fn open() -> Self {
        let dir = tempfile::TempDir::new().expect("a temporary directory");
        let cipher = SecretCipher::new(&MasterKey::generate());
        let store = SqliteStore::open(&dir.path().join("engine.db"), cipher)
            .await
            .expect("open a SQLite store");
        let space = SpaceId::parse("spc-engine").expect("a valid space id");
        store.ensure_space(&space).await.expect("create the space");
        Self {
            store: Arc::new(store),
            space,
            _dir: dir,
        }
    }

    /// A webhook to `url`, subscribed to `event`.
    pub async fn webhook(&self, url: &str, event: &str) -> WebhookId {
        let rules = InputRules {
            catalog: &EventCatalog::default(),
            allow_private_targets: true,
        };
        let body = json!({"name": "engine test", "url": url, "events": [event]});
        let webhook = WebhookDraft::parse(&body, &rules)
            .expect("a valid webhook")
            .into_webhook(self.space.clone(), Timestamp::now());
        self.store
            .create_webhook(&webhook, None)
            .await
            .expect("create a webhook");
        webhook.id
    }

    /// Publishes `n` events named `name`; answers how many deliveries they made.
    pub async fn publish(&self, name: &str, n: usize) -> u32 {
        let mut deliveries = 0;
        for i in 0..n {
            let body = json!({"name": name, "object": {"id": format!("pmt-{i}"), "type": "payment"}, "data": {}});
            let event = EventDraft::parse(&body, &EventCatalog::default())
                .expect("a valid event")
                .into_event(self.space.clone(), Timestamp::now());
            deliveries += self.store.publish_event(&event, None).await.expect("publish");
        }
        deliveries
    }
}

/// A real HTTP receiver answering 204 to every request, once let go if it holds.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
}

impl Receiver {
    /// A receiver that answers at once.
    pub async fn start() -> Self {
        Self::listen(true).await
    }

    /// A receiver that holds every request until [`Receiver::let_go`].
    pub async fn holding() -> Self {
        Self::listen(false).await
    }

    async fn listen(open: bool) -> Self {
        let received = Arc::new(AtomicUsize::new(0));
        let (open, _) = watch::channel(open);
        let (counter, gate) = (received.clone(), open.clone());
        let app = axum::Router::new().fallback(move || {
            let (counter, mut gate) = (counter.clone(), gate.subscribe());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = gate.wait_for(|open| *open).await;
                StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received, open }
    }

    /// Requests that arrived so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    /// Answers every held request, and every later one at once.
    pub fn let_go(&self) {
        self.open.send_replace(true);
    }

    /// Waits until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while self.received() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "expected {n} requests, got {}", self.received());
    }
}
