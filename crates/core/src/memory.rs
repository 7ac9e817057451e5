//! [`MemoryProvider`]: scripted tasks in memory, driven by a [`Clock`], for
//! tests, examples and benchmarks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::clock::{SharedClock, TokioClock};
use crate::error::{Error, HttpError, Result};
use crate::model::{Failure, Progress, TaskState, TaskStatus};
use crate::provider::{
    ActionReceipt, Capabilities, LogLine, LogRange, TaskAction, TaskFilter, TaskPage, TaskProvider,
};

/// How a scripted task ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// Ends well.
    Succeeded,
    /// Ends well with this many warnings.
    SucceededWithWarnings(u32),
    /// Ends badly.
    Failed {
        /// Vendor-style error code.
        code: Option<String>,
        /// Message.
        message: String,
    },
    /// Ends as if someone cancelled it.
    Cancelled,
}

impl ScriptOutcome {
    /// A failure with a code and message.
    pub fn failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        ScriptOutcome::Failed {
            code: Some(code.into()),
            message: message.into(),
        }
    }
}

/// A task's script: how long it waits, runs, what it logs and how it ends.
#[derive(Debug, Clone)]
pub struct TaskScript {
    kind: String,
    pending: Duration,
    running: Duration,
    outcome: ScriptOutcome,
    log: Vec<String>,
}

impl TaskScript {
    /// A task of `kind` that runs for `running` and then succeeds.
    pub fn new(kind: impl Into<String>, running: Duration) -> Self {
        TaskScript {
            kind: kind.into(),
            pending: Duration::ZERO,
            running,
            outcome: ScriptOutcome::Succeeded,
            log: Vec::new(),
        }
    }
    /// Stays pending this long before running.
    pub fn with_pending_for(mut self, d: Duration) -> Self {
        self.pending = d;
        self
    }
    /// Ends with `outcome`.
    pub fn with_outcome(mut self, outcome: ScriptOutcome) -> Self {
        self.outcome = outcome;
        self
    }
    /// Log lines written evenly over the running time.
    pub fn with_log_lines<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.log = lines.into_iter().map(Into::into).collect();
        self
    }
}

/// A transient or permanent error the provider answers instead of a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryFault {
    /// HTTP 503: transient.
    Unavailable,
    /// A dropped connection: transient.
    Transport,
    /// HTTP 401: permanent.
    Unauthorized,
}

/// The status of a [`MemoryProvider`] task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MemoryTask {
    /// Task id.
    pub id: u64,
    /// Kind from the script.
    pub kind: String,
    /// Normalized state.
    pub state: TaskState,
    /// Percent done while running.
    pub percent: f32,
    /// Failure, when failed.
    pub failure: Option<Failure>,
    /// Warnings, when succeeded with warnings.
    pub warnings: Option<u32>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// End time.
    pub finished_at: Option<DateTime<Utc>>,
}

impl TaskStatus for MemoryTask {
    fn state(&self) -> TaskState {
        self.state
    }
    fn vendor_state(&self) -> String {
        self.state.as_str().to_owned()
    }
    fn progress(&self) -> Option<Progress> {
        Some(Progress::percent(self.percent))
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
    fn kind(&self) -> Option<String> {
        Some(self.kind.clone())
    }
    fn warnings(&self) -> Option<u32> {
        self.warnings
    }
}

struct Scripted {
    script: TaskScript,
    created: Instant,
    cancelled_at: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    tasks: BTreeMap<u64, Scripted>,
    faults: Vec<MemoryFault>,
}

/// Scripted tasks in memory. Task ids are `u64` from 1.
///
/// State is derived from the clock on every call, so with a
/// [`ManualClock`](crate::ManualClock) or tokio's paused time a test reaches
/// any state without sleeping.
pub struct MemoryProvider {
    name: String,
    clock: SharedClock,
    anchor: (Instant, DateTime<Utc>),
    inner: Mutex<Inner>,
    status_calls: AtomicU64,
}

impl std::fmt::Debug for MemoryProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryProvider")
            .field("name", &self.name)
            .field("tasks", &self.lock().tasks.len())
            .finish()
    }
}

