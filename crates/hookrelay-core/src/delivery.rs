//! Delivery rules, as pure functions: what an attempt's outcome means and when the next
//! attempt is due. The engine that performs attempts lives in the server; everything it
//! decides is decided here, where it can be tested without a clock or a network.

use std::fmt;
use std::time::Duration;

use crate::id::{DeliveryId, EventId, SpaceId, WebhookId};
use crate::timestamp::Timestamp;

/// One event's delivery to one webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `dlv-…`.
    pub id: DeliveryId,
    /// The owning space.
    pub space_id: SpaceId,
    /// The receiving webhook.
    pub webhook_id: WebhookId,
    /// The delivered event.
    pub event_id: EventId,
    /// Its name.
    pub event_name: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempt_count: u32,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_time: Option<Timestamp>,
    /// When it was created.
    pub create_time: Timestamp,
    /// When it last changed.
    pub update_time: Timestamp,
}

/// One attempt, as the attempt log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt, then 2, 3, …
    pub attempt: u32,
    /// When the request started.
    pub start_time: Timestamp,
    /// How long it took, in milliseconds.
    pub duration_ms: u32,
    /// The status received, if any.
    pub status_code: Option<u16>,
    /// Why it failed, if it did.
    pub error_kind: Option<ErrorKind>,
    /// The first bytes of the response body (at most [`RESPONSE_BODY_KEPT`]).
    pub response_body: Option<String>,
}

/// How much of a response body the attempt log keeps.
pub const RESPONSE_BODY_KEPT: usize = 1024;

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Succeeded,
    /// Every scheduled attempt failed (or the receiver answered 410).
    Failed,
    /// Its webhook was disabled or deleted before it was sent.
    Cancelled,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 4] = [Self::Pending, Self::Succeeded, Self::Failed, Self::Cancelled];

    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// From the wire and database name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why an attempt failed without (or despite) an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The receiver answered, with a status other than 2xx.
    HttpStatus,
    /// No complete answer within the attempt timeout.
    Timeout,
    /// The connection was refused, reset or could not be made in time.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The target resolved only to addresses deliveries may not reach.
    BlockedAddress,
    /// Anything else that broke the request.
    Request,
}

impl ErrorKind {
    /// The attempt log's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpStatus => "http_status",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::BlockedAddress => "blocked_address",
            Self::Request => "request",
        }
    }
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 7] = [
        Self::HttpStatus,
        Self::Timeout,
        Self::Connect,
        Self::Dns,
        Self::Tls,
        Self::BlockedAddress,
        Self::Request,
    ];

    /// From the attempt log's name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The retry schedule: the delay before each attempt, the first usually zero.
/// Its length is the number of attempts a delivery gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// A schedule that does not parse or breaks a bound ([`RetrySchedule::ATTEMPTS_MAX`],
/// [`RetrySchedule::DELAY_MAX`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid retry schedule {0:?}: expected 1 to 50 comma-separated durations of at most 7d, such as `0s,5s,5m,30m,2h`"
)]
pub struct InvalidSchedule(pub String);

/// Why one delay of a schedule is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidDelay {
    /// Not a duration such as `500ms`, `5s`, `5m`, `2h` or `1d`.
    Format,
    /// Longer than [`RetrySchedule::DELAY_MAX`].
    Range,
}

impl Default for RetrySchedule {
    /// Standard Webhooks' schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h, 14 h, 20 h and 24 h (about three days in all).
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        Self(
            [
                0,
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                14 * HOUR,
                20 * HOUR,
                24 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        )
    }
}

impl RetrySchedule {
    /// The most attempts a schedule may give a delivery. One rule for the server's
    /// schedule and a webhook's own.
    pub const ATTEMPTS_MAX: usize = 50;
    /// The longest delay before an attempt (7 days).
    pub const DELAY_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Parses `0s,1s,500ms,5m,2h,1d`: 1 to [`Self::ATTEMPTS_MAX`] delays, each
    /// [`Self::delay`].
    pub fn parse(text: &str) -> Result<Self, InvalidSchedule> {
        let delays = text
            .split(',')
            .map(|part| Self::delay(part.trim()).ok())
            .collect::<Option<Vec<_>>>()
            .filter(|d| (1..=Self::ATTEMPTS_MAX).contains(&d.len()))
            .ok_or_else(|| InvalidSchedule(text.to_owned()))?;
        Ok(Self(delays))
    }

