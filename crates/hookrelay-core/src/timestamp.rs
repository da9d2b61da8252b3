//! Instants as microseconds since the Unix epoch, rendered as RFC 3339 UTC.

use std::fmt;
use std::time::Duration;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// `0000-01-01T00:00:00.000000Z`, the first instant RFC 3339 can write.
const RFC3339_FIRST_MICROS: i64 = -62_167_219_200_000_000;
/// `9999-12-31T23:59:59.999999Z`, the last.
const RFC3339_LAST_MICROS: i64 = 253_402_300_799_999_999;

/// An instant with microsecond precision, always UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self(i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX))
    }

    /// From microseconds since the epoch, as stored.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch, as stored.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn as_unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// This instant moved by `micros` (negative moves back).
    pub const fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// This instant moved forward by `duration`, stopping at the last representable
    /// instant: a configured delay of any length lands in the future, never wraps
    /// into the past.
    pub fn plus(self, duration: Duration) -> Self {
        Self::from_wide(i128::from(self.0).saturating_add(wide_micros(duration)))
    }

    /// This instant moved back by `duration`, stopping at the first representable instant.
    pub fn minus(self, duration: Duration) -> Self {
        Self::from_wide(i128::from(self.0).saturating_sub(wide_micros(duration)))
    }

    fn from_wide(micros: i128) -> Self {
        Self(i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX }))
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        let micros = i128::from(self.0) - i128::from(earlier.0);
        Duration::from_micros(u64::try_from(micros.max(0)).unwrap_or(u64::MAX))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-27T10:00:00.000Z`.
    /// Instants beyond RFC 3339's four-digit years render as the nearest one it can
    /// show (years 0000 and 9999), so a far-future time never reads as a past one.
    pub fn to_rfc3339(self) -> String {
        let micros = self.0.clamp(RFC3339_FIRST_MICROS, RFC3339_LAST_MICROS);
        let dt =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let millis = dt.millisecond();
        // Rfc3339 would print a variable number of fraction digits; receivers and
        // clients are happier with a fixed width.
        let base = dt
            .replace_nanosecond(0)
            .unwrap_or(dt)
            .format(&Rfc3339)
            .unwrap_or_default();
        let without_z = base.trim_end_matches('Z');
        format!("{without_z}.{millis:03}Z")
    }
}

impl Timestamp {
    /// Parses an RFC 3339 date-time with an offset (`2026-11-27T10:00:00Z`,
    /// `2026-11-27T11:00:00.5+01:00`), to the microsecond; `None` otherwise.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(parsed.unix_timestamp_nanos() / 1_000).ok().map(Self)
    }
}

/// A duration in whole microseconds, `i64::MAX` if it has more.
pub fn saturating_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn wide_micros(duration: Duration) -> i128 {
    i128::try_from(duration.as_micros()).unwrap_or(i128::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fixed_width_utc() {
        assert_eq!(Timestamp::from_micros(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::from_micros(1_795_860_000_123_456).to_rfc3339(),
            "2026-11-28T10:00:00.123Z"
        );
        assert_eq!(
            Timestamp::from_micros(i64::MAX).to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_micros(i64::MIN).to_rfc3339(),
            "0000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_rfc3339_with_any_offset() {
        let at = Timestamp::parse_rfc3339("2026-11-28T10:00:00.123Z").unwrap();
        assert_eq!(at, Timestamp::from_micros(1_795_860_000_123_000));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-28T11:00:00.123+01:00"), Some(at));
        assert_eq!(Timestamp::parse_rfc3339(&at.to_rfc3339()), Some(at));
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T10:00:00",
            "tomorrow",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    const YEAR: Duration = Duration::from_secs(365 * 86_400);

    #[test]
    fn plus_saturates_at_the_far_future() {
        let now = Timestamp::from_micros(1_795_860_000_000_000);
        assert_eq!(
            now.plus(Duration::from_secs(1)).as_micros(),
            now.as_micros() + 1_000_000
        );
        assert_eq!(now.plus(Duration::ZERO), now);
        // 10,000 years is about 3.2e17 µs: it fits, and lands ten millennia ahead.
        let far = now.plus(YEAR * 10_000);
        assert_eq!(far.as_micros(), now.as_micros() + 10_000 * 365 * 86_400 * 1_000_000);
        // Durations past i64's microseconds (u64 seconds, u128 microseconds) saturate.
        for huge in [YEAR * 1_000_000, Duration::from_secs(u64::MAX), Duration::MAX] {
            assert_eq!(now.plus(huge), Timestamp::from_micros(i64::MAX), "{huge:?}");
            assert!(now.plus(huge) > now);
        }
        assert_eq!(
            Timestamp::from_micros(i64::MAX)
                .plus(Duration::from_micros(1))
                .as_micros(),
            i64::MAX
        );
        assert_eq!(saturating_micros(Duration::MAX), i64::MAX);
        assert_eq!(saturating_micros(Duration::from_micros(7)), 7);
    }

    #[test]
    fn minus_saturates_at_the_far_past() {
        let now = Timestamp::from_micros(1_795_860_000_000_000);
        assert_eq!(
            now.minus(Duration::from_secs(1)).as_micros(),
            now.as_micros() - 1_000_000
        );
        assert_eq!(now.minus(Duration::MAX), Timestamp::from_micros(i64::MIN));
        assert!(now.minus(YEAR * 10_000) < now);
    }

    #[test]
    fn duration_since_is_never_negative() {
        let earlier = Timestamp::from_micros(1_000);
        let later = Timestamp::from_micros(3_500);
        assert_eq!(later.duration_since(earlier), Duration::from_micros(2_500));
        assert_eq!(earlier.duration_since(later), Duration::ZERO);
        assert_eq!(
            Timestamp::from_micros(i64::MAX).duration_since(Timestamp::from_micros(i64::MIN)),
            Duration::from_micros(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_micros(i64::MIN).duration_since(Timestamp::from_micros(i64::MAX)),
            Duration::ZERO
        );
    }
}
