//! [`OcpProvider`]: OCP task instances as a tasktrack provider, with control
//! actions refused locally when the task's state makes them impossible.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tasktrack_core::{
    ActionReceipt, Capabilities, Error, Failure, LogLine, LogRange, Progress, Result, Step,
    TaskAction, TaskFilter, TaskPage, TaskProvider, TaskState, TaskStatus,
};

use crate::client::{OcpClient, TaskQuery};
use crate::model::{
    BasicTaskInstance, OcpTaskStatus, Operation, SubtaskInstance, SubtaskStatus,
    WrappedTaskInstance,
};

/// Subtask logs read for one task at most.
const MAX_SUBTASK_LOGS: usize = 200;

/// The status type of [`OcpProvider`]: a task instance's detail.
pub type OcpTask = WrappedTaskInstance;

impl WrappedTaskInstance {
    /// The tenant's name, from either shape (`tenant` or `tenantInfo`).
    pub fn tenant_name(&self) -> Option<&str> {
        self.tenant
            .as_ref()
            .and_then(|t| t.name.as_deref())
            .or_else(|| self.tenant_info.as_ref().and_then(|t| t.name.as_deref()))
    }
}

impl From<BasicTaskInstance> for WrappedTaskInstance {
    /// A list entry as a detail: the fields the list does not carry are empty.
    fn from(b: BasicTaskInstance) -> Self {
        WrappedTaskInstance {
            id: b.id,
            name: b.name,
            task_definition_id: None,
            cluster: b.cluster,
            tenant: b.tenant,
            tenant_info: b.tenant_info,
            creator: b.creator,
            status: b.status,
            task_type: None,
            operation: None,
            executor: None,
            prohibit_rollback: None,
            subtasks: b
                .subtasks
                .into_iter()
                .map(|s| SubtaskInstance {
                    id: s.id,
                    name: s.name,
                    series_id: None,
                    description: s.description,
                    timeout: None,
                    status: s.status,
                    operation: s.operation,
                    executor: None,
                    run_time: None,
                    node_type: None,
                    parallel_idx: None,
                    upstreams: Vec::new(),
                    downstream: Vec::new(),
                    prohibit_rollback: None,
                    create_time: None,
                    start_time: None,
                    finish_time: None,
                    extra: BTreeMap::new(),
                })
                .collect(),
            create_time: None,
            start_time: b.start_time,
            finish_time: b.finish_time,
            extra: b.extra,
        }
    }
}

fn subtask_state(s: &SubtaskStatus) -> TaskState {
    match s {
        SubtaskStatus::Pending | SubtaskStatus::Ready => TaskState::Pending,
        SubtaskStatus::Running | SubtaskStatus::Canceling => TaskState::Running,
        SubtaskStatus::Failed => TaskState::Failed,
        SubtaskStatus::Successful => TaskState::Succeeded,
        SubtaskStatus::Unknown(_) => TaskState::Unknown,
    }
}

fn with_operation(status: &str, op: Option<&Operation>) -> String {
    match op {
        Some(op) if *op != Operation::Execute => format!("{status} ({op})"),
        _ => status.to_owned(),
    }
}

fn utc(t: Option<DateTime<chrono::FixedOffset>>) -> Option<DateTime<Utc>> {
    t.map(|t| t.with_timezone(&Utc))
}

/// True for a task whose operation is a rollback.
fn rolling_back(t: &WrappedTaskInstance) -> bool {
    t.operation == Some(Operation::Rollback)
}

impl TaskStatus for WrappedTaskInstance {
    /// RUNNING → running, SUCCESSFUL → succeeded, FAILED → failed, PENDING →
    /// pending, others → unknown. A task whose rollback completed is
    /// `SUCCESSFUL` with operation `ROLLBACK` (ocp-express
    /// `RunningTaskWorker.updateState`: every subtask back to `PENDING`):
    /// what it was started to do was undone, so it is **cancelled**, not
    /// succeeded.
    fn state(&self) -> TaskState {
        match self.status {
            OcpTaskStatus::Pending => TaskState::Pending,
            OcpTaskStatus::Running => TaskState::Running,
            OcpTaskStatus::Successful if rolling_back(self) => TaskState::Cancelled,
            OcpTaskStatus::Successful => TaskState::Succeeded,
            OcpTaskStatus::Failed => TaskState::Failed,
            OcpTaskStatus::Unknown(_) => TaskState::Unknown,
        }
    }

    fn vendor_state(&self) -> String {
        with_operation(self.status.as_str(), self.operation.as_ref())
    }

