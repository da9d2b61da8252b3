//! Quotas: what one space may use, so that it cannot hurt the others. Each has a
//! default (a setting) and may be set per space by an operator; the decisions here are
//! the ones the store and the API carry out.

use std::fmt;
use std::time::Duration;

use crate::timestamp::Timestamp;

/// A quota, by the name of its setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    /// Webhooks a space may have.
    WebhooksPerSpace,
    /// Publishes a space may make per second on one node (a token bucket with a burst
    /// of twice the rate).
    PublishRate,
    /// Deliveries one publish may create.
    FanOut,
}

impl Quota {
    /// Its setting's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebhooksPerSpace => "max_webhooks_per_space",
            Self::PublishRate => "max_publish_rate",
            Self::FanOut => "max_fan_out",
        }
    }
}

/// The quotas a space works within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Webhooks per space.
    pub max_webhooks: u32,
    /// Publishes per second per node; bursts of twice as many.
    pub max_publish_rate: u32,
    /// Deliveries per publish.
    pub max_fan_out: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_webhooks: 100,
            max_publish_rate: 100,
            max_fan_out: 1_000,
        }
    }
}

/// A space's own quotas, where an operator set them; the others are the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaOverrides {
    /// See [`Quotas::max_webhooks`].
    pub max_webhooks: Option<u32>,
    /// See [`Quotas::max_publish_rate`].
    pub max_publish_rate: Option<u32>,
    /// See [`Quotas::max_fan_out`].
    pub max_fan_out: Option<u32>,
}

impl QuotaOverrides {
    /// The quotas in force: these where set, `defaults` elsewhere.
    pub fn over(&self, defaults: &Quotas) -> Quotas {
        Quotas {
            max_webhooks: self.max_webhooks.unwrap_or(defaults.max_webhooks),
            max_publish_rate: self.max_publish_rate.unwrap_or(defaults.max_publish_rate),
            max_fan_out: self.max_fan_out.unwrap_or(defaults.max_fan_out),
        }
    }
}

/// A request that would take a space past a quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct QuotaExceeded {
    /// Which.
    pub quota: Quota,
    /// Its value for the space.
    pub limit: u32,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (quota, limit) = (self.quota.name(), self.limit);
        match self.quota {
            Quota::WebhooksPerSpace => write!(
                f,
                "the space already has {limit} webhooks, its quota {quota} = {limit}; delete one, or ask an \
                 operator to raise the quota"
            ),
            Quota::PublishRate => write!(
                f,
                "the space publishes more than its quota {quota} = {limit} events per second allows; retry after \
                 the time Retry-After gives"
            ),
            Quota::FanOut => write!(
                f,
                "this event has more subscribed webhooks than the space's quota {quota} = {limit} deliveries per \
                 publish; nothing was stored"
            ),
        }
    }
}

/// Whether a space with `existing` webhooks may have one more.
pub fn check_webhooks(existing: u64, limit: u32) -> Result<(), QuotaExceeded> {
    match existing < u64::from(limit) {
        true => Ok(()),
        false => Err(QuotaExceeded {
            quota: Quota::WebhooksPerSpace,
            limit,
        }),
    }
}

/// Whether a publish may create a delivery for each of `subscribers` webhooks.
pub fn check_fan_out(subscribers: usize, limit: u32) -> Result<(), QuotaExceeded> {
    match u64::try_from(subscribers).is_ok_and(|n| n <= u64::from(limit)) {
        true => Ok(()),
        false => Err(QuotaExceeded {
            quota: Quota::FanOut,
            limit,
        }),
    }
}

/// One token, in the millionths a bucket counts in: a second at rate `r` adds `r`
/// tokens, `r × ONE` millionths per second, one per microsecond per unit of rate, so
/// refills are exact.
const ONE: u128 = 1_000_000;

/// How a token bucket fills: `rate` tokens a second, holding at most `burst` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refill {
    /// Tokens added a second.
    pub rate: u32,
    /// Tokens the bucket holds at most.
    pub burst: u32,
}

impl Refill {
    /// A space's publish bucket: bursts of twice its rate.
    pub fn publish(rate: u32) -> Self {
        Self {
            rate,
            burst: rate.saturating_mul(2),
        }
    }

    fn capacity(self) -> u128 {
        u128::from(self.burst) * ONE
    }
}

/// A token bucket. A space's publish bucket ([`TokenBucket::take`]) gets `rate` tokens a
/// second, holding at most twice as many, so a space may publish a burst of `2 × rate`
/// and `rate` a second after; other buckets say how they fill with a [`Refill`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Millionths of a token.
    credit: u128,
    /// When `credit` was counted.
    at: Timestamp,
}

impl TokenBucket {
    /// A full publish bucket at `now`.
    pub fn new(rate: u32, now: Timestamp) -> Self {
        Self::full(Refill::publish(rate), now)
    }

    /// A full bucket at `now`.
    pub fn full(refill: Refill, now: Timestamp) -> Self {
        Self {
            credit: refill.capacity(),
            at: now,
        }
    }

