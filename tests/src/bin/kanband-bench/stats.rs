//! Latency samples and their percentiles.
//!
//! A sorted `Vec` of microseconds: the scenarios take at most a few hundred thousand samples,
//! so sorting once at the end is cheap and exact, and no histogram crate is needed.

use std::time::Duration;

/// Latency samples, in microseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples {
    micros: Vec<u64>,
}

/// Percentiles of a set of samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Number of samples.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50_us: u64,
    /// 99th percentile.
    pub(crate) p99_us: u64,
    /// Largest.
    pub(crate) max_us: u64,
}

impl Samples {
    /// Adds one sample.
    pub(crate) fn push(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other`.
    pub(crate) fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    /// The percentiles (nearest rank), or `None` without samples.
    pub(crate) fn summary(&self) -> Option<Summary> {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let last = sorted.last().copied()?;
        Some(Summary {
            count: sorted.len() as u64,
            p50_us: nearest_rank(&sorted, 0.50),
            p99_us: nearest_rank(&sorted, 0.99),
            max_us: last,
        })
    }
}

/// The smallest sample with at least `q` of the samples at or below it.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// `p50 a ms, p99 b ms, max c ms (n samples)`, for notes.
    pub(crate) fn describe(&self) -> String {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms ({} samples)",
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.count
        )
    }
}

/// Microseconds as milliseconds with three decimals.
pub(crate) fn ms(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples = Samples::default();
        assert!(samples.summary().is_none());
        for us in 1..=100 {
            samples.push(Duration::from_micros(us));
        }
        let summary = samples.summary().expect("samples");
        assert_eq!(
            summary,
            Summary {
                count: 100,
                p50_us: 50,
                p99_us: 99,
                max_us: 100
            }
        );
        let mut one = Samples::default();
        one.push(Duration::from_micros(7));
        let summary = one.summary().expect("one sample");
        assert_eq!((summary.p50_us, summary.p99_us, summary.max_us), (7, 7, 7));
    }
}