    /// The failed subtasks' ids and names; `rolled back` for a task whose
    /// rollback completed.
    fn failure(&self) -> Option<Failure> {
        if self.state() == TaskState::Cancelled {
            return Some(Failure::new("rolled back"));
        }
        if self.state() != TaskState::Failed {
            return None;
        }
        let failed = self.failed_subtasks();
        if failed.is_empty() {
            return Some(Failure::new("task failed"));
        }
        let list: Vec<String> = failed
            .iter()
            .map(|s| format!("#{} {}", s.id, s.name.as_deref().unwrap_or("(unnamed)")))
            .collect();
        Some(Failure::new(format!(
            "failed subtask(s): {}",
            list.join(", ")
        )))
    }

    /// Finished subtasks over all subtasks.
    fn progress(&self) -> Option<Progress> {
        if self.subtasks.is_empty() {
            return None;
        }
        let done = self
            .subtasks
            .iter()
            .filter(|s| s.status == SubtaskStatus::Successful)
            .count();
        Some(Progress::steps(done as u32, self.subtasks.len() as u32))
    }

    fn started_at(&self) -> Option<DateTime<Utc>> {
        utc(self.start_time)
    }

    fn finished_at(&self) -> Option<DateTime<Utc>> {
        utc(self.finish_time).filter(|_| self.state().is_terminal())
    }

    /// Subtasks ordered by `seriesId`, with their upstream / downstream ids.
    fn steps(&self) -> Vec<Step> {
        self.ordered_subtasks()
            .into_iter()
            .map(|s| {
                let state = subtask_state(&s.status);
                let mut step =
                    Step::new(s.id.to_string(), s.name.clone().unwrap_or_default(), state);
                step.vendor_state = with_operation(s.status.as_str(), s.operation.as_ref());
                step.started_at = utc(s.start_time);
                step.finished_at = utc(s.finish_time).filter(|_| state.is_terminal());
                step.upstream = s.upstreams.iter().map(u64::to_string).collect();
                step.downstream = s.downstream.iter().map(u64::to_string).collect();
                if state == TaskState::Failed {
                    step.failure = Some(Failure::new(format!(
                        "subtask failed after {} run(s)",
                        s.run_time.unwrap_or(1)
                    )));
                }
                step
            })
            .collect()
    }

    fn kind(&self) -> Option<String> {
        self.name.clone()
    }

    fn title(&self) -> Option<String> {
        let name = self.name.clone()?;
        let on = self
            .cluster
            .as_ref()
            .and_then(|c| c.name.as_deref())
            .or_else(|| self.tenant_name());
        Some(match on {
            Some(on) => format!("{name} ({on})"),
            None => name,
        })
    }

    fn attributes(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        if let Some(op) = &self.operation {
            a.insert("operation".into(), op.to_string());
        }
        if let Some(t) = &self.task_type {
            a.insert("type".into(), t.to_string());
        }
        if let Some(c) = self.cluster.as_ref().and_then(|c| c.name.clone()) {
            a.insert("cluster".into(), c);
        }
        if let Some(t) = self.tenant_name() {
            a.insert("tenant".into(), t.to_owned());
        }
        if let Some(e) = &self.executor {
            a.insert("executor".into(), e.clone());
        }
        a
    }
}

/// OceanBase OCP task instances. `Id` is the task instance id.
///
/// Actions: `Retry`, `Rollback`, `RetryStep`, `SkipStep`, `CancelStep` (step
/// ids are subtask ids). Each first reads the task and refuses locally, with
/// [`Error::InvalidInput`], when its state makes the action impossible (e.g.
/// skipping a subtask that has not failed, rolling back a task with
/// `prohibitRollback`); the action itself is sent once and never retried.
/// `logs` reads the failed subtasks' logs when the task failed, and every
/// subtask's log otherwise, in `seriesId` order, each line prefixed with its
/// subtask.
#[derive(Debug, Clone)]
pub struct OcpProvider {
    client: OcpClient,
    name: String,
}

fn refuse(action: &TaskAction, why: String) -> Error {
    Error::invalid_input("ocp", format!("refusing {action}: {why}"))
}