    /// A bucket as stored: `millionths` of a token counted at `at`.
    pub fn restore(millionths: u64, at: Timestamp) -> Self {
        Self {
            credit: u128::from(millionths),
            at,
        }
    }

    /// The millionths of a token it holds, as last counted (to store it).
    pub fn millionths(&self) -> u64 {
        u64::try_from(self.credit).unwrap_or(u64::MAX)
    }

    /// When its credit was last counted.
    pub fn counted_at(&self) -> Timestamp {
        self.at
    }

    /// Takes a publish token at `now` at `rate` a second (which may have changed since
    /// the last call), or says how long until one is there.
    pub fn take(&mut self, rate: u32, now: Timestamp) -> Result<(), Duration> {
        let refill = Refill::publish(rate);
        match self.take_up_to(refill, 1, now) {
            1 => Ok(()),
            _ => Err(self.wait(refill)),
        }
    }

    /// Takes as many whole tokens as there are at `now`, up to `wanted`, and says how
    /// many it took. The refill may have changed since the last call: the credit never
    /// exceeds the current burst.
    pub fn take_up_to(&mut self, refill: Refill, wanted: u32, now: Timestamp) -> u32 {
        let elapsed = now.duration_since(self.at).as_micros();
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(u128::from(refill.rate)))
            .min(refill.capacity());
        self.at = self.at.max(now);
        let taken = (self.credit / ONE).min(u128::from(wanted));
        self.credit -= taken * ONE;
        u32::try_from(taken).unwrap_or(u32::MAX)
    }

    /// How long after it was counted until a whole token is there: zero if one is,
    /// `Duration::MAX` if none ever comes.
    pub fn wait(&self, refill: Refill) -> Duration {
        if self.credit >= ONE {
            return Duration::ZERO;
        }
        match refill.rate {
            0 => Duration::MAX,
            rate => {
                let micros = (ONE - self.credit).div_ceil(u128::from(rate));
                Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_795_860_000_000_000);
    const MS: i64 = 1_000;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let defaults = Quotas::default();
        assert_eq!(QuotaOverrides::default().over(&defaults), defaults);
        let some = QuotaOverrides {
            max_publish_rate: Some(5),
            ..QuotaOverrides::default()
        };
        assert_eq!(
            some.over(&defaults),
            Quotas {
                max_publish_rate: 5,
                ..defaults
            }
        );
    }

    #[test]
    fn the_webhook_quota_allows_up_to_its_value() {
        assert_eq!(check_webhooks(0, 1), Ok(()));
        assert_eq!(check_webhooks(99, 100), Ok(()));
        let exceeded = check_webhooks(100, 100).unwrap_err();
        assert_eq!(exceeded.quota, Quota::WebhooksPerSpace);
        let message = exceeded.to_string();
        assert!(message.contains("max_webhooks_per_space = 100"), "{message}");
        assert!(check_webhooks(u64::MAX, u32::MAX).is_err());
    }

    #[test]
    fn the_fan_out_quota_allows_up_to_its_value() {
        assert_eq!(check_fan_out(0, 0), Ok(()));
        assert_eq!(check_fan_out(1_000, 1_000), Ok(()));
        let exceeded = check_fan_out(1_001, 1_000).unwrap_err();
        assert!(exceeded.to_string().contains("max_fan_out = 1000"), "{exceeded}");
    }

    #[test]
    fn a_bucket_allows_a_burst_of_twice_the_rate_then_the_rate() {
        let mut bucket = TokenBucket::new(10, NOW);
        for i in 0..20 {
            assert_eq!(bucket.take(10, NOW), Ok(()), "take {i} of the burst");
        }
        let wait = bucket.take(10, NOW).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // 100 ms later, one more; half of that, none.
        assert!(bucket.take(10, NOW.plus_micros(50 * MS)).is_err());
        assert_eq!(bucket.take(10, NOW.plus_micros(100 * MS)), Ok(()));
        assert!(bucket.take(10, NOW.plus_micros(100 * MS)).is_err());
        // A second later, ten; never more than the burst however long it rested.
        let later = NOW.plus_micros(1_100 * MS);
        for _ in 0..10 {
            assert_eq!(bucket.take(10, later), Ok(()));
        }
        assert!(bucket.take(10, later).is_err());
        let rested = later.plus_micros(3_600_000 * MS);
        let taken = (0..100).take_while(|_| bucket.take(10, rested).is_ok()).count();
        assert_eq!(taken, 20);
    }

    #[test]
    fn a_bucket_follows_a_changed_rate_and_a_clock_that_steps_back() {
        let mut bucket = TokenBucket::new(100, NOW);
        assert_eq!(bucket.take(1, NOW), Ok(()), "the bucket is full");
        // Lowered to 1 a second: the burst shrinks to 2, one of which was just taken.
        assert_eq!(bucket.take(1, NOW), Ok(()));
        assert_eq!(bucket.take(1, NOW).unwrap_err(), Duration::from_secs(1));
        // Time going backwards refills nothing and breaks nothing.
        assert!(bucket.take(1, NOW.plus_micros(-10_000 * MS)).is_err());
        assert_eq!(bucket.take(1, NOW.plus_micros(1_000 * MS)), Ok(()));
    }
}
