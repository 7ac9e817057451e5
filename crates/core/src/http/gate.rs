//! A backend's request budget: at most `per_second` requests (and `burst`
//! at once), drawn from a bucket in this process or, when a shared store is
//! given, from one bucket every replica draws from; a throttling answer
//! (429, `Retry-After`) holds the whole bucket back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{SharedClock, TokioClock};
use crate::rate::{LocalBuckets, RateLimit};
use crate::TrackStore;

/// The longest single wait for the budget before asking again: the bucket
/// may be freed early by a quieter fleet.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Where a backend's requests are admitted.
#[derive(Clone)]
pub struct RequestGate {
    bucket: String,
    limit: RateLimit,
    shared: Option<Arc<dyn TrackStore>>,
    local: Arc<Mutex<LocalBuckets>>,
    clock: SharedClock,
}

impl std::fmt::Debug for RequestGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestGate")
            .field("bucket", &self.bucket)
            .field("limit", &self.limit)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl RequestGate {
    /// A budget kept in this process.
    pub fn local(bucket: impl Into<String>, limit: RateLimit) -> Self {
        RequestGate {
            bucket: bucket.into(),
            limit,
            shared: None,
            local: Arc::default(),
            clock: Arc::new(TokioClock),
        }
    }

    /// A budget shared through `store` by every client using `bucket`.
    pub fn shared(bucket: impl Into<String>, limit: RateLimit, store: Arc<dyn TrackStore>) -> Self {
        RequestGate {
            shared: Some(store),
            ..RequestGate::local(bucket, limit)
        }
    }

    /// Reads the time and waits for the budget through `clock` (a client
    /// built with [`HttpClientBuilder::with_clock`](super::HttpClientBuilder::with_clock)
    /// gives its gate its own clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The rate.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn take_local(&self) -> Duration {
        let now = self.clock.now();
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.take(&self.bucket, self.limit, now)
    }

    /// Waits until one request may go.
    pub async fn admit(&self) {
        loop {
            let wait = match &self.shared {
                Some(store) => match store.take_request(&self.bucket, self.limit).await {
                    Ok(wait) => wait,
                    // The store is away: the budget is kept here meanwhile,
                    // so requests go on without exceeding it from this
                    // replica.
                    Err(e) => {
                        tracing::debug!(bucket = %self.bucket, error = %e, "shared request budget unavailable; using this process's");
                        self.take_local()
                    }
                },
                None => self.take_local(),
            };
            if wait.is_zero() {
                return;
            }
            self.clock.sleep(wait.min(MAX_WAIT)).await;
        }
    }

    /// The server throttled: every user of the bucket waits `pause`.
    pub async fn throttled(&self, pause: Duration) {
        let now = self.clock.now();
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hold(&self.bucket, pause, now);
        if let Some(store) = &self.shared {
            if let Err(e) = store.hold_requests(&self.bucket, pause).await {
                tracing::debug!(bucket = %self.bucket, error = %e, "cannot hold the shared request budget");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn the_gate_reads_and_waits_on_its_clock() {
        let clock = ManualClock::new();
        let limit = RateLimit {
            per_second: 2.0,
            burst: 1,
        };
        let gate = RequestGate::local("pve", limit).with_clock(Arc::new(clock.clone()));
        gate.admit().await;
        gate.admit().await;
        assert_eq!(
            clock.elapsed(),
            Duration::from_millis(500),
            "one interval, on the manual clock"
        );
        gate.throttled(Duration::from_secs(3)).await;
        gate.admit().await;
        assert_eq!(
            clock.elapsed(),
            Duration::from_millis(3500),
            "the throttle pause, on the manual clock"
        );
    }
}
