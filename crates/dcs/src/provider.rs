//! [`DcsProvider`]: DCS background tasks as a tasktrack provider.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tasktrack_core::paging::{slice_page, walk_offsets, OffsetPage, PageLimits};
use tasktrack_core::{
    ActionReceipt, Capabilities, Error, Failure, Progress, Result, Step, TaskAction, TaskFilter,
    TaskPage, TaskProvider, TaskState, TaskStatus,
};

use crate::client::{BackgroundTaskQuery, DcsClient};
use crate::model::{BackgroundTask, DcsStepStatus, DcsTaskProgress, StepDetail, SubStepDetail};

/// A DCS task handle: the instance and the task, written `instance_id/task_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DcsTaskId {
    /// Instance id.
    pub instance_id: String,
    /// Background task id.
    pub task_id: String,
}

impl DcsTaskId {
    /// A handle.
    pub fn new(instance_id: impl Into<String>, task_id: impl Into<String>) -> Self {
        DcsTaskId {
            instance_id: instance_id.into(),
            task_id: task_id.into(),
        }
    }
}

impl fmt::Display for DcsTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance_id, self.task_id)
    }
}

impl FromStr for DcsTaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(
                "dcs",
                format!("malformed DCS task id {s:?}; expected INSTANCE_ID/TASK_ID"),
            )
        };
        let (instance, task) = s.split_once('/').ok_or_else(bad)?;
        // Each part is a path segment of its own: ids of letters, digits,
        // '-', '_' and '.', never '.' or '..' alone.
        let clean = |p: &str| {
            !p.is_empty()
                && p.len() <= 128
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !clean(instance) || !clean(task) {
            return Err(bad());
        }
        Ok(DcsTaskId::new(instance, task))
    }
}

/// A DCS task's status: its progress (from the progress query) and/or its
/// background-task entry (from the list).
#[derive(Debug, Clone, PartialEq)]
pub struct DcsTask {
    /// Handle.
    pub id: DcsTaskId,
    /// Progress and steps, when read through the progress query.
    pub progress: Option<DcsTaskProgress>,
    /// The list entry, when read through the background task list.
    pub background: Option<BackgroundTask>,
}

fn step_state(s: &DcsStepStatus) -> TaskState {
    match s {
        DcsStepStatus::Waiting => TaskState::Pending,
        DcsStepStatus::Executing => TaskState::Running,
        DcsStepStatus::Finish => TaskState::Succeeded,
        DcsStepStatus::Failed => TaskState::Failed,
        DcsStepStatus::Unknown(_) => TaskState::Unknown,
    }
}

fn sub_step(s: &SubStepDetail, i: usize) -> Step {
    let state = step_state(&s.sub_step_status);
    let mut step = Step::new(
        s.sub_step_id.clone().unwrap_or_else(|| i.to_string()),
        s.sub_step_name.clone().unwrap_or_default(),
        state,
    );
    step.vendor_state = s.sub_step_status.to_string();
    step.started_at = s.begin_time;
    step.finished_at = s.end_time.filter(|_| state.is_terminal());
    if state == TaskState::Failed {
        let message = s
            .detail
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "sub-step failed".into());
        let failure = Failure::new(message);
        step.failure = Some(match &s.error_code {
            Some(c) => failure.with_code(c),
            None => failure,
        });
    }
    step
}

fn step(s: &StepDetail, i: usize) -> Step {
    let state = step_state(&s.step_status);
    let mut step = Step::new(
        s.step_id.clone().unwrap_or_else(|| i.to_string()),
        s.step_name.clone().unwrap_or_default(),
        state,
    );
    step.vendor_state = s.step_status.to_string();
    step.started_at = s.begin_time;
    step.finished_at = s.end_time.filter(|_| state.is_terminal());
    step.steps = s
        .sub_step_details
        .iter()
        .enumerate()
        .map(|(i, s)| sub_step(s, i))
        .collect();
    if state == TaskState::Failed {
        step.failure = Some(step_failure(s));
    }
    step
}

