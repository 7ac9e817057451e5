//! The normalized task model every vendor maps into.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The normalized state of a task, whatever the vendor calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskState {
    /// Accepted by the backend, not started yet.
    Pending,
    /// Being worked on.
    Running,
    /// Finished successfully (possibly with warnings).
    Succeeded,
    /// Finished unsuccessfully.
    Failed,
    /// Stopped on request before it finished.
    Cancelled,
    /// The vendor reported something tasktrack cannot classify; the raw value
    /// is in [`TaskStatus::vendor_state`]. Not terminal, so pollers keep
    /// looking rather than report a wrong outcome.
    Unknown,
}

impl TaskState {
    /// True for states a task never leaves: succeeded, failed, cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }

    /// True for failed and cancelled.
    pub fn is_unsuccessful(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::Cancelled)
    }

    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 6] = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Unknown,
    ];

    /// The lower-case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskState {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        TaskState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                crate::Error::invalid_input(
                    "tasktrack",
                    format!("unknown task state {s:?}; expected one of pending, running, succeeded, failed, cancelled, unknown"),
                )
            })
    }
}

/// How far a task has come, as far as the backend says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// Percentage in `0.0..=100.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f32>,
    /// Estimated time left.
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Duration>,
    /// Steps finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_done: Option<u32>,
    /// Steps in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_total: Option<u32>,
}

impl Progress {
    /// Progress from a percentage (clamped to `0..=100`; NaN is dropped).
    pub fn percent(p: f32) -> Self {
        Progress {
            percent: (!p.is_nan()).then(|| p.clamp(0.0, 100.0)),
            ..Default::default()
        }
    }

    /// Progress from finished / total steps; the percentage is derived.
    pub fn steps(done: u32, total: u32) -> Self {
        Progress {
            percent: (total > 0).then(|| done.min(total) as f32 * 100.0 / total as f32),
            steps_done: Some(done),
            steps_total: Some(total),
            remaining: None,
        }
    }

    /// The percentage as a fraction in `0.0..=1.0`, if known.
    pub fn fraction(&self) -> Option<f64> {
        self.percent.map(|p| f64::from(p) / 100.0)
    }
}

impl Hash for Progress {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // `0.0 == -0.0`, so equal progress must hash equal: one zero.
        self.percent
            .map(|p| if p == 0.0 { 0 } else { p.to_bits() })
            .hash(h);
        self.remaining.hash(h);
        self.steps_done.hash(h);
        self.steps_total.hash(h);
    }
}

/// Why a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Failure {
    /// The vendor's error code, if it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable message.
    pub message: String,
}

impl Failure {
    /// A failure with a message and no code.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            code: None,
            message: message.into(),
        }
    }

    /// Adds a vendor error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(c) => write!(f, "[{c}] {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A sub-step or subtask, seen uniformly. DCS has two levels of steps; OCP
