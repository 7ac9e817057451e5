//! The scripted-task engine every vendor simulator shares.
//!
//! A task is a script (pending time, steps with durations and outcomes, log
//! lines, a final outcome) plus its creation instant; its state at any moment
//! is *computed* from the clock, never stepped by a background loop. A test
//! reaches any state by advancing a manual clock.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::clock::SimClock;

pub use crate::task_spec::{SimOutcome, StepSpec, TaskSpec};
pub use crate::task_view::{SimFailure, SimState, StepView, TaskView};

/// Why an action on a task was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    /// No such task.
    NotFound,
    /// The task already finished.
    Finished,
}

#[derive(Debug, Clone)]
struct SimTask {
    spec: TaskSpec,
    created: Instant,
    cancelled_at: Option<Instant>,
}

/// The shared store of scripted tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TaskEngine {
    clock: SimClock,
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    order: Vec<String>,
    tasks: BTreeMap<String, SimTask>,
}

impl TaskEngine {
    /// An empty engine on `clock`.
    pub fn new(clock: SimClock) -> Self {
        TaskEngine {
            clock,
            inner: Arc::default(),
        }
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Writers only insert or remove whole entries; a panic cannot leave
        // an entry half-written, so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a task with the next numeric id (`1`, `2`, …).
    pub fn create(&self, spec: TaskSpec) -> String {
        let id = {
            let mut inner = self.write();
            inner.next += 1;
            inner.next.to_string()
        };
        self.create_with_id(id.clone(), spec);
        id
    }

    /// Creates (or replaces) a task under a vendor-made id.
    pub fn create_with_id(&self, id: String, spec: TaskSpec) {
        let created = self.clock.now();
        let mut inner = self.write();
        if inner
            .tasks
            .insert(
                id.clone(),
                SimTask {
                    spec,
                    created,
                    cancelled_at: None,
                },
            )
            .is_none()
        {
            inner.order.push(id);
        }
    }

    /// A fresh number, for vendors that build ids around one.
    pub fn next_number(&self) -> u64 {
        let mut inner = self.write();
        inner.next += 1;
        inner.next
    }

    /// The task now.
    pub fn view(&self, id: &str) -> Option<TaskView> {
        let now = self.clock.now();
        let inner = self.read();
        inner.tasks.get(id).map(|t| self.evaluate(id, t, now))
    }

    /// Every task now, in creation order.
    pub fn list(&self) -> Vec<TaskView> {
        let now = self.clock.now();
        let inner = self.read();
        inner
            .order
            .iter()
            .filter_map(|id| inner.tasks.get(id).map(|t| self.evaluate(id, t, now)))
            .collect()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.read().tasks.len()
    }

    /// True when there is no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops a task now.
    pub fn cancel(&self, id: &str) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut inner = self.write();
        let task = inner.tasks.get(id).ok_or(EngineError::NotFound)?;
        if self.evaluate(id, task, now).state.is_finished() {
            return Err(EngineError::Finished);
        }
        if let Some(t) = inner.tasks.get_mut(id) {
            t.cancelled_at = Some(now);
        }
        Ok(())
    }