/// A failed step's failure: its code, and the failed sub-step's name and
/// detail when there is one (DCS has no message field of its own).
fn step_failure(s: &StepDetail) -> Failure {
    let name = s.step_name.as_deref().unwrap_or("a step");
    let failed_sub = s
        .sub_step_details
        .iter()
        .find(|d| d.sub_step_status == DcsStepStatus::Failed);
    let message = match failed_sub {
        Some(sub) => {
            let sub_name = sub.sub_step_name.as_deref().unwrap_or("a sub-step");
            match sub.detail.as_deref().filter(|d| !d.is_empty()) {
                Some(detail) => format!("step '{name}' failed at '{sub_name}': {detail}"),
                None => format!("step '{name}' failed at '{sub_name}'"),
            }
        }
        None => format!("step '{name}' failed"),
    };
    let code = s
        .error_code
        .clone()
        .or_else(|| failed_sub.and_then(|d| d.error_code.clone()));
    let failure = Failure::new(message);
    match code {
        Some(c) => failure.with_code(c),
        None => failure,
    }
}

impl DcsTask {
    fn failed_step(&self) -> Option<&StepDetail> {
        self.progress.as_ref()?.step_details.iter().find(|s| {
            s.step_status == DcsStepStatus::Failed
                || s.sub_step_details
                    .iter()
                    .any(|d| d.sub_step_status == DcsStepStatus::Failed)
        })
    }
}

impl TaskStatus for DcsTask {
    /// Any failed step (or sub-step) → failed; every step finished (or 100 %
    /// with no unfinished step) → succeeded; all waiting at 0 % → pending;
    /// an unknown step status with nothing else decisive → unknown;
    /// otherwise running. Error codes alone do not mean failure: finished
    /// steps carry them too.
    fn state(&self) -> TaskState {
        if let Some(p) = &self.progress {
            if self.failed_step().is_some() {
                return TaskState::Failed;
            }
            let steps = &p.step_details;
            let finished = steps
                .iter()
                .filter(|s| s.step_status == DcsStepStatus::Finish)
                .count();
            if !steps.is_empty() && finished == steps.len() {
                return TaskState::Succeeded;
            }
            if steps.is_empty() && p.progress == Some(100) {
                return TaskState::Succeeded;
            }
            if steps
                .iter()
                .all(|s| s.step_status == DcsStepStatus::Waiting)
                && p.progress.unwrap_or(0) == 0
            {
                return TaskState::Pending;
            }
            let unknown = steps
                .iter()
                .any(|s| matches!(s.step_status, DcsStepStatus::Unknown(_)));
            let executing = steps
                .iter()
                .any(|s| s.step_status == DcsStepStatus::Executing);
            if unknown && !executing {
                return TaskState::Unknown;
            }
            return TaskState::Running;
        }
        match self.background.as_ref().and_then(|b| b.status.as_deref()) {
            Some("SUCCESS") => TaskState::Succeeded,
            Some("FAILED") => TaskState::Failed,
            Some("EXECUTING" | "RUNNING") => TaskState::Running,
            Some("WAITING") => TaskState::Pending,
            _ => TaskState::Unknown,
        }
    }

    fn vendor_state(&self) -> String {
        if let Some(p) = &self.progress {
            let current = p
                .step_details
                .iter()
                .find(|s| s.step_status != DcsStepStatus::Finish)
                .or(p.step_details.last());
            return match current {
                Some(s) => format!(
                    "{}% {} {}",
                    p.progress.unwrap_or(0),
                    s.step_status,
                    s.step_name.as_deref().unwrap_or("")
                ),
                None => format!("{}%", p.progress.unwrap_or(0)),
            }
            .trim_end()
            .to_owned();
        }
        self.background
            .as_ref()
            .and_then(|b| b.status.clone())
            .unwrap_or_default()
    }

    fn progress(&self) -> Option<Progress> {
        let p = self.progress.as_ref()?;
        let total = p.step_details.len() as u32;
        let done = p
            .step_details
            .iter()
            .filter(|s| s.step_status == DcsStepStatus::Finish)
            .count() as u32;
        let mut progress = match p.progress {
            Some(percent) => Progress::percent(percent.clamp(0, 100) as f32),
            None => Progress::default(),
        };
        progress.remaining = p
            .remain_time
            .filter(|r| *r > 0)
            .map(|r| Duration::from_secs(r as u64));
        if total > 0 {
            (progress.steps_done, progress.steps_total) = (Some(done), Some(total));
        }
        Some(progress)
    }

