//! A node's standing among the nodes sharing a database, as pure rules: when the others
//! may take its work over, and when it must stop starting attempts itself.
//!
//! Each node writes a heartbeat every `heartbeat_interval`, stamped by the database's
//! clock, with its own `node_timeout`: once its heartbeat is older than that, the others
//! take over the deliveries it leased. To never attempt a delivery at the same time as
//! the node that took it over, a node fences itself first: it starts no attempt once its
//! last successful heartbeat *began* [`Liveness::fence_after`] ago, a margin before the
//! others can judge it dead. The heartbeat was written after it began, so however the
//! database's clock and this node's differ, the others see it at least as fresh as this
//! node counts it; the margin covers the moment between deciding to start an attempt
//! and its request leaving.

use std::time::{Duration, Instant};

use crate::Timestamp;

/// How a node proves it is alive, and how long the others wait before they take its
/// work over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// How often the node writes its heartbeat.
    pub heartbeat_interval: Duration,
    /// How old its heartbeat may grow before the others take its deliveries over.
    pub node_timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            node_timeout: Duration::from_secs(5),
        }
    }
}

impl Liveness {
    /// The smallest `node_timeout` for a `heartbeat_interval`: two heartbeats, so that
    /// one late heartbeat does not fence a node that is fine.
    pub const MIN_TIMEOUT_IN_INTERVALS: u32 = 2;

    /// The time between fencing itself and being judged dead: a fifth of the timeout.
    pub fn margin(&self) -> Duration {
        self.node_timeout / 5
    }

    /// How long after its last successful heartbeat began a node still starts attempts.
    pub fn fence_after(&self) -> Duration {
        self.node_timeout.saturating_sub(self.margin())
    }

    /// Whether a node whose last successful heartbeat began at `last_beat` (`None`: it
    /// has had none yet) may start an attempt at `now`. A node with no heartbeat is not
    /// known to the others, who could never take its deliveries over: it starts none.
    pub fn may_start_attempts(&self, last_beat: Option<Instant>, now: Instant) -> bool {
        last_beat.is_some_and(|beat| now.saturating_duration_since(beat) < self.fence_after())
    }

    /// Why these values cannot work together, if they cannot: a timeout must span
    /// [`Self::MIN_TIMEOUT_IN_INTERVALS`] heartbeats.
    pub fn check(&self) -> Result<(), String> {
        let least = self.heartbeat_interval.saturating_mul(Self::MIN_TIMEOUT_IN_INTERVALS);
        if self.node_timeout < least {
            return Err(format!(
                "must be at least {} heartbeat intervals ({least:?}), so that one late heartbeat does not stop a node",
                Self::MIN_TIMEOUT_IN_INTERVALS
            ));
        }
        Ok(())
    }
}

/// Whether a node whose last heartbeat was written at `heartbeat`, with `timeout`, counts
/// as alive at `now` (both by the database's clock): the others take its deliveries over
/// once it does not.
pub fn is_alive(heartbeat: Timestamp, timeout: Duration, now: Timestamp) -> bool {
    now.duration_since(heartbeat) <= timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_node_fences_itself_a_margin_before_others_judge_it_dead() {
        let liveness = Liveness::default();
        assert_eq!(liveness.fence_after(), secs(4.0));
        let beat = Instant::now();
        assert!(liveness.may_start_attempts(Some(beat), beat));
        assert!(liveness.may_start_attempts(Some(beat), beat + secs(3.999)));
        assert!(!liveness.may_start_attempts(Some(beat), beat + secs(4.0)));
        assert!(!liveness.may_start_attempts(Some(beat), beat + liveness.node_timeout));
        assert!(!liveness.may_start_attempts(Some(beat), beat + secs(3600.0)));
    }

    #[test]
    fn a_node_without_a_heartbeat_starts_nothing() {
        assert!(!Liveness::default().may_start_attempts(None, Instant::now()));
    }

    #[test]
    fn a_clock_that_reads_before_the_beat_counts_as_no_time() {
        let liveness = Liveness::default();
        let now = Instant::now();
        assert!(liveness.may_start_attempts(Some(now + secs(1.0)), now));
    }

    #[test]
    fn the_fence_always_comes_before_the_timeout() {
        for timeout in [2, 5, 10, 60] {
            let liveness = Liveness {
                heartbeat_interval: secs(1.0),
                node_timeout: secs(f64::from(timeout)),
            };
            assert!(liveness.fence_after() < liveness.node_timeout, "{liveness:?}");
            assert!(liveness.fence_after() > liveness.heartbeat_interval, "{liveness:?}");
        }
    }

    #[test]
    fn a_node_is_alive_until_its_heartbeat_is_older_than_its_timeout() {
        let beat = Timestamp::from_micros(1_000_000_000);
        let timeout = secs(5.0);
        assert!(is_alive(beat, timeout, beat));
        assert!(is_alive(beat, timeout, beat.plus(secs(5.0))));
        assert!(!is_alive(beat, timeout, beat.plus(secs(5.000_001))));
        assert!(
            is_alive(beat, timeout, beat.minus(secs(1.0))),
            "a heartbeat ahead of the reader"
        );
    }

    #[test]
    fn a_timeout_must_span_two_heartbeats() {
        let liveness = |interval, timeout| Liveness {
            heartbeat_interval: secs(interval),
            node_timeout: secs(timeout),
        };
        assert!(liveness(1.0, 2.0).check().is_ok());
        assert!(liveness(1.0, 5.0).check().is_ok());
        let error = liveness(1.0, 1.5).check().unwrap_err();
        assert!(error.contains("2 heartbeat intervals"), "{error}");
        assert!(liveness(2.0, 3.0).check().is_err());
    }
}