    /// Forgets a task, as a backend that lost it would (404 from then on).
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.write();
        let found = inner.tasks.remove(id).is_some();
        if found {
            inner.order.retain(|o| o != id);
        }
        found
    }

    /// The instant a task will finish (or finished), if it exists.
    pub fn planned_end(&self, id: &str) -> Option<DateTime<Utc>> {
        let inner = self.read();
        let t = inner.tasks.get(id)?;
        let (_, end) = timeline(&t.spec);
        Some(self.clock.wall(t.created + end))
    }

    fn evaluate(&self, id: &str, task: &SimTask, now: Instant) -> TaskView {
        let spec = &task.spec;
        let steps = spec.steps_or_implicit();
        let start = task.created + spec.pending;
        let (failing, run) = timeline(spec);
        let end = task.created + run;
        let planned_total: Duration = steps.iter().map(|s| s.duration).sum();
        let cancelled = task.cancelled_at.filter(|c| *c < end && *c <= now);
        // The moment the world stops for this task: now, its end, or its cancel.
        let horizon = cancelled.unwrap_or(now).min(end);

        let mut view = TaskView {
            id: id.to_owned(),
            kind: spec.kind.clone(),
            state: SimState::Pending,
            warnings: 0,
            failure: None,
            created_at: self.clock.wall(task.created),
            started_at: (horizon >= start && (now >= start)).then(|| self.clock.wall(start)),
            finished_at: None,
            percent: 0.0,
            remaining: None,
            steps: Vec::new(),
            log: Vec::new(),
            attrs: spec.attrs.clone(),
        };

        // Steps.
        let mut step_start = start;
        for (index, step) in steps.iter().enumerate() {
            let step_end = step_start + step.duration;
            let state = if horizon < step_start || (failing.is_some_and(|f| index > f)) {
                SimState::Pending
            } else if horizon < step_end {
                if cancelled.is_some() {
                    SimState::Cancelled
                } else {
                    SimState::Running
                }
            } else if failing == Some(index) {
                SimState::Failed
            } else {
                SimState::Succeeded
            };
            let failure = match (&step.outcome, state) {
                (SimOutcome::Failure { code, message }, SimState::Failed) => Some(SimFailure {
                    code: code.clone(),
                    message: message.clone(),
                }),
                _ => None,
            };
            let n = step.substeps.len() as u32;
            let substeps = step
                .substeps
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let s0 = step_start + step.duration / n.max(1) * i as u32;
                    let s1 = step_start + step.duration / n.max(1) * (i as u32 + 1);
                    let sub_state = match state {
                        SimState::Pending => SimState::Pending,
                        SimState::Succeeded => SimState::Succeeded,
                        _ if horizon < s0 => SimState::Pending,
                        _ if horizon < s1 => state,
                        SimState::Failed if i + 1 == n as usize => SimState::Failed,
                        _ => SimState::Succeeded,
                    };
                    StepView {
                        index: i,
                        name: name.clone(),
                        state: sub_state,
                        started_at: (sub_state != SimState::Pending).then(|| self.clock.wall(s0)),
                        finished_at: sub_state
                            .is_finished()
                            .then(|| self.clock.wall(s1.min(horizon))),
                        failure: (sub_state == SimState::Failed)
                            .then(|| failure.clone())
                            .flatten(),
                        substeps: Vec::new(),
                    }
                })
                .collect();
            view.steps.push(StepView {
                index,
                name: step.name.clone(),
                state,
                started_at: (state != SimState::Pending).then(|| self.clock.wall(step_start)),
                finished_at: state
                    .is_finished()
                    .then(|| self.clock.wall(step_end.min(horizon))),
                failure,
                substeps,
            });
            step_start = step_end;
        }

        // Log lines spread over the run.
        if now >= start {
            let ran = horizon.saturating_duration_since(start);
            let n = spec.log.len().max(1) as u32;
            for (i, line) in spec.log.iter().enumerate() {
                if ran >= planned_total / n * i as u32 || horizon >= end {
                    view.log.push(line.clone());
                }
            }
        }

        // Overall state.
        if let Some(c) = cancelled {
            view.state = SimState::Cancelled;
            view.finished_at = Some(self.clock.wall(c));
            view.failure = Some(SimFailure {
                code: None,
                message: "cancelled".into(),
            });
            view.percent = percent(c.saturating_duration_since(start), planned_total);
            return view;
        }
        if now < start {
            view.remaining = Some(end - now);
            return view;
        }
        if now < end {
            view.state = SimState::Running;
            view.percent = percent(now - start, planned_total).min(99.0);
            view.remaining = Some(end - now);
            return view;
        }
        view.finished_at = Some(self.clock.wall(end));
        if let Some(f) = failing {
            view.state = SimState::Failed;
            view.failure = view.steps[f].failure.clone();
            view.percent = percent(end - start, planned_total);
            return view;
        }
        view.percent = 100.0;
        match &spec.outcome {
            SimOutcome::Success => view.state = SimState::Succeeded,
            SimOutcome::Warnings { count } => {
                view.state = SimState::Succeeded;
                view.warnings = *count;
            }
            SimOutcome::Failure { code, message } => {
                view.state = SimState::Failed;
                view.failure = Some(SimFailure {
                    code: code.clone(),
                    message: message.clone(),
                });
            }
            SimOutcome::Cancelled => {
                view.state = SimState::Cancelled;
                view.failure = Some(SimFailure {
                    code: None,
                    message: "cancelled".into(),
                });
            }
        }
        view
    }
}

