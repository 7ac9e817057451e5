//! [`KpsProvider`]: KPS key-pair tasks as a tasktrack provider.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use tasktrack_core::paging::slice_page;
use tasktrack_core::{
    ActionReceipt, Capabilities, Error, Failure, Result, TaskAction, TaskFilter, TaskPage,
    TaskProvider, TaskState, TaskStatus,
};

use crate::client::{task_not_found, KpsClient, DEFAULT_LIMIT};
use crate::failed_lookup::FailedLookup;
use crate::id::KpsTaskId;
use crate::model::{FailedTask, KpsPhase, KpsTaskState, RunningTask};

/// The status of a KPS task, from whichever source knew it.
#[derive(Debug, Clone, PartialEq)]
pub struct KpsTask {
    /// Task id.
    pub task_id: String,
    /// State, e.g. `FAILED_RESET`.
    pub state: KpsTaskState,
    /// Server id.
    pub server_id: Option<String>,
    /// Server name (list entries only).
    pub server_name: Option<String>,
    /// Key pair name (list entries only).
    pub keypair_name: Option<String>,
    /// When the task ran (list entries only).
    pub task_time: Option<DateTime<Utc>>,
    /// Error code of a failed task.
    pub error_code: Option<String>,
    /// Error message of a failed task.
    pub error_msg: Option<String>,
}

impl KpsTask {
    fn from_failed(t: FailedTask) -> Self {
        KpsTask {
            state: t
                .operate_type
                .unwrap_or_else(|| KpsTaskState::new("FAILED")),
            task_id: t.task_id,
            server_id: t.server_id,
            server_name: t.server_name,
            keypair_name: t.keypair_name,
            task_time: t.task_time,
            error_code: t.task_error_code,
            error_msg: t.task_error_msg,
        }
    }

    fn from_running(t: RunningTask) -> Self {
        KpsTask {
            state: t
                .operate_type
                .unwrap_or_else(|| KpsTaskState::new("RUNNING")),
            task_id: t.task_id,
            server_id: t.server_id,
            server_name: t.server_name,
            keypair_name: t.keypair_name,
            task_time: t.task_time,
            error_code: None,
            error_msg: None,
        }
    }

    /// Entries of the failed list are failed whatever their `operate_type`
    /// says (the document's example shows `RUNNING_RESET` there).
    fn failed_entry(t: FailedTask) -> Self {
        let mut s = Self::from_failed(t);
        if s.state.phase() != Some(KpsPhase::Failed) {
            let op = s
                .state
                .as_str()
                .split_once('_')
                .map_or("", |(_, op)| op)
                .to_owned();
            s.state = KpsTaskState::new(if op.is_empty() {
                "FAILED".to_owned()
            } else {
                format!("FAILED_{op}")
            });
        }
        s
    }
}

impl TaskStatus for KpsTask {
    fn state(&self) -> TaskState {
        match self.state.phase() {
            Some(KpsPhase::Ready) => TaskState::Pending,
            Some(KpsPhase::Running) => TaskState::Running,
            Some(KpsPhase::Success) => TaskState::Succeeded,
            Some(KpsPhase::Failed) => TaskState::Failed,
            None => TaskState::Unknown,
        }
    }
    fn vendor_state(&self) -> String {
        self.state.to_string()
    }
    fn failure(&self) -> Option<Failure> {
        if self.state() != TaskState::Failed {
            return None;
        }
        let message = self
            .error_msg
            .clone()
            .unwrap_or_else(|| format!("key pair task {}", self.state));
        let failure = Failure::new(message);
        Some(match &self.error_code {
            Some(code) => failure.with_code(code),
            None => failure,
        })
    }
    fn started_at(&self) -> Option<DateTime<Utc>> {
        self.task_time
    }
    fn kind(&self) -> Option<String> {
        self.state
            .as_str()
            .split_once('_')
            .map(|(_, op)| op.to_owned())
    }
    fn title(&self) -> Option<String> {
        let op = self.kind()?.to_lowercase();
        Some(match (&self.keypair_name, &self.server_name) {
            (Some(k), Some(s)) => format!("{op} key pair {k} on {s}"),
            _ => format!("{op} key pair"),
        })
    }
    fn attributes(&self) -> BTreeMap<String, String> {
        [
            ("server_id", &self.server_id),
            ("server_name", &self.server_name),
            ("keypair_name", &self.keypair_name),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v.clone()?)))
        .collect()
    }
}

/// KPS key-pair tasks. `Id` is the task id.
///
/// Status comes from the single-task query; a failed task's code and
/// message come from the failed-task list, and a task the single query no
/// longer knows is looked up in the failed and running lists. `list` returns
/// failed and running tasks. The [`TaskAction::Delete`] action deletes a
/// failed task's *record* (`DELETE /failed-tasks/{id}`): the key pair and the
/// server are untouched, and the task is not retried.
#[derive(Debug, Clone)]
pub struct KpsProvider {
    client: KpsClient,
    name: String,
    failed: Arc<FailedLookup>,
}

