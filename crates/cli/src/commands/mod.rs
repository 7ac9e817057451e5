//! The commands that work on configured backends.

mod fleet;
mod group;
mod serve;
mod task;

pub use fleet::{events, follow_logs, track, watch, worker, WatchOptions, WorkerOptions};
pub use group::{wait_group, Goal, GroupWait};
pub use serve::{serve, ServeOptions};
pub use task::{act, list, logs, status, wait, ListFormat, WaitPolicy};
