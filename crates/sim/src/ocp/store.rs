//! OCP's tasks: DAGs kept apart from the scripted engine (their state is
//! moved by ocp-express's workers, not by a script), seen through the
//! simulator's [`TaskStore`] seam like every other vendor's tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::time::Instant;

use super::dag::{SimTask, Sub, TaskOp, TaskStatus};
use super::spec::OcpTaskSpec;
use crate::clock::SimClock;
use crate::engine::{SimFailure, SimState, StepView, TaskView};
use crate::store::TaskStore;

/// The DAG tasks of one OCP simulator, on the clock it was made with.
#[derive(Debug)]
pub(crate) struct OcpTasks {
    clock: SimClock,
    tasks: Mutex<BTreeMap<u64, SimTask>>,
    next_task: AtomicU64,
    next_sub: AtomicU64,
    next_trace: AtomicU64,
}

impl OcpTasks {
    pub(crate) fn new(clock: SimClock) -> Self {
        OcpTasks {
            clock,
            tasks: Mutex::default(),
            next_task: AtomicU64::new(0),
            next_sub: AtomicU64::new(0),
            next_trace: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, SimTask>> {
        // Every mutation is a whole-task step under the lock; a panic cannot
        // leave a task half-moved, so a poisoned lock is still consistent.
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_trace(&self) -> u64 {
        self.next_trace.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn create(&self, spec: OcpTaskSpec) -> u64 {
        let now = self.clock.now();
        let id = 1000 + self.next_task.fetch_add(1, Ordering::Relaxed);
        let first = 10_001
            + self
                .next_sub
                .fetch_add(spec.subtasks.len() as u64, Ordering::Relaxed);
        self.lock().insert(id, SimTask::new(id, spec, first, now));
        id
    }

    pub(crate) fn subtask_ids(&self, task: u64) -> Vec<u64> {
        self.lock()
            .get(&task)
            .map(|t| t.subs.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }

    pub(crate) fn remove_task(&self, task: u64) -> bool {
        self.lock().remove(&task).is_some()
    }

    /// Every task, advanced to now.
    pub(crate) fn snapshot(&self) -> Vec<SimTask> {
        let now = self.clock.now();
        let mut tasks = self.lock();
        tasks.values_mut().for_each(|t| t.advance(now, &self.clock));
        tasks.values().cloned().collect()
    }

    /// Runs `f` on task `id` advanced to now.
    pub(crate) fn with_task<T>(
        &self,
        id: u64,
        f: impl FnOnce(&mut SimTask, Instant) -> T,
    ) -> Option<T> {
        let now = self.clock.now();
        let mut tasks = self.lock();
        let task = tasks.get_mut(&id)?;
        task.advance(now, &self.clock);
        Some(f(task, now))
    }

    /// Runs `f` on the task holding subtask `sid` (and its index), advanced
    /// to now.
    pub(crate) fn with_subtask<T>(
        &self,
        sid: u64,
        f: impl FnOnce(&mut SimTask, usize, Instant) -> T,
    ) -> Option<T> {
        let now = self.clock.now();
        let mut tasks = self.lock();
        let task = tasks.values_mut().find(|t| t.sub_index(sid).is_some())?;
        task.advance(now, &self.clock);
        let i = task.sub_index(sid)?;
        Some(f(task, i, now))
    }

    fn view_of(&self, t: &SimTask) -> TaskView {
        let wall = |at: Instant| self.clock.wall(at);
        let steps: Vec<StepView> = t
            .subs
            .iter()
            .enumerate()
            .map(|(index, s)| StepView {
                index,
                name: s.spec.name.clone(),
                state: sub_state(s.state),
                started_at: s.started.map(wall),
                finished_at: s.finished.map(wall),
                failure: (s.state == Sub::Failed).then(|| SimFailure {
                    code: None,
                    message: s.spec.name.clone(),
                }),
                substeps: Vec::new(),
            })
            .collect();
        let done = t.subs.iter().filter(|s| s.state == Sub::Successful).count();
        let percent = if t.subs.is_empty() {
            0.0
        } else {
            100.0 * done as f64 / t.subs.len() as f64
        };
        let state = match t.status {
            TaskStatus::Running => SimState::Running,
            TaskStatus::Successful => SimState::Succeeded,
            TaskStatus::Failed => SimState::Failed,
        };
        let failure = (state == SimState::Failed).then(|| SimFailure {
            code: None,
            message: steps
                .iter()
                .filter(|s| s.state == SimState::Failed)
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
        let mut attrs = BTreeMap::new();
        attrs.insert("operation".to_owned(), t.op.as_str().to_owned());
        attrs.insert("type".to_owned(), t.spec.task_type.clone());
        if t.op == TaskOp::Rollback {
            attrs.insert("rolled_back".to_owned(), "true".to_owned());
        }
        TaskView {
            id: t.id.to_string(),
            kind: t.spec.name.clone(),
            state,
            warnings: 0,
            failure,
            created_at: wall(t.created),
            started_at: Some(wall(t.created)),
            finished_at: t.finished.map(wall),
            percent,
            remaining: None,
            steps,
            log: t.subs.iter().flat_map(|s| s.log.iter().cloned()).collect(),
            attrs,
        }
    }
}

fn sub_state(s: Sub) -> SimState {
    match s {
        Sub::Pending | Sub::Ready => SimState::Pending,
        Sub::Running | Sub::Canceling => SimState::Running,
        Sub::Failed => SimState::Failed,
        Sub::Successful => SimState::Succeeded,
    }
}

impl TaskStore for OcpTasks {
    fn clock(&self) -> &SimClock {
        &self.clock
    }
    fn list(&self) -> Vec<TaskView> {
        self.snapshot().iter().map(|t| self.view_of(t)).collect()
    }
    fn view(&self, id: &str) -> Option<TaskView> {
        let id = id.parse().ok()?;
        let task = self.with_task(id, |t, _| t.clone())?;
        Some(self.view_of(&task))
    }
    fn remove(&self, id: &str) -> bool {
        id.parse().is_ok_and(|id| self.remove_task(id))
    }
    fn len(&self) -> usize {
        self.lock().len()
    }
}
