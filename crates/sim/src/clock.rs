//! The simulators' notion of time: a tasktrack [`Clock`] plus a wall-clock
//! anchor, so a test that advances a [`ManualClock`] moves every timestamp
//! the simulator reports.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tasktrack_core::{ManualClock, SharedClock, TokioClock};
use tokio::time::Instant;

/// Time as a simulator sees it.
#[derive(Debug, Clone)]
pub struct SimClock {
    clock: SharedClock,
    manual: Option<ManualClock>,
    anchor: (Instant, DateTime<Utc>),
}

impl SimClock {
    /// Real time (the demo, the standalone server).
    pub fn real() -> Self {
        Self::from_clock(Arc::new(TokioClock), None)
    }

    /// A clock that moves only when the test says: share the returned
    /// [`ManualClock`] with a poller so its sleeps move the simulator too.
    pub fn manual(clock: ManualClock) -> Self {
        Self::from_clock(Arc::new(clock.clone()), Some(clock))
    }

    fn from_clock(clock: SharedClock, manual: Option<ManualClock>) -> Self {
        let anchor = (clock.now(), Utc::now());
        SimClock {
            clock,
            manual,
            anchor,
        }
    }

    /// The monotonic now.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The wall-clock time of a monotonic instant.
    pub fn wall(&self, at: Instant) -> DateTime<Utc> {
        let offset = at.saturating_duration_since(self.anchor.0);
        self.anchor.1 + chrono::Duration::from_std(offset).unwrap_or_default()
    }

    /// The wall-clock now.
    pub fn now_utc(&self) -> DateTime<Utc> {
        self.wall(self.now())
    }

    /// The manual clock, when this is one.
    pub fn manual_clock(&self) -> Option<&ManualClock> {
        self.manual.as_ref()
    }

    /// Advances a manual clock; false (and no effect) on real time.
    pub fn advance(&self, d: std::time::Duration) -> bool {
        match &self.manual {
            Some(m) => {
                m.advance(d);
                true
            }
            None => false,
        }
    }

    /// True when both tell the same time: the same manual clock, or both
    /// real time.
    pub fn same_as(&self, other: &SimClock) -> bool {
        match (&self.manual, &other.manual) {
            (Some(a), Some(b)) => a.same_as(b),
            (None, None) => true,
            _ => false,
        }
    }

    /// The clock as a tasktrack [`Clock`](tasktrack_core::Clock), for pollers sharing this time.
    pub fn shared(&self) -> SharedClock {
        self.clock.clone()
    }
}
