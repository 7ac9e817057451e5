//! Waiting for one task: [`Poller::wait`], [`Poller::watch`] and
//! [`Poller::poll_once`].

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::clock::{SharedClock, TokioClock};
use crate::cursor::PollCursor;
use crate::error::{Error, Result};
use crate::model::{Failure, TaskSnapshot, TaskState, TaskStatus};
use crate::policy::{random_jitter, JitterSource, PollPolicy};
use crate::provider::{ActionReceipt, LogLine, LogRange, TaskAction, TaskHandle, TaskProvider};

/// How long the log read after a failure may take when the deadline is
/// (nearly) spent.
const LOG_TAIL_GRACE: Duration = Duration::from_millis(900);

/// Opt-in remediation while waiting: when the task fails, ask the provider
/// to retry it (its `Retry` action), up to `max_retries` times, optionally
/// only for tasks whose name (title or kind) contains one of
/// `name_contains`. Each retry is logged at `warn`. OceanBase's own
/// diagnostic tool hard-codes exactly this for OCP. Off unless set with
/// [`Poller::with_remediation`]; the deadline applies to each attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemediationPolicy {
    /// Retries at most.
    pub max_retries: u32,
    /// Only tasks whose title or kind contains one of these (empty: all).
    pub name_contains: Vec<String>,
}

impl RemediationPolicy {
    /// Retry any failed task up to `n` times.
    pub fn retry_up_to(n: u32) -> Self {
        RemediationPolicy {
            max_retries: n,
            name_contains: Vec::new(),
        }
    }

    /// Only for tasks whose title or kind contains one of `names`.
    pub fn with_only_for<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.name_contains = names.into_iter().map(Into::into).collect();
        self
    }

    fn applies_to(&self, snapshot: &TaskSnapshot) -> bool {
        if self.name_contains.is_empty() {
            return true;
        }
        let names = [snapshot.title.as_deref(), snapshot.kind.as_deref()];
        self.name_contains
            .iter()
            .any(|wanted| names.iter().flatten().any(|n| n.contains(wanted.as_str())))
    }
}

/// How a wait ended: the terminal status and what it cost.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskOutcome<S> {
    /// Provider name.
    pub provider: String,
    /// Task id in its string form.
    pub id: String,
    /// The terminal status.
    pub status: S,
    /// Time from the first poll to the terminal one.
    pub elapsed: Duration,
    /// Status polls made (failed attempts included).
    pub polls: u64,
    /// The end of the task's log, for failed or cancelled tasks of providers
    /// with the `logs` capability.
    pub log_tail: Vec<LogLine>,
    /// Retries made by the [`RemediationPolicy`].
    pub retries: u32,
}

impl<S: TaskStatus> TaskOutcome<S> {
    /// The normalized terminal state.
    pub fn state(&self) -> TaskState {
        self.status.state()
    }

    /// The snapshot of the terminal status.
    pub fn snapshot(&self) -> TaskSnapshot {
        self.status.snapshot(&self.provider, &self.id)
    }

    /// `Ok(status)` for a succeeded task, [`Error::TaskFailed`] (with the
    /// failure and the log tail) for a failed or cancelled one.
    pub fn into_result(self) -> Result<S> {
        let state = self.status.state();
        if !state.is_unsuccessful() {
            return Ok(self.status);
        }
        let failure = self.status.failure().unwrap_or_else(|| {
            Failure::new(format!(
                "task ended as {} ({})",
                state,
                self.status.vendor_state()
            ))
        });
        Err(Error::TaskFailed {
            provider: self.provider,
            id: self.id,
            failure,
            cancelled: state == TaskState::Cancelled,
            log_tail: self.log_tail.into_iter().map(|l| l.text).collect(),
        })
    }
}

/// Polls one provider for single tasks, by a [`PollPolicy`].
pub struct Poller<P: TaskProvider> {
    provider: Arc<P>,
    policy: PollPolicy,
    clock: SharedClock,
    jitter: JitterSource,
    remediation: Option<RemediationPolicy>,
}