    /// One delay of a schedule: a duration of at most [`Self::DELAY_MAX`].
    pub fn delay(text: &str) -> Result<Duration, InvalidDelay> {
        let delay = parse_duration(text).ok_or(InvalidDelay::Format)?;
        match delay <= Self::DELAY_MAX {
            true => Ok(delay),
            false => Err(InvalidDelay::Range),
        }
    }

    /// How many attempts a delivery gets.
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32
    }

    /// The delay before attempt `number` (1-based), if the schedule has one.
    pub fn delay_before(&self, number: u32) -> Option<Duration> {
        self.0.get(number.checked_sub(1)? as usize).copied()
    }
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => number,
        "s" => number.checked_mul(1_000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        "d" => number.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// Where a retried delivery goes (by hand, `POST …/retry`, or by a recovery): pending
/// and due at `now`, keeping its attempt count, so it gets one more attempt and the
/// schedule's remaining ones. `None` when its event's data was removed (expired or
/// erased): there is nothing left to send.
pub fn requeue(data_removed: bool, now: Timestamp) -> Option<Requeue> {
    (!data_removed).then_some(Requeue {
        status: DeliveryStatus::Pending,
        next_attempt_time: now,
    })
}

/// A retried delivery's new state ([`requeue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requeue {
    /// Always [`DeliveryStatus::Pending`].
    pub status: DeliveryStatus,
    /// When its next attempt is due (and its update time).
    pub next_attempt_time: Timestamp,
}

/// What one attempt produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx status.
    Succeeded,
    /// `410 Gone`: the receiver says the endpoint no longer exists.
    Gone,
    /// Any other failure; `retry_after` is what a 429 or 503 asked for.
    Failed {
        /// Delay the receiver asked for, already capped.
        retry_after: Option<Duration>,
    },
}

/// The longest `Retry-After` honoured.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// Where a delivery goes after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Done.
    Succeeded,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// No more attempts (schedule exhausted, or 410); also disables the webhook when `disable_webhook`.
    Failed {
        /// The receiver answered 410.
        disable_webhook: bool,
    },
}