/// subtasks form a DAG, kept through `upstream` / `downstream` ids.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// The vendor's step id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Normalized state.
    pub state: TaskState,
    /// The vendor's raw state string.
    pub vendor_state: String,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the step finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Ids of the steps that must finish before this one (DAG backends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    /// Ids of the steps that wait for this one (DAG backends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<String>,
    /// Nested sub-steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

impl Step {
    /// A step with only id, name and state; the vendor state is the state's name.
    pub fn new(id: impl Into<String>, name: impl Into<String>, state: TaskState) -> Self {
        Step {
            id: id.into(),
            name: name.into(),
            state,
            vendor_state: state.as_str().to_owned(),
            started_at: None,
            finished_at: None,
            failure: None,
            upstream: Vec::new(),
            downstream: Vec::new(),
            steps: Vec::new(),
        }
    }
}

/// The owned, serializable normalized view of one task at one moment, used by
/// dashboards, the CLI and the tracker's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The provider's registered name.
    pub provider: String,
    /// The task id in its string form (parseable back by the provider).
    pub id: String,
    /// Normalized state.
    pub state: TaskState,
    /// The vendor's raw state (e.g. `stopped: OK`, `FAILED_RESET`).
    pub vendor_state: String,
    /// A short kind of work, e.g. `vzdump`, `RESET`, `scale-out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A short human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Progress, when the backend reports any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Why it failed, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Warnings counted by a task that still succeeded (Proxmox `WARNINGS: N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<u32>,
    /// What those warnings said, in the order written (Proxmox's `WARN:`
    /// log lines), as many as the provider keeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warning_messages: Vec<String>,
    /// When the task started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the task finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Sub-steps, in execution order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// The server's suggestion for the next poll.
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub poll_hint: Option<Duration>,
    /// Vendor extras worth showing (e.g. `node`, `operation`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl TaskSnapshot {
    /// A snapshot of `provider`'s task `id` in `state` (its vendor state
    /// the state's name), nothing else reported: a start for providers of
    /// your own and for tests.
    ///
    /// ```
    /// use tasktrack_core::{TaskSnapshot, TaskState};
    ///
    /// let mut s = TaskSnapshot::new("backups", "42", TaskState::Running);
    /// s.kind = Some("vzdump".into());
    /// assert_eq!(s.vendor_state, "running");
    /// ```
    pub fn new(provider: impl Into<String>, id: impl Into<String>, state: TaskState) -> Self {
        TaskSnapshot {
            provider: provider.into(),
            id: id.into(),
            state,
            vendor_state: state.as_str().to_owned(),
            kind: None,
            title: None,
            progress: None,
            failure: None,
            warnings: None,
            warning_messages: Vec::new(),
            started_at: None,
            finished_at: None,
            steps: Vec::new(),
            poll_hint: None,
            attributes: BTreeMap::new(),
        }
    }

    /// A 64-bit digest of everything but [`poll_hint`](Self::poll_hint):
    /// snapshots equal but for their hint have the same fingerprint, so a
    /// tracker can tell "changed" from "unchanged" without keeping the
    /// last snapshot (its state is worth comparing exactly beside this).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktrack_core::{TaskSnapshot, TaskState};
    ///
    /// let a = TaskSnapshot::new("p", "1", TaskState::Running);
    /// let mut b = a.clone();
    /// b.poll_hint = Some(Duration::from_secs(5));
    /// assert_eq!(a.fingerprint(), b.fingerprint());
    /// b.title = Some("resize".into());
    /// assert_ne!(a.fingerprint(), b.fingerprint());
    /// ```
    pub fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let TaskSnapshot {
            provider,
            id,
            state,
            vendor_state,
            kind,
            title,
            progress,
            failure,
            warnings,
            warning_messages,
            started_at,
            finished_at,
            steps,
            poll_hint: _,
            attributes,
        } = self;
        (provider, id, state, vendor_state, kind, title).hash(&mut h);
        (progress, failure, warnings, warning_messages).hash(&mut h);
        (started_at, finished_at, steps, attributes).hash(&mut h);
        h.finish()
    }
}

