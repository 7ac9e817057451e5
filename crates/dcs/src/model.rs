//! DCS background-task shapes, decoded leniently: the document's tables and
//! its own examples disagree, so both are accepted and unknown values kept.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tasktrack_huaweicloud::lenient;

/// A DCS time: the documented `2020-06-17T07:38:42.503Z`, the example's
/// `2022-09-01 11:52:24` (UTC), or `yyyyMMddHHmmss`; empty or unparseable
/// text decodes as `None` rather than failing the body.
fn dcs_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = lenient::opt_text(d).unwrap_or(None);
    Ok(text.as_deref().and_then(parse_time))
}

/// Parses one of the DCS time forms.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y%m%d%H%M%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, format) {
            return Some(n.and_utc());
        }
    }
    None
}

/// A step or sub-step status: `WAITING`, `EXECUTING`, `FINISH`, `FAILED`,
/// or a value not known yet (kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum DcsStepStatus {
    /// Not started.
    Waiting,
    /// Running.
    Executing,
    /// Done.
    Finish,
    /// Failed.
    Failed,
    /// Anything else, verbatim.
    Unknown(String),
}

impl DcsStepStatus {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            DcsStepStatus::Waiting => "WAITING",
            DcsStepStatus::Executing => "EXECUTING",
            DcsStepStatus::Finish => "FINISH",
            DcsStepStatus::Failed => "FAILED",
            DcsStepStatus::Unknown(s) => s,
        }
    }
}

impl From<&str> for DcsStepStatus {
    fn from(s: &str) -> Self {
        match s {
            "WAITING" => DcsStepStatus::Waiting,
            "EXECUTING" => DcsStepStatus::Executing,
            "FINISH" => DcsStepStatus::Finish,
            "FAILED" => DcsStepStatus::Failed,
            other => DcsStepStatus::Unknown(other.to_owned()),
        }
    }
}

impl From<DcsStepStatus> for String {
    fn from(s: DcsStepStatus) -> String {
        s.as_str().to_owned()
    }
}

impl<'de> Deserialize<'de> for DcsStepStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        Ok(DcsStepStatus::from(s.as_str()))
    }
}

impl Default for DcsStepStatus {
    fn default() -> Self {
        DcsStepStatus::Unknown(String::new())
    }
}

impl fmt::Display for DcsStepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sub-step of a [`StepDetail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubStepDetail {
    /// Id.
    #[serde(default)]
    pub sub_step_id: Option<String>,
    /// Name.
    #[serde(default)]
    pub sub_step_name: Option<String>,
    /// Status.
    #[serde(default)]
    pub sub_step_status: DcsStepStatus,
    /// Start.
    #[serde(default, deserialize_with = "dcs_time", skip_serializing)]
    pub begin_time: Option<DateTime<Utc>>,
    /// End.
    #[serde(default, deserialize_with = "dcs_time", skip_serializing)]
    pub end_time: Option<DateTime<Utc>>,
    /// Extra details (free text).
    #[serde(default)]
    pub detail: Option<String>,
    /// Error code (present on finished sub-steps too: not a failure by itself).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One step of a background task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepDetail {
    /// Id.
    #[serde(default)]
    pub step_id: Option<String>,
    /// Name.
    #[serde(default)]
    pub step_name: Option<String>,
    /// Status.
    #[serde(default)]
    pub step_status: DcsStepStatus,
    /// Start.
    #[serde(default, deserialize_with = "dcs_time", skip_serializing)]
    pub begin_time: Option<DateTime<Utc>>,
    /// End.
    #[serde(default, deserialize_with = "dcs_time", skip_serializing)]
    pub end_time: Option<DateTime<Utc>>,
    /// Error code (present on finished steps too: not a failure by itself).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Sub-steps.
    #[serde(default)]
    pub sub_step_details: Vec<SubStepDetail>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `GET /v2/{project_id}/instances/{instance_id}/tasks/{task_id}/progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DcsTaskProgress {
    /// Overall percent.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub progress: Option<i64>,
    /// Seconds left.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub remain_time: Option<i64>,
    /// Steps.
    #[serde(default)]
    pub step_details: Vec<StepDetail>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `details` of a background task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskDetails {
    /// Capacity before (GB; documented as a string, sent as a number).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub old_capacity: Option<String>,
    /// Capacity after.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub new_capacity: Option<String>,
    /// Public access on.
    #[serde(default)]
    pub enable_public_ip: Option<bool>,
    /// Public IP id.
    #[serde(default)]
    pub public_ip_id: Option<String>,
    /// Public IP address.
    #[serde(default)]
    pub public_ip_address: Option<String>,
    /// SSL on.
    #[serde(default)]
    pub enable_ssl: Option<bool>,
    /// Cache mode before.
    #[serde(default)]
    pub old_cache_mode: Option<String>,
    /// Cache mode after (the example spells it `new_cahce_mode`).
    #[serde(default, alias = "new_cahce_mode")]
    pub new_cache_mode: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One entry of the background task list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackgroundTask {
    /// Task id.
    pub id: String,
    /// `ChangeInstanceSpec`, `BindEip`, … (unknown names kept).
    #[serde(default)]
    pub name: Option<String>,
    /// Details.
    #[serde(default)]
    pub details: Option<TaskDetails>,
    /// Who started it.
    #[serde(default)]
    pub user_name: Option<String>,
    /// Their id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Parameters.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub params: Option<String>,
    /// `SUCCESS`, or another (undocumented) value, kept.
    #[serde(default)]
    pub status: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "dcs_time", skip_serializing)]
    pub created_at: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(default, deserialize_with = "dcs_time", skip_serializing)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Error code of a failed task (task centre entries).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub error_code: Option<String>,
    /// Whether the task has step details to show (its progress has steps).
    #[serde(default)]
    pub enable_show: Option<bool>,
    /// The job id (task centre entries).
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub job_id: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `GET /v2/{project_id}/instances/{instance_id}/tasks`. The document's
/// example puts `status`, `created_at` and `updated_at` beside `tasks`; they
/// are kept here, and [`tasks_with_defaults`](Self::tasks_with_defaults)
/// lends them to a task that lacks its own, only when the list holds exactly
/// one task (otherwise which task they describe is unknowable).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct BackgroundTaskList {
    /// Number of tasks: a string in both SDKs' models (`task_count: str`,
    /// `TaskCount *string`), a number in the document's example; both decode.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub task_count: Option<i64>,
    /// Tasks.
    #[serde(default)]
    pub tasks: Vec<BackgroundTask>,
    /// Misplaced `status`.
    #[serde(default)]
    pub status: Option<String>,
    /// Misplaced `created_at`.
    #[serde(default, deserialize_with = "dcs_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Misplaced `updated_at`.
    #[serde(default, deserialize_with = "dcs_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl BackgroundTaskList {
    /// The tasks, each missing field filled from the list-level one.
    pub fn tasks_with_defaults(&self) -> Vec<BackgroundTask> {
        if self.tasks.len() != 1 {
            return self.tasks.clone();
        }
        self.tasks
            .iter()
            .cloned()
            .map(|mut t| {
                t.status = t.status.or_else(|| self.status.clone());
                t.created_at = t.created_at.or(self.created_at);
                t.updated_at = t.updated_at.or(self.updated_at);
                t
            })
            .collect()
    }
}