/// (index of the failing step, time from creation to the end).
fn timeline(spec: &TaskSpec) -> (Option<usize>, Duration) {
    let steps = spec.steps_or_implicit();
    let mut run = spec.pending;
    for (i, s) in steps.iter().enumerate() {
        run += s.duration;
        if matches!(s.outcome, SimOutcome::Failure { .. }) && !spec.steps.is_empty() {
            return (Some(i), run);
        }
    }
    (None, run)
}

fn percent(done: Duration, total: Duration) -> f64 {
    if total.is_zero() {
        return 100.0;
    }
    (done.as_secs_f64() / total.as_secs_f64() * 100.0).clamp(0.0, 100.0)
}

/// A page of log lines numbered from 1, as `{"n": …, "t": …}` objects (the
/// Proxmox shape, which the generic simulator borrows).
pub(crate) fn numbered_lines(
    lines: Vec<String>,
    start: usize,
    limit: usize,
) -> Vec<serde_json::Value> {
    lines
        .into_iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, t)| serde_json::json!({"n": i + 1, "t": t}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasktrack_core::ManualClock;

    fn engine() -> (ManualClock, TaskEngine) {
        let clock = ManualClock::new();
        (clock.clone(), TaskEngine::new(SimClock::manual(clock)))
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_task_walks_its_script_with_the_clock() {
        let (clock, e) = engine();
        let id = e.create(
            TaskSpec::new("backup", s(10))
                .with_pending(s(2))
                .with_log(["a", "b"]),
        );
        let v = e.view(&id).unwrap();
        assert_eq!((v.state, v.remaining), (SimState::Pending, Some(s(12))));
        clock.advance(s(7));
        let v = e.view(&id).unwrap();
        assert_eq!(v.state, SimState::Running);
        assert!((v.percent - 50.0).abs() < 1e-9);
        assert_eq!(v.log, ["a", "b"]);
        clock.advance(s(5));
        let v = e.view(&id).unwrap();
        assert_eq!(v.state, SimState::Succeeded);
        assert_eq!(
            v.finished_at.unwrap() - v.started_at.unwrap(),
            chrono::Duration::seconds(10)
        );
    }

    #[test]
    fn a_failing_step_fails_the_task_and_later_steps_stay_pending() {
        let (clock, e) = engine();
        let id = e.create(
            TaskSpec::new("scale", s(0))
                .with_step(StepSpec::new("prepare", s(2)).with_substeps(["a", "b"]))
                .with_step(
                    StepSpec::new("resize", s(2))
                        .with_failure("DCS.1", "no capacity")
                        .with_substeps(["x", "y"]),
                )
                .with_step(StepSpec::new("verify", s(2))),
        );
        clock.advance(Duration::from_millis(2500));
        let v = e.view(&id).unwrap();
        assert_eq!(
            v.steps.iter().map(|s| s.state).collect::<Vec<_>>(),
            [SimState::Succeeded, SimState::Running, SimState::Pending]
        );
        assert_eq!(v.steps[1].substeps[0].state, SimState::Running);
        clock.advance(s(10));
        let v = e.view(&id).unwrap();
        assert_eq!(v.state, SimState::Failed);
        assert_eq!(v.failure.as_ref().unwrap().code.as_deref(), Some("DCS.1"));
        assert_eq!(v.steps[1].substeps[1].state, SimState::Failed);
        assert_eq!(v.steps[2].state, SimState::Pending);
    }

    #[test]
    fn cancel_and_remove() {
        let (clock, e) = engine();
        let id = e.create(TaskSpec::new("x", s(10)));
        clock.advance(s(4));
        e.cancel(&id).unwrap();
        clock.advance(s(20));
        let v = e.view(&id).unwrap();
        assert_eq!(v.state, SimState::Cancelled);
        assert_eq!(e.cancel(&id), Err(EngineError::Finished));
        assert!(e.remove(&id));
        assert_eq!(e.cancel(&id), Err(EngineError::NotFound));
        assert!(e.view(&id).is_none());
    }

    #[test]
    fn specs_load_from_json() {
        let spec: TaskSpec = serde_json::from_str(
            r#"{"kind":"vzdump","duration_ms":1500,"outcome":{"outcome":"failure","code":"E1","message":"boom"}}"#,
        )
        .unwrap();
        assert_eq!(spec.duration, Duration::from_millis(1500));
        assert_eq!(spec.outcome, SimOutcome::failure("E1", "boom"));
    }
}
