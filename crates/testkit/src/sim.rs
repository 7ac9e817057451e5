//! A [`Harness`] over one of `tasktrack-sim`'s simulators (feature `sim`).
//!
//! Every adapter's conformance run has the same parts: a manual clock the
//! simulator follows, the simulator, the provider talking to it, the route
//! whose answers are faulted for the transient-error checks, and how a
//! scripted task becomes a simulator task. [`SimHarness`] holds them, so an
//! adapter's test says only what is its own.

use std::sync::Arc;

use async_trait::async_trait;
use tasktrack_core::{ManualClock, TaskAction, TaskProvider};
use tasktrack_sim::{Fault, SimHandle, TaskSpec};

use crate::harness::{Expected, Harness, ScriptedTask};

type Id<P> = <P as TaskProvider>::Id;
type Create<P> = Box<dyn Fn(&SimHandle, ScriptedTask) -> Id<P> + Send + Sync>;
type Prepare<P> =
    Box<dyn Fn(&SimHandle, &ManualClock, &TaskAction) -> Option<(Id<P>, TaskAction)> + Send + Sync>;

/// Runs the conformance suite against a provider talking to a simulator.
///
/// ```no_run
/// # async fn doc(
/// #     clock: tasktrack_core::ManualClock,
/// #     sim: tasktrack_sim::SimHandle,
/// #     provider: std::sync::Arc<tasktrack_core::MemoryProvider>,
/// # ) {
/// use tasktrack_sim::TaskSpec;
/// use tasktrack_testkit::sim::{scripted, SimHarness};
///
/// let harness = SimHarness::new(clock, sim, provider, "GET /tasks/{id}", u64::MAX, |sim, t| {
///     let spec = scripted(TaskSpec::new("backup", t.duration), t.expected);
///     sim.create_task(spec).parse().unwrap()
/// })
/// .with_attempts_per_status(3);
/// tasktrack_testkit::run(&harness).await.assert_passed();
/// # }
/// ```
pub struct SimHarness<P: TaskProvider> {
    clock: ManualClock,
    sim: SimHandle,
    provider: Arc<P>,
    status_route: String,
    unknown_id: Id<P>,
    create: Create<P>,
    attempts_per_status: u32,
    reports_failure_codes: bool,
    prepare: Option<Prepare<P>>,
}

impl<P: TaskProvider> SimHarness<P> {
    /// A harness whose transient faults answer 503 on `status_route` (as
    /// the simulator's request log names it, e.g. `GET /api/v2/tasks/instances/{id}`),
    /// whose `unknown_id` names no task, and whose `create` makes a
    /// simulator task for a scripted one.
    pub fn new(
        clock: ManualClock,
        sim: SimHandle,
        provider: Arc<P>,
        status_route: impl Into<String>,
        unknown_id: Id<P>,
        create: impl Fn(&SimHandle, ScriptedTask) -> Id<P> + Send + Sync + 'static,
    ) -> Self {
        SimHarness {
            clock,
            sim,
            provider,
            status_route: status_route.into(),
            unknown_id,
            create: Box::new(create),
            attempts_per_status: 1,
            reports_failure_codes: true,
            prepare: None,
        }
    }

    /// How many transport attempts one `status` call makes (1 + the
    /// client's retries); 1 unless set.
    pub fn with_attempts_per_status(mut self, attempts: u32) -> Self {
        self.attempts_per_status = attempts;
        self
    }

    /// The vendor reports failures by message only, without a code.
    pub fn without_failure_codes(mut self) -> Self {
        self.reports_failure_codes = false;
        self
    }

    /// How to make a task on which an action of a kind applies, and the
    /// concrete action (see [`Harness::prepare_action`]).
    pub fn with_prepared_actions(
        mut self,
        prepare: impl Fn(&SimHandle, &ManualClock, &TaskAction) -> Option<(Id<P>, TaskAction)>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.prepare = Some(Box::new(prepare));
        self
    }
}

/// `spec`, failing as `expected` says when it says so.
pub fn scripted(spec: TaskSpec, expected: Expected) -> TaskSpec {
    match expected {
        Expected::Succeed => spec,
        Expected::Fail { code, message } => spec.with_failure(code, message),
    }
}

#[async_trait]
impl<P: TaskProvider> Harness for SimHarness<P> {
    type Provider = P;

    fn provider(&self) -> Arc<P> {
        self.provider.clone()
    }

    fn clock(&self) -> ManualClock {
        self.clock.clone()
    }

    async fn create(&self, task: ScriptedTask) -> Id<P> {
        (self.create)(&self.sim, task)
    }

    fn unknown_id(&self) -> Id<P> {
        self.unknown_id.clone()
    }

    async fn inject_transient_faults(&self, n: u32) {
        self.sim
            .faults()
            .next(n, &self.status_route, Fault::status(503));
    }

    async fn clear_faults(&self) {
        self.sim.faults().clear();
    }

    fn attempts_per_status(&self) -> u32 {
        self.attempts_per_status
    }

    fn reports_failure_codes(&self) -> bool {
        self.reports_failure_codes
    }

    async fn prepare_action(&self, action: &TaskAction) -> Option<(Id<P>, TaskAction)> {
        self.prepare
            .as_ref()
            .and_then(|prepare| prepare(&self.sim, &self.clock, action))
    }
}