impl MemoryProvider {
    /// An empty provider named `name`, on tokio's clock.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_clock(name, Arc::new(TokioClock))
    }

    /// An empty provider on `clock`.
    pub fn with_clock(name: impl Into<String>, clock: SharedClock) -> Self {
        MemoryProvider {
            name: name.into(),
            anchor: (clock.now(), Utc::now()),
            clock,
            inner: Mutex::new(Inner::default()),
            status_calls: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Inner holds plain data updated in single statements; a panic in
        // another thread cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wall(&self, at: Instant) -> DateTime<Utc> {
        let offset = at.saturating_duration_since(self.anchor.0);
        self.anchor.1 + chrono::Duration::from_std(offset).unwrap_or_default()
    }

    /// Adds a task starting now and returns its id.
    pub fn start(&self, script: TaskScript) -> u64 {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.tasks.insert(
            id,
            Scripted {
                script,
                created: now,
                cancelled_at: None,
            },
        );
        id
    }

    /// Removes a task, as if the backend forgot it.
    pub fn vanish(&self, id: u64) -> bool {
        self.lock().tasks.remove(&id).is_some()
    }

    /// The next `n` status calls answer `fault` instead.
    pub fn fail_next(&self, n: usize, fault: MemoryFault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Drops faults not yet answered.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Status calls answered so far (faults included).
    pub fn status_calls(&self) -> u64 {
        self.status_calls.load(Ordering::Relaxed)
    }

    fn fault_error(&self, fault: MemoryFault) -> Error {
        match fault {
            MemoryFault::Unavailable => HttpError::new(&self.name, "GET", "/status", 503).into(),
            MemoryFault::Transport => Error::Transport {
                provider: self.name.clone(),
                operation: "GET /status".into(),
                message: "connection reset".into(),
                timed_out: false,
            },
            MemoryFault::Unauthorized => Error::Auth {
                provider: self.name.clone(),
                status: 401,
                message: "token expired".into(),
            },
        }
    }

    fn evaluate(&self, id: u64, t: &Scripted, now: Instant) -> MemoryTask {
        let s = &t.script;
        let start = t.created + s.pending;
        let end = start + s.running;
        let mut status = MemoryTask {
            id,
            kind: s.kind.clone(),
            state: TaskState::Pending,
            percent: 0.0,
            failure: None,
            warnings: None,
            started_at: None,
            finished_at: None,
        };
        if let Some(cancelled) = t.cancelled_at.filter(|c| *c < end && *c <= now) {
            status.state = TaskState::Cancelled;
            status.failure = Some(Failure::new("cancelled on request"));
            status.started_at = (cancelled >= start).then(|| self.wall(start));
            status.finished_at = Some(self.wall(cancelled));
            return status;
        }
        if now < start {
            return status;
        }
        status.started_at = Some(self.wall(start));
        if now < end {
            status.state = TaskState::Running;
            let done = (now - start).as_secs_f32() / s.running.as_secs_f32().max(f32::EPSILON);
            status.percent = (done * 100.0).clamp(0.0, 99.9);
            return status;
        }
        status.finished_at = Some(self.wall(end));
        status.percent = 100.0;
        match &s.outcome {
            ScriptOutcome::Succeeded => status.state = TaskState::Succeeded,
            ScriptOutcome::SucceededWithWarnings(n) => {
                status.state = TaskState::Succeeded;
                status.warnings = Some(*n);
            }
            ScriptOutcome::Failed { code, message } => {
                status.state = TaskState::Failed;
                status.failure = Some(Failure {
                    code: code.clone(),
                    message: message.clone(),
                });
            }
            ScriptOutcome::Cancelled => {
                status.state = TaskState::Cancelled;
                status.failure = Some(Failure::new("cancelled"));
            }
        }
        status
    }

    fn visible_log(&self, t: &Scripted, now: Instant) -> Vec<String> {
        let s = &t.script;
        let start = t.created + s.pending;
        if now < start {
            return Vec::new();
        }
        let mut lines = vec![format!("starting {}", s.kind)];
        let ran = now - start;
        let n = s.log.len();
        for (i, line) in s.log.iter().enumerate() {
            let due = crate::time::scale(s.running, i as f64 / n as f64);
            if ran >= due {
                lines.push(line.clone());
            }
        }
        let status = self.evaluate(0, t, now);
        match (status.state, &s.outcome) {
            (TaskState::Succeeded, ScriptOutcome::SucceededWithWarnings(n)) => {
                lines.push(format!("TASK WARNINGS: {n}"))
            }
            (TaskState::Succeeded, _) => lines.push("TASK OK".into()),
            (TaskState::Failed | TaskState::Cancelled, _) => lines.push(format!(
                "TASK ERROR: {}",
                status.failure.map(|f| f.message).unwrap_or_default()
            )),
            _ => {}
        }
        lines
    }
}

#[async_trait]
impl TaskProvider for MemoryProvider {
    type Id = u64;
    type Status = MemoryTask;

    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_list()
            .with_logs()
            .with_progress()
            .with_cancel()
    }

    async fn status(&self, id: &u64) -> Result<MemoryTask> {
        self.status_calls.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let mut inner = self.lock();
        if !inner.faults.is_empty() {
            let fault = inner.faults.remove(0);
            return Err(self.fault_error(fault));
        }
        let task = inner
            .tasks
            .get(id)
            .ok_or_else(|| Error::not_found(&self.name, format!("task {id}")))?;
        Ok(self.evaluate(*id, task, now))
    }

    async fn list(&self, filter: &TaskFilter) -> Result<TaskPage<(u64, MemoryTask)>> {
        let now = self.clock.now();
        let offset: usize = match &filter.cursor {
            Some(c) => c
                .parse()
                .map_err(|_| Error::invalid_input(&self.name, format!("bad cursor {c:?}")))?,
            None => 0,
        };
        let limit = filter.limit.unwrap_or(100).max(1);
        let inner = self.lock();
        let matching: Vec<(u64, MemoryTask)> = inner
            .tasks
            .iter()
            .map(|(id, t)| (*id, self.evaluate(*id, t, now)))
            .filter(|(_, s)| filter.admits_state(s.state))
            .filter(|(_, s)| filter.kind.as_ref().is_none_or(|k| *k == s.kind))
            .collect();
        let total = matching.len();
        let items: Vec<_> = matching.into_iter().skip(offset).take(limit).collect();
        let next = offset + items.len();
        Ok(TaskPage {
            next_cursor: (next < total).then(|| next.to_string()),
            total: Some(total as u64),
            items,
        })
    }

    async fn logs(&self, id: &u64, range: LogRange) -> Result<Vec<LogLine>> {
        let now = self.clock.now();
        let inner = self.lock();
        let task = inner
            .tasks
            .get(id)
            .ok_or_else(|| Error::not_found(&self.name, format!("task {id}")))?;
        Ok(range.select(self.visible_log(task, now)))
    }

    async fn act(&self, id: &u64, action: TaskAction) -> Result<ActionReceipt> {
        if action != TaskAction::Cancel {
            return Err(Error::unsupported(&self.name, format!("action {action}")));
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        let task = inner
            .tasks
            .get(id)
            .ok_or_else(|| Error::not_found(&self.name, format!("task {id}")))?;
        let state = self.evaluate(*id, task, now).state;
        if state.is_terminal() {
            return Err(Error::invalid_input(
                &self.name,
                format!("task {id} already ended as {state}; nothing to cancel"),
            ));
        }
        if let Some(task) = inner.tasks.get_mut(id) {
            task.cancelled_at = Some(now);
        }
        Ok(ActionReceipt::accepted(action))
    }
}
