//! How many attempts one webhook may have in flight: a limit that adapts to how its
//! receiver answers (additive increase, multiplicative decrease, as TCP does with its
//! window).
//!
//! A busy webhook starts at [`INITIAL_IN_FLIGHT`] (or its ceiling, if lower). Each round
//! of quick successes (as many as the limit) raises the limit by one, up to the ceiling
//! (`max_in_flight_per_webhook`); an answer that says the receiver is overloaded (a
//! timeout, a connection refused or not made in time, 429, 5xx) halves it, at most once
//! per round, down to one. So a receiver that keeps up gets deliveries as fast as it takes them,
//! and one that struggles gets fewer at once instead of a fixed number. Other failures
//! (a 4xx, a bad certificate, a name that does not resolve) say nothing about load and
//! leave the limit alone. The limit lives as long as the webhook has work in the engine:
//! a webhook that goes idle starts again at the initial limit.
//!
//! [`ClaimShare`] is the other per-webhook number: how many of one webhook's deliveries a
//! claim may take, so that one webhook with a backlog fills its queue in a few claims
//! while a claim over many webhooks stays small.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookrelay_core::delivery::{AttemptOutcome, DeliveryAttempt, ErrorKind};

/// Attempts in flight a busy webhook starts with: the fixed cap of earlier releases.
pub const INITIAL_IN_FLIGHT: u32 = 10;

/// A success answered later than this does not raise the limit: the receiver is keeping
/// up, but not with room to spare.
const QUICK_ANSWER: Duration = Duration::from_secs(1);

/// What an answer says about the receiver's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSignal {
    /// A 2xx, quickly.
    Room,
    /// A timeout, a connection refused or not made in time, 429 or 5xx.
    Overloaded,
    /// Anything else.
    Nothing,
}

impl LoadSignal {
    /// What an attempt says.
    pub fn of(outcome: AttemptOutcome, attempt: &DeliveryAttempt) -> Self {
        let took = Duration::from_millis(u64::from(attempt.duration_ms));
        match (outcome, attempt.error_kind, attempt.status_code) {
            (AttemptOutcome::Succeeded, _, _) if took < QUICK_ANSWER => Self::Room,
            (AttemptOutcome::Succeeded | AttemptOutcome::Gone, _, _) => Self::Nothing,
            (_, Some(ErrorKind::Timeout | ErrorKind::Connect), _) => Self::Overloaded,
            (_, _, Some(status)) if status == 429 || status >= 500 => Self::Overloaded,
            _ => Self::Nothing,
        }
    }
}

/// One webhook's limit on attempts in flight.
#[derive(Debug)]
pub struct InFlightLimit {
    current: u32,
    ceiling: u32,
    /// Quick successes since the limit last moved, at most `current`: a round's worth
    /// raises the limit, and at the ceiling more would count towards nothing.
    successes: u32,
    /// When the limit was last halved: answers to attempts sent before then were part
    /// of the same round and do not halve it again.
    cut_at: Option<Instant>,
}

impl InFlightLimit {
    pub fn new(ceiling: u32) -> Self {
        Self {
            current: INITIAL_IN_FLIGHT.min(ceiling).max(1),
            ceiling: ceiling.max(1),
            successes: 0,
            cut_at: None,
        }
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    /// Takes in an answer to an attempt sent at `sent`; `true` when the limit rose.
    pub fn answered(&mut self, signal: LoadSignal, sent: Instant, now: Instant) -> bool {
        match signal {
            LoadSignal::Room => {
                self.successes = (self.successes + 1).min(self.current);
                if self.successes >= self.current && self.current < self.ceiling {
                    self.current += 1;
                    self.successes = 0;
                    return true;
                }
            }
            LoadSignal::Overloaded => {
                if self.cut_at.is_none_or(|cut| sent >= cut) {
                    self.current = (self.current / 2).max(1);
                    self.successes = 0;
                    self.cut_at = Some(now);
                }
            }
            LoadSignal::Nothing => {}
        }
        false
    }
}

/// How many deliveries of one webhook a claim takes: the claim divided among the
/// webhooks that have work, as the claims before it found them, between the initial
/// limit and the ceiling. A claim's query reads up to that many candidates of every
/// webhook with work, so a share larger than the webhooks need makes every claim read
/// more than it takes (on SQLite, on the one writer every other write waits behind).
#[derive(Debug, Default)]
pub struct ClaimShare {
    /// Webhooks with work, as last seen (none yet counts as one).
    webhooks: AtomicUsize,
}

impl ClaimShare {
    /// The share of one webhook in a claim of `limit` deliveries.
    pub fn per_webhook(&self, limit: u32, ceiling: u32) -> u32 {
        let webhooks = self.webhooks.load(Ordering::Relaxed).max(1) as u32;
        (limit / webhooks).clamp(INITIAL_IN_FLIGHT.min(ceiling), ceiling)
    }

