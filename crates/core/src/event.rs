//! [`TaskEvent`]: what a tracker reports about a task, and what a store logs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{TaskSnapshot, TaskState};

/// Something that happened to a tracked task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskEvent {
    /// Provider name.
    pub provider: String,
    /// Task id in its string form.
    pub id: String,
    /// The state before this event (`None` for the first observation).
    pub previous: Option<TaskState>,
    /// What happened.
    #[serde(flatten)]
    pub kind: TaskEventKind,
    /// When the tracker saw it.
    pub at: DateTime<Utc>,
}

/// What a [`TaskEvent`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TaskEventKind {
    /// The task was seen for the first time, or changed.
    Changed {
        /// The new status (boxed: a snapshot is large next to `GaveUp`).
        snapshot: Box<TaskSnapshot>,
    },
    /// Tracking stopped without a terminal state: a permanent error (the
    /// task vanished, credentials were refused), the error budget ran out,
    /// or the deadline passed.
    GaveUp {
        /// [`Error::kind`](crate::Error::kind) of the last error.
        error_kind: String,
        /// The error message.
        message: String,
    },
    /// Nothing about the task (state, progress, steps) changed for
    /// [`PollPolicy::stall_after`](crate::PollPolicy::stall_after); it is
    /// still tracked (unless the policy gives up on a stall). Reported once
    /// per stall.
    Stalled {
        /// Seconds since the last change.
        unchanged_for_secs: u64,
    },
}

impl TaskEvent {
    /// `kind` happened to `provider`'s task `id` now, after `previous`.
    pub fn new(
        provider: impl Into<String>,
        id: impl Into<String>,
        previous: Option<TaskState>,
        kind: TaskEventKind,
    ) -> Self {
        TaskEvent {
            provider: provider.into(),
            id: id.into(),
            previous,
            kind,
            at: Utc::now(),
        }
    }

    /// The snapshot, for `Changed` events.
    pub fn snapshot(&self) -> Option<&TaskSnapshot> {
        match &self.kind {
            TaskEventKind::Changed { snapshot } => Some(snapshot),
            TaskEventKind::GaveUp { .. } | TaskEventKind::Stalled { .. } => None,
        }
    }

    /// The task's state after this event (`None` after giving up or a stall).
    pub fn state(&self) -> Option<TaskState> {
        self.snapshot().map(|s| s.state)
    }

    /// True for the last event of a task: terminal state or gave up.
    pub fn is_final(&self) -> bool {
        match &self.kind {
            TaskEventKind::Changed { snapshot } => snapshot.state.is_terminal(),
            TaskEventKind::GaveUp { .. } => true,
            TaskEventKind::Stalled { .. } => false,
        }
    }
}
