//! The heartbeat: every `heartbeat_interval` this node tells the store it is alive, and
//! hears which other nodes are dead; on PostgreSQL their deliveries are claimable at
//! once, so a newly dead node wakes the engine to take them over. Once an hour's silence
//! has passed, a dead node's row goes.
//!
//! The [`Fence`] keeps when the last successful heartbeat began. Once it is too old
//! (`hookrelay_core::node`), the engine starts no attempt and claims nothing: the
//! others may take this node's deliveries over any moment. Queued deliveries are then
//! dropped unattempted; should a heartbeat succeed again before the others took them,
//! they are given back (a release names this node's lease, so it changes nothing where
//! another node took the delivery meanwhile).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hookrelay_core::node::Liveness;
use hookrelay_core::{DeliveryId, Timestamp};
use hookrelay_store::{NodeBeat, Store};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Wakeup;
use crate::error_chain;
use crate::telemetry::metrics::{self, DbOperation};

/// How long a dead node's row stays, so that operators see it went.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// How often the heartbeat task forgets nodes silent for [`FORGET_AFTER`].
const FORGET_EVERY: Duration = Duration::from_secs(600);

/// Whether this node may start attempts: when its last successful heartbeat began, and
/// the deliveries it dropped unattempted while it could not.
#[derive(Clone, Debug)]
pub struct Fence(Arc<FenceState>);

#[derive(Debug)]
struct FenceState {
    liveness: Liveness,
    /// Under one lock, so that a delivery dropped while fenced is never missed by the
    /// heartbeat that lifts the fence.
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    last_beat: Option<Instant>,
    /// Deliveries dropped while fenced, with the end of the lease they were claimed under.
    dropped: Vec<(DeliveryId, Timestamp)>,
}

impl Fence {
    /// A fence with no heartbeat yet: it starts nothing until the first one.
    pub fn new(liveness: Liveness) -> Self {
        Self(Arc::new(FenceState {
            liveness,
            held: Mutex::new(Held::default()),
        }))
    }

    /// A fence for a node no other could take over from (SQLite): once its first
    /// heartbeat is in, it never closes.
    pub fn never_closing(liveness: Liveness) -> Self {
        Self::new(Liveness {
            node_timeout: Duration::MAX,
            ..liveness
        })
    }

    /// Whether an attempt may start now.
    pub fn may_start(&self) -> bool {
        let last_beat = self.held().last_beat;
        self.0.liveness.may_start_attempts(last_beat, Instant::now())
    }

    /// Whether the attempt of `delivery`, claimed under a lease until `lease_until`, may
    /// start now; if not, the delivery is noted as dropped, to be given back when a
    /// heartbeat lifts the fence.
    pub(super) fn may_start_or_drop(&self, delivery: &DeliveryId, lease_until: Timestamp) -> bool {
        let mut held = self.held();
        if self.0.liveness.may_start_attempts(held.last_beat, Instant::now()) {
            return true;
        }
        held.dropped.push((delivery.clone(), lease_until));
        false
    }

