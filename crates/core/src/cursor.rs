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
mod tests;