impl<P: TaskProvider> Clone for Poller<P> {
    fn clone(&self) -> Self {
        Poller {
            provider: self.provider.clone(),
            policy: self.policy.clone(),
            clock: self.clock.clone(),
            jitter: self.jitter.clone(),
            remediation: self.remediation.clone(),
        }
    }
}

impl<P: TaskProvider> std::fmt::Debug for Poller<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("provider", &self.provider.name())
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .finish()
    }
}

impl<P: TaskProvider> Poller<P> {
    /// A poller over `provider` (owned or shared) with `policy`, on tokio's
    /// clock with random jitter.
    pub fn new(provider: impl Into<Arc<P>>, policy: PollPolicy) -> Self {
        Poller {
            provider: provider.into(),
            policy,
            clock: Arc::new(TokioClock),
            jitter: random_jitter(),
            remediation: None,
        }
    }

    /// Retries failed tasks while waiting, by `policy` (off by default).
    pub fn with_remediation(mut self, policy: RemediationPolicy) -> Self {
        self.remediation = Some(policy);
        self
    }

    /// Uses another clock (e.g. [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Uses another source of uniform `0.0..1.0` numbers for jitter.
    pub fn with_jitter_source(mut self, jitter: JitterSource) -> Self {
        self.jitter = jitter;
        self
    }

    /// The provider polled.
    pub fn provider(&self) -> &Arc<P> {
        &self.provider
    }

    /// The policy in force.
    pub fn policy(&self) -> &PollPolicy {
        &self.policy
    }

    /// One status request, nothing more: the step `wait` and `watch` are
    /// built on.
    pub async fn poll_once(&self, id: &P::Id) -> Result<P::Status> {
        self.provider.status(id).await
    }

