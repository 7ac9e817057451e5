//! KPS task shapes, decoded leniently: unknown fields and enum values kept.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tasktrack_huaweicloud::lenient;

/// A KPS task state such as `FAILED_RESET` or `RUNNING_REPLACE`: a phase and
/// an operation. The document lists `FAILED_RESET / FAILED_REPLACE /
/// FAILED_UNBIND` as `operate_type`, while its own example sends
/// `RUNNING_RESET`; the SDK's `ListKeypairTaskResponse` documents
/// `{READY,RUNNING,FAILED,SUCCESS}_{RESET,REPLACE,UNBIND}` and
/// terraform-provider-huaweicloud also waits for `SUCCESS_BIND` /
/// `FAILED_BIND`. Every family and any other value are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KpsTaskState(String);

/// The phase part of a [`KpsTaskState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KpsPhase {
    /// `READY_*`: accepted, not started.
    Ready,
    /// `RUNNING_*`.
    Running,
    /// `SUCCESS_*`.
    Success,
    /// `FAILED_*`.
    Failed,
}

/// The operation part of a [`KpsTaskState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KpsOperation {
    /// `*_RESET`: reset the key pair of a server.
    Reset,
    /// `*_REPLACE`: replace it.
    Replace,
    /// `*_UNBIND`: unbind it.
    Unbind,
    /// `*_BIND`: bind a key pair to a server (`SUCCESS_BIND`, `FAILED_BIND`
    /// in terraform-provider-huaweicloud's `kps_keypair_associate`).
    Bind,
}

impl KpsTaskState {
    /// Wraps a wire value.
    pub fn new(s: impl Into<String>) -> Self {
        KpsTaskState(s.into())
    }
    /// The value as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The phase, when the value is of the known family.
    pub fn phase(&self) -> Option<KpsPhase> {
        let (phase, _) = self.0.split_once('_')?;
        Some(match phase {
            "READY" => KpsPhase::Ready,
            "RUNNING" => KpsPhase::Running,
            "SUCCESS" => KpsPhase::Success,
            "FAILED" => KpsPhase::Failed,
            _ => return None,
        })
    }
    /// The operation, when the value is of the known family.
    pub fn operation(&self) -> Option<KpsOperation> {
        let (_, op) = self.0.split_once('_')?;
        Some(match op {
            "RESET" => KpsOperation::Reset,
            "REPLACE" => KpsOperation::Replace,
            "UNBIND" => KpsOperation::Unbind,
            "BIND" => KpsOperation::Bind,
            _ => return None,
        })
    }
}

impl fmt::Display for KpsTaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `task_time`: epoch milliseconds, sent as a string in the document's
/// example; a number is accepted too. Unparseable values decode as `None`
/// rather than failing the whole list.
fn epoch_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let ms = lenient::opt_i64(d).unwrap_or(None);
    Ok(ms.and_then(DateTime::from_timestamp_millis))
}

/// One entry of `GET /v3/{project_id}/failed-tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedTask {
    /// Task id.
    pub task_id: String,
    /// The operation that failed (`FAILED_RESET`, …).
    #[serde(default)]
    pub operate_type: Option<KpsTaskState>,
    /// When the task ran.
    #[serde(default, deserialize_with = "epoch_millis", skip_serializing)]
    pub task_time: Option<DateTime<Utc>>,
    /// Error code (may be null).
    #[serde(default)]
    pub task_error_code: Option<String>,
    /// Error message.
    #[serde(default)]
    pub task_error_msg: Option<String>,
    /// Server name.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Server id.
    #[serde(default)]
    pub server_id: Option<String>,
    /// Key pair name.
    #[serde(default)]
    pub keypair_name: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One entry of `GET /v3/{project_id}/running-tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunningTask {
    /// Task id.
    pub task_id: String,
    /// The operation (`RUNNING_RESET`, …).
    #[serde(default)]
    pub operate_type: Option<KpsTaskState>,
    /// When the task started.
    #[serde(default, deserialize_with = "epoch_millis", skip_serializing)]
    pub task_time: Option<DateTime<Utc>>,
    /// Server name.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Server id.
    #[serde(default)]
    pub server_id: Option<String>,
    /// Key pair name.
    #[serde(default)]
    pub keypair_name: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `GET /v3/{project_id}/tasks/{task_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeypairTask {
    /// Task id (when the server echoes it).
    #[serde(default)]
    pub task_id: Option<String>,
    /// Server id.
    #[serde(default)]
    pub server_id: Option<String>,
    /// State, e.g. `RUNNING_RESET`.
    pub task_status: KpsTaskState,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A page of failed or running tasks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskList<T> {
    /// Tasks in the whole list.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub total: Option<i64>,
    /// This page.
    #[serde(default = "Vec::new")]
    pub tasks: Vec<T>,
}