/// Decides the next step after attempt `number` (1-based) finished at `now`.
/// `jitter` is a factor in `[0.9, 1.1]` applied to the scheduled delay.
pub fn next_step(
    schedule: &RetrySchedule,
    number: u32,
    outcome: AttemptOutcome,
    now: Timestamp,
    jitter: f64,
) -> NextStep {
    match outcome {
        AttemptOutcome::Succeeded => NextStep::Succeeded,
        AttemptOutcome::Gone => NextStep::Failed { disable_webhook: true },
        AttemptOutcome::Failed { retry_after } => match schedule.delay_before(number.saturating_add(1)) {
            None => NextStep::Failed { disable_webhook: false },
            Some(delay) => {
                // `Duration::mul_f64` panics past `Duration::MAX`; this saturates instead.
                let jittered =
                    Duration::try_from_secs_f64(delay.as_secs_f64() * jitter.clamp(0.9, 1.1)).unwrap_or(Duration::MAX);
                let wait = retry_after.map_or(jittered, |asked| jittered.max(asked.min(RETRY_AFTER_MAX)));
                NextStep::RetryAt(now.plus(wait))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_spans_about_three_days() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 10);
        let total: Duration = (1..=10).filter_map(|n| schedule.delay_before(n)).sum();
        assert!(total > Duration::from_secs(3 * 86_400) && total < Duration::from_secs(4 * 86_400));
    }

    #[test]
    fn parses_schedules() {
        let schedule = RetrySchedule::parse("0s, 1s,500ms,5m,2h,1d").unwrap();
        assert_eq!(schedule.attempts(), 6);
        assert_eq!(schedule.delay_before(3), Some(Duration::from_millis(500)));
        assert_eq!(schedule.delay_before(6), Some(Duration::from_secs(86_400)));
        assert_eq!(schedule.delay_before(7), None);
        for bad in ["", "1", "1x", "s", "1s,,2s", "-1s", "0s,8d"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RetrySchedule::parse("0s,7d").is_ok(), "seven days is the longest delay");
        let fifty = vec!["1s"; 50].join(",");
        assert_eq!(RetrySchedule::parse(&fifty).unwrap().attempts(), 50);
        assert!(RetrySchedule::parse(&format!("{fifty},1s")).is_err(), "51 attempts");
    }

    #[test]
    fn a_retry_requeues_unless_the_data_is_gone() {
        let now = Timestamp::from_micros(7);
        let requeued = requeue(false, now).unwrap();
        assert_eq!(requeued.status, DeliveryStatus::Pending);
        assert_eq!(requeued.next_attempt_time, now);
        assert_eq!(requeue(true, now), None);
    }

    #[test]
    fn next_steps() {
        let schedule = RetrySchedule::parse("0s,10s,20s").unwrap();
        let now = Timestamp::from_micros(0);
        let failed = AttemptOutcome::Failed { retry_after: None };
        assert_eq!(
            next_step(&schedule, 1, AttemptOutcome::Succeeded, now, 1.0),
            NextStep::Succeeded
        );
        assert_eq!(
            next_step(&schedule, 1, failed, now, 1.0),
            NextStep::RetryAt(Timestamp::from_micros(10_000_000))
        );
        assert_eq!(
            next_step(&schedule, 2, failed, now, 1.1),
            NextStep::RetryAt(Timestamp::from_micros(22_000_000))
        );
        assert_eq!(
            next_step(&schedule, 2, failed, now, 5.0),
            NextStep::RetryAt(Timestamp::from_micros(22_000_000))
        );
        assert_eq!(
            next_step(&schedule, 3, failed, now, 1.0),
            NextStep::Failed { disable_webhook: false }
        );
        assert_eq!(
            next_step(&schedule, 1, AttemptOutcome::Gone, now, 1.0),
            NextStep::Failed { disable_webhook: true }
        );
        // Retry-After postpones but never hastens, and is capped at 24 h.
        let asked = |secs| AttemptOutcome::Failed {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            next_step(&schedule, 1, asked(30), now, 1.0),
            NextStep::RetryAt(Timestamp::from_micros(30_000_000))
        );
        assert_eq!(
            next_step(&schedule, 1, asked(3), now, 1.0),
            NextStep::RetryAt(Timestamp::from_micros(10_000_000))
        );
        assert_eq!(
            next_step(&schedule, 1, asked(10 * 86_400), now, 1.0),
            NextStep::RetryAt(Timestamp::from_micros(86_400_000_000))
        );
    }

    #[test]
    fn huge_delays_land_in_the_far_future() {
        let now = Timestamp::from_micros(1_795_860_000_000_000);
        let failed = AttemptOutcome::Failed { retry_after: None };
        // Past what a schedule may say, built directly: `next_step` must not wrap
        // whatever it is given.
        let unbounded = |text: &str| RetrySchedule(text.split(',').map(|d| parse_duration(d).unwrap()).collect());
        let retry_at = |schedule: &str, jitter| match next_step(&unbounded(schedule), 1, failed, now, jitter) {
            NextStep::RetryAt(at) => at,
            other => panic!("{schedule}: {other:?}"),
        };
        // 10,000 years, with and without jitter: ten millennia ahead, not wrapped.
        let ten_millennia = 10_000 * 365 * 86_400 * 1_000_000_i64;
        assert_eq!(retry_at("0s,3650000d", 1.0), now.plus_micros(ten_millennia));
        assert!(retry_at("0s,3650000d", 1.1) > now.plus_micros(ten_millennia));
        assert!(retry_at("0s,3650000d", 0.9) > now.plus_micros(ten_millennia / 10 * 9 - 1));
        // The largest schedule that parses: u64::MAX milliseconds (about 585 million years)
        // is past i64's microseconds, so it saturates at the last instant.
        let largest = format!("0s,{}ms", u64::MAX);
        for jitter in [0.9, 1.0, 1.1] {
            assert_eq!(retry_at(&largest, jitter), Timestamp::from_micros(i64::MAX), "{jitter}");
        }
    }
}
