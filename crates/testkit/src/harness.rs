//! What a backend must offer the suite.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tasktrack_core::{ManualClock, TaskAction, TaskProvider};

/// How a scripted task should end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Succeeds.
    Succeed,
    /// Fails with this code and message.
    Fail {
        /// Vendor-style code (ignored by backends without codes).
        code: String,
        /// Message.
        message: String,
    },
}

/// A task to create in the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedTask {
    /// How long it runs (backend time).
    pub duration: Duration,
    /// How it ends.
    pub expected: Expected,
}

impl ScriptedTask {
    /// A task that runs `secs` seconds and succeeds.
    pub fn succeeding(secs: u64) -> Self {
        ScriptedTask {
            duration: Duration::from_secs(secs),
            expected: Expected::Succeed,
        }
    }
    /// A task that runs `secs` seconds and fails.
    pub fn failing(secs: u64, code: &str, message: &str) -> Self {
        ScriptedTask {
            duration: Duration::from_secs(secs),
            expected: Expected::Fail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// A backend the suite can drive.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The provider under test.
    type Provider: TaskProvider;

    /// The provider, talking to the backend.
    fn provider(&self) -> Arc<Self::Provider>;

    /// The clock the backend's tasks follow. The suite advances it, and its
    /// pollers sleep on it, so the run is deterministic.
    fn clock(&self) -> ManualClock;

    /// Creates a task in the backend and returns its id.
    async fn create(&self, task: ScriptedTask) -> <Self::Provider as TaskProvider>::Id;

    /// A well-formed id the backend does not know.
    fn unknown_id(&self) -> <Self::Provider as TaskProvider>::Id;

    /// The next `n` status requests fail with a transient error (e.g. 503).
    async fn inject_transient_faults(&self, n: u32);

    /// Removes injected faults.
    async fn clear_faults(&self);

    /// How many transport attempts one `status` call makes (1 + the HTTP
    /// layer's retries), so the suite can size faults against the poller's
    /// budget. Default 1.
    fn attempts_per_status(&self) -> u32 {
        1
    }

    /// Whether failures carry the scripted code (some vendors only report a
    /// message). Default true.
    fn reports_failure_codes(&self) -> bool {
        true
    }

    /// A task in a state where an action of `action`'s kind applies (e.g. a
    /// failed task for `Retry`), and the concrete action to send (step
    /// actions name a real step of that task). The suite then checks the
    /// action is accepted. Default: none, and the check is skipped (`Cancel`
    /// is always checked on a running task).
    async fn prepare_action(
        &self,
        action: &TaskAction,
    ) -> Option<(<Self::Provider as TaskProvider>::Id, TaskAction)> {
        let _ = action;
        None
    }
}
