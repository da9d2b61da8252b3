//! The delivery engine: claims due deliveries from the store, attempts them over HTTP,
//! and records what happened. The store is the only source of truth; what the engine
//! holds in memory (which webhooks are busy, attempts in flight) is rebuilt from
//! nothing after a restart, because every claim is a lease that runs out.

mod attempt;
mod dispatcher;
mod heartbeat;
mod limit;
mod recorder;
mod resolver;
mod signature;
mod slots;
mod status;
#[cfg(test)]
mod testing;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::alert::AlertPolicy;
use hookrelay_core::delivery::RetrySchedule;
use hookrelay_core::node::Liveness;
use hookrelay_core::Timestamp;
use hookrelay_store::{NodeBeat, Store};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use attempt::build_client;
use heartbeat::Fence;
pub use status::{EngineStatus, StatusSnapshot};

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
    /// How this node proves it is alive, and when the others take its work over.
    pub liveness: Liveness,
}

/// How many limits' worth of claimed deliveries a busy webhook's queue is topped up to,
/// behind its attempts in flight: enough that its workers do not run dry while the next
/// claim is on its way (a claim waits its turn on the store's writer). One claim may add
/// up to the ceiling on top, so at the ceiling the queue holds at most
/// `(QUEUED_CAPS + 1) × ceiling − 1`. A deeper queue only lengthens leases; a shallower
/// one lets a fast receiver's workers wait for claims (`docs/performance.md`).
pub(crate) const QUEUED_CAPS: u32 = 2;

impl DeliveryConfig {
    /// How long a claim holds. For a webhook at its ceiling, the last delivery of a full
    /// queue starts within `QUEUED_CAPS + 1` rounds of the webhook's attempts (the round
    /// in flight when it was claimed, then its queue), and then needs a round of its
    /// own; each round is bounded by the attempt timeout, and its share of the connect
    /// timeout and of the 5 s pays for recording attempts and reloading the webhook
    /// between them. Below its ceiling a webhook's rounds are narrower than a claim may
    /// fill, so a worker gives back a queued delivery whose lease would run out during
    /// its attempt instead of sending it.
    /// Saturates rather than overflows on durations no lease could use.
    pub fn lease(&self) -> Duration {
        self.attempt_timeout
            .saturating_add(self.connect_timeout)
            .saturating_mul(QUEUED_CAPS + 2)
            .saturating_add(Duration::from_secs(5))
    }
}

/// Microseconds in `duration`, at most `i64::MAX` (about 292,000 years): a duration
/// configured beyond that moves a timestamp to the end of time, never back past zero.
pub(crate) fn saturating_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Wakes the engine when new work is stored (publish, retry, test).
#[derive(Clone, Debug, Default)]
pub struct Wakeup(Arc<WakeupState>);

#[derive(Debug, Default)]
struct WakeupState {
    notify: Notify,
    /// How many wake-ups there have been. Moved on before the engine is notified, so a
    /// request that woke the engine has moved it on by the time it is answered, and a
    /// claim round that read the number before claiming knows whether it saw the work
    /// behind every wake-up so far.
    generation: AtomicU64,
}

impl Wakeup {
    /// Tells the engine there may be due work.
    pub fn wake(&self) {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.notify.notify_one();
    }

    /// How many wake-ups there have been.
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::SeqCst)
    }

    pub(crate) async fn woken(&self) {
        self.0.notify.notified().await;
    }
}

/// A running engine.
pub struct Engine {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
    heartbeat: heartbeat::Heartbeat,
}

impl Engine {
    /// Starts the heartbeat, and claiming and delivering once it is written, woken by
    /// `status`'s wake-up and reporting there what it is doing. `alerts` is woken when
    /// recording attempts queues alerts.
    pub fn start(store: Arc<dyn Store>, config: DeliveryConfig, status: EngineStatus, alerts: Wakeup) -> Self {
        let fence = match store.shared_by_nodes() {
            true => Fence::new(config.liveness),
            false => Fence::never_closing(config.liveness),
        };
        status.set_fence(fence.clone());
        let node = NodeBeat {
            id: status.node().to_owned(),
            host: heartbeat::host(),
            pid: std::process::id(),
            started: Timestamp::now(),
            timeout: config.liveness.node_timeout,
        };
        let heartbeat = heartbeat::Heartbeat::start(store.clone(), node, fence.clone(), status.wakeup().clone());
        let (stop, stopped) = watch::channel(false);
        let dispatcher = dispatcher::Dispatcher::new(store, config, status, alerts, fence);
        let task = tokio::spawn(dispatcher.run(stopped));
        Self { task, stop, heartbeat }
    }

    /// Stops claiming, lets attempts in flight finish within the grace period, and
    /// returns once everything finished has been recorded; then stops the heartbeat.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "delivery engine failed");
        }
        self.heartbeat.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the last delivery of a webhook's fullest queue starts, with every attempt
    /// ahead of it taking the whole attempt timeout on `cap` workers.
    fn last_start(cap: u32, attempt: Duration) -> Duration {
        // `cap` in flight, then a queue topped up from just below its mark by one claim.
        let ahead = cap + (QUEUED_CAPS + 1) * cap - 2;
        let mut workers = vec![Duration::ZERO; cap as usize];
        for _ in 0..ahead {
            let free = workers.iter_mut().min().expect("at least one worker");
            *free += attempt;
        }
        *workers.iter().min().expect("at least one worker")
    }

    #[test]
    fn a_lease_and_its_microseconds_saturate_instead_of_overflowing() {
        let config = DeliveryConfig {
            attempt_timeout: Duration::MAX,
            connect_timeout: Duration::MAX,
            ..testing::config()
        };
        assert_eq!(config.lease(), Duration::MAX);
        assert_eq!(saturating_micros(config.lease()), i64::MAX);
        assert_eq!(saturating_micros(Duration::from_millis(u64::MAX)), i64::MAX);
        assert_eq!(saturating_micros(Duration::from_secs(3)), 3_000_000);
    }

    #[test]
    fn a_lease_outlasts_the_longest_wait_in_a_full_queue() {
        for (cap, attempt, connect) in [(1, 1, 1), (10, 15, 5), (7, 30, 0), (100, 2, 1)] {
            let config = DeliveryConfig {
                retry_schedule: RetrySchedule::default(),
                attempt_timeout: Duration::from_secs(attempt),
                connect_timeout: Duration::from_secs(connect),
                max_in_flight_per_webhook: cap,
                max_in_flight: 512,
                allow_private_targets: false,
                shutdown_grace: Duration::from_secs(10),
                idle_poll: Duration::from_secs(5),
                alert_policy: AlertPolicy::default(),
                liveness: Liveness::default(),
            };
            let done = last_start(cap, config.attempt_timeout) + config.attempt_timeout;
            assert!(
                done < config.lease(),
                "cap {cap}: attempt ends at {done:?}, lease {:?}",
                config.lease()
            );
        }
    }
}
