//! A provider's line of polls waiting for a place among its requests in
//! flight, and the stretch of its intervals when it cannot keep up.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::Slot;

/// Tasks due at a provider without batch status, waiting for a place among
/// its requests in flight: created as places free up, not all at once, so
/// a thousand due tasks are a thousand small entries, not a thousand
/// boxed requests, and each answer is applied as it arrives.
pub(super) struct Singles {
    /// Tasks polled before, due again.
    pub(super) waiting: VecDeque<(Slot, u32, Instant)>,
    /// Newly tracked (or taken over) tasks, not polled yet.
    pub(super) arriving: VecDeque<(Slot, u32, Instant)>,
    /// Places given since the last one given to an arriving task.
    turn: u8,
    pub(super) in_flight: usize,
    /// How much longer than their policy says this provider's tasks wait
    /// between polls (1.0: not at all); see [`Singles::adjust`].
    pub(super) stretch: f64,
    /// Polls a second the provider's tasks ask for at their policy's
    /// intervals (the sum of their [`Entry::rate`](super::schedule::Entry::rate)).
    pub(super) demand: f64,
    /// Answers since the current window opened (transport failures are
    /// not answers: a provider timing out every request answers none).
    pub(super) answered: u32,
    /// Requests that timed out or never connected since the window opened.
    pub(super) failed: u32,
    /// Answers a second the provider gave while polls waited for places.
    capacity: Option<f64>,
    /// When the current window opened.
    window: Option<Instant>,
    /// A scheduled poll went late in the current window.
    behind: bool,
}

impl Default for Singles {
    fn default() -> Self {
        Singles {
            waiting: VecDeque::new(),
            arriving: VecDeque::new(),
            turn: 0,
            in_flight: 0,
            stretch: 1.0,
            demand: 0.0,
            answered: 0,
            failed: 0,
            capacity: None,
            window: None,
            behind: false,
        }
    }
}

/// What a provider's line of waiting polls says about its load.
#[derive(Clone, Copy)]
pub(super) enum Load {
    /// Scheduled polls waited more than [`SATURATED_WAIT`].
    Behind,
    /// Nothing waits and a place in flight is free.
    KeepingUp,
    /// Some wait, none of them scheduled polls waiting long.
    Steady,
}

/// Polls waiting longer than this for a place among the provider's
/// requests in flight mean it cannot keep up with the policy.
pub(super) const SATURATED_WAIT: Duration = Duration::from_millis(50);
/// Intervals are stretched up to this many times their policy's.
const MAX_STRETCH: f64 = 16.0;

impl Singles {
    /// The next task to send. Tasks due again go first, so a burst of
    /// thousands of new tasks does not make every running task's poll
    /// late; every fourth place goes to a new task while both wait, so new
    /// tasks are never starved either.
    pub(super) fn next(&mut self) -> Option<(Slot, u32, Instant)> {
        let arriving_turn = self.turn >= 3 || self.waiting.is_empty();
        if arriving_turn {
            if let Some(next) = self.arriving.pop_front() {
                self.turn = 0;
                return Some(next);
            }
        }
        self.turn = self.turn.saturating_add(1);
        self.waiting.pop_front()
    }

    /// When more polls fall due than the provider's window answers in
    /// time, waiting in line would make every poll late and the schedule
    /// drift without anyone knowing. Instead every task's interval is
    /// stretched by one factor (fair: FIFO order and the same factor for
    /// all), and by no more than the provider needs: the polls a second
    /// its tasks ask for over the answers a second it gave while polls
    /// waited, with a tenth to spare. Raised to that while scheduled polls
    /// wait more than [`SATURATED_WAIT`] (and never lowered while they
    /// do), never raised while they do not, lowered toward it by a tenth
    /// at most, and shrunk back once the line is empty; at most once per
    /// 100 ms. (A
    /// factor grown step by step overshot: after a burst it held 16x the
    /// interval, and late answers, long after the provider had caught up.)
    /// First polls of newly tracked tasks wait in the same line but do not
    /// stretch anything by being late: a burst of new tasks is not a
    /// schedule the provider cannot keep. Their rate is in the demand from
    /// the moment they are tracked, though, so the first stretch is sized
    /// to the burst too (counted one answer at a time, a third of the
    /// polls scheduled after a burst of 1,000 ran more than 100 ms late).
    /// A hinted interval (the provider's own word, such as DCS's remaining
    /// seconds) counts in the demand but is never stretched.
    pub(super) fn adjust(&mut self, now: Instant, load: Load) -> bool {
        // Most looks send nothing (no place is free); a window in which
        // any scheduled poll went late is a window behind.
        self.behind |= matches!(load, Load::Behind);
        let Some(opened) = self.window else {
            self.window = Some(now);
            self.answered = 0;
            return false;
        };
        let elapsed = now.saturating_duration_since(opened);
        if elapsed < ADJUST_EVERY {
            return false;
        }
        let rate = f64::from(self.answered) / elapsed.as_secs_f64();
        let congested = std::mem::take(&mut self.failed) > 0;
        self.answered = 0;
        self.window = Some(now);
        let load = if std::mem::take(&mut self.behind) {
            Load::Behind
        } else {
            load
        };
        // Answers only say what the provider can do while polls wait for
        // places; keeping up, they say what was asked.
        if !matches!(load, Load::KeepingUp) {
            self.capacity = Some(self.capacity.map_or(rate, |c| (c + rate) / 2.0));
        }
        let need = match self.capacity {
            Some(c) if c > 0.0 => (self.demand / c * 1.1).clamp(1.0, MAX_STRETCH),
            _ => MAX_STRETCH,
        };
        let before = self.stretch;
        // Polls late with more stretch than the estimate asks for mean the
        // estimate is low (an overloaded provider answers in bursts): keep
        // it. Coming down is a tenth per window at most, so one good window
        // of a struggling provider does not bring its whole load back.
        self.stretch = match load {
            // Requests timing out while polls wait: past saturation, where
            // the answers that do come say little of what it can do. Back
            // off by a quarter a window, as TCP does, until they stop.
            Load::Behind | Load::Steady if congested => {
                (self.stretch * 1.25).max(need).min(MAX_STRETCH)
            }
            Load::Behind => self.stretch.max(need),
            Load::Steady => self.stretch.min(need).max(self.stretch * 0.9),
            Load::KeepingUp => (self.stretch * 0.9).max(1.0),
        };
        self.stretch != before
    }
}

