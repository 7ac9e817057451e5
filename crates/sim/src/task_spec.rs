//! What a scripted task does: its steps, durations, log lines and outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a task or step ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SimOutcome {
    /// Success.
    #[default]
    Success,
    /// Success, with this many warnings.
    Warnings {
        /// Number of warnings.
        count: u32,
    },
    /// Failure with an optional vendor code and a message.
    Failure {
        /// Vendor error code.
        #[serde(default)]
        code: Option<String>,
        /// Message.
        message: String,
    },
    /// Ended as cancelled.
    Cancelled,
}

impl SimOutcome {
    /// A failure.
    pub fn failure(code: impl Into<String>, message: impl Into<String>) -> Self {
        SimOutcome::Failure {
            code: Some(code.into()),
            message: message.into(),
        }
    }
}

/// One step of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Step name.
    pub name: String,
    /// How long it runs.
    #[serde(with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// `Failure` fails the step and the task; anything else succeeds.
    #[serde(default)]
    pub outcome: SimOutcome,
    /// Sub-steps sharing the step's duration equally.
    #[serde(default)]
    pub substeps: Vec<String>,
}

impl StepSpec {
    /// A successful step.
    pub fn new(name: impl Into<String>, duration: Duration) -> Self {
        StepSpec {
            name: name.into(),
            duration,
            outcome: SimOutcome::Success,
            substeps: Vec::new(),
        }
    }
    /// Makes the step fail.
    pub fn with_failure(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.outcome = SimOutcome::failure(code, message);
        self
    }
    /// Adds sub-steps.
    pub fn with_substeps<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.substeps = names.into_iter().map(Into::into).collect();
        self
    }
}

/// A scripted task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Kind of work (`vzdump`, `RESET`, `scale-out`…).
    pub kind: String,
    /// Time queued before it starts.
    #[serde(default, with = "millis", rename = "pending_ms")]
    pub pending: Duration,
    /// Running time when there are no steps.
    #[serde(default, with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// Steps run one after the other; a failing step ends the task.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// The final outcome when no step failed.
    #[serde(default)]
    pub outcome: SimOutcome,
    /// Log lines, written evenly over the running time.
    #[serde(default)]
    pub log: Vec<String>,
    /// Vendor-specific attributes (node, vmid, user, instance id…).
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

impl TaskSpec {
    /// A task of `kind` running for `duration`, then succeeding.
    pub fn new(kind: impl Into<String>, duration: Duration) -> Self {
        TaskSpec {
            kind: kind.into(),
            pending: Duration::ZERO,
            duration,
            steps: Vec::new(),
            outcome: SimOutcome::Success,
            log: Vec::new(),
            attrs: BTreeMap::new(),
        }
    }
    /// Queued this long first.
    pub fn with_pending(mut self, d: Duration) -> Self {
        self.pending = d;
        self
    }
    /// Ends with `outcome`.
    pub fn with_outcome(mut self, outcome: SimOutcome) -> Self {
        self.outcome = outcome;
        self
    }
    /// Ends with a failure.
    pub fn with_failure(self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.with_outcome(SimOutcome::failure(code, message))
    }
    /// Adds a step.
    pub fn with_step(mut self, step: StepSpec) -> Self {
        self.steps.push(step);
        self
    }
    /// Log lines.
    pub fn with_log<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.log = lines.into_iter().map(Into::into).collect();
        self
    }
    /// A vendor attribute.
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }

    pub(crate) fn steps_or_implicit(&self) -> Vec<StepSpec> {
        if self.steps.is_empty() {
            vec![StepSpec::new(self.kind.clone(), self.duration)]
        } else {
            self.steps.clone()
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