impl KpsProvider {
    /// A provider named `kps`. Here against the simulator
    /// (`tasktrack-sim`): a key-pair task that fails ends the wait with its
    /// KPS error code and message.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktrack_core::{Error, PollPolicy, Poller};
    /// use tasktrack_huaweicloud::{Credentials, ServiceConfig};
    /// use tasktrack_kps::{KpsClient, KpsProvider, KpsTaskId};
    /// use tasktrack_sim::{huawei::HuaweiAuth, kps::Kps, SimBuilder, TaskSpec};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let project = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
    /// let sim = SimBuilder::new(Kps::new(HuaweiAuth::new(project).with_aksk("AK", "SK"))).start().await?;
    /// let id: KpsTaskId = sim
    ///     .create_task(
    ///         TaskSpec::new("reset", Duration::from_millis(30))
    ///             .with_attr("operation", "RESET")
    ///             .with_failure("KPS.0101", "Update public key error"),
    ///     )
    ///     .parse()?;
    ///
    /// let config = ServiceConfig::new("kps", sim.base_url(), project, Credentials::aksk("AK", "SK"));
    /// let poller = Poller::new(KpsProvider::new(KpsClient::new(&config)?), PollPolicy::fixed(Duration::from_millis(20)));
    /// match poller.wait(&id).await?.into_result() {
    ///     Err(Error::TaskFailed { failure, .. }) => assert_eq!(failure.code.as_deref(), Some("KPS.0101")),
    ///     other => panic!("expected the failure, got {other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: KpsClient) -> Self {
        KpsProvider {
            client,
            name: "kps".into(),
            failed: Arc::default(),
        }
    }
    /// Renames it.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// The client.
    pub fn client(&self) -> &KpsClient {
        &self.client
    }

    async fn find_failed(&self, id: &str) -> Result<Option<FailedTask>> {
        self.failed.find(&self.client, id, DEFAULT_LIMIT).await
    }

    async fn find_running(&self, id: &str) -> Result<Option<RunningTask>> {
        let mut stream = std::pin::pin!(self.client.running_tasks(DEFAULT_LIMIT));
        while let Some(t) = stream.try_next().await? {
            if t.task_id == id {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl TaskProvider for KpsProvider {
    type Id = KpsTaskId;
    type Status = KpsTask;

    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_list().with_delete()
    }

    async fn status(&self, id: &KpsTaskId) -> Result<KpsTask> {
        match self.client.task(id.as_str()).await {
            Ok(task) => {
                let mut status = KpsTask {
                    task_id: id.to_string(),
                    state: task.task_status,
                    server_id: task.server_id,
                    server_name: None,
                    keypair_name: None,
                    task_time: None,
                    error_code: None,
                    error_msg: None,
                };
                if status.state.phase() == Some(KpsPhase::Failed) {
                    if let Some(f) = self.find_failed(id.as_str()).await? {
                        let detailed = KpsTask::from_failed(f);
                        status.error_code = detailed.error_code;
                        status.error_msg = detailed.error_msg;
                        status.server_name = detailed.server_name;
                        status.keypair_name = detailed.keypair_name;
                        status.task_time = detailed.task_time;
                    }
                }
                Ok(status)
            }
            Err(Error::NotFound { .. }) => {
                if let Some(f) = self.find_failed(id.as_str()).await? {
                    return Ok(KpsTask::failed_entry(f));
                }
                if let Some(r) = self.find_running(id.as_str()).await? {
                    return Ok(KpsTask::from_running(r));
                }
                Err(Error::not_found(&self.name, format!("key pair task {id}")))
            }
            Err(e) => Err(task_not_found(id.as_str(), e)),
        }
    }

    /// Failed tasks, then running ones; `states` picks the lists to read.
    /// The cursor is an offset into that combined list.
    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(KpsTaskId, KpsTask)>> {
        let mut all: Vec<KpsTask> = Vec::new();
        if filter.admits_state(TaskState::Failed) {
            let failed: Vec<FailedTask> = self
                .client
                .failed_tasks(DEFAULT_LIMIT)
                .try_collect()
                .await?;
            all.extend(failed.into_iter().map(KpsTask::failed_entry));
        }
        if filter.admits_state(TaskState::Running) {
            let running: Vec<RunningTask> = self
                .client
                .running_tasks(DEFAULT_LIMIT)
                .try_collect()
                .await?;
            all.extend(running.into_iter().map(KpsTask::from_running));
        }
        let matching: Vec<KpsTask> = all
            .into_iter()
            .filter(|s| filter.admits_state(s.state()))
            .filter(|s| {
                filter
                    .kind
                    .as_deref()
                    .is_none_or(|k| s.kind().as_deref() == Some(k))
            })
            .filter(|s| {
                filter
                    .since
                    .is_none_or(|since| s.task_time.is_some_and(|t| t >= since))
            })
            .collect();
        let items: Vec<(KpsTaskId, KpsTask)> = matching
            .into_iter()
            .filter_map(|s| match s.task_id.parse::<KpsTaskId>() {
                Ok(id) => Some((id, s)),
                Err(_) => {
                    tracing::warn!(task_id = %s.task_id.escape_debug(), "KPS listed a malformed task id; skipped");
                    None
                }
            })
            .collect();
        slice_page(&self.name, filter, items)
    }

    async fn act(&self, id: &KpsTaskId, action: TaskAction) -> Result<ActionReceipt> {
        match action {
            TaskAction::Delete => {
                let deleted = self.client.delete_failed(id.as_str()).await;
                self.failed.forget(id.as_str()).await;
                deleted.map_err(|e| task_not_found(id.as_str(), e))?;
                Ok(ActionReceipt::accepted(action))
            }
            other => Err(Error::unsupported(&self.name, format!("action {other}"))),
        }
    }
}
