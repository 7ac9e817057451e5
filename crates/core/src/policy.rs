//! When to poll next: the interval arithmetic shared by the [`Poller`] and
//! the [`Tracker`].
//!
//! [`Poller`]: crate::Poller
//! [`Tracker`]: crate::Tracker

use std::time::Duration;

/// The shortest sleep between two polls of one task, whatever the policy
/// says: a zero interval would otherwise send requests as fast as the
/// server answers. Front ends set their own, higher floors.
pub const MIN_SLEEP: Duration = Duration::from_millis(1);

/// How often to poll, for how long, and how many transient errors to bear.
///
/// Build one with [`PollPolicy::default`] and the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use tasktrack_core::PollPolicy;
///
/// // 1 s, growing by 1.5 to 30 s while nothing changes, ±20 % jitter, 1 h.
/// let default = PollPolicy::default();
/// assert_eq!(default.initial_interval, Duration::from_secs(1));
/// assert_eq!(default.deadline, Some(Duration::from_secs(3600)));
///
/// // A ten-minute job polled every 2 s exactly, given up after 15 minutes.
/// let backup = PollPolicy::fixed(Duration::from_secs(2)).with_deadline(Some(Duration::from_secs(900)));
/// assert_eq!(backup.max_interval, Duration::from_secs(2));
/// assert_eq!(backup.deadline, Some(Duration::from_secs(900)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// First interval, and the interval after any change. Default 1 s: the
    /// Proxmox guide recommends 1–3 s; proxmoxer's 10 ms hammers servers.
    pub initial_interval: Duration,
    /// Ceiling of the backed-off interval. Default 30 s: long tasks (backups,
    /// scale-outs) cost few requests, and an end is still seen within 30 s.
    pub max_interval: Duration,
    /// Growth factor while nothing changes. Default 1.5.
    pub multiplier: f64,
    /// Relative jitter in `0.0..=1.0`: each sleep is scaled by a random
    /// factor in `1 ± jitter`. Default 0.2, so many waiters started together
    /// drift apart instead of polling in lockstep.
    pub jitter: f64,
    /// Give up after this long. Default 1 h: longer than typical
    /// infrastructure tasks, short enough that a lost task does not hang a
    /// script forever. `None` waits without limit.
    pub deadline: Option<Duration>,
    /// Give up after this many polls. Default: no limit.
    pub max_polls: Option<u64>,
    /// Consecutive transient errors (transport, 5xx, 429) tolerated before
    /// giving up. Default 5; a success resets the count.
    pub error_budget: u32,
    /// No server hint or `Retry-After` makes the interval shorter than this.
    /// Default 250 ms.
    pub hint_floor: Duration,
    /// Log lines attached to a failure when the provider has logs. Default 50,
    /// the Proxmox log page size.
    pub log_tail_lines: usize,
    /// A task not found before any answer was seen, within this long of
    /// tracking it, is polled again rather than given up: a backend may not
    /// list a task it has just accepted (bpg's Proxmox provider retries a
    /// 400 right after creation; Huawei's Terraform provider confirms a
    /// target twice). Default 10 s; `Duration::ZERO` gives up at once.
    pub not_found_grace: Duration,
    /// Report a task whose state, progress and steps have not changed for
    /// this long (`TaskEventKind::Stalled`, once per stall): a backup stuck
    /// at 40 % is seen long before the deadline. Default: never.
    pub stall_after: Option<Duration>,
    /// Give a stalled task up (as a timeout naming the stall) instead of
    /// only reporting it. Default false.
    pub give_up_on_stall: bool,
    /// Give a task up (as a timeout naming the phase) that stays `pending`
    /// longer than this: a queue that never starts it. Default: no limit.
    pub pending_for: Option<Duration>,
    /// Give a task up that stays `running` longer than this, however much
    /// it changes meanwhile. Default: no limit (the deadline still holds).
    pub running_for: Option<Duration>,
    /// Give a task up when one of its steps stays running longer than
    /// this: the per-phase limit Temporal users set as a heartbeat
    /// timeout. Default: no limit.
    pub step_for: Option<Duration>,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            multiplier: 1.5,
            jitter: 0.2,
            deadline: Some(Duration::from_secs(3600)),
            max_polls: None,
            error_budget: 5,
            hint_floor: Duration::from_millis(250),
            log_tail_lines: 50,
            not_found_grace: Duration::from_secs(10),
            stall_after: None,
            give_up_on_stall: false,
            pending_for: None,
            running_for: None,
            step_for: None,
        }
    }
}

