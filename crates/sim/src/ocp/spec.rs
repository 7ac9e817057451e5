//! How a test scripts an OCP task: its subtasks, their DAG and how their
//! runs end.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One scripted subtask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcpSubtaskSpec {
    /// Name.
    pub name: String,
    /// Run time of one run (a rollback run takes half).
    #[serde(with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// Indices (in the task's list) of the subtasks it waits for.
    #[serde(default)]
    pub upstreams: Vec<usize>,
    /// Parallel index (`-1`: not parallel).
    #[serde(default = "minus_one")]
    pub parallel_idx: i64,
    /// The first this-many runs fail.
    #[serde(default)]
    pub fail_runs: u32,
    /// Log lines of each run.
    #[serde(default)]
    pub log: Vec<String>,
    /// Whether it may not be rolled back.
    #[serde(default)]
    pub prohibit_rollback: bool,
}

fn minus_one() -> i64 {
    -1
}

impl OcpSubtaskSpec {
    /// A subtask that succeeds after `duration`, after `upstreams`.
    pub fn new(name: impl Into<String>, duration: Duration, upstreams: &[usize]) -> Self {
        OcpSubtaskSpec {
            name: name.into(),
            duration,
            upstreams: upstreams.to_vec(),
            parallel_idx: -1,
            fail_runs: 0,
            log: Vec::new(),
            prohibit_rollback: false,
        }
    }
    /// Its first `runs` runs fail (`u32::MAX`: always).
    pub fn with_fail_runs(mut self, runs: u32) -> Self {
        self.fail_runs = runs;
        self
    }
    /// Marks it as branch `idx` of a parallel group.
    pub fn with_parallel_idx(mut self, idx: i64) -> Self {
        self.parallel_idx = idx;
        self
    }
    /// Log lines.
    pub fn with_log<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.log = lines.into_iter().map(Into::into).collect();
        self
    }
    /// Makes it refuse rollback.
    pub fn with_prohibit_rollback(mut self) -> Self {
        self.prohibit_rollback = true;
        self
    }
}

/// A scripted task instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcpTaskSpec {
    /// Name, e.g. `Create cluster`.
    pub name: String,
    /// `MANUAL`, `SCHEDULED`, `SYS_SCHEDULED` (ocp-express `TaskType`;
    /// OCP's document also lists `SYS_ONECE`).
    #[serde(default = "manual")]
    pub task_type: String,
    /// Cluster id and name (OCP's `cluster`; ocp-express has none).
    #[serde(default)]
    pub cluster: Option<(u64, String)>,
    /// Tenant id and name (ocp-express `tenantInfo`).
    #[serde(default)]
    pub tenant: Option<(u64, String)>,
    /// Host id.
    #[serde(default)]
    pub host_id: Option<u64>,
    /// Whether rollback is prohibited (the task context's
    /// `PROHIBIT_ROLLBACK`).
    #[serde(default)]
    pub prohibit_rollback: bool,
    /// Subtasks; their order is their `seriesId`.
    pub subtasks: Vec<OcpSubtaskSpec>,
}

fn manual() -> String {
    "MANUAL".into()
}

impl OcpTaskSpec {
    /// A manual task on cluster `(1, "obcluster")`.
    pub fn new(name: impl Into<String>, subtasks: Vec<OcpSubtaskSpec>) -> Self {
        OcpTaskSpec {
            name: name.into(),
            task_type: manual(),
            cluster: Some((1, "obcluster".into())),
            tenant: None,
            host_id: None,
            prohibit_rollback: false,
            subtasks,
        }
    }
    /// Prohibits rollback.
    pub fn with_prohibit_rollback(mut self) -> Self {
        self.prohibit_rollback = true;
        self
    }
    /// Runs for tenant `(id, name)`.
    pub fn with_tenant(mut self, id: u64, name: impl Into<String>) -> Self {
        self.tenant = Some((id, name.into()));
        self
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