    /// Polls until the task ends and returns its [`TaskOutcome`]. Errors are
    /// the poll's own (timeout, a permanent error, or a transient one past
    /// the budget); a failed task is an `Ok` outcome: call
    /// [`TaskOutcome::into_result`] to turn it into an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktrack_core::{Error, MemoryProvider, PollPolicy, Poller, ScriptOutcome, TaskScript, TaskState};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> tasktrack_core::Result<()> {
    /// let backups = MemoryProvider::new("backups");
    /// let ok = backups.start(TaskScript::new("vzdump", Duration::from_millis(20)));
    /// let bad = backups.start(
    ///     TaskScript::new("vzdump", Duration::from_millis(20))
    ///         .with_outcome(ScriptOutcome::failed("ENOSPC", "disk full")),
    /// );
    /// let poller = Poller::new(backups, PollPolicy::fixed(Duration::from_millis(5)));
    ///
    /// let outcome = poller.wait(&ok).await?;
    /// assert_eq!(outcome.state(), TaskState::Succeeded);
    ///
    /// // A failed task is an `Ok` outcome; `into_result` makes it the error.
    /// match poller.wait(&bad).await?.into_result() {
    ///     Err(Error::TaskFailed { failure, .. }) => assert_eq!(failure.message, "disk full"),
    ///     other => panic!("expected a failure, got {other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait(&self, id: &P::Id) -> Result<TaskOutcome<P::Status>> {
        let (mut polls, mut elapsed, mut retries) = (0, Duration::ZERO, 0);
        let (status, last_attempt) = loop {
            let (status, attempt_polls, attempt_elapsed) = self.wait_once(id).await?;
            polls += attempt_polls;
            elapsed += attempt_elapsed;
            if !self.should_remediate(id, &status, retries) {
                break (status, attempt_elapsed);
            }
            retries += 1;
            tracing::warn!(
                provider = self.provider.name(),
                task = %id,
                retry = retries,
                failure = %status.failure().map(|f| f.to_string()).unwrap_or_default(),
                "task failed; retrying it as the remediation policy allows"
            );
            self.provider.act(id, TaskAction::Retry).await?;
        };
        let log_tail = if status.state().is_unsuccessful() {
            // What is left of the deadline bounds the log read too, with a
            // short grace so a task failing at the last moment still
            // brings its log.
            let left = self
                .policy
                .deadline
                .map(|d| d.saturating_sub(last_attempt).max(LOG_TAIL_GRACE));
            match left {
                Some(left) => {
                    tokio::select! {
                        lines = self.log_tail(id) => lines,
                        _ = self.clock.watchdog(left) => {
                            tracing::warn!(provider = self.provider.name(), task = %id, "the log tail of a failed task was not read before the deadline");
                            Vec::new()
                        }
                    }
                }
                None => self.log_tail(id).await,
            }
        } else {
            Vec::new()
        };
        Ok(TaskOutcome {
            provider: self.provider.name().to_owned(),
            id: id.to_string(),
            status,
            elapsed,
            polls,
            log_tail,
            retries,
        })
    }

    async fn wait_once(&self, id: &P::Id) -> Result<(P::Status, u64, Duration)> {
        let mut stream = std::pin::pin!(self.watch_inner(id.clone()));
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item?);
        }
        // watch_inner always yields at least once; keep a typed error rather
        // than a panic should that ever change.
        last.ok_or_else(|| {
            Error::decode(
                self.provider.name(),
                "poll stream",
                ".",
                "ended without a status",
            )
        })
    }

    fn should_remediate(&self, id: &P::Id, status: &P::Status, retries: u32) -> bool {
        let Some(policy) = &self.remediation else {
            return false;
        };
        status.state() == TaskState::Failed
            && retries < policy.max_retries
            && self.provider.capabilities().retry
            && policy.applies_to(&status.snapshot(self.provider.name(), &id.to_string()))
    }

    /// Resumes waiting on a saved [`TaskHandle`] (e.g. after a restart).
    pub async fn resume(&self, handle: &TaskHandle) -> Result<TaskOutcome<P::Status>> {
        let id: P::Id = handle.typed_id()?;
        self.wait(&id).await
    }

    /// A stream of the task's distinct statuses: the first one at once (no
    /// initial sleep), then each change, ending after a terminal status or
    /// an error. Dropping the stream stops all polling.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tasktrack_core::{MemoryProvider, PollPolicy, Poller, TaskScript, TaskState, TaskStatus};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> tasktrack_core::Result<()> {
    /// let backups = MemoryProvider::new("backups");
    /// let id = backups.start(
    ///     TaskScript::new("vzdump", Duration::from_millis(30)).with_pending_for(Duration::from_millis(10)),
    /// );
    /// let poller = Poller::new(backups, PollPolicy::fixed(Duration::from_millis(2)));
    ///
    /// let mut seen = Vec::new();
    /// let mut changes = std::pin::pin!(poller.watch(&id));
    /// while let Some(status) = changes.next().await {
    ///     seen.push(status?);
    /// }
    /// // Each status once (progress counts as a change), the terminal one last.
    /// assert!(seen.windows(2).all(|pair| pair[0] != pair[1]));
    /// assert_eq!(seen.last().map(|s| s.state()), Some(TaskState::Succeeded));
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch(&self, id: &P::Id) -> impl Stream<Item = Result<P::Status>> + Send + 'static {
        self.watch_inner(id.clone()).map(|r| r.map(|(s, _, _)| s))
    }

    /// Asks the backend to stop the task; [`Error::Unsupported`] when the
    /// provider lacks the `Cancel` capability. Sent once, never retried.
    pub async fn cancel(&self, id: &P::Id) -> Result<ActionReceipt> {
        if !self.provider.capabilities().cancel {
            return Err(Error::unsupported(self.provider.name(), "action cancel"));
        }
        self.provider.act(id, TaskAction::Cancel).await
    }

    async fn log_tail(&self, id: &P::Id) -> Vec<LogLine> {
        if !self.provider.capabilities().logs || self.policy.log_tail_lines == 0 {
            return Vec::new();
        }
        match self
            .provider
            .logs(id, LogRange::Tail(self.policy.log_tail_lines))
            .await
        {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(provider = self.provider.name(), task = %id, error = %e, "could not read the log tail of a failed task");
                Vec::new()
            }
        }
    }

    fn watch_inner(
        &self,
        id: P::Id,
    ) -> impl Stream<Item = Result<(P::Status, u64, Duration)>> + Send + 'static {
        let state = WatchState {
            cursor: PollCursor::new(&self.policy, self.clock.now()),
            poller: self.clone(),
            id_text: id.to_string(),
            id,
            first: true,
            done: false,
        };
        futures::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            let item = st.next_change().await;
            Some((item, st))
        })
    }
}

