//! An OCP task instance and its subtask DAG, moved as ocp-express's task
//! engine moves them (`task/task-service/.../engine`):
//!
//! * `AbstractTaskWorker.markSubtaskState`: a `PENDING` subtask whose
//!   upstreams are all `SUCCESSFUL` becomes `READY` (during a rollback: a
//!   subtask whose downstreams are all `PENDING` again), never while a
//!   subtask is `FAILED`;
//! * `ReadySubtaskWorker`: `READY` → `RUNNING` (start time set on the first
//!   run only, end time cleared), then `SubtaskAccessor.setExecuteEnd`:
//!   `SUCCESSFUL`, or `FAILED`, or back to `PENDING` for a rollback run, each
//!   terminal state logged as `Set state for subtask: …`;
//! * `RunningTaskWorker.updateState`: the task stays `RUNNING` while a
//!   subtask runs, is `FAILED` once one failed and none runs, `SUCCESSFUL`
//!   when all succeeded (after a rollback: when all are `PENDING`), its end
//!   time stamped then;
//! * `CancelingSubtaskWorker` / `RunningSubtaskWorker`: `CANCELING` ends as
//!   `FAILED` with operation `CANCEL`;
//! * `TaskInstanceManagerImpl.retryTask` / `rollbackTask` and
//!   `SubtaskInstanceManagerImpl` for the actions and their refusals.
//!
//! State is computed lazily: `advance(now)` applies every transition due up
//! to `now` at its own instant, so a test advancing a manual clock sees the
//! same history as one polling in real time.

use std::time::Duration;

use tokio::time::Instant;

use super::spec::OcpTaskSpec;
use crate::clock::SimClock;

/// `SubtaskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sub {
    Pending,
    Ready,
    Running,
    Canceling,
    Failed,
    Successful,
}

impl Sub {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sub::Pending => "PENDING",
            Sub::Ready => "READY",
            Sub::Running => "RUNNING",
            Sub::Canceling => "CANCELING",
            Sub::Failed => "FAILED",
            Sub::Successful => "SUCCESSFUL",
        }
    }
}

/// `SubtaskOperation` (serialized by name: no `@JsonValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubOp {
    Execute,
    Retry,
    Rollback,
    Skip,
    RollbackSkip,
    Cancel,
}

impl SubOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SubOp::Execute => "EXECUTE",
            SubOp::Retry => "RETRY",
            SubOp::Rollback => "ROLLBACK",
            SubOp::Skip => "SKIP",
            SubOp::RollbackSkip => "ROLLBACK_SKIP",
            SubOp::Cancel => "CANCEL",
        }
    }
}

/// `TaskOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskOp {
    Execute,
    Retry,
    Rollback,
}

impl TaskOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskOp::Execute => "EXECUTE",
            TaskOp::Retry => "RETRY",
            TaskOp::Rollback => "ROLLBACK",
        }
    }
}

/// `TaskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    Running,
    Failed,
    Successful,
}

impl TaskStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "RUNNING",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Successful => "SUCCESSFUL",
        }
    }
}

/// How long a cancelled subtask stays `CANCELING` before the workers fail it.
pub(crate) const CANCEL_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct SimSub {
    pub id: u64,
    /// `seriesId`, from 1.
    pub series: u64,
    pub spec: super::spec::OcpSubtaskSpec,
    pub upstreams: Vec<u64>,
    pub downstreams: Vec<u64>,
    pub state: Sub,
    pub op: SubOp,
    /// `runTime`: 1 at creation, +1 per task retry.
    pub run_time: u32,
    /// Execute / retry runs started, which decide the scripted failures.
    runs: u32,
    pub created: Instant,
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
    /// When the subtask entered its current state.
    since: Instant,
    pub log: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SimTask {
    pub id: u64,
    pub spec: OcpTaskSpec,
    pub created: Instant,
    pub op: TaskOp,
    pub status: TaskStatus,
    pub finished: Option<Instant>,
    pub subs: Vec<SimSub>,
}

/// Why the engine refused an action, with ocp-express's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `TASK_STATE_INVALID` (20003): "This operation is not supported for
    /// the {0} task in the {1} state."
    StateInvalid { id: u64, state: String },
    /// `TASK_PROHIBIT_ROLLBACK` (20004), raised without arguments.
    ProhibitRollback,
}