    /// A heartbeat that began at `began` succeeded; answers the deliveries dropped while
    /// fenced, to give back.
    pub(super) fn beat_began(&self, began: Instant) -> Vec<(DeliveryId, Timestamp)> {
        let mut held = self.held();
        // Heartbeats run one at a time, but a later one never moves it back.
        if held.last_beat.is_none_or(|last| last < began) {
            held.last_beat = Some(began);
        }
        std::mem::take(&mut held.dropped)
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.0.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A node id: the machine's name, the process id and a random part, so that a restarted
/// process (whose pid may come again) is a new node.
pub(super) fn new_node_id() -> String {
    format!(
        "{}-{}-{:08x}",
        host(),
        std::process::id(),
        rand::thread_rng().gen::<u32>()
    )
}

/// This machine's name, for operators reading node ids.
pub(super) fn host() -> String {
    hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}

/// A running heartbeat task.
pub(super) struct Heartbeat {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Heartbeat {
    /// Starts beating as `node`, keeping `fence`, waking the engine through `wakeup`.
    pub(super) fn start(store: Arc<dyn Store>, node: NodeBeat, fence: Fence, wakeup: Wakeup) -> Self {
        let (stop, stopped) = watch::channel(false);
        let beating = Beating {
            store,
            node,
            fence,
            wakeup,
            known_dead: HashSet::new(),
            failing: false,
        };
        Self {
            task: tokio::spawn(beating.run(stopped)),
            stop,
        }
    }

    /// Stops beating; the node's row stays, and the others take over whatever it still
    /// holds once it is older than its timeout.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The heartbeat task's state.
struct Beating {
    store: Arc<dyn Store>,
    node: NodeBeat,
    fence: Fence,
    wakeup: Wakeup,
    /// Dead nodes already seen, so each wakes the engine once.
    known_dead: HashSet<String>,
    /// Whether the last heartbeat failed (logged once per run of failures).
    failing: bool,
}

impl Beating {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let liveness = self.fence.0.liveness;
        let mut ticks = tokio::time::interval(liveness.heartbeat_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_forget: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return,
            }
            self.beat(liveness).await;
            if last_forget.is_none_or(|at| at.elapsed() >= FORGET_EVERY) {
                last_forget = Some(Instant::now());
                self.forget().await;
            }
        }
    }

    /// One heartbeat. One that takes longer than the fence allows is given up: it
    /// could not keep the node unfenced anyway.
    async fn beat(&mut self, liveness: Liveness) {
        let began = Instant::now();
        let beat = tokio::time::timeout(liveness.fence_after(), self.store.beat(&self.node));
        let beat = metrics::time_db(DbOperation::Heartbeat, beat).await;
        let error = match beat {
            Ok(Ok(dead)) => {
                let was_fenced = !self.fence.may_start();
                let dropped = self.fence.beat_began(began);
                if self.failing {
                    self.failing = false;
                    tracing::info!("the heartbeat is written again");
                }
                self.give_back(dropped).await;
                if was_fenced {
                    self.wakeup.wake();
                }
                self.take_note_of(dead);
                return;
            }
            Ok(Err(error)) => error_chain(&error),
            Err(_) => format!("no answer within {:?}", liveness.fence_after()),
        };
        if !self.failing {
            self.failing = true;
            tracing::warn!(
                %error,
                stop_attempts_after = ?liveness.fence_after(),
                "writing the heartbeat failed; this node stops starting attempts if it cannot write one in time"
            );
        }
    }

    /// Wakes the engine for each node newly found dead: its deliveries are claimable.
    fn take_note_of(&mut self, dead: Vec<String>) {
        let newly_dead: Vec<&String> = dead.iter().filter(|id| !self.known_dead.contains(*id)).collect();
        if !newly_dead.is_empty() {
            tracing::info!(nodes = ?newly_dead, "nodes stopped beating; taking over their deliveries");
            self.wakeup.wake();
        }
        self.known_dead = dead.into_iter().collect();
    }

    /// Gives back deliveries dropped while fenced, under the leases they were claimed
    /// with: where another node took one over meanwhile, nothing changes.
    async fn give_back(&self, dropped: Vec<(DeliveryId, Timestamp)>) {
        let mut by_lease: HashMap<Timestamp, Vec<DeliveryId>> = HashMap::new();
        for (delivery, lease_until) in dropped {
            by_lease.entry(lease_until).or_default().push(delivery);
        }
        for (lease_until, ids) in by_lease {
            if let Err(error) = self.store.release_deliveries(&ids, &self.node.id, lease_until).await {
                tracing::warn!(error = %error_chain(&error), "giving back deliveries dropped while fenced failed; their leases will run out");
            }
        }
    }

    async fn forget(&self) {
        match self.store.forget_nodes(FORGET_AFTER).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "forgot nodes silent for an hour"),
            Err(error) => tracing::warn!(error = %error_chain(&error), "forgetting silent nodes failed"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