    fn failure(&self) -> Option<Failure> {
        if self.state() != TaskState::Failed {
            return None;
        }
        match self.failed_step() {
            Some(s) => Some(step_failure(s)),
            None => {
                let failure = Failure::new("background task failed");
                let code = self.background.as_ref().and_then(|b| b.error_code.clone());
                Some(match code {
                    Some(c) => failure.with_code(c),
                    None => failure,
                })
            }
        }
    }

    fn started_at(&self) -> Option<DateTime<Utc>> {
        let from_steps = self
            .progress
            .as_ref()
            .and_then(|p| p.step_details.first())
            .and_then(|s| s.begin_time);
        from_steps.or_else(|| self.background.as_ref().and_then(|b| b.created_at))
    }

    fn finished_at(&self) -> Option<DateTime<Utc>> {
        if !self.state().is_terminal() {
            return None;
        }
        let from_steps = self
            .progress
            .as_ref()
            .and_then(|p| p.step_details.iter().filter_map(|s| s.end_time).max());
        from_steps.or_else(|| self.background.as_ref().and_then(|b| b.updated_at))
    }

    fn steps(&self) -> Vec<Step> {
        self.progress
            .as_ref()
            .map(|p| {
                p.step_details
                    .iter()
                    .enumerate()
                    .map(|(i, s)| step(s, i))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `remain_time`, when the server gives one.
    fn poll_hint(&self) -> Option<Duration> {
        let r = self.progress.as_ref()?.remain_time?;
        (r > 0).then(|| Duration::from_secs(r as u64))
    }

    fn kind(&self) -> Option<String> {
        self.background.as_ref().and_then(|b| b.name.clone())
    }

    fn attributes(&self) -> BTreeMap<String, String> {
        [("instance_id".to_owned(), self.id.instance_id.clone())].into()
    }
}

/// DCS background tasks. `Id` is [`DcsTaskId`] (`instance_id/task_id`).
/// Status comes from the progress query; `list` reads the background task
/// list of the instances given with [`with_instances`](Self::with_instances).
#[derive(Debug, Clone)]
pub struct DcsProvider {
    client: DcsClient,
    name: String,
    instances: Vec<String>,
}

impl DcsProvider {
    /// A provider named `dcs`. Here against the simulator
    /// (`tasktrack-sim`), following one instance's task to its end.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktrack_core::{PollPolicy, Poller, TaskState, TaskStatus};
    /// use tasktrack_dcs::{DcsClient, DcsProvider, DcsTaskId};
    /// use tasktrack_huaweicloud::{Credentials, ServiceConfig};
    /// use tasktrack_sim::{dcs::Dcs, huawei::HuaweiAuth, SimBuilder, StepSpec, TaskSpec};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (project, instance) = ("a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71", "5560df16-cebf-4473-95c4-d1b573c16e79");
    /// let sim = SimBuilder::new(Dcs::new(HuaweiAuth::new(project).with_token("token"), [instance]))
    ///     .start()
    ///     .await?;
    /// let ms = Duration::from_millis;
    /// let task = sim.create_task(
    ///     TaskSpec::new("ChangeInstanceSpec", ms(0))
    ///         .with_step(StepSpec::new("precheck", ms(30)))
    ///         .with_step(StepSpec::new("switch over", ms(30))),
    /// );
    ///
    /// let config = ServiceConfig::new("dcs", sim.base_url(), project, Credentials::token("token"));
    /// let poller = Poller::new(DcsProvider::new(DcsClient::new(&config)?), PollPolicy::fixed(ms(20)));
    /// let outcome = poller.wait(&DcsTaskId::new(instance, task)).await?;
    /// assert_eq!(outcome.state(), TaskState::Succeeded);
    /// assert_eq!(outcome.status.steps().len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: DcsClient) -> Self {
        DcsProvider {
            client,
            name: "dcs".into(),
            instances: Vec::new(),
        }
    }
    /// The instances whose task lists `list` reads.
    pub fn with_instances<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        instances: I,
    ) -> Self {
        self.instances = instances.into_iter().map(Into::into).collect();
        self
    }
    /// Renames it.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// The client.
    pub fn client(&self) -> &DcsClient {
        &self.client
    }
}

#[async_trait]
impl TaskProvider for DcsProvider {
    type Id = DcsTaskId;
    type Status = DcsTask;

    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_progress()
            .with_steps()
            .with_list()
            .with_delete()
    }

