//! Time as a dependency: pollers and trackers read the time and sleep through
//! a [`Clock`], so tests can drive them deterministically.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

/// A source of monotonic time and sleeps.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
    /// A future that completes after `d`.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
    /// A watchdog that completes once `d` has passed, without moving time
    /// itself: what bounds a request by a deadline. On real clocks it is
    /// [`sleep`](Self::sleep); a [`ManualClock`] never fires it, since its
    /// time only moves when a test (or a waiter) moves it.
    fn watchdog(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.sleep(d)
    }
}

/// Tokio's clock: real time, or tokio's paused test time
/// (`#[tokio::test(start_paused = true)]`), which auto-advances when every
/// task is idle and so makes timer-driven tests deterministic.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that only moves when told to. `sleep(d)` moves it forward by `d`
/// and returns at once, so a single waiter (a [`Poller`](crate::Poller))
/// walks a virtual timeline with no real waiting. Clones share one timeline,
/// so a simulator reading the same clock sees the time the poller slept.
#[derive(Debug, Clone)]
pub struct ManualClock {
    base: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock starting now, at offset zero.
    pub fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        *self.lock() += d;
    }

    /// Time advanced since the clock was made.
    pub fn elapsed(&self) -> Duration {
        *self.lock()
    }

    /// True when `other` is a clone of this clock (one shared timeline).
    pub fn same_as(&self, other: &ManualClock) -> bool {
        Arc::ptr_eq(&self.offset, &other.offset)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Duration> {
        // The guarded value is a plain Duration: a panic elsewhere cannot
        // leave it half-written, so a poisoned lock is still usable.
        self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.elapsed()
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
    fn watchdog(&self, _d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        let t0 = c.now();
        c.sleep(Duration::from_secs(5)).await;
        let other = c.clone();
        other.advance(Duration::from_secs(1));
        assert_eq!(c.now() - t0, Duration::from_secs(6));
        assert_eq!(c.elapsed(), Duration::from_secs(6));
    }
}
