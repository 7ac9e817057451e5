//! The typed [`TaskProvider`] a vendor adapter implements, and the values
//! its calls take and give (capabilities, filters, pages, log lines, control
//! actions). Its object-safe twin lives in [`erased`](crate::erased).

use std::fmt::{self, Debug, Display};
use std::hash::Hash;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{TaskState, TaskStatus};

/// What a task id must be: cheap to clone and compare, and printable and
/// parseable so a handle can be saved as a string and resumed after a
/// restart (`id.to_string().parse()` gives the same id back).
pub trait TaskId:
    Clone + Eq + Hash + Debug + Display + FromStr<Err: Display> + Send + Sync + 'static
{
}

impl<T> TaskId for T where
    T: Clone + Eq + Hash + Debug + Display + FromStr<Err: Display> + Send + Sync + 'static
{
}

/// Which optional calls a provider supports (OpenDAL style: plain flags).
/// A call whose flag is false returns [`Error::Unsupported`].
///
/// Build one from [`Capabilities::NONE`] so flags added later default to
/// false (the struct is `#[non_exhaustive]` for that reason):
///
/// ```
/// use tasktrack_core::Capabilities;
///
/// const CAPS: Capabilities = Capabilities::NONE.with_logs().with_cancel();
/// assert!(CAPS.logs && CAPS.cancel && !CAPS.list);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`TaskProvider::list`] works.
    pub list: bool,
    /// [`TaskProvider::logs`] works.
    pub logs: bool,
    /// Statuses carry [`Progress`](crate::Progress).
    pub progress: bool,
    /// Statuses carry [`Step`](crate::Step)s.
    pub steps: bool,
    /// [`TaskProvider::status_many`] is cheaper than one call per id.
    pub batch_status: bool,
    /// [`TaskAction::Cancel`].
    pub cancel: bool,
    /// [`TaskAction::Retry`].
    pub retry: bool,
    /// [`TaskAction::Rollback`].
    pub rollback: bool,
    /// [`TaskAction::RetryStep`].
    pub retry_step: bool,
    /// [`TaskAction::SkipStep`].
    pub skip_step: bool,
    /// [`TaskAction::CancelStep`].
    pub cancel_step: bool,
    /// [`TaskAction::Delete`].
    pub delete: bool,
}

impl Capabilities {
    /// Nothing optional: only `status`.
    pub const NONE: Capabilities = Capabilities {
        list: false,
        logs: false,
        progress: false,
        steps: false,
        batch_status: false,
        cancel: false,
        retry: false,
        rollback: false,
        retry_step: false,
        skip_step: false,
        cancel_step: false,
        delete: false,
    };

    /// These capabilities and [`TaskProvider::list`].
    pub const fn with_list(mut self) -> Self {
        self.list = true;
        self
    }

    /// These capabilities and [`TaskProvider::logs`].
    pub const fn with_logs(mut self) -> Self {
        self.logs = true;
        self
    }

    /// These capabilities and progress.
    pub const fn with_progress(mut self) -> Self {
        self.progress = true;
        self
    }

    /// These capabilities and steps.
    pub const fn with_steps(mut self) -> Self {
        self.steps = true;
        self
    }

    /// These capabilities and cheap [`TaskProvider::status_many`].
    pub const fn with_batch_status(mut self) -> Self {
        self.batch_status = true;
        self
    }

    /// These capabilities and [`TaskAction::Cancel`].
    pub const fn with_cancel(mut self) -> Self {
        self.cancel = true;
        self
    }

    /// These capabilities and [`TaskAction::Retry`].
    pub const fn with_retry(mut self) -> Self {
        self.retry = true;
        self
    }

    /// These capabilities and [`TaskAction::Rollback`].
    pub const fn with_rollback(mut self) -> Self {
        self.rollback = true;
        self
    }

    /// These capabilities and [`TaskAction::RetryStep`].
    pub const fn with_retry_step(mut self) -> Self {
        self.retry_step = true;
        self
    }

    /// These capabilities and [`TaskAction::SkipStep`].
    pub const fn with_skip_step(mut self) -> Self {
        self.skip_step = true;
        self
    }

    /// These capabilities and [`TaskAction::CancelStep`].
    pub const fn with_cancel_step(mut self) -> Self {
        self.cancel_step = true;
        self
    }

    /// These capabilities and [`TaskAction::Delete`].
    pub const fn with_delete(mut self) -> Self {
        self.delete = true;
        self
    }

    /// Whether this action is supported.
    pub fn supports(&self, action: &TaskAction) -> bool {
        match action {
            TaskAction::Cancel => self.cancel,
            TaskAction::Retry => self.retry,
            TaskAction::Rollback => self.rollback,
            TaskAction::RetryStep(_) => self.retry_step,
            TaskAction::SkipStep(_) => self.skip_step,
            TaskAction::CancelStep(_) => self.cancel_step,
            TaskAction::Delete => self.delete,
        }
    }
}

