//! The commands that work on configured backends.

mod fleet;
mod serve;
mod task;

pub use fleet::{events, track, watch, worker, WorkerOptions};
pub use serve::{serve, ServeOptions};
pub use task::{act, list, logs, status, wait, ListFormat};