/// How often a provider's stretch is looked at, at most.
const ADJUST_EVERY: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, ManualClock};

    #[test]
    fn tasks_due_again_go_first_and_new_tasks_get_every_fourth_place() {
        let at = ManualClock::new().now();
        let mut singles = Singles::default();
        singles.waiting.extend((0..6).map(|s| (s, 0, at)));
        singles.arriving.extend((100..103).map(|s| (s, 0, at)));
        let order: Vec<Slot> = std::iter::from_fn(|| singles.next().map(|(s, _, _)| s)).collect();
        assert_eq!(order, [0, 1, 2, 100, 3, 4, 5, 101, 102]);
    }

    #[test]
    fn intervals_stretch_to_what_the_provider_answers_and_come_back_when_caught_up() {
        let clock = ManualClock::new();
        let tick = || clock.advance(ADJUST_EVERY);
        // 40 tasks every 100 ms against 40 answers a second.
        let mut singles = Singles {
            demand: 400.0,
            ..Singles::default()
        };
        assert!(
            !singles.adjust(clock.now(), Load::Behind),
            "the first look opens a window"
        );
        tick();
        singles.answered = 4;
        assert!(singles.adjust(clock.now(), Load::Behind));
        assert!((singles.stretch - 11.0).abs() < 1e-9, "{}", singles.stretch);
        assert!(
            !singles.adjust(clock.now(), Load::Behind),
            "at most once per 100 ms"
        );
        // Late again though stretched more than the estimate says: the
        // estimate is low, the stretch stays.
        singles.demand = 200.0;
        tick();
        singles.answered = 4;
        assert!(!singles.adjust(clock.now(), Load::Behind));
        assert!((singles.stretch - 11.0).abs() < 1e-9, "{}", singles.stretch);
        // The tasks' intervals grew: a line that waits, but not long, comes
        // down to what it needs now, a tenth per window, and no further.
        singles.demand = 80.0;
        tick();
        singles.answered = 4;
        assert!(singles.adjust(clock.now(), Load::Steady));
        assert!((singles.stretch - 9.9).abs() < 1e-9, "{}", singles.stretch);
        for _ in 0..40 {
            tick();
            singles.answered = 4;
            singles.adjust(clock.now(), Load::Steady);
        }
        assert!((singles.stretch - 2.2).abs() < 1e-9, "{}", singles.stretch);
        singles.demand = 800.0;
        tick();
        singles.answered = 4;
        assert!(
            !singles.adjust(clock.now(), Load::Steady),
            "never raised while on time"
        );
        // Requests time out while polls wait: a quarter more a window,
        // whatever the estimate says, up to the bound.
        singles.demand = 80.0;
        tick();
        singles.answered = 4;
        singles.failed = 3;
        assert!(singles.adjust(clock.now(), Load::Steady));
        assert!((singles.stretch - 2.75).abs() < 1e-9, "{}", singles.stretch);
        // Bounded, also for a provider that answers nothing.
        tick();
        singles.answered = 0;
        singles.capacity = Some(0.0);
        singles.adjust(clock.now(), Load::Behind);
        assert_eq!(singles.stretch, MAX_STRETCH, "bounded");
        for _ in 0..60 {
            tick();
            singles.adjust(clock.now(), Load::KeepingUp);
        }
        assert_eq!(singles.stretch, 1.0, "back to the policy's intervals");
    }
}