/// A control action on a task. Actions are never retried automatically.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", content = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskAction {
    /// Stop a running task.
    Cancel,
    /// Run a failed task again.
    Retry,
    /// Undo what a failed task did.
    Rollback,
    /// Run one failed step again.
    RetryStep(String),
    /// Mark one failed step done and go on.
    SkipStep(String),
    /// Stop one running step.
    CancelStep(String),
    /// Remove the task's record from the backend (e.g. a failed KPS task).
    Delete,
}

impl TaskAction {
    /// The action's name as used on the command line (`cancel`, `retry-step`…).
    pub fn name(&self) -> &'static str {
        match self {
            TaskAction::Cancel => "cancel",
            TaskAction::Retry => "retry",
            TaskAction::Rollback => "rollback",
            TaskAction::RetryStep(_) => "retry-step",
            TaskAction::SkipStep(_) => "skip-step",
            TaskAction::CancelStep(_) => "cancel-step",
            TaskAction::Delete => "delete",
        }
    }

    /// The step an action targets, for the step actions.
    pub fn step(&self) -> Option<&str> {
        match self {
            TaskAction::RetryStep(s) | TaskAction::SkipStep(s) | TaskAction::CancelStep(s) => {
                Some(s)
            }
            _ => None,
        }
    }
}

impl Display for TaskAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step() {
            Some(step) => write!(f, "{} {step}", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// What to list. Empty fields mean "no restriction"; providers apply what
/// their API can filter on and say so in their docs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskFilter {
    /// Only tasks in these states.
    #[serde(default)]
    pub states: Vec<TaskState>,
    /// Only tasks of this kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only tasks started at or after this time.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many items in the page.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Continue after a previous page ([`TaskPage::next_cursor`]).
    #[serde(default)]
    pub cursor: Option<String>,
}

impl TaskFilter {
    /// No restriction: every task, the provider's default page.
    ///
    /// ```
    /// use tasktrack_core::{TaskFilter, TaskState};
    ///
    /// let failed = TaskFilter::new().with_states([TaskState::Failed]).with_limit(50);
    /// assert_eq!(failed.limit, Some(50));
    /// ```
    pub fn new() -> Self {
        TaskFilter::default()
    }

    /// Only tasks in these states.
    pub fn with_states(mut self, states: impl IntoIterator<Item = TaskState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Only tasks of this kind.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only tasks started at or after `since`.
    pub fn with_since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// At most `limit` items in the page.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The page after the one that gave this cursor.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Whether a state passes the `states` restriction.
    pub fn admits_state(&self, state: TaskState) -> bool {
        self.states.is_empty() || self.states.contains(&state)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskPage<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as [`TaskFilter::cursor`] to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
    /// Total number of matching items, when the backend says.
    pub total: Option<u64>,
}

impl<T> TaskPage<T> {
    /// A page of `items`; `next_cursor` is `None` on the last page, `total`
    /// counts every match when the backend says.
    pub fn new(items: Vec<T>, next_cursor: Option<String>, total: Option<u64>) -> Self {
        TaskPage {
            items,
            next_cursor,
            total,
        }
    }
}

/// Which part of a task's log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogRange {
    /// The whole log.
    All,
    /// The last `n` lines.
    Tail(usize),
    /// `limit` lines from line number `start` (0-based offset).
    Range {
        /// Offset of the first line.
        start: u64,
        /// Number of lines.
        limit: usize,
    },
}

impl LogRange {
    /// Numbers `texts` from 1 and keeps the lines this range asks for: for
    /// providers that read a whole log and cut it locally.
    pub fn select(self, texts: Vec<String>) -> Vec<LogLine> {
        let numbered = texts.into_iter().enumerate().map(|(i, text)| LogLine {
            n: i as u64 + 1,
            text,
        });
        match self {
            LogRange::All => numbered.collect(),
            LogRange::Tail(n) => {
                let all: Vec<LogLine> = numbered.collect();
                let from = all.len().saturating_sub(n);
                all.into_iter().skip(from).collect()
            }
            LogRange::Range { start, limit } => numbered
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
                .take(limit)
                .collect(),
        }
    }
}

/// One line of a task's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogLine {
    /// Line number as the backend counts it.
    pub n: u64,
    /// The text, without a trailing newline.
    pub text: String,
}

impl LogLine {
    /// Line `n` (as the backend counts) saying `text`.
    pub fn new(n: u64, text: impl Into<String>) -> Self {
        LogLine {
            n,
            text: text.into(),
        }
    }
}

/// The backend's acknowledgement of a control action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionReceipt {
    /// The action that was accepted.
    pub action: TaskAction,
    /// When tasktrack got the acknowledgement.
    pub accepted_at: DateTime<Utc>,
    /// The backend's message, if any.
    pub message: Option<String>,
    /// A new task the action started, when the backend starts one.
    pub new_task_id: Option<String>,
}