/// A vendor's typed task status. Implement the three required methods; the
/// rest default to "not reported".
pub trait TaskStatus: fmt::Debug + Clone + Send + Sync + 'static {
    /// The normalized state.
    fn state(&self) -> TaskState;
    /// The vendor's raw state string, kept verbatim.
    fn vendor_state(&self) -> String;
    /// Progress, if the backend reports it.
    fn progress(&self) -> Option<Progress> {
        None
    }
    /// Why the task failed; `None` unless the state is failed or cancelled.
    fn failure(&self) -> Option<Failure> {
        None
    }
    /// When the task started.
    fn started_at(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// When the task finished.
    fn finished_at(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// Sub-steps in execution order.
    fn steps(&self) -> Vec<Step> {
        Vec::new()
    }
    /// A server-derived suggestion for when to poll next (e.g. DCS
    /// `remain_time`). Pollers clamp it by their floor and maximum.
    fn poll_hint(&self) -> Option<Duration> {
        None
    }
    /// A short kind of work.
    fn kind(&self) -> Option<String> {
        None
    }
    /// A short human title.
    fn title(&self) -> Option<String> {
        None
    }
    /// Warnings of a task that still succeeded.
    fn warnings(&self) -> Option<u32> {
        None
    }
    /// What the warnings said, when the backend tells.
    fn warning_messages(&self) -> Vec<String> {
        Vec::new()
    }
    /// Vendor extras worth showing.
    fn attributes(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// The owned normalized view.
    fn snapshot(&self, provider: &str, id: &str) -> TaskSnapshot {
        TaskSnapshot {
            provider: provider.to_owned(),
            id: id.to_owned(),
            state: self.state(),
            vendor_state: self.vendor_state(),
            kind: self.kind(),
            title: self.title(),
            progress: self.progress(),
            failure: self.failure(),
            warnings: self.warnings(),
            warning_messages: self.warning_messages(),
            started_at: self.started_at(),
            finished_at: self.finished_at(),
            steps: self.steps(),
            poll_hint: self.poll_hint(),
            attributes: self.attributes(),
        }
    }
}

impl TaskStatus for TaskSnapshot {
    fn state(&self) -> TaskState {
        self.state
    }
    fn vendor_state(&self) -> String {
        self.vendor_state.clone()
    }
    fn progress(&self) -> Option<Progress> {
        self.progress.clone()
    }
    fn failure(&self) -> Option<Failure> {
        self.failure.clone()
    }
    fn started_at(&self) -> Option<DateTime<Utc>> {
        self.started_at
    }
    fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.finished_at
    }
    fn steps(&self) -> Vec<Step> {
        self.steps.clone()
    }
    fn poll_hint(&self) -> Option<Duration> {
        self.poll_hint
    }
    fn kind(&self) -> Option<String> {
        self.kind.clone()
    }
    fn title(&self) -> Option<String> {
        self.title.clone()
    }
    fn warnings(&self) -> Option<u32> {
        self.warnings
    }
    fn warning_messages(&self) -> Vec<String> {
        self.warning_messages.clone()
    }
    fn attributes(&self) -> BTreeMap<String, String> {
        self.attributes.clone()
    }
    fn snapshot(&self, provider: &str, id: &str) -> TaskSnapshot {
        TaskSnapshot {
            provider: provider.to_owned(),
            id: id.to_owned(),
            ..self.clone()
        }
    }
}

/// Serde for `Option<Duration>` as fractional seconds, readable in JSON.
mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v = Option::<f64>::deserialize(d)?;
        match v {
            Some(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs)
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(secs) => Err(serde::de::Error::custom(format!(
                "duration must be a non-negative number of seconds, got {secs}"
            ))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                TaskState::Succeeded,
                TaskState::Failed,
                TaskState::Cancelled
            ]
        );
        assert!(!TaskState::Unknown.is_terminal());
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), s);
        }
        assert!("done".parse::<TaskState>().is_err());
    }

    #[test]
    fn progress_clamps_and_derives() {
        assert_eq!(Progress::percent(140.0).percent, Some(100.0));
        assert_eq!(Progress::percent(f32::NAN).percent, None);
        assert_eq!(Progress::steps(1, 4).percent, Some(25.0));
        assert_eq!(Progress::steps(0, 0).percent, None);
        assert_eq!(Progress::steps(9, 4).percent, Some(100.0));
    }

    #[test]
    fn snapshot_round_trips_through_json() {
        let mut step = Step::new("3", "install", TaskState::Failed);
        step.failure = Some(Failure::new("no space").with_code("E42"));
        step.upstream = vec!["2".into()];
        step.steps = vec![Step::new("3.1", "copy", TaskState::Succeeded)];
        let snap = TaskSnapshot {
            provider: "ocp".into(),
            id: "42".into(),
            state: TaskState::Failed,
            vendor_state: "FAILED".into(),
            kind: Some("deploy".into()),
            title: Some("Deploy cluster".into()),
            progress: Some(Progress {
                percent: Some(50.0),
                remaining: Some(Duration::from_millis(1500)),
                steps_done: Some(2),
                steps_total: Some(4),
            }),
            failure: Some(Failure::new("subtask 3 failed")),
            warnings: Some(2),
            warning_messages: vec!["storage local is 95% full".into()],
            started_at: Some("2024-05-01T10:00:00Z".parse().unwrap()),
            finished_at: Some("2024-05-01T10:05:00Z".parse().unwrap()),
            steps: vec![step],
            poll_hint: Some(Duration::from_secs(3)),
            attributes: [("operation".to_string(), "EXECUTE".to_string())].into(),
        };
        let json = serde_json::to_string(&snap).unwrap();
        assert!(json.contains("\"remaining\":1.5"), "{json}");
        let back: TaskSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
    }

    #[test]
    fn negative_durations_are_rejected_not_panicking() {
        let err = serde_json::from_str::<Progress>(r#"{"remaining": -1}"#).unwrap_err();
        assert!(err.to_string().contains("non-negative"));
    }
}
