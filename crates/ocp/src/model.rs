//! OCP task-instance shapes, decoded as both the seed document writes them
//! and as ocp-express's code serializes them (`task/.../model`,
//! `core/.../response`, `JacksonFactory`): `parallelIdx` / `paralleIdx`,
//! `downstreams` / `downstream`, `tenantInfo` beside `tenant`, null fields
//! left out, an integer `ApiError.code`, ids that Jackson writes as strings
//! past 2^53. Enums keep values they do not know; optional fields may be
//! missing; times are ISO-8601 with an offset, or epoch numbers (seconds or
//! milliseconds); unparseable ones decode as `None`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string enum that keeps unknown values in `Unknown(String)`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this crate does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire $(| $alias)* => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::from(String::deserialize(d)?.as_str()))
            }
        }
    };
}

string_enum! {
    /// A task instance's status. The document lists RUNNING / FAILED /
    /// SUCCESSFUL; OceanBase's own diagnostic tool also checks for PENDING.
    OcpTaskStatus {
        /// Not started.
        Pending = "PENDING",
        /// Running.
        Running = "RUNNING",
        /// Failed (some subtask failed).
        Failed = "FAILED",
        /// Done.
        Successful = "SUCCESSFUL",
    }
}

string_enum! {
    /// A subtask's status.
    SubtaskStatus {
        /// Waiting for upstreams.
        Pending = "PENDING",
        /// Upstreams done, about to run.
        Ready = "READY",
        /// Running.
        Running = "RUNNING",
        /// Being cancelled.
        Canceling = "CANCELING",
        /// Failed.
        Failed = "FAILED",
        /// Done.
        Successful = "SUCCESSFUL",
    }
}

string_enum! {
    /// What a task or subtask is doing (ocp-express `TaskOperation`,
    /// `SubtaskOperation`, serialized by name).
    Operation {
        /// First run.
        Execute = "EXECUTE",
        /// Running again after a failure.
        Retry = "RETRY",
        /// Being undone.
        Rollback = "ROLLBACK",
        /// Marked done without running.
        Skip = "SKIP",
        /// Skipped while the task was being rolled back.
        RollbackSkip = "ROLLBACK_SKIP",
        /// Being cancelled.
        Cancel = "CANCEL",
    }
}

string_enum! {
    /// A task's type. The document spells `SYS_ONECE`; `SYS_ONCE` is accepted too.
    TaskType {
        /// Started by a user.
        Manual = "MANUAL",
        /// A one-off system task.
        SysOnce = "SYS_ONECE" | "SYS_ONCE",
        /// A scheduled task.
        Scheduled = "SCHEDULED",
        /// A scheduled system task.
        SysScheduled = "SYS_SCHEDULED",
    }
}

string_enum! {
    /// A cluster's role.
    ClusterType {
        /// Primary.
        Primary = "PRIMARY",
        /// Standby.
        Standby = "STANDBY",
    }
}

string_enum! {
    /// A tenant's compatibility mode.
    TenantMode {
        /// Oracle mode.
        Oracle = "ORACLE",
        /// MySQL mode.
        Mysql = "MYSQL",
    }
}

/// A time: ISO-8601 with an offset (what OCP sends), or an epoch number
/// (seconds, fractional or not, or milliseconds past 10^11); missing,
/// empty or unparseable → `None`, never an error.
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d).unwrap_or(None);
    Ok(match value {
        Some(serde_json::Value::String(t)) => DateTime::parse_from_rfc3339(t.trim()).ok(),
        Some(serde_json::Value::Number(n)) => n.as_f64().and_then(epoch),
        _ => None,
    })
}

fn epoch(n: f64) -> Option<DateTime<FixedOffset>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let millis = if n >= 1e11 { n } else { n * 1000.0 };
    if millis > 8.2e15 {
        return None;
    }
    DateTime::from_timestamp_millis(millis as i64).map(|t| t.fixed_offset())
}

