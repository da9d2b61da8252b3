//! Setting types that parse once, from a flag, a variable or the config file alike:
//! each reads and writes the text an operator types (`15s`, `0s,5s,5m`), so a value
//! round-trips between clap, the file and the layering.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hookrelay_core::delivery::{parse_duration, RetrySchedule};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A setting that must not be shown: a password-bearing URL, a key, a token. Its
/// `Debug` and `Display` print a placeholder; only [`Secret::expose`] gives the text.
/// It serializes in clear, for layering settings; never serialize it into output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The text, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A duration longer than zero, written `500ms`, `15s`, `5m`, `2h` or `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositiveDuration(Duration);

impl PositiveDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for PositiveDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text.trim())
            .filter(|d| !d.is_zero())
            .map(Self)
            .ok_or_else(|| format!("{text:?} is not a positive duration such as 500ms, 15s, 5m"))
    }
}

impl fmt::Display for PositiveDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_duration(f, self.0)
    }
}

/// Delays before successive attempts, written `0s,5s,5m`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(RetrySchedule);

impl Schedule {
    /// The schedule.
    pub fn get(&self) -> &RetrySchedule {
        &self.0
    }
}

impl From<RetrySchedule> for Schedule {
    fn from(schedule: RetrySchedule) -> Self {
        Self(schedule)
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RetrySchedule::parse(text).map(Self).map_err(|e| e.to_string())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for number in 1..=self.0.attempts() {
            if number > 1 {
                f.write_str(",")?;
            }
            write_duration(f, self.0.delay_before(number).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// `duration` in the largest unit up to hours that keeps it whole, as
/// [`parse_duration`] reads it (hours rather than days, as schedules are written).
fn write_duration(f: &mut fmt::Formatter<'_>, duration: Duration) -> fmt::Result {
    let millis = duration.as_millis();
    let units = [("h", 3_600_000), ("m", 60_000), ("s", 1_000)];
    match units
        .iter()
        .find(|(_, size)| millis > 0 && millis.is_multiple_of(*size))
    {
        Some((unit, size)) => write!(f, "{}{unit}", millis / size),
        None if millis == 0 => f.write_str("0s"),
        None => write!(f, "{millis}ms"),
    }
}

/// Serde through the operator's text, so the file holds what a flag would.
macro_rules! serde_as_text {
    ($($type:ty),*) => {$(
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?.parse().map_err(de::Error::custom)
            }
        }
    )*};
}

serde_as_text!(PositiveDuration, Schedule);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_the_same_text() {
        for text in ["500ms", "1500ms", "15s", "90s", "5m", "6h", "72h"] {
            let duration: PositiveDuration = text.parse().unwrap();
            assert_eq!(duration.to_string(), text);
        }
        assert_eq!("120s".parse::<PositiveDuration>().unwrap().to_string(), "2m");
        assert_eq!("3d".parse::<PositiveDuration>().unwrap().to_string(), "72h");
        assert_eq!(
            "15s".parse::<PositiveDuration>().unwrap().get(),
            Duration::from_secs(15)
        );
    }

    #[test]
    fn zero_and_malformed_durations_are_refused() {
        for text in ["0s", "0ms", "", "15", "s", "1.5s", "-1s", "15 sec"] {
            let error = text.parse::<PositiveDuration>().unwrap_err();
            assert!(error.contains("not a positive duration"), "{text:?}: {error}");
        }
    }

    #[test]
    fn schedules_read_and_write_the_same_text() {
        let text = "0s,5s,5m,30m,2h,5h,10h,14h,20h,24h";
        let schedule: Schedule = text.parse().unwrap();
        assert_eq!(schedule.get(), &RetrySchedule::default());
        assert_eq!(schedule.to_string(), text);
        assert!("0s,soon".parse::<Schedule>().is_err());
    }

    #[test]
    fn schedules_follow_the_rule_a_webhooks_own_schedule_follows() {
        // The bounds `retrySchedule` is checked against (webhook_settings::limits).
        assert!("0s,7d".parse::<Schedule>().is_ok());
        let error = "0s,8d".parse::<Schedule>().unwrap_err();
        assert!(error.contains("at most 7d"), "{error}");
        let fifty_one = vec!["1s"; 51].join(",");
        assert!(fifty_one.parse::<Schedule>().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret: Secret = "pw-secret".parse().unwrap();
        assert_eq!(secret.expose(), "pw-secret");
        assert!(!format!("{secret} {secret:?} {:?}", Some(&secret)).contains("pw-secret"));
    }
}