    /// `INSTANCE_ID/TASK_ID`, or a bare `TASK_ID` when exactly one
    /// instance is configured (the id `sim dcs --sample-tasks` and the
    /// console show).
    fn parse_id(&self, text: &str) -> Result<DcsTaskId> {
        match self.instances.as_slice() {
            [only] if !text.contains('/') => format!("{only}/{text}").parse(),
            _ => text.parse(),
        }
    }

    async fn status(&self, id: &DcsTaskId) -> Result<DcsTask> {
        let progress = self.client.progress(&id.instance_id, &id.task_id).await?;
        Ok(DcsTask {
            id: id.clone(),
            progress: Some(progress),
            background: None,
        })
    }

    /// The background tasks of the configured instances (all pages), filtered
    /// here by state, kind and start time; the cursor is an offset.
    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(DcsTaskId, DcsTask)>> {
        if self.instances.is_empty() {
            return Err(Error::invalid_input(
                &self.name,
                "DCS lists tasks per instance: configure them with DcsProvider::with_instances",
            ));
        }
        let mut all = Vec::new();
        for instance in &self.instances {
            let pages = walk_offsets(
                &self.name,
                PageLimits::new(100),
                |offset, limit| {
                    let q = BackgroundTaskQuery {
                        offset: Some(offset),
                        limit: Some(limit),
                        start_time: filter.since,
                        ..BackgroundTaskQuery::default()
                    };
                    async move {
                        let page = self.client.background_tasks(instance, &q).await?;
                        Ok(OffsetPage::new(
                            page.tasks_with_defaults(),
                            page.task_count.map(|c| c.max(0) as u64),
                        ))
                    }
                },
                |t: &BackgroundTask| t.id.clone(),
            );
            let tasks: Vec<BackgroundTask> = pages.try_collect().await?;
            for t in tasks {
                let Ok(id) = format!("{instance}/{}", t.id).parse::<DcsTaskId>() else {
                    tracing::warn!(task_id = %t.id.escape_debug(), "DCS listed a malformed task id; skipped");
                    continue;
                };
                all.push((
                    id.clone(),
                    DcsTask {
                        id,
                        progress: None,
                        background: Some(t),
                    },
                ));
            }
        }
        let matching: Vec<_> = all
            .into_iter()
            // `start_time` is the SDK's name; the document's example and
            // terraform send `begin_time`: the time is checked here too.
            .filter(|(_, t)| {
                filter
                    .since
                    .is_none_or(|s| t.started_at().is_none_or(|st| st >= s))
            })
            .filter(|(_, t)| filter.admits_state(t.state()))
            .filter(|(_, t)| {
                filter
                    .kind
                    .as_deref()
                    .is_none_or(|k| t.kind().as_deref() == Some(k))
            })
            .collect();
        slice_page(&self.name, filter, matching)
    }

    /// `Delete` removes the background task's record
    /// (`DELETE …/instances/{instance_id}/tasks/{task_id}`); the instance and
    /// whatever the task did are untouched. Sent once, never retried.
    async fn act(&self, id: &DcsTaskId, action: TaskAction) -> Result<ActionReceipt> {
        match action {
            TaskAction::Delete => {
                self.client
                    .delete_background_task(&id.instance_id, &id.task_id)
                    .await?;
                Ok(ActionReceipt::accepted(action))
            }
            other => Err(Error::unsupported(&self.name, format!("action {other}"))),
        }
    }
}
