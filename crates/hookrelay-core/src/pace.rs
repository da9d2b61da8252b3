//! Pacing a webhook's deliveries to its `maxDeliveriesPerSecond`, across every node: one
//! token bucket per webhook ([`crate::quota::TokenBucket`]), kept in the database and
//! debited by each claim that takes the webhook's deliveries, so every node draws from
//! the one bucket. The bucket holds at most one second's worth of tokens, so over any
//! window of `W` seconds at most `rate × W + rate` of the webhook's deliveries are
//! claimed. A claim takes at most the whole tokens there are; the bucket then says when
//! its next token is due, and claims pass the webhook over until then.

use crate::quota::{Refill, TokenBucket};
use crate::timestamp::Timestamp;

/// How a webhook's bucket fills at `rate` deliveries a second: a burst of one second's
/// worth at most.
pub fn refill(rate: u32) -> Refill {
    Refill { rate, burst: rate }
}

/// A webhook's bucket as the database keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBucket {
    /// Millionths of a token.
    pub millionths: i64,
    /// When they were counted.
    pub counted_at: Timestamp,
}

/// What a claim's debit of a webhook's bucket comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Debit {
    /// How many of the claimed deliveries may go out now; the others are given back.
    pub granted: u32,
    /// The bucket to store.
    pub bucket: StoredBucket,
    /// When the next whole token is there: claims pass the webhook over until then
    /// (the time it was counted, when a token is left).
    pub ready_at: Timestamp,
}

/// Debits the bucket `stored` (`None`: never used, so full) of a webhook paced at `rate`
/// a second for `wanted` deliveries claimed at `now`.
pub fn debit(stored: Option<StoredBucket>, rate: u32, wanted: u32, now: Timestamp) -> Debit {
    let refill = refill(rate);
    let mut bucket = match stored {
        Some(stored) => TokenBucket::restore(u64::try_from(stored.millionths).unwrap_or(0), stored.counted_at),
        None => TokenBucket::full(refill, now),
    };
    let granted = bucket.take_up_to(refill, wanted, now);
    let counted_at = bucket.counted_at();
    Debit {
        granted,
        bucket: StoredBucket {
            millionths: i64::try_from(bucket.millionths()).unwrap_or(i64::MAX),
            counted_at,
        },
        ready_at: counted_at.plus(bucket.wait(refill)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_795_860_000_000_000);
    const MS: i64 = 1_000;

    #[test]
    fn a_fresh_bucket_grants_one_seconds_worth_then_names_the_next_token() {
        let first = debit(None, 5, 8, NOW);
        assert_eq!(first.granted, 5, "a burst of one second's worth");
        assert_eq!(first.ready_at, NOW.plus_micros(200 * MS), "one token every 200 ms");
        // Too early: nothing, and the same next token.
        let early = debit(Some(first.bucket), 5, 3, NOW.plus_micros(100 * MS));
        assert_eq!(early.granted, 0);
        assert_eq!(early.ready_at, NOW.plus_micros(200 * MS));
        let on_time = debit(Some(early.bucket), 5, 3, NOW.plus_micros(200 * MS));
        assert_eq!(on_time.granted, 1);
        assert_eq!(on_time.ready_at, NOW.plus_micros(400 * MS));
    }

    #[test]
    fn a_claim_wanting_fewer_than_there_are_leaves_the_rest_ready() {
        let some = debit(None, 10, 4, NOW);
        assert_eq!(some.granted, 4);
        assert_eq!(some.ready_at, NOW, "tokens are left");
        assert_eq!(debit(Some(some.bucket), 10, 100, NOW).granted, 6);
    }

    #[test]
    fn any_window_sees_at_most_rate_times_its_length_plus_one_seconds_worth() {
        // Claims every 10 ms for 10 s, each wanting more than there is.
        let rate = 50;
        let mut stored = None;
        let mut grants = Vec::new();
        for tick in 0..1_000 {
            let now = NOW.plus_micros(tick * 10 * MS);
            let debit = debit(stored, rate, 1_000, now);
            stored = Some(debit.bucket);
            grants.push(debit.granted);
        }
        for window in [1, 10, 100, 1_000] {
            let most: u32 = grants.windows(window).map(|w| w.iter().sum()).max().unwrap_or(0);
            let bound = rate as usize * window / 100 + rate as usize;
            assert!(most as usize <= bound, "{window} ticks: {most} > {bound}");
        }
        let total: u32 = grants.iter().sum();
        assert!((rate * 10..=rate * 11).contains(&total), "{total}");
    }

    #[test]
    fn a_lowered_rate_shrinks_the_burst_and_a_stored_bucket_from_a_clock_ahead_holds() {
        let full = debit(None, 100, 0, NOW);
        let lowered = debit(Some(full.bucket), 2, 10, NOW);
        assert_eq!(lowered.granted, 2, "the burst is the new rate's");
        // Counted by a node whose clock runs ahead: this node's earlier time refills
        // nothing and waits for that node's next token.
        let ahead = debit(None, 2, 2, NOW.plus_micros(300 * MS));
        let behind = debit(Some(ahead.bucket), 2, 1, NOW);
        assert_eq!(behind.granted, 0);
        assert_eq!(behind.ready_at, NOW.plus_micros(800 * MS));
    }
}