impl OcpProvider {
    /// A provider named `ocp`.
    ///
    /// Here against the simulator (`tasktrack-sim`); a real OCP is the same
    /// with its URL and an OCP user.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktrack_core::{PollPolicy, Poller, Secret, TaskState};
    /// use tasktrack_ocp::{OcpClient, OcpProvider};
    /// use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
    /// use tasktrack_sim::SimBuilder;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ocp = Ocp::new("admin", "demo-password");
    /// let sim = SimBuilder::new(ocp.clone()).start().await?;
    /// let ms = Duration::from_millis;
    /// let id = ocp.create(OcpTaskSpec::new(
    ///     "Add zone",
    ///     vec![
    ///         OcpSubtaskSpec::new("Check hosts", ms(30), &[]),
    ///         OcpSubtaskSpec::new("Install observer", ms(30), &[0]),
    ///     ],
    /// ));
    ///
    /// let client = OcpClient::builder(sim.base_url(), "admin", &Secret::new("demo-password")).build()?;
    /// let poller = Poller::new(OcpProvider::new(client), PollPolicy::fixed(ms(20)));
    /// let outcome = poller.wait(&id).await?;
    /// assert_eq!(outcome.state(), TaskState::Succeeded);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: OcpClient) -> Self {
        OcpProvider {
            client,
            name: "ocp".into(),
        }
    }
    /// Renames it.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// The client.
    pub fn client(&self) -> &OcpClient {
        &self.client
    }

    fn subtask<'a>(
        task: &'a WrappedTaskInstance,
        action: &TaskAction,
        step: &str,
    ) -> Result<&'a SubtaskInstance> {
        let sid: u64 = step
            .parse()
            .map_err(|_| refuse(action, format!("subtask id {step:?} is not a number")))?;
        task.subtask(sid)
            .ok_or_else(|| refuse(action, format!("task {} has no subtask {sid}", task.id)))
    }

    /// Checks an action against the task's state, before any action request.
    pub fn check_action(task: &WrappedTaskInstance, action: &TaskAction) -> Result<()> {
        let id = task.id;
        match action {
            TaskAction::Retry if task.status != OcpTaskStatus::Failed => Err(refuse(
                action,
                format!(
                    "task {id} is {}; only a FAILED task can be retried",
                    task.status
                ),
            )),
            // TaskInstanceManagerImpl.retryTask refuses a failed rollback.
            TaskAction::Retry if rolling_back(task) => Err(refuse(
                action,
                format!("task {id} failed while rolling back; it cannot be retried, only its subtasks skipped"),
            )),
            TaskAction::Rollback if task.prohibit_rollback == Some(true) => {
                Err(refuse(action, format!("task {id} prohibits rollback")))
            }
            TaskAction::Rollback if task.status != OcpTaskStatus::Failed => Err(refuse(
                action,
                format!(
                    "task {id} is {}; only a FAILED task can be rolled back",
                    task.status
                ),
            )),
            TaskAction::RetryStep(step) | TaskAction::SkipStep(step) => {
                let sub = Self::subtask(task, action, step)?;
                if matches!(action, TaskAction::RetryStep(_))
                    && sub.operation == Some(Operation::Rollback)
                    && sub.status == SubtaskStatus::Failed
                {
                    return Err(refuse(
                        action,
                        format!("subtask {} failed while rolling back; skip it instead", sub.id),
                    ));
                }
                if sub.status != SubtaskStatus::Failed {
                    return Err(refuse(
                        action,
                        format!(
                            "subtask {} is {}; only a FAILED subtask can be {}",
                            sub.id,
                            sub.status,
                            if matches!(action, TaskAction::SkipStep(_)) {
                                "skipped"
                            } else {
                                "retried"
                            }
                        ),
                    ));
                }
                Ok(())
            }
            TaskAction::CancelStep(step) => {
                let sub = Self::subtask(task, action, step)?;
                if sub.status != SubtaskStatus::Running {
                    return Err(refuse(
                        action,
                        format!(
                            "subtask {} is {}; only a RUNNING subtask can be cancelled",
                            sub.id, sub.status
                        ),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl TaskProvider for OcpProvider {
    type Id = u64;
    type Status = WrappedTaskInstance;

    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_list()
            .with_logs()
            .with_steps()
            .with_progress()
            .with_retry()
            .with_rollback()
            .with_retry_step()
            .with_skip_step()
            .with_cancel_step()
    }

    async fn status(&self, id: &u64) -> Result<WrappedTaskInstance> {
        self.client.task(*id).await
    }

    /// One page; `states` maps to OCP's repeatable `status`, `kind` to
    /// `name`, `limit` to `size` (≤ 2000), the cursor is the page number.
    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(u64, WrappedTaskInstance)>> {
        let page: u32 = match &filter.cursor {
            Some(c) => c
                .parse()
                .map_err(|_| Error::invalid_input(&self.name, format!("bad list cursor {c:?}")))?,
            None => 1,
        };
        let status = filter
            .states
            .iter()
            .filter_map(|s| match s {
                TaskState::Pending => Some(OcpTaskStatus::Pending),
                TaskState::Running => Some(OcpTaskStatus::Running),
                TaskState::Succeeded => Some(OcpTaskStatus::Successful),
                TaskState::Failed => Some(OcpTaskStatus::Failed),
                _ => None,
            })
            .collect();
        let size = filter.limit.map_or(100, |l| l.clamp(1, 2000) as u32);
        let q = TaskQuery {
            status,
            name: filter.kind.clone(),
            page: Some(page),
            size: Some(size),
            ..TaskQuery::default()
        };
        let result = self.client.list(&q).await?;
        let items: Vec<(u64, WrappedTaskInstance)> = result
            .contents
            .into_iter()
            .map(WrappedTaskInstance::from)
            .filter(|t| {
                filter
                    .since
                    .is_none_or(|s| t.started_at().is_some_and(|st| st >= s))
            })
            // The server's name filter is a fuzzy match; a kind is exact.
            .filter(|t| {
                filter
                    .kind
                    .as_ref()
                    .is_none_or(|k| t.name.as_ref() == Some(k))
            })
            .map(|t| (t.id, t))
            .collect();
        let next_cursor =
            (u64::from(page) < result.page.total_pages).then(|| (page + 1).to_string());
        Ok(TaskPage::new(
            items,
            next_cursor,
            Some(result.page.total_elements),
        ))
    }

    async fn logs(&self, id: &u64, range: LogRange) -> Result<Vec<LogLine>> {
        let task = self.client.task(*id).await?;
        let failed = task.failed_subtasks();
        let subs = if failed.is_empty() {
            task.ordered_subtasks()
        } else {
            failed
        };
        // One request per subtask: a task claiming thousands is refused
        // rather than read for hours.
        if subs.len() > MAX_SUBTASK_LOGS {
            return Err(Error::limit(
                &self.name,
                format!(
                    "task {id} has {} subtasks; reading more than {MAX_SUBTASK_LOGS} subtask logs at once is refused",
                    subs.len()
                ),
            ));
        }
        let mut lines = Vec::new();
        for sub in subs {
            let log = self.client.subtask_log(*id, sub.id).await?;
            let name = sub.name.as_deref().unwrap_or("");
            for text in log.lines() {
                lines.push(format!("[{} {name}] {text}", sub.id));
            }
        }
        Ok(range.select(lines))
    }

    async fn act(&self, id: &u64, action: TaskAction) -> Result<ActionReceipt> {
        if !self.capabilities().supports(&action) {
            return Err(Error::unsupported(&self.name, format!("action {action}")));
        }
        let task = self.client.task(*id).await?;
        Self::check_action(&task, &action)?;
        tracing::info!(task = id, %action, "sending OCP action");
        let message = match &action {
            TaskAction::Retry => Some(match self.client.retry(*id).await? {
                Some(t) => t.vendor_state(),
                None => "retry accepted".to_owned(),
            }),
            // ocp-express answers a rollback with no data at all.
            TaskAction::Rollback => Some(match self.client.rollback(*id).await? {
                Some(t) => t.vendor_state(),
                None => "rollback accepted".to_owned(),
            }),
            TaskAction::RetryStep(step) => {
                let sub = self
                    .client
                    .retry_subtask(*id, step.parse().unwrap_or_default())
                    .await?;
                Some(match sub {
                    Some(sub) => with_operation(sub.status.as_str(), sub.operation.as_ref()),
                    None => "retry accepted".to_owned(),
                })
            }
            TaskAction::SkipStep(step) => {
                self.client
                    .skip_subtask(*id, step.parse().unwrap_or_default())
                    .await?;
                None
            }
            TaskAction::CancelStep(step) => {
                self.client
                    .cancel_subtask(*id, step.parse().unwrap_or_default())
                    .await?;
                None
            }
            other => return Err(Error::unsupported(&self.name, format!("action {other}"))),
        };
        Ok(ActionReceipt::accepted(action).with_message(message))
    }
}

/// Every task of a query, collected (a convenience over [`OcpClient::list_all`]).
pub async fn all_tasks(client: &OcpClient, query: TaskQuery) -> Result<Vec<BasicTaskInstance>> {
    client.list_all(query).try_collect().await
}