/// An id written as a number, or as a string when Jackson's `LongSerializer`
/// meets a value past 2^53.
pub(crate) fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom(format!("id {n} is not a whole number"))),
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("id {s:?} is not a number"))),
        other => Err(serde::de::Error::custom(format!(
            "id {other} is neither a number nor a string"
        ))),
    }
}

fn lenient_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Id(#[serde(deserialize_with = "lenient_id")] u64);
    Ok(Option::<Vec<Id>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.0)
        .collect())
}

fn ser_time<S: Serializer>(t: &Option<DateTime<FixedOffset>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// A code that some servers send as a number and others as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Code(pub String);

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Code(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }))
    }
}

/// The error object of a failed envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OcpError {
    /// Error code.
    #[serde(default)]
    pub code: Option<Code>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Every OCP answer: `data` plus request metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// The payload.
    #[serde(default = "Option::default")]
    pub data: Option<T>,
    /// Whether the request succeeded.
    #[serde(default)]
    pub successful: Option<bool>,
    /// When the server finished.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// Processing time in milliseconds.
    #[serde(default)]
    pub duration: Option<i64>,
    /// HTTP status.
    #[serde(default)]
    pub status: Option<i64>,
    /// Trace id, for support.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Server address.
    #[serde(default)]
    pub server: Option<String>,
    /// The error of a failed request.
    #[serde(default)]
    pub error: Option<OcpError>,
}

/// Paging of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PageInfo {
    /// Matching items in all.
    #[serde(default)]
    pub total_elements: u64,
    /// Pages in all.
    #[serde(default)]
    pub total_pages: u64,
    /// This page's number (from 1).
    #[serde(default)]
    pub number: u64,
    /// Page size.
    #[serde(default)]
    pub size: u64,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paged<T> {
    /// Items.
    #[serde(default = "Vec::new")]
    pub contents: Vec<T>,
    /// Paging.
    pub page: PageInfo,
}

/// The OCP cluster of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Cluster {
    /// OCP cluster id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// OceanBase cluster id.
    #[serde(default)]
    pub ob_cluster_id: Option<u64>,
    /// Role.
    #[serde(default, rename = "type")]
    pub cluster_type: Option<ClusterType>,
}

/// The tenant of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Tenant {
    /// Tenant id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// OceanBase tenant id.
    #[serde(default)]
    pub ob_cluster_id: Option<u64>,
    /// Mode.
    #[serde(default)]
    pub mode: Option<TenantMode>,
}

/// ocp-express's `BasicTenantInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TenantInfo {
    /// OceanBase tenant id.
    #[serde(default)]
    pub ob_tenant_id: Option<u64>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Who created a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Creator {
    /// User id.
    #[serde(default)]
    pub id: Option<u64>,
    /// User name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A subtask in a list entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BasicSubtaskInstance {
    /// Id.
    #[serde(deserialize_with = "lenient_id")]
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Status.
    pub status: SubtaskStatus,
    /// Operation.
    #[serde(default)]
    pub operation: Option<Operation>,
}

