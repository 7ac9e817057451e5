//! Tracking many tasks across many providers with one scheduler.
//!
//! A tracked task is plain data (provider, id string, last snapshot, next due
//! time) kept in one table; one timer heap orders the due times. Each tick
//! pops every due task, groups them per provider and asks
//! [`DynTaskProvider::status_many`] once per batch, so a provider that can
//! batch turns N polls into one request. No task spawns its own loop.

mod builder;
mod dispatch;
mod handle;
mod lag;
mod leases;
mod metrics;
mod schedule;
mod singles;

pub use builder::TrackerBuilder;
pub use handle::{TaskEvents, Tracker, TrackerStats};
pub use lag::{LagHistogram, LAG_BUCKETS_MS};
pub use metrics::describe as describe_metrics;

use handle::{Command, Counters, ProviderRuntime};
use schedule::{live, BatchResult, Entry, Scheduler, Slot, StoreState};