    /// Takes in what a claim found: deliveries of `webhooks` webhooks, and whether it
    /// filled the size it asked for. A claim that found less than it asked for took what
    /// was due of every webhook with work it could claim for: their count is the
    /// estimate. A full one was cut short by its own size, and says only that at least so
    /// many have work (a claim for one free slot finds one, however many there are): the
    /// estimate rises to that, never falls. A claim that found nothing says nothing.
    pub fn claimed(&self, webhooks: usize, full: bool) {
        if webhooks == 0 {
            return;
        }
        if full {
            self.webhooks.fetch_max(webhooks, Ordering::Relaxed);
        } else {
            self.webhooks.store(webhooks, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: Option<u16>, error_kind: Option<ErrorKind>, took: Duration) -> DeliveryAttempt {
        DeliveryAttempt {
            attempt: 1,
            start_time: hookrelay_core::Timestamp::from_micros(0),
            duration_ms: took.as_millis() as u32,
            status_code: status,
            error_kind,
            response_body: None,
        }
    }

    #[test]
    fn a_round_of_quick_successes_raises_the_limit_by_one_up_to_the_ceiling() {
        let mut limit = InFlightLimit::new(12);
        let now = Instant::now();
        assert_eq!(limit.current(), INITIAL_IN_FLIGHT);
        let rises = (0..9).filter(|_| limit.answered(LoadSignal::Room, now, now)).count();
        assert_eq!(
            (rises, limit.current()),
            (0, 10),
            "nine successes are not a round of ten"
        );
        assert!(limit.answered(LoadSignal::Room, now, now));
        assert_eq!(limit.current(), 11);
        for _ in 0..100 {
            limit.answered(LoadSignal::Room, now, now);
        }
        assert_eq!(limit.current(), 12, "never above the ceiling");
        assert_eq!(
            InFlightLimit::new(4).current(),
            4,
            "a ceiling below the initial limit is the start"
        );
    }

    #[test]
    fn quick_successes_at_the_ceiling_are_counted_only_up_to_a_round() {
        let mut limit = InFlightLimit::new(12);
        let now = Instant::now();
        for _ in 0..5_000_000 {
            limit.answered(LoadSignal::Room, now, now);
            assert!(
                limit.successes <= limit.current,
                "{} successes counted",
                limit.successes
            );
        }
        assert_eq!(limit.current(), 12);
        // A cut starts a fresh round: it takes a whole round of the new limit to rise.
        let later = now + Duration::from_millis(1);
        limit.answered(LoadSignal::Overloaded, later, later);
        assert_eq!(limit.current(), 6);
        let rises = (0..5)
            .filter(|_| limit.answered(LoadSignal::Room, later, later))
            .count();
        assert_eq!(
            (rises, limit.current()),
            (0, 6),
            "five successes are not a round of six"
        );
        assert!(limit.answered(LoadSignal::Room, later, later));
        assert_eq!(limit.current(), 7);
    }

    #[test]
    fn overload_halves_the_limit_once_per_round_down_to_one() {
        let mut limit = InFlightLimit::new(32);
        let round_one = Instant::now();
        let later = round_one + Duration::from_millis(5);
        // Ten attempts of one round all fail: one cut.
        for _ in 0..10 {
            limit.answered(LoadSignal::Overloaded, round_one, later);
        }
        assert_eq!(limit.current(), 5);
        // An attempt sent after the cut fails: the next round, cut again.
        let round_two = later + Duration::from_millis(1);
        limit.answered(LoadSignal::Overloaded, round_two, round_two + Duration::from_millis(5));
        assert_eq!(limit.current(), 2);
        for step in 0..5u64 {
            let sent = round_two + Duration::from_millis(10 * (step + 1));
            limit.answered(LoadSignal::Overloaded, sent, sent + Duration::from_millis(5));
        }
        assert_eq!(limit.current(), 1, "never below one");
        // Quick successes climb back one per round.
        let sent = round_two + Duration::from_secs(1);
        assert!(limit.answered(LoadSignal::Room, sent, sent));
        assert_eq!(limit.current(), 2);
    }

    #[test]
    fn answers_are_read_as_load_signals() {
        let quick = Duration::from_millis(20);
        let failed = AttemptOutcome::Failed { retry_after: None };
        let cases = [
            (
                AttemptOutcome::Succeeded,
                attempt(Some(200), None, quick),
                LoadSignal::Room,
            ),
            (
                AttemptOutcome::Succeeded,
                attempt(Some(204), None, QUICK_ANSWER),
                LoadSignal::Nothing,
            ),
            (
                failed,
                attempt(Some(503), Some(ErrorKind::HttpStatus), quick),
                LoadSignal::Overloaded,
            ),
            (
                failed,
                attempt(Some(500), Some(ErrorKind::HttpStatus), quick),
                LoadSignal::Overloaded,
            ),
            (
                failed,
                attempt(Some(429), Some(ErrorKind::HttpStatus), quick),
                LoadSignal::Overloaded,
            ),
            (
                failed,
                attempt(None, Some(ErrorKind::Timeout), quick),
                LoadSignal::Overloaded,
            ),
            (
                failed,
                attempt(None, Some(ErrorKind::Connect), quick),
                LoadSignal::Overloaded,
            ),
            (
                failed,
                attempt(Some(404), Some(ErrorKind::HttpStatus), quick),
                LoadSignal::Nothing,
            ),
            (failed, attempt(None, Some(ErrorKind::Dns), quick), LoadSignal::Nothing),
            (failed, attempt(None, Some(ErrorKind::Tls), quick), LoadSignal::Nothing),
            (
                AttemptOutcome::Gone,
                attempt(Some(410), Some(ErrorKind::HttpStatus), quick),
                LoadSignal::Nothing,
            ),
        ];
        for (outcome, entry, expected) in cases {
            assert_eq!(
                LoadSignal::of(outcome, &entry),
                expected,
                "{:?} {:?}",
                entry.status_code,
                entry.error_kind
            );
        }
    }

    #[test]
    fn a_claim_is_shared_among_the_webhooks_the_claims_before_it_found() {
        let share = ClaimShare::default();
        assert_eq!(share.per_webhook(256, 32), 32, "none seen yet: the ceiling");
        // A claim of 256 found less than that, of 2 webhooks.
        share.claimed(2, false);
        assert_eq!(share.per_webhook(256, 32), 32);
        // A claim found work for 100 webhooks: the share falls to the initial limit.
        share.claimed(100, false);
        assert_eq!(share.per_webhook(256, 32), INITIAL_IN_FLIGHT);
        share.claimed(20, false);
        assert_eq!(share.per_webhook(256, 32), 12);
        assert_eq!(share.per_webhook(256, 8), 8, "never above the ceiling");
        // One webhook left with work: its share is the ceiling again.
        share.claimed(1, false);
        assert_eq!(share.per_webhook(256, 32), 32);
    }

    #[test]
    fn a_full_claim_only_raises_the_count() {
        let share = ClaimShare::default();
        // A backlog over a hundred webhooks, met at the ceiling: the first claim fills
        // its size with a few of each, and the share falls at once.
        share.claimed(100, true);
        assert_eq!(share.per_webhook(256, 32), INITIAL_IN_FLIGHT);
        // A claim for one free slot, or sixteen filled from two webhooks: many may
        // still have work.
        share.claimed(1, true);
        share.claimed(2, true);
        assert_eq!(share.per_webhook(256, 32), INITIAL_IN_FLIGHT);
        // A claim that found nothing says nothing.
        share.claimed(0, false);
        assert_eq!(share.per_webhook(256, 32), INITIAL_IN_FLIGHT);
    }
}