/// A task in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BasicTaskInstance {
    /// Id.
    #[serde(deserialize_with = "lenient_id")]
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Cluster.
    #[serde(default)]
    pub cluster: Option<Cluster>,
    /// Tenant (the seed document's shape).
    #[serde(default)]
    pub tenant: Option<Tenant>,
    /// Tenant (ocp-express's `BasicTenantInfo`: `obTenantId`, `name`).
    #[serde(default)]
    pub tenant_info: Option<TenantInfo>,
    /// Creator.
    #[serde(default)]
    pub creator: Option<Creator>,
    /// Status.
    pub status: OcpTaskStatus,
    /// Start.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub start_time: Option<DateTime<FixedOffset>>,
    /// End.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub finish_time: Option<DateTime<FixedOffset>>,
    /// Subtasks.
    #[serde(default)]
    pub subtasks: Vec<BasicSubtaskInstance>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A subtask in a task's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SubtaskInstance {
    /// Id.
    #[serde(deserialize_with = "lenient_id")]
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Order of execution (the response order means nothing).
    #[serde(default)]
    pub series_id: Option<i64>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Timeout in seconds.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Status.
    pub status: SubtaskStatus,
    /// Operation.
    #[serde(default)]
    pub operation: Option<Operation>,
    /// Host running it.
    #[serde(default)]
    pub executor: Option<String>,
    /// Runs so far.
    #[serde(default)]
    pub run_time: Option<i64>,
    /// Node type (e.g. `JAVA_TASK`).
    #[serde(default)]
    pub node_type: Option<String>,
    /// Parallel index (`-1`: not parallel): `parallelIdx` in ocp-express's
    /// `SubtaskInstance`, `paralleIdx` in the seed document.
    #[serde(default, alias = "paralleIdx")]
    pub parallel_idx: Option<i64>,
    /// Subtasks that must finish first.
    #[serde(default, deserialize_with = "lenient_ids")]
    pub upstreams: Vec<u64>,
    /// Subtasks that wait for this one: `downstreams` in ocp-express's
    /// `SubtaskInstance`, `downstream` in the seed document.
    #[serde(
        default,
        rename = "downstreams",
        alias = "downstream",
        deserialize_with = "lenient_ids"
    )]
    pub downstream: Vec<u64>,
    /// Whether it may not be rolled back.
    #[serde(default)]
    pub prohibit_rollback: Option<bool>,
    /// Created.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub create_time: Option<DateTime<FixedOffset>>,
    /// Started.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub start_time: Option<DateTime<FixedOffset>>,
    /// Finished.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub finish_time: Option<DateTime<FixedOffset>>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A task's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WrappedTaskInstance {
    /// Id.
    #[serde(deserialize_with = "lenient_id")]
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Task definition id.
    #[serde(default)]
    pub task_definition_id: Option<u64>,
    /// Cluster.
    #[serde(default)]
    pub cluster: Option<Cluster>,
    /// Tenant (the seed document's shape).
    #[serde(default)]
    pub tenant: Option<Tenant>,
    /// Tenant (ocp-express's `BasicTenantInfo`: `obTenantId`, `name`).
    #[serde(default)]
    pub tenant_info: Option<TenantInfo>,
    /// Creator.
    #[serde(default)]
    pub creator: Option<Creator>,
    /// Status.
    pub status: OcpTaskStatus,
    /// Type.
    #[serde(default, rename = "type")]
    pub task_type: Option<TaskType>,
    /// Operation (e.g. `ROLLBACK` while being rolled back).
    #[serde(default)]
    pub operation: Option<Operation>,
    /// Host running it.
    #[serde(default)]
    pub executor: Option<String>,
    /// Whether it may not be rolled back.
    #[serde(default)]
    pub prohibit_rollback: Option<bool>,
    /// Subtasks (any order; see [`WrappedTaskInstance::ordered_subtasks`]).
    #[serde(default)]
    pub subtasks: Vec<SubtaskInstance>,
    /// Created.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub create_time: Option<DateTime<FixedOffset>>,
    /// Started.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub start_time: Option<DateTime<FixedOffset>>,
    /// Finished.
    #[serde(default, deserialize_with = "time", serialize_with = "ser_time")]
    pub finish_time: Option<DateTime<FixedOffset>>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl WrappedTaskInstance {
    /// Subtasks in execution order: by `seriesId`, then id.
    pub fn ordered_subtasks(&self) -> Vec<&SubtaskInstance> {
        let mut subs: Vec<&SubtaskInstance> = self.subtasks.iter().collect();
        subs.sort_by_key(|s| (s.series_id.unwrap_or(i64::MAX), s.id));
        subs
    }

    /// The subtask with this id.
    pub fn subtask(&self, id: u64) -> Option<&SubtaskInstance> {
        self.subtasks.iter().find(|s| s.id == id)
    }

    /// The failed subtasks, in execution order.
    pub fn failed_subtasks(&self) -> Vec<&SubtaskInstance> {
        self.ordered_subtasks()
            .into_iter()
            .filter(|s| s.status == SubtaskStatus::Failed)
            .collect()
    }
}

/// `data` of the subtask log endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubtaskLog {
    /// The log, lines separated by `\n`.
    #[serde(default)]
    pub log: String,
}