impl PollPolicy {
    /// Sets the first interval (also used after a change).
    pub fn with_initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }
    /// Sets the interval ceiling.
    pub fn with_max_interval(mut self, d: Duration) -> Self {
        self.max_interval = d;
        self
    }
    /// Sets the growth factor (values below 1.0 are treated as 1.0).
    pub fn with_multiplier(mut self, m: f64) -> Self {
        self.multiplier = m;
        self
    }
    /// Sets the relative jitter (clamped to `0.0..=1.0`).
    pub fn with_jitter(mut self, j: f64) -> Self {
        self.jitter = j;
        self
    }
    /// Sets or removes the overall deadline.
    pub fn with_deadline(mut self, d: Option<Duration>) -> Self {
        self.deadline = d;
        self
    }
    /// Sets or removes the poll-count limit.
    pub fn with_max_polls(mut self, n: Option<u64>) -> Self {
        self.max_polls = n;
        self
    }
    /// Sets the consecutive transient-error budget.
    pub fn with_error_budget(mut self, n: u32) -> Self {
        self.error_budget = n;
        self
    }
    /// Sets the floor under server hints.
    pub fn with_hint_floor(mut self, d: Duration) -> Self {
        self.hint_floor = d;
        self
    }
    /// Sets how many log lines a failure carries.
    pub fn with_log_tail_lines(mut self, n: usize) -> Self {
        self.log_tail_lines = n;
        self
    }
    /// Sets [`stall_after`](Self::stall_after) and whether a stall gives
    /// the task up.
    pub fn with_stall_after(mut self, d: Option<Duration>, give_up: bool) -> Self {
        self.stall_after = d;
        self.give_up_on_stall = give_up;
        self
    }
    /// Sets the phase limits: [`pending_for`](Self::pending_for),
    /// [`running_for`](Self::running_for) and [`step_for`](Self::step_for).
    pub fn with_phase_limits(
        mut self,
        pending_for: Option<Duration>,
        running_for: Option<Duration>,
        step_for: Option<Duration>,
    ) -> Self {
        self.pending_for = pending_for;
        self.running_for = running_for;
        self.step_for = step_for;
        self
    }
    /// Sets [`not_found_grace`](Self::not_found_grace).
    pub fn with_not_found_grace(mut self, d: Duration) -> Self {
        self.not_found_grace = d;
        self
    }
    /// A constant interval: no growth, no jitter. Handy for scripts and tests.
    pub fn fixed(interval: Duration) -> Self {
        PollPolicy {
            initial_interval: interval,
            max_interval: interval,
            multiplier: 1.0,
            jitter: 0.0,
            hint_floor: interval.min(PollPolicy::default().hint_floor),
            ..PollPolicy::default()
        }
    }

    /// The un-jittered interval after a poll.
    ///
    /// After a change the interval drops back to `initial_interval`;
    /// otherwise it grows by `multiplier` up to `max_interval`. A server hint
    /// (or `Retry-After`) replaces the result, clamped to
    /// `hint_floor..=max_interval`.
    pub fn next_interval(
        &self,
        current: Duration,
        changed: bool,
        hint: Option<Duration>,
    ) -> Duration {
        if let Some(h) = hint {
            return self.clamp_hint(h);
        }
        if changed {
            return self.initial_interval.min(self.max_interval);
        }
        let grown = crate::time::scale(current, self.multiplier.clamp(1.0, 1e6));
        grown.clamp(
            self.initial_interval.min(self.max_interval),
            self.max_interval,
        )
    }

    /// The interval after a transient error: the usual growth, but never
    /// sooner than the server's `Retry-After` (which may exceed
    /// `max_interval`: a server asking for time gets it, up to one hour).
    pub fn interval_after_error(
        &self,
        current: Duration,
        retry_after: Option<Duration>,
    ) -> Duration {
        let grown = self.next_interval(current, false, None);
        match retry_after {
            Some(wait) => grown.max(wait.min(Duration::from_secs(3600))),
            None => grown,
        }
    }

    /// Clamps a server-derived delay to `hint_floor..=max_interval`.
    pub fn clamp_hint(&self, hint: Duration) -> Duration {
        let floor = self.hint_floor.min(self.max_interval);
        hint.clamp(floor, self.max_interval)
    }

    /// Applies jitter to an interval. `unit` is a uniform random number in
    /// `0.0..1.0` (injectable so tests can fix it); `0.5` means no change.
    /// Never below [`MIN_SLEEP`], so a zero interval cannot spin.
    pub fn jittered(&self, interval: Duration, unit: f64) -> Duration {
        let j = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        crate::time::scale(interval, 1.0 + j * (2.0 * unit - 1.0)).max(MIN_SLEEP)
    }
}