enum Event {
    Ready(usize),
    Start(usize),
    End(usize),
    Canceled(usize),
}

impl SimTask {
    /// A new task, its first subtasks not yet marked ready.
    pub(crate) fn new(id: u64, spec: OcpTaskSpec, first_sub: u64, now: Instant) -> SimTask {
        let ids: Vec<u64> = (0..spec.subtasks.len() as u64)
            .map(|i| first_sub + i)
            .collect();
        let subs = spec
            .subtasks
            .iter()
            .enumerate()
            .map(|(i, s)| SimSub {
                id: ids[i],
                series: i as u64 + 1,
                spec: s.clone(),
                upstreams: s
                    .upstreams
                    .iter()
                    .filter_map(|u| ids.get(*u).copied())
                    .collect(),
                downstreams: spec
                    .subtasks
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.upstreams.contains(&i))
                    .map(|(j, _)| ids[j])
                    .collect(),
                state: Sub::Pending,
                op: SubOp::Execute,
                run_time: 1,
                runs: 0,
                created: now,
                started: None,
                finished: None,
                since: now,
                log: Vec::new(),
            })
            .collect();
        SimTask {
            id,
            spec,
            created: now,
            op: TaskOp::Execute,
            status: TaskStatus::Running,
            finished: None,
            subs,
        }
    }

    pub(crate) fn sub_index(&self, id: u64) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    fn sub(&self, id: u64) -> Option<&SimSub> {
        self.subs.iter().find(|s| s.id == id)
    }

    /// `prohibitRollback(entity)`: a subtask past `READY` that refuses it,
    /// or the task's own flag.
    pub(crate) fn prohibits_rollback(&self) -> bool {
        self.spec.prohibit_rollback
            || self
                .subs
                .iter()
                .any(|s| !matches!(s.state, Sub::Pending | Sub::Ready) && s.spec.prohibit_rollback)
    }

    fn run_length(s: &SimSub) -> Duration {
        match s.op {
            SubOp::Skip | SubOp::RollbackSkip | SubOp::Cancel => Duration::ZERO,
            SubOp::Rollback => s.spec.duration / 2,
            SubOp::Execute | SubOp::Retry => s.spec.duration,
        }
    }

    /// The earliest transition due at or before `now`.
    fn next_event(&self, now: Instant) -> Option<(Instant, Event)> {
        let mut best: Option<(Instant, Event)> = None;
        let mut offer = |at: Instant, ev: Event| {
            if at <= now && best.as_ref().is_none_or(|(t, _)| at < *t) {
                best = Some((at, ev));
            }
        };
        let marking =
            self.status == TaskStatus::Running && !self.subs.iter().any(|s| s.state == Sub::Failed);
        for (i, s) in self.subs.iter().enumerate() {
            match s.state {
                Sub::Pending if marking && self.op != TaskOp::Rollback => {
                    let ups: Option<Vec<Instant>> = s
                        .upstreams
                        .iter()
                        .map(|u| {
                            self.sub(*u)
                                .filter(|up| up.state == Sub::Successful)
                                .map(|up| up.since)
                        })
                        .collect();
                    if let Some(ups) = ups {
                        offer(ups.into_iter().fold(s.since, Instant::max), Event::Ready(i));
                    }
                }
                Sub::Successful | Sub::Failed if marking && self.op == TaskOp::Rollback => {
                    if !matches!(s.op, SubOp::Rollback | SubOp::RollbackSkip) {
                        continue;
                    }
                    let downs: Option<Vec<Instant>> = s
                        .downstreams
                        .iter()
                        .map(|d| {
                            self.sub(*d)
                                .filter(|dn| dn.state == Sub::Pending)
                                .map(|dn| dn.since)
                        })
                        .collect();
                    if let Some(downs) = downs {
                        offer(
                            downs.into_iter().fold(s.since, Instant::max),
                            Event::Ready(i),
                        );
                    }
                }
                Sub::Ready => offer(s.since, Event::Start(i)),
                Sub::Running => offer(s.since + Self::run_length(s), Event::End(i)),
                Sub::Canceling => offer(s.since + CANCEL_DELAY, Event::Canceled(i)),
                _ => {}
            }
        }
        best
    }

    /// Applies every transition due up to `now`, each at its own instant.
    pub(crate) fn advance(&mut self, now: Instant, clock: &SimClock) {
        while let Some((at, event)) = self.next_event(now) {
            match event {
                Event::Ready(i) => {
                    let s = &mut self.subs[i];
                    s.state = Sub::Ready;
                    s.since = at;
                }
                Event::Start(i) => {
                    let s = &mut self.subs[i];
                    s.state = Sub::Running;
                    s.since = at;
                    s.started = s.started.or(Some(at));
                    s.finished = None;
                    if matches!(s.op, SubOp::Execute | SubOp::Retry) {
                        s.runs += 1;
                    }
                    // RunnerFactory.addLogSeparator.
                    let when = super::time::iso(clock, at);
                    s.log.push(format!(
                        "############{{{}}}{{{when}}}############",
                        s.op.as_str()
                    ));
                }
                Event::End(i) => {
                    let s = &mut self.subs[i];
                    s.since = at;
                    s.finished = Some(at);
                    s.state = match s.op {
                        SubOp::Rollback | SubOp::RollbackSkip => {
                            s.log.push(format!("rolled back {}", s.spec.name));
                            Sub::Pending
                        }
                        SubOp::Execute | SubOp::Retry if s.runs <= s.spec.fail_runs => {
                            s.log.extend(s.spec.log.iter().cloned());
                            s.log
                                .push(format!("ERROR: {} failed on run {}", s.spec.name, s.runs));
                            Sub::Failed
                        }
                        _ => {
                            if !matches!(s.op, SubOp::Skip) {
                                s.log.extend(s.spec.log.iter().cloned());
                            }
                            Sub::Successful
                        }
                    };
                    s.log.push(format!(
                        "Set state for subtask: {}, operation:{}, state: {}",
                        s.id,
                        s.op.as_str(),
                        s.state.as_str()
                    ));
                }
                Event::Canceled(i) => {
                    let s = &mut self.subs[i];
                    s.since = at;
                    s.finished = Some(at);
                    s.op = SubOp::Cancel;
                    s.state = Sub::Failed;
                    s.log.push(format!(
                        "Set state for subtask: {}, operation:CANCEL, state: FAILED",
                        s.id
                    ));
                }
            }
            self.update_state(at);
        }
    }

    /// `RunningTaskWorker.updateState`, for a running task.
    fn update_state(&mut self, at: Instant) {
        if self.status != TaskStatus::Running {
            return;
        }
        if self.subs.iter().any(|s| s.state == Sub::Running) {
            return;
        }
        let next = if self.subs.iter().any(|s| s.state == Sub::Failed) {
            TaskStatus::Failed
        } else if self.op == TaskOp::Rollback {
            if self.subs.iter().all(|s| s.state == Sub::Pending) {
                TaskStatus::Successful
            } else {
                TaskStatus::Running
            }
        } else if self.subs.iter().all(|s| s.state == Sub::Successful) {
            TaskStatus::Successful
        } else {
            TaskStatus::Running
        };
        if next != TaskStatus::Running {
            self.status = next;
            self.finished = Some(at);
        }
    }

    /// `retryTask`: a failed task (not being rolled back) runs its failed
    /// subtasks again, each `runTime` one higher.
    pub(crate) fn retry(&mut self, now: Instant) -> Result<(), Refusal> {
        self.require_failed()?;
        if self.op == TaskOp::Rollback {
            return Err(Refusal::StateInvalid {
                id: self.id,
                state: self.op.as_str().to_owned(),
            });
        }
        self.status = TaskStatus::Running;
        self.op = TaskOp::Retry;
        for s in self.subs.iter_mut().filter(|s| s.state == Sub::Failed) {
            s.op = SubOp::Retry;
            s.state = Sub::Ready;
            s.since = now;
            s.run_time += 1;
        }
        Ok(())
    }

    /// `rollbackTask`: every subtask that ran is marked for rollback; those
    /// whose downstreams never ran are ready at once.
    pub(crate) fn rollback(&mut self, now: Instant) -> Result<(), Refusal> {
        self.require_failed()?;
        if self.prohibits_rollback() {
            return Err(Refusal::ProhibitRollback);
        }
        self.status = TaskStatus::Running;
        self.op = TaskOp::Rollback;
        let pending: Vec<u64> = self
            .subs
            .iter()
            .filter(|s| s.state == Sub::Pending)
            .map(|s| s.id)
            .collect();
        for s in self.subs.iter_mut().filter(|s| s.state != Sub::Pending) {
            s.op = SubOp::Rollback;
            if s.downstreams.iter().all(|d| pending.contains(d)) {
                s.state = Sub::Ready;
                s.since = now;
            }
        }
        Ok(())
    }

    fn require_failed(&self) -> Result<(), Refusal> {
        if self.status == TaskStatus::Failed {
            Ok(())
        } else {
            Err(Refusal::StateInvalid {
                id: self.id,
                state: self.status.as_str().to_owned(),
            })
        }
    }

    fn sub_refusal(s: &SimSub, state: &str) -> Refusal {
        Refusal::StateInvalid {
            id: s.id,
            state: state.to_owned(),
        }
    }

    /// `retrySubtask`.
    pub(crate) fn retry_sub(&mut self, i: usize, now: Instant) -> Result<(), Refusal> {
        let s = &self.subs[i];
        if s.state != Sub::Failed {
            return Err(Self::sub_refusal(s, s.state.as_str()));
        }
        if s.op == SubOp::Rollback {
            return Err(Self::sub_refusal(s, s.op.as_str()));
        }
        self.status = TaskStatus::Running;
        let s = &mut self.subs[i];
        s.state = Sub::Ready;
        s.op = SubOp::Retry;
        s.since = now;
        Ok(())
    }

    /// `skipSubtask`: a failed subtask is run as a no-op, `SKIP` (or
    /// `ROLLBACK_SKIP` during a rollback).
    pub(crate) fn skip_sub(&mut self, i: usize, now: Instant) -> Result<(), Refusal> {
        let s = &self.subs[i];
        if s.state != Sub::Failed {
            return Err(Self::sub_refusal(s, s.state.as_str()));
        }
        self.status = TaskStatus::Running;
        let rolling_back = self.op == TaskOp::Rollback;
        let s = &mut self.subs[i];
        s.state = Sub::Ready;
        s.op = if rolling_back {
            SubOp::RollbackSkip
        } else {
            SubOp::Skip
        };
        s.since = now;
        Ok(())
    }

    /// `cancelSubtask`: only a running subtask; its operation is left as
    /// it is until the workers fail it.
    pub(crate) fn cancel_sub(&mut self, i: usize, now: Instant) -> Result<(), Refusal> {
        let s = &mut self.subs[i];
        if s.state != Sub::Running {
            return Err(Self::sub_refusal(s, s.state.as_str()));
        }
        s.state = Sub::Canceling;
        s.since = now;
        Ok(())
    }
}
