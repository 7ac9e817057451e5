//! How late polls run against their due time, kept as a fixed-bucket
//! histogram so [`TrackerStats`](super::TrackerStats) stays a plain copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds of the buckets, in milliseconds; the last bucket holds
/// everything later.
pub const LAG_BUCKETS_MS: [u64; 13] =
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];

/// Polls counted by how late they ran: `counts[i]` polls ran at most
/// `LAG_BUCKETS_MS[i]` ms after their due time (and more than the bucket
/// before); `counts[13]` ran later than 10 s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagHistogram {
    /// Polls per bucket.
    pub counts: [u64; 14],
}

impl LagHistogram {
    /// Polls counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket bound under which at least `q` (0 to 1) of the polls ran:
    /// an upper estimate of that quantile. `None` with no polls counted, or
    /// when the quantile lies past the last bound (more than 10 s late).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let wanted = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return LAG_BUCKETS_MS.get(i).map(|ms| Duration::from_millis(*ms));
            }
        }
        None
    }
}

#[derive(Default)]
pub(super) struct LagCounters([AtomicU64; 14]);

impl LagCounters {
    pub(super) fn record(&self, lag: Duration) {
        let ms = lag.as_millis();
        let bucket = LAG_BUCKETS_MS
            .iter()
            .position(|bound| ms <= u128::from(*bound))
            .unwrap_or(LAG_BUCKETS_MS.len());
        self.0[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> LagHistogram {
        LagHistogram {
            counts: std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_land_in_their_buckets_and_quantiles_read_bounds() {
        let c = LagCounters::default();
        assert_eq!(c.snapshot().quantile(0.99), None);
        for _ in 0..98 {
            c.record(Duration::from_micros(300));
        }
        c.record(Duration::from_millis(150));
        c.record(Duration::from_secs(60));
        let h = c.snapshot();
        assert_eq!(h.total(), 100);
        assert_eq!(h.counts[0], 98);
        assert_eq!(h.counts[7], 1, "150 ms is in the 200 ms bucket");
        assert_eq!(h.counts[13], 1, "a minute is past the last bound");
        assert_eq!(h.quantile(0.5), Some(Duration::from_millis(1)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_millis(200)));
        assert_eq!(h.quantile(1.0), None, "the latest is past 10 s");
    }
}