/// A source of uniform random numbers in `0.0..1.0` for jitter.
pub type JitterSource = std::sync::Arc<dyn Fn() -> f64 + Send + Sync>;

/// The default jitter source: the thread-local RNG.
pub fn random_jitter() -> JitterSource {
    std::sync::Arc::new(rand::random::<f64>)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn backoff_sequence_grows_then_caps() {
        let p = PollPolicy::default()
            .with_initial_interval(secs(1.0))
            .with_max_interval(secs(5.0))
            .with_multiplier(2.0);
        let mut i = p.initial_interval;
        let mut seq = vec![i];
        for _ in 0..4 {
            i = p.next_interval(i, false, None);
            seq.push(i);
        }
        assert_eq!(seq, [secs(1.0), secs(2.0), secs(4.0), secs(5.0), secs(5.0)]);
        assert_eq!(p.next_interval(secs(5.0), true, None), secs(1.0));
    }

    #[test]
    fn jitter_is_applied_from_the_injected_unit() {
        let p = PollPolicy::default().with_jitter(0.2);
        assert_eq!(p.jittered(secs(10.0), 0.5), secs(10.0));
        assert_eq!(p.jittered(secs(10.0), 0.0), secs(8.0));
        assert_eq!(p.jittered(secs(10.0), 1.0), secs(12.0));
        assert_eq!(p.jittered(secs(10.0), f64::NAN), secs(10.0));
    }

    #[test]
    fn retry_after_is_a_floor_even_past_the_maximum() {
        let p = PollPolicy::fixed(secs(1.0));
        assert_eq!(p.interval_after_error(secs(1.0), None), secs(1.0));
        assert_eq!(
            p.interval_after_error(secs(1.0), Some(secs(7.0))),
            secs(7.0)
        );
        assert_eq!(
            p.interval_after_error(secs(1.0), Some(secs(0.2))),
            secs(1.0)
        );
    }

    #[test]
    fn hints_are_clamped_by_floor_and_max() {
        let p = PollPolicy::default()
            .with_hint_floor(secs(0.5))
            .with_max_interval(secs(20.0));
        assert_eq!(
            p.next_interval(secs(1.0), false, Some(secs(0.01))),
            secs(0.5)
        );
        assert_eq!(
            p.next_interval(secs(1.0), false, Some(secs(600.0))),
            secs(20.0)
        );
        assert_eq!(p.next_interval(secs(1.0), true, Some(secs(7.0))), secs(7.0));
    }
}
