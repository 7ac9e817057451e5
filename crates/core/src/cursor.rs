//! [`PollCursor`]: the one place that decides what a poll's answer means
//! and when the next poll is due. [`Poller`](crate::Poller) (one task) and
//! [`Tracker`](crate::Tracker) (thousands) both drive one per task, so the
//! two cannot drift apart.

use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, PollPolicy, Result, TaskSnapshot, TaskState};

/// What to do after an answer.
#[derive(Debug)]
pub enum Next {
    /// The task changed, or is seen for the first time: report `0` (the
    /// answer, its hint removed) and poll again after
    /// [`PollCursor::interval`].
    Changed(Box<TaskSnapshot>),
    /// The task is terminal: report `snapshot` and stop. A front end that
    /// could not record it may poll again; the answer is then terminal
    /// and unchanged.
    Terminal {
        /// The answer, its hint removed.
        snapshot: Box<TaskSnapshot>,
        /// Whether it differs from the last answer.
        changed: bool,
    },
    /// Nothing new: poll again after [`PollCursor::interval`].
    Unchanged,
    /// A transient error within the error budget: poll again after
    /// [`PollCursor::interval`] (which honours a `Retry-After`).
    Retry,
    /// A permanent error, or a transient one past the budget: stop with it.
    Stop(Error),
}

/// What a cursor keeps of the last answer: its state, compared exactly,
/// and a [fingerprint](TaskSnapshot::fingerprint) of the rest, so ten
/// thousand tracked tasks do not hold ten thousand snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    state: TaskState,
    fingerprint: u64,
}

impl Seen {
    fn of(snapshot: &TaskSnapshot) -> Self {
        Seen {
            state: snapshot.state,
            fingerprint: snapshot.fingerprint(),
        }
    }
}

/// One task's polling state under a [`PollPolicy`].
#[derive(Debug, Clone)]
pub struct PollCursor {
    started: Instant,
    interval: Duration,
    polls: u64,
    errors: u32,
    // The last answer as two fields rather than an `Option<Seen>`, which
    // would pad to 16 bytes.
    seen_state: Option<TaskState>,
    seen_fingerprint: u64,
    // Boxed: most tasks never see an error or a named step, and a cursor
    // lives in every tracked task's slot.
    last_error: Option<Box<str>>,
    /// When the task last changed (or tracking started).
    changed_at: Instant,
    /// The current stall was reported.
    stall_reported: bool,
    /// The interval is the provider's own hint of when to look again.
    hinted: bool,
    /// When the task entered its current state.
    state_since: Instant,
    /// The step running now, and since when.
    step_since: Option<Box<(Box<str>, Instant)>>,
}

impl PollCursor {
    /// A cursor for a task tracked since `started`.
    pub fn new(policy: &PollPolicy, started: Instant) -> Self {
        PollCursor {
            started,
            interval: policy.initial_interval,
            polls: 0,
            errors: 0,
            seen_state: None,
            seen_fingerprint: 0,
            last_error: None,
            changed_at: started,
            stall_reported: false,
            hinted: false,
            state_since: started,
            step_since: None,
        }
    }

    /// A cursor that already saw `last` (a task resumed from a store).
    pub fn resumed(policy: &PollPolicy, started: Instant, last: Option<&TaskSnapshot>) -> Self {
        let mut cursor = PollCursor::new(policy, started);
        if let Some(seen) = last.map(Seen::of) {
            cursor.set_seen(seen);
        }
        cursor
    }

    /// Whether no poll may start at `now`: the deadline has passed or the
    /// poll count is used up.
    pub fn expired(&self, policy: &PollPolicy, now: Instant) -> bool {
        self.time_left(policy, now).is_some_and(|l| l.is_zero())
            || policy.max_polls.is_some_and(|n| self.polls >= n)
    }

