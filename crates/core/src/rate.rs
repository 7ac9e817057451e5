//! Request-rate buckets: the generic cell-rate algorithm (GCRA), one
//! "theoretical arrival time" per bucket, so a budget of `per_second`
//! requests with `burst` allowed at once costs one number to keep, here or
//! in a shared store. Concurrency slots sit beside them: a bucket's
//! holders, each with the instant its slot lapses.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// A request rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, on average.
    pub per_second: f64,
    /// Requests that may go at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// The time one request costs.
    pub fn interval(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.per_second.max(1e-6)).unwrap_or(Duration::MAX)
    }

    /// How far ahead of now the bucket may run: `burst - 1` intervals.
    pub fn tolerance(&self) -> Duration {
        self.interval()
            .saturating_mul(self.burst.max(1).saturating_sub(1))
    }
}

/// Buckets kept in this process (the memory and file stores, and a client
/// with no shared store).
#[derive(Debug, Default)]
pub struct LocalBuckets {
    arrival: HashMap<String, Instant>,
    slots: HashMap<String, HashMap<String, Instant>>,
}

impl LocalBuckets {
    /// Takes one request from `bucket` at `now`: `Duration::ZERO` when it
    /// may go, else how long until it may.
    pub fn take(&mut self, bucket: &str, limit: RateLimit, now: Instant) -> Duration {
        let tat = self.arrival.get(bucket).copied().unwrap_or(now).max(now);
        let allowed_at = tat.checked_sub(limit.tolerance()).unwrap_or(now);
        if now < allowed_at {
            return allowed_at - now;
        }
        self.arrival
            .insert(bucket.to_owned(), tat + limit.interval());
        Duration::ZERO
    }

    /// Holds every request of `bucket` back for `pause` from `now` (the
    /// server said it is throttling).
    pub fn hold(&mut self, bucket: &str, pause: Duration, now: Instant) {
        let until = now + pause;
        let tat = self.arrival.entry(bucket.to_owned()).or_insert(until);
        *tat = (*tat).max(until);
    }

    /// Takes one of `limit` slots of `bucket` for `token` until it is
    /// released or `ttl` from `now` lapses: true when taken (or already
    /// held, which renews it).
    pub fn take_slot(
        &mut self,
        bucket: &str,
        token: &str,
        limit: usize,
        ttl: Duration,
        now: Instant,
    ) -> bool {
        let holders = self.slots.entry(bucket.to_owned()).or_default();
        holders.retain(|_, until| *until > now);
        if holders.len() >= limit && !holders.contains_key(token) {
            return false;
        }
        holders.insert(token.to_owned(), now + ttl);
        true
    }

    /// Gives `token`'s slot of `bucket` back.
    pub fn release_slot(&mut self, bucket: &str, token: &str) {
        if let Some(holders) = self.slots.get_mut(bucket) {
            holders.remove(token);
            if holders.is_empty() {
                self.slots.remove(bucket);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_spaces_requests() {
        let limit = RateLimit {
            per_second: 10.0,
            burst: 3,
        };
        let mut b = LocalBuckets::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take("pve", limit, t0), Duration::ZERO);
        }
        let wait = b.take("pve", limit, t0);
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(
            b.take("other", limit, t0),
            Duration::ZERO,
            "buckets are apart"
        );
        assert_eq!(b.take("pve", limit, t0 + wait), Duration::ZERO);
        // Over a long run, no more than the rate (plus the burst).
        let mut sent = 0;
        let mut now = t0 + wait;
        while now < t0 + Duration::from_secs(10) {
            if b.take("pve", limit, now).is_zero() {
                sent += 1;
            }
            now += Duration::from_millis(7);
        }
        assert!((98..=101).contains(&sent), "{sent}");
        b.hold("pve", Duration::from_secs(5), now);
        assert!(b.take("pve", limit, now) >= Duration::from_secs(4));
    }
}
