//! # tasktrack-core
//!
//! The vendor-neutral heart of tasktrack: the normalized task model
//! ([`TaskState`], [`TaskSnapshot`], [`TaskStatus`]), the provider traits
//! ([`TaskProvider`] and its object-safe twin [`DynTaskProvider`]), the
//! layered [`Error`], the single-task [`Poller`], the many-task [`Tracker`],
//! and (feature `http`) the shared HTTP client layer the vendor adapters are
//! built on.
//!
//! ```
//! use std::time::Duration;
//! use tasktrack_core::{MemoryProvider, PollPolicy, Poller, TaskScript, TaskState};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tasktrack_core::Result<()> {
//! let provider = MemoryProvider::new("memory");
//! let id = provider.start(TaskScript::new("backup", Duration::from_millis(30)));
//! let poller = Poller::new(provider, PollPolicy::fixed(Duration::from_millis(10)));
//! let outcome = poller.wait(&id).await?;
//! assert_eq!(outcome.state(), TaskState::Succeeded);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod clock;
pub mod config;
mod cursor;
mod erased;
mod error;
mod event;
#[cfg(feature = "file-store")]
mod file_store;
#[cfg(feature = "http")]
pub mod http;
mod memory;
mod model;
pub mod paging;
mod policy;
mod poller;
mod provider;
pub mod rate;
mod secret;
mod store;
mod time;
mod tracker;

pub use clock::{Clock, ManualClock, SharedClock, TokioClock};
pub use config::{BackendConfig, MemoryConfig};
pub use cursor::{Next, PollCursor};
pub use erased::{DynTaskProvider, ErasedProvider};
pub use error::{human_duration, Error, HttpError, Result};
pub use event::{TaskEvent, TaskEventKind};
#[cfg(feature = "file-store")]
pub use file_store::{FileStore, StoreSummary};
pub use memory::{MemoryFault, MemoryProvider, MemoryTask, ScriptOutcome, TaskScript};
pub use model::{Failure, Progress, Step, TaskSnapshot, TaskState, TaskStatus};
pub use policy::{random_jitter, JitterSource, PollPolicy, MIN_SLEEP};
pub use poller::{Poller, RemediationPolicy, TaskOutcome};
pub use provider::{
    parse_task_id, ActionReceipt, Capabilities, LogLine, LogRange, TaskAction, TaskFilter,
    TaskHandle, TaskId, TaskPage, TaskProvider, DEFAULT_STATUS_CONCURRENCY,
};
pub use secret::Secret;
pub use store::{
    cursor_position, entry_key, numeric_cursor, shard_of, Cursor, MemoryStore, TrackStore,
    TrackedEntry, DEFAULT_SHARDS,
};
pub use tracker::{
    describe_metrics, LagHistogram, TaskEvents, Tracker, TrackerBuilder, TrackerStats,
    LAG_BUCKETS_MS,
};

/// Re-exported so providers implement [`TaskProvider`] with the same macro.
pub use async_trait::async_trait;