    /// Time left before the deadline at `now` (`None`: no deadline).
    pub fn time_left(&self, policy: &PollPolicy, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.started);
        policy.deadline.map(|d| d.saturating_sub(elapsed))
    }

    fn seen(&self) -> Option<Seen> {
        self.seen_state.map(|state| Seen {
            state,
            fingerprint: self.seen_fingerprint,
        })
    }

    fn set_seen(&mut self, seen: Seen) {
        self.seen_state = Some(seen.state);
        self.seen_fingerprint = seen.fingerprint;
    }

    /// A poll starts now.
    pub fn begin_poll(&mut self) {
        self.polls = self.polls.saturating_add(1);
    }

    /// Takes one poll's answer, received at `now`, and says what follows.
    pub fn observe(
        &mut self,
        policy: &PollPolicy,
        now: Instant,
        answer: Result<TaskSnapshot>,
    ) -> Next {
        match answer {
            Ok(mut snapshot) => {
                self.errors = 0;
                self.last_error = None;
                // The hint moves on every poll (a countdown); it is advice,
                // not a change of the task.
                let hint = snapshot.poll_hint.take();
                let seen = Seen::of(&snapshot);
                let changed = self.seen() != Some(seen);
                self.hinted = hint.is_some();
                self.interval = policy.next_interval(self.interval, changed, hint);
                if changed {
                    if self.seen_state != Some(seen.state) {
                        self.state_since = now;
                    }
                    let running = snapshot
                        .steps
                        .iter()
                        .find(|s| s.state == TaskState::Running)
                        .map(|s| s.name.as_str());
                    if running != self.step_since.as_deref().map(|(n, _)| &**n) {
                        self.step_since = running.map(|n| Box::new((n.into(), now)));
                    }
                    self.set_seen(seen);
                    self.changed_at = now;
                    self.stall_reported = false;
                }
                let snapshot = Box::new(snapshot);
                match (seen.state.is_terminal(), changed) {
                    (true, changed) => Next::Terminal { snapshot, changed },
                    (false, true) => Next::Changed(snapshot),
                    (false, false) => Next::Unchanged,
                }
            }
            // Not found before it was ever seen, soon after tracking began:
            // the backend may not know it yet.
            Err(e @ Error::NotFound { .. })
                if self.seen_state.is_none()
                    && now.saturating_duration_since(self.started) < policy.not_found_grace =>
            {
                self.interval = policy.interval_after_error(self.interval, None);
                self.hinted = false;
                self.last_error = Some(e.to_string().into());
                Next::Retry
            }
            Err(e) if e.is_retryable() && self.errors < policy.error_budget => {
                self.errors += 1;
                self.interval = policy.interval_after_error(self.interval, e.retry_after());
                self.hinted = false;
                self.last_error = Some(e.to_string().into());
                Next::Retry
            }
            Err(e) => Next::Stop(e),
        }
    }

    /// How long the task has gone unchanged, when that first reaches the
    /// policy's [`stall_after`](PollPolicy::stall_after): `Some` once per
    /// stall, `None` otherwise.
    pub fn stall(&mut self, policy: &PollPolicy, now: Instant) -> Option<Duration> {
        let after = policy.stall_after?;
        let unchanged = now.saturating_duration_since(self.changed_at);
        if self.stall_reported || unchanged < after {
            return None;
        }
        self.stall_reported = true;
        Some(unchanged)
    }

    /// Why the task has overrun a phase limit of `policy` at `now`
    /// ([`pending_for`](PollPolicy::pending_for),
    /// [`running_for`](PollPolicy::running_for),
    /// [`step_for`](PollPolicy::step_for)), if it has: the reason its
    /// timeout gives.
    pub fn overrun(&self, policy: &PollPolicy, now: Instant) -> Option<String> {
        let state = self.seen_state?;
        let human = crate::error::human_duration;
        let in_state = now.saturating_duration_since(self.state_since);
        let limit = match state {
            TaskState::Pending => policy.pending_for.map(|l| (l, "pending", "pending_for")),
            TaskState::Running => policy.running_for.map(|l| (l, "running", "running_for")),
            _ => None,
        };
        if let Some((limit, state, name)) = limit {
            if in_state >= limit {
                return Some(format!(
                    "the task was {state} for {} ({name} is {})",
                    human(in_state),
                    human(limit)
                ));
            }
        }
        let (step, since) = self.step_since.as_deref()?;
        let limit = policy.step_for?;
        let running = now.saturating_duration_since(*since);
        (running >= limit).then(|| {
            format!(
                "step {step:?} ran for {} (step_for is {})",
                human(running),
                human(limit)
            )
        })
    }

    /// The wait before the next poll (before jitter).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether [`interval`](Self::interval) comes from the last answer's
    /// [`poll_hint`](TaskSnapshot::poll_hint): the provider said when to
    /// look again.
    pub fn hinted(&self) -> bool {
        self.hinted
    }

    /// The state of the last answer seen (`None` before the first).
    pub fn last_state(&self) -> Option<TaskState> {
        self.seen_state
    }

    /// Polls started so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// When tracking started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The last transient error, cleared by the next good answer.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The error that ends a task whose time or polls ran out at `now`;
    /// `why` replaces the last transient error when given.
    pub fn timeout(&self, provider: &str, id: &str, now: Instant, why: Option<String>) -> Error {
        Error::Timeout {
            provider: provider.to_owned(),
            id: id.to_owned(),
            elapsed: now.saturating_duration_since(self.started),
            polls: self.polls,
            last_error: why.or_else(|| self.last_error.as_deref().map(str::to_owned)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpError;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn policy() -> PollPolicy {
        PollPolicy::default()
            .with_initial_interval(secs(1))
            .with_max_interval(secs(8))
            .with_multiplier(2.0)
            .with_jitter(0.0)
            .with_error_budget(2)
            .with_deadline(Some(secs(60)))
            .with_max_polls(Some(5))
            .with_hint_floor(secs(1))
    }

    fn snap(state: TaskState, title: &str) -> TaskSnapshot {
        let mut s = TaskSnapshot::new("p", "1", state);
        s.title = Some(title.into());
        s
    }

    fn transient() -> Error {
        HttpError::new("p", "GET", "/t", 503).into()
    }

    #[test]
    fn the_first_answer_is_a_change_and_a_repeat_is_not() {
        let p = policy();
        let mut c = PollCursor::new(&p, Instant::now());
        assert!(matches!(
            c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "a"))),
            Next::Changed(_)
        ));
        assert_eq!(c.interval(), secs(1), "a change keeps the interval");
        assert!(matches!(
            c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "a"))),
            Next::Unchanged
        ));
        assert_eq!(c.interval(), secs(2), "no change backs off");
        match c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "b"))) {
            Next::Changed(s) => assert_eq!(s.title.as_deref(), Some("b")),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.last_state(), Some(TaskState::Running));
    }

    #[test]
    fn a_resumed_cursor_knows_the_last_answer_without_keeping_it() {
        let p = policy();
        let mut before = snap(TaskState::Running, "a");
        before.steps = vec![
            step("copy", TaskState::Running),
            step("verify", TaskState::Pending),
        ];
        let mut c = PollCursor::resumed(&p, Instant::now(), Some(&before));
        assert_eq!(c.last_state(), Some(TaskState::Running));
        assert!(
            matches!(
                c.observe(&p, Instant::now(), Ok(before.clone())),
                Next::Unchanged
            ),
            "the stored answer again is no change"
        );
        let mut after = before.clone();
        after.steps[1].state = TaskState::Running;
        assert!(
            matches!(c.observe(&p, Instant::now(), Ok(after)), Next::Changed(_)),
            "a nested step state is part of the fingerprint"
        );
    }

    #[test]
    fn a_hint_sets_the_interval_and_is_not_a_change() {
        let p = policy();
        let mut c = PollCursor::new(&p, Instant::now());
        let mut s = snap(TaskState::Running, "a");
        s.poll_hint = Some(secs(5));
        match c.observe(&p, Instant::now(), Ok(s.clone())) {
            Next::Changed(reported) => assert_eq!(reported.poll_hint, None, "hint removed"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.interval(), secs(5));
        s.poll_hint = Some(secs(3));
        assert!(
            matches!(c.observe(&p, Instant::now(), Ok(s)), Next::Unchanged),
            "only the hint moved"
        );
        assert_eq!(c.interval(), secs(3));
        assert!(c.hinted());
        let s = snap(TaskState::Running, "a");
        assert!(matches!(
            c.observe(&p, Instant::now(), Ok(s)),
            Next::Unchanged
        ));
        assert!(
            !c.hinted(),
            "an answer without a hint: the policy's interval"
        );
    }

    #[test]
    fn terminal_answers_stop_changed_or_not() {
        let p = policy();
        let mut c = PollCursor::new(&p, Instant::now());
        let done = snap(TaskState::Succeeded, "a");
        assert!(matches!(
            c.observe(&p, Instant::now(), Ok(done.clone())),
            Next::Terminal { changed: true, .. }
        ));
        assert!(matches!(
            c.observe(&p, Instant::now(), Ok(done)),
            Next::Terminal { changed: false, .. }
        ));
    }

    #[test]
    fn transient_errors_spend_the_budget_then_stop() {
        let p = policy();
        let mut c = PollCursor::new(&p, Instant::now());
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(transient())),
            Next::Retry
        ));
        assert!(c.last_error().unwrap().contains("503"));
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(transient())),
            Next::Retry
        ));
        assert!(
            matches!(
                c.observe(&p, Instant::now(), Err(transient())),
                Next::Stop(_)
            ),
            "budget of 2"
        );
        // A good answer resets the budget and clears the error.
        let mut c = PollCursor::new(&p, Instant::now());
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(transient())),
            Next::Retry
        ));
        assert!(matches!(
            c.observe(&p, Instant::now(), Ok(snap(TaskState::Running, "a"))),
            Next::Changed(_)
        ));
        assert_eq!(c.last_error(), None);
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(transient())),
            Next::Retry
        ));
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(transient())),
            Next::Retry
        ));
    }

    #[test]
    fn a_permanent_error_stops_at_once() {
        let p = policy().with_not_found_grace(Duration::ZERO);
        let mut c = PollCursor::new(&p, Instant::now());
        let e = Error::not_found("p", "1");
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(e)),
            Next::Stop(Error::NotFound { .. })
        ));
        let auth = Error::Auth {
            provider: "p".into(),
            status: 401,
            message: "no".into(),
        };
        assert!(matches!(
            c.observe(&p, Instant::now(), Err(auth)),
            Next::Stop(_)
        ));
    }

    #[test]
    fn a_task_not_found_right_after_tracking_began_gets_a_grace() {
        let p = policy().with_not_found_grace(secs(10));
        let t0 = Instant::now();
        let mut c = PollCursor::new(&p, t0);
        let missing = || Err(Error::not_found("p", "1"));
        assert!(matches!(
            c.observe(&p, t0 + secs(1), missing()),
            Next::Retry
        ));
        assert!(matches!(
            c.observe(&p, t0 + secs(9), missing()),
            Next::Retry
        ));
        assert!(
            matches!(c.observe(&p, t0 + secs(10), missing()), Next::Stop(_)),
            "grace over"
        );
        // Once seen, a task that goes missing has vanished: no grace.
        let mut c = PollCursor::new(&p, t0);
        assert!(matches!(
            c.observe(&p, t0, Ok(snap(TaskState::Running, "a"))),
            Next::Changed(_)
        ));
        assert!(matches!(
            c.observe(&p, t0 + secs(1), missing()),
            Next::Stop(_)
        ));
    }

    #[test]
    fn a_stall_is_reported_once_and_a_change_ends_it() {
        let p = policy().with_stall_after(Some(secs(30)), false);
        let t0 = Instant::now();
        let mut c = PollCursor::new(&p, t0);
        let running = |title: &str| Ok(snap(TaskState::Running, title));
        assert!(matches!(c.observe(&p, t0, running("a")), Next::Changed(_)));
        assert!(matches!(
            c.observe(&p, t0 + secs(20), running("a")),
            Next::Unchanged
        ));
        assert_eq!(c.stall(&p, t0 + secs(20)), None);
        assert_eq!(c.stall(&p, t0 + secs(31)), Some(secs(31)));
        assert_eq!(c.stall(&p, t0 + secs(60)), None, "once per stall");
        assert!(matches!(
            c.observe(&p, t0 + secs(61), running("b")),
            Next::Changed(_)
        ));
        assert_eq!(c.stall(&p, t0 + secs(80)), None);
        assert_eq!(c.stall(&p, t0 + secs(91)), Some(secs(30)), "a new stall");
        let never = policy();
        let mut c = PollCursor::new(&never, t0);
        assert_eq!(c.stall(&never, t0 + secs(1_000_000)), None);
    }

    fn step(name: &str, state: TaskState) -> crate::Step {
        crate::Step::new(name, name, state)
    }

    #[test]
    fn phase_limits_count_from_entering_the_state_or_step() {
        let p = policy().with_phase_limits(Some(secs(10)), Some(secs(100)), Some(secs(30)));
        let t0 = Instant::now();
        let mut c = PollCursor::new(&p, t0);
        assert_eq!(c.overrun(&p, t0 + secs(1000)), None, "nothing seen yet");
        c.observe(&p, t0, Ok(snap(TaskState::Pending, "q")));
        assert_eq!(c.overrun(&p, t0 + secs(9)), None);
        let why = c.overrun(&p, t0 + secs(10)).unwrap();
        assert!(
            why.contains("pending for 10s") && why.contains("pending_for"),
            "{why}"
        );
        // Running since 5 s; changes of progress do not restart the clock.
        let mut with_steps = snap(TaskState::Running, "a");
        with_steps.steps = vec![
            step("copy", TaskState::Running),
            step("verify", TaskState::Pending),
        ];
        c.observe(&p, t0 + secs(5), Ok(with_steps.clone()));
        with_steps.title = Some("b".into());
        c.observe(&p, t0 + secs(20), Ok(with_steps.clone()));
        assert_eq!(c.overrun(&p, t0 + secs(34)), None);
        let why = c.overrun(&p, t0 + secs(35)).unwrap();
        assert!(why.contains("\"copy\" ran for 30s"), "{why}");
        // The next step gets its own 30 s.
        with_steps.steps = vec![
            step("copy", TaskState::Succeeded),
            step("verify", TaskState::Running),
        ];
        c.observe(&p, t0 + secs(36), Ok(with_steps));
        assert_eq!(c.overrun(&p, t0 + secs(60)), None);
        let why = c.overrun(&p, t0 + secs(105)).unwrap();
        assert!(
            why.contains("running for 1m 40s") || why.contains("running for 100s"),
            "{why}"
        );
        assert_eq!(
            c.overrun(&policy(), t0 + secs(1_000_000)),
            None,
            "no limits, no overrun"
        );
    }

    #[test]
    fn the_deadline_and_the_poll_count_expire_it() {
        let p = policy();
        let t0 = Instant::now();
        let mut c = PollCursor::new(&p, t0);
        assert!(!c.expired(&p, t0 + secs(59)));
        assert_eq!(c.time_left(&p, t0 + secs(50)), Some(secs(10)));
        assert!(c.expired(&p, t0 + secs(60)), "deadline");
        for _ in 0..5 {
            c.begin_poll();
        }
        assert!(c.expired(&p, t0), "max polls");
        let e = c.timeout("p", "1", t0 + secs(3), None);
        assert!(
            matches!(e, Error::Timeout { polls: 5, .. }),
            "the timeout counts the polls: {e}"
        );
        let unbounded = PollPolicy::default()
            .with_deadline(None)
            .with_max_polls(None);
        let c = PollCursor::new(&unbounded, t0);
        assert!(!c.expired(&unbounded, t0 + secs(1_000_000)));
        assert_eq!(c.time_left(&unbounded, t0), None);
    }
}