struct WatchState<P: TaskProvider> {
    poller: Poller<P>,
    id: P::Id,
    id_text: String,
    cursor: PollCursor,
    first: bool,
    done: bool,
}

impl<P: TaskProvider> WatchState<P> {
    fn timeout(&mut self, why: Option<String>) -> Error {
        self.done = true;
        let now = self.poller.clock.now();
        self.cursor
            .timeout(self.poller.provider.name(), &self.id_text, now, why)
    }

    async fn next_change(&mut self) -> Result<(P::Status, u64, Duration)> {
        let clock = self.poller.clock.clone();
        let name = self.poller.provider.name().to_owned();
        loop {
            let policy = &self.poller.policy;
            if !self.first {
                let mut delay = policy.jittered(self.cursor.interval(), (self.poller.jitter)());
                if let Some(left) = self.cursor.time_left(policy, clock.now()) {
                    delay = delay.min(left);
                }
                clock.sleep(delay).await;
            }
            self.first = false;
            if self.cursor.expired(policy, clock.now()) {
                return Err(self.timeout(None));
            }
            self.cursor.begin_poll();
            // The deadline bounds the request too: a server trickling its
            // answer (or retries inside the HTTP layer) cannot outlast it.
            let answer = match self.cursor.time_left(policy, clock.now()) {
                Some(left) => {
                    let status = self.poller.provider.status(&self.id);
                    tokio::select! {
                        r = status => Some(r),
                        _ = clock.watchdog(left) => None,
                    }
                }
                None => Some(self.poller.provider.status(&self.id).await),
            };
            let Some(answer) = answer else {
                return Err(self.timeout(Some(
                    "a status request was still unanswered at the deadline".to_owned(),
                )));
            };
            let (status, snapshot) = match answer {
                Ok(status) => {
                    let snapshot = status.snapshot(&name, &self.id_text);
                    (Some(status), Ok(snapshot))
                }
                Err(e) => (None, Err(e)),
            };
            let policy = &self.poller.policy;
            match (self.cursor.observe(policy, clock.now(), snapshot), status) {
                (crate::Next::Changed(_), Some(status)) => {
                    if let Some(e) = self.check_limits() {
                        return Err(e);
                    }
                    return Ok((status, self.cursor.polls(), self.elapsed()));
                }
                (crate::Next::Terminal { .. }, Some(status)) => {
                    self.done = true;
                    return Ok((status, self.cursor.polls(), self.elapsed()));
                }
                (crate::Next::Retry, _) => {
                    tracing::debug!(provider = %name, task = %self.id_text, error = self.cursor.last_error().unwrap_or_default(), "transient error while polling");
                    if let Some(e) = self.check_stall() {
                        return Err(e);
                    }
                }
                (crate::Next::Stop(e), _) => {
                    self.done = true;
                    return Err(e);
                }
                // Unchanged (a status without a snapshot cannot happen).
                _ => {
                    if let Some(e) = self.check_stall() {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// A phase limit overrun ends the wait.
    fn check_limits(&mut self) -> Option<Error> {
        let now = self.poller.clock.now();
        let why = self.cursor.overrun(&self.poller.policy, now)?;
        self.done = true;
        Some(self.timeout(Some(why)))
    }

    /// A phase limit overrun ends the wait; so does a stall when the
    /// policy gives up on stalls, which is otherwise logged once.
    fn check_stall(&mut self) -> Option<Error> {
        if let Some(e) = self.check_limits() {
            return Some(e);
        }
        let now = self.poller.clock.now();
        let unchanged = self.cursor.stall(&self.poller.policy, now)?;
        let why = format!(
            "the task stalled: nothing changed for {}",
            crate::error::human_duration(unchanged)
        );
        if self.poller.policy.give_up_on_stall {
            return Some(self.timeout(Some(why)));
        }
        tracing::warn!(provider = self.poller.provider.name(), task = %self.id_text, "{why}");
        None
    }

    fn elapsed(&self) -> Duration {
        self.poller
            .clock
            .now()
            .saturating_duration_since(self.cursor.started())
    }
}
