//! Time arithmetic that never panics, whatever durations a caller (or a
//! config file) hands in: sums saturate, products clamp.

use std::time::Duration;

use tokio::time::Instant;

/// About a century: the farthest future tasktrack schedules anything.
pub(crate) const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `at + d`, saturating at [`FAR`] past `at` (an `Instant` sum can
/// overflow and panic).
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d.min(FAR))
        .or_else(|| at.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(at)
}

/// `d × factor`, clamped to `0..=FAR`; a NaN or negative factor gives 0.
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    if !factor.is_finite() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor)
        .unwrap_or(FAR)
        .min(FAR)
}

/// `now + d` in wall-clock time, saturating instead of panicking.
pub(crate) fn wall_after(
    now: chrono::DateTime<chrono::Utc>,
    d: Duration,
) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(d.min(FAR))
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_and_odd_values_never_panic() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now);
        assert_eq!(scale(Duration::from_secs(2), 1.5), Duration::from_secs(3));
        assert_eq!(scale(Duration::MAX, 1e300), FAR);
        assert_eq!(scale(Duration::from_secs(1), f64::NAN), Duration::ZERO);
        assert_eq!(scale(Duration::from_secs(1), -3.0), Duration::ZERO);
        let w = chrono::Utc::now();
        assert!(wall_after(w, Duration::MAX) > w);
    }
}
