//! Latency percentiles. Nearest-rank on the sorted samples: no interpolation, so every
//! figure reported is a latency that was actually measured.

use serde::Serialize;

/// Percentiles of a set of samples, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// `None` when there are no samples.
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        Some(Self {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: samples[samples.len() - 1],
        })
    }
}

/// `count / secs`, or 0 when no time passed.
pub fn rate(count: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// A duration in milliseconds, as the reports give latencies.
pub fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(samples).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        let p = Percentiles::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (2.0, 3.0, 3.0, 3.0));
        assert_eq!(Percentiles::of(Vec::new()), None);
    }
}
