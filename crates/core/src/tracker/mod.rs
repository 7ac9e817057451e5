//! Tracking many tasks across many providers with one scheduler.
//!
//! A tracked task is plain data (provider, id string, the poll cursor with
//! the last state and a fingerprint of the last answer, next due time) kept
//! in one table; a timer heap per provider orders the due times. A provider that
//! batches gets its due tasks gathered into one
//! [`DynTaskProvider::snapshot_many`] call; every other provider gets one
//! request per due task, a bounded number in flight, each answer applied as
//! it arrives. No task spawns its own loop.

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
use schedule::{live, BatchResult, Entry, Scheduler, StoreState};

/// A tracked task's place in the scheduler's table.
type Slot = u32;