impl ActionReceipt {
    /// A receipt for `action` accepted now.
    pub fn accepted(action: TaskAction) -> Self {
        ActionReceipt {
            action,
            accepted_at: Utc::now(),
            message: None,
            new_task_id: None,
        }
    }

    /// The same receipt with the backend's message.
    pub fn with_message(mut self, message: Option<String>) -> Self {
        self.message = message;
        self
    }

    /// The same receipt naming the task the action started.
    pub fn with_new_task_id(mut self, id: Option<String>) -> Self {
        self.new_task_id = id;
        self
    }
}

/// How many `status` calls the default [`TaskProvider::status_many`] runs at
/// once: enough to hide latency, few enough not to flood one server.
pub const DEFAULT_STATUS_CONCURRENCY: usize = 8;

/// A source of task statuses: one vendor API, or your own backend.
///
/// Implement [`name`](Self::name), [`status`](Self::status) and a
/// [`TaskStatus`]; everything else has a default.
#[async_trait]
pub trait TaskProvider: Send + Sync + 'static {
    /// The vendor's task handle.
    type Id: TaskId;
    /// The vendor's typed status.
    type Status: TaskStatus;

    /// A short name, e.g. `proxmox`.
    fn name(&self) -> &str;

    /// What the optional methods support.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// Parses an id as a person or a script wrote it: the id type's
    /// `FromStr` by default. A provider may accept a shorter form its
    /// configuration makes unambiguous (DCS takes a bare task id when it
    /// has one instance). Every string id of the erased
    /// [`DynTaskProvider`](crate::DynTaskProvider) goes through here.
    fn parse_id(&self, text: &str) -> Result<Self::Id> {
        parse_task_id::<Self::Id>(self.name(), text)
    }

    /// The current status of one task. An unknown id is [`Error::NotFound`].
    async fn status(&self, id: &Self::Id) -> Result<Self::Status>;

    /// The statuses of many tasks, in the order of `ids`. The default runs
    /// [`status`](Self::status) with bounded concurrency; providers that can
    /// batch override it.
    async fn status_many(&self, ids: &[Self::Id]) -> Vec<Result<Self::Status>> {
        // Futures are built first (they are lazy) so the stream holds no
        // closure over `&Self::Id`, which async-trait's lifetimes reject.
        let calls: Vec<_> = ids.iter().map(|id| self.status(id)).collect();
        futures::stream::iter(calls)
            .buffered(DEFAULT_STATUS_CONCURRENCY)
            .collect()
            .await
    }

    /// One page of tasks matching `filter`.
    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(Self::Id, Self::Status)>> {
        let _ = filter;
        Err(Error::unsupported(self.name(), "list"))
    }

    /// Lines of a task's log.
    async fn logs(&self, id: &Self::Id, range: LogRange) -> Result<Vec<LogLine>> {
        let _ = (id, range);
        Err(Error::unsupported(self.name(), "logs"))
    }

    /// Send a control action. Never retried automatically.
    async fn act(&self, id: &Self::Id, action: TaskAction) -> Result<ActionReceipt> {
        let _ = id;
        Err(Error::unsupported(self.name(), format!("action {action}")))
    }
}

/// Parses a task id for `provider`, turning a parse error into
/// [`Error::InvalidInput`] that quotes the input.
pub fn parse_task_id<I: TaskId>(provider: &str, id: &str) -> Result<I> {
    id.parse::<I>()
        .map_err(|e| Error::invalid_input(provider, format!("malformed task id {id:?}: {e}")))
}

/// A saved reference to a task: enough to resume waiting after a restart.
/// Serializes as plain data (provider name, id string, start time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskHandle {
    /// The provider's registered name.
    pub provider: String,
    /// The id in its string form.
    pub id: String,
    /// When tracking started.
    pub tracked_since: DateTime<Utc>,
}

impl TaskHandle {
    /// A handle for a typed id, tracked from now.
    pub fn new(provider: impl Into<String>, id: &impl Display) -> Self {
        TaskHandle {
            provider: provider.into(),
            id: id.to_string(),
            tracked_since: Utc::now(),
        }
    }

    /// Parses the id back into the provider's type.
    pub fn typed_id<I: TaskId>(&self) -> Result<I> {
        parse_task_id(&self.provider, &self.id)
    }
}
