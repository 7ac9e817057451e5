//! A scripted task as it stands at one instant, computed from the clock.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A simulated state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimState {
    /// Queued.
    Pending,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl SimState {
    /// Succeeded, failed or cancelled.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            SimState::Succeeded | SimState::Failed | SimState::Cancelled
        )
    }
}

/// A failure as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFailure {
    /// Vendor code.
    pub code: Option<String>,
    /// Message.
    pub message: String,
}

/// A step at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    /// 0-based position.
    pub index: usize,
    /// Name.
    pub name: String,
    /// State.
    pub state: SimState,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// Failure of a failed step.
    pub failure: Option<SimFailure>,
    /// Sub-steps.
    pub substeps: Vec<StepView>,
}

/// A task at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: SimState,
    /// Warnings of a task that succeeded with warnings.
    pub warnings: u32,
    /// Failure of a failed or cancelled task.
    pub failure: Option<SimFailure>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// End time (for a finished task).
    pub finished_at: Option<DateTime<Utc>>,
    /// Percent done, `0..=100`.
    pub percent: f64,
    /// Time left until the planned end, while not finished.
    pub remaining: Option<Duration>,
    /// Steps.
    pub steps: Vec<StepView>,
    /// Log lines written so far.
    pub log: Vec<String>,
    /// Vendor attributes.
    pub attrs: BTreeMap<String, String>,
}
