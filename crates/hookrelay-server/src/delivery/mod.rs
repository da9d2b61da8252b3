//! The delivery engine: claims due deliveries from the store, attempts them over HTTP,
//! and records what happened. The store is the only source of truth; what the engine
//! holds in memory (which webhooks are busy, attempts in flight) is rebuilt from
//! nothing after a restart, because every claim is a lease that runs out.

mod attempt;
mod dispatcher;
mod resolver;

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::RetrySchedule;
use hookrelay_store::Store;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use attempt::build_client;

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Delays before each attempt.
    pub retry_schedule: RetrySchedule,
    /// How long an attempt may take, from connecting to receiving a status.
    pub attempt_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// Attempts in flight to one webhook at most.
    pub max_in_flight_per_webhook: u32,
    /// Attempts in flight in all at most.
    pub max_in_flight: u32,
    /// Whether targets may resolve to private and loopback addresses.
    pub allow_private_targets: bool,
    /// How long attempts in flight may run on after shutdown starts.
    pub shutdown_grace: Duration,
    /// How often an idle engine looks for work it was not told about.
    pub idle_poll: Duration,
    /// When failures raise alerts and disable webhooks.
    pub alert_policy: AlertPolicy,
}

/// How many caps' worth of claimed deliveries a busy webhook may hold waiting behind its
/// attempts in flight: enough that its workers do not run dry while the next claim is
/// on its way (a claim waits its turn on the store's writer). Two caps gave W1 ~10 %
/// more than one; three gave less than two.
pub(crate) const QUEUED_CAPS: u32 = 2;

impl DeliveryConfig {
    /// How long a claim holds: long enough for a delivery queued behind every round of a
    /// busy webhook's attempts ([`QUEUED_CAPS`] of them, and the round a claim of up to
    /// the cap may add on top), one attempt of its own, and a few seconds to record it.
    pub fn lease(&self) -> Duration {
        (QUEUED_CAPS + 2) * (self.attempt_timeout + self.connect_timeout) + Duration::from_secs(5)
    }
}

/// Wakes the engine when new work is stored (publish, retry, test).
#[derive(Clone, Debug, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    /// Tells the engine there may be due work.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.0.notified().await;
    }
}

/// A running engine.
pub struct Engine {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Engine {
    /// Starts claiming and delivering.
    /// `alerts` is woken when recording attempts queues alerts.
    pub fn start(
        store: Arc<dyn Store>,
        config: DeliveryConfig,
        wakeup: Wakeup,
        alerts: Wakeup,
    ) -> Result<Self, reqwest::Error> {
        let (stop, stopped) = watch::channel(false);
        let dispatcher = dispatcher::Dispatcher::new(store, config, wakeup, alerts)?;
        let task = tokio::spawn(dispatcher.run(stopped));
        Ok(Self { task, stop })
    }

    /// Stops claiming, lets attempts in flight finish within the grace period, and
    /// returns once everything finished has been recorded.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "delivery engine failed");
        }
    }
}
