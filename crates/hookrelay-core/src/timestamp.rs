//! Instants as microseconds since the Unix epoch, rendered as RFC 3339 UTC.

use std::fmt;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// An instant with microsecond precision, always UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1_000) as i64)
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

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-27T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let dt =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
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
    }
}
