//! The scheduler: one table of tracked tasks, a timer heap of due times per
//! provider, and the loop that runs them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::singles::{Load, Singles, SATURATED_WAIT};
use super::{Command, Counters, ProviderRuntime, Slot};
use crate::clock::SharedClock;
use crate::cursor::PollCursor;
use crate::error::{Error, Result};
use crate::event::TaskEvent;
use crate::model::TaskSnapshot;
use crate::policy::JitterSource;
use crate::store::{shard_of, TrackStore};

pub(super) struct Entry {
    pub(super) provider: usize,
    pub(super) shard: u32,
    pub(super) id: Arc<str>,
    /// Since when, the last answer, the interval, errors and polls.
    pub(super) cursor: PollCursor,
    pub(super) in_flight: bool,
    /// A final append failed without an answer: the store may have taken it.
    pub(super) final_unacked: bool,
    /// Polls a second this task asks of its provider at its interval, as
    /// counted in [`Singles::demand`] from the moment it is tracked.
    pub(super) rate: f32,
}

impl Entry {
    /// Marks the poll sent and counts how late it went against `due`: the
    /// lag of a scheduled poll (returned), or the wait of a first poll.
    fn begin_poll(
        &mut self,
        counters: &Counters,
        backend: &str,
        due: Instant,
        now: Instant,
    ) -> Option<Duration> {
        let first = self.cursor.polls() == 0;
        self.cursor.begin_poll();
        let lag = now.saturating_duration_since(due);
        tracing::trace!(task = %self.id, "dispatching");
        if first {
            counters.first_wait.record(lag);
            None
        } else {
            super::metrics::schedule_lag(backend, lag);
            counters.lag.record(lag);
            Some(lag)
        }
    }
}

pub(super) struct BatchResult {
    pub(super) provider: usize,
    /// When the batch was sent: the next poll is due an interval after
    /// this, not after the answer, so slow answers do not make the
    /// schedule drift (fixed rate, like `tokio::time::interval`).
    pub(super) dispatched: Instant,
    pub(super) slots: Vec<(Slot, u32)>,
    pub(super) answers: Vec<Result<TaskSnapshot>>,
}

/// The future of one batch or one task's request.
pub(super) type Request = Pin<Box<dyn std::future::Future<Output = BatchResult> + Send>>;

/// The entry in `slot` if it still belongs to `generation`. A free function
/// over the two fields so the caller keeps access to the others.
pub(super) fn live<'a>(
    entries: &'a mut [Option<Entry>],
    generations: &[u32],
    slot: Slot,
    generation: u32,
) -> Option<&'a mut Entry> {
    if generations[slot as usize] != generation {
        return None;
    }
    entries[slot as usize].as_mut()
}

pub(super) struct Scheduler {
    pub(super) providers: Vec<ProviderRuntime>,
    pub(super) clock: SharedClock,
    pub(super) jitter: JitterSource,
    pub(super) batch_size: usize,
    /// Requests in flight per provider without batch status.
    pub(super) status_concurrency: usize,
    /// Per provider (used only for those without batch status).
    pub(super) singles: Vec<Singles>,
    pub(super) entries: Vec<Option<Entry>>,
    pub(super) generations: Vec<u32>,
    pub(super) free: Vec<Slot>,
    pub(super) index: HashMap<(usize, Arc<str>), Slot>,
    /// Due times, one heap per provider: a provider with nothing due is
    /// not looked at, and the tasks one takes early are all its own.
    pub(super) heaps: Vec<BinaryHeap<Reverse<(Instant, Slot, u32)>>>,
    pub(super) counters: Arc<Counters>,
    pub(super) events: mpsc::Sender<TaskEvent>,
    pub(super) store: Option<StoreState>,
}

/// The scheduler's side of a [`TrackStore`].
pub(super) struct StoreState {
    pub(super) store: Arc<dyn TrackStore>,
    pub(super) owner: String,
    pub(super) ttl: Duration,
    /// Shards this replica holds, with the version last loaded.
    pub(super) held: BTreeMap<u32, u64>,
    /// Non-final events the store could not take yet (it was down).
    pub(super) unsent: Vec<TaskEvent>,
}

impl Scheduler {
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut in_flight: FuturesUnordered<Request> = FuturesUnordered::new();
        let mut next_lease = self.clock.now();
        loop {
            let next = self
                .heaps
                .iter()
                .filter_map(|h| h.peek().map(|Reverse((due, _, _))| *due))
                .min();
            let sleep = match next {
                Some(due) => self
                    .clock
                    .sleep(due.saturating_duration_since(self.clock.now())),
                None => Box::pin(std::future::pending()),
            };
            let lease_sleep = match &self.store {
                Some(_) => self
                    .clock
                    .sleep(next_lease.saturating_duration_since(self.clock.now())),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                biased;
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    if !self.command_burst(cmd, &mut commands).await {
                        break;
                    }
                }
                _ = lease_sleep => {
                    self.lease_tick().await;
                    let ttl = self.store.as_ref().map_or(Duration::from_secs(1), |st| st.ttl);
                    next_lease = crate::time::after(self.clock.now(), ttl / 3);
                }
                // Due polls before answers: answers of thousands of tasks
                // arrive back to back and would otherwise keep the
                // schedule waiting (polls sent late), while one dispatch
                // takes every due task at once and cannot starve them.
                _ = sleep => {
                    for fut in self.dispatch_due().await {
                        in_flight.push(fut);
                    }
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let provider = done.provider;
                    let single = !self.providers[provider].batches;
                    // A request that timed out or never connected says
                    // nothing of what the provider answers a second (only
                    // a single request's answer feeds the stretch).
                    let transport_failed = single
                        && matches!(done.answers.first(), Some(Err(Error::Transport { .. })));
                    if !self.apply(done).await {
                        break;
                    }
                    // A single request's answer frees a place in its
                    // provider's window.
                    if single {
                        let singles = &mut self.singles[provider];
                        singles.in_flight -= 1;
                        if transport_failed {
                            singles.failed = singles.failed.saturating_add(1);
                        } else {
                            singles.answered = singles.answered.saturating_add(1);
                        }
                        in_flight.extend(self.start_singles(provider));
                    }
                }
            }
        }
        if let Some(st) = &self.store {
            // One round trip, so a slow store does not hold up the exit.
            let held: Vec<u32> = st.held.keys().copied().collect();
            if let Err(e) = st.store.release_many(&st.owner, &held).await {
                tracing::warn!(shards = held.len(), error = %e, "could not release the leases at shutdown; they lapse by themselves");
            }
        }
    }

    /// Carries out `first` and what else is queued, up to [`COMMAND_BURST`]:
    /// commands come in bursts (a dashboard tracking a thousand tasks),
    /// and one per turn of the loop would re-arm its timers each time.
    /// False when the scheduler should stop.
    async fn command_burst(
        &mut self,
        first: Command,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> bool {
        if !self.command(first).await {
            return false;
        }
        for _ in 1..COMMAND_BURST {
            let Ok(cmd) = commands.try_recv() else { break };
            if !self.command(cmd).await {
                return false;
            }
        }
        true
    }

    /// Carries out one command; false when the scheduler should stop.
    async fn command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Track {
                provider,
                id,
                since,
            } => self.track(provider, id, since).await,
            Command::Untrack { provider, id } => {
                if let Some(st) = &self.store {
                    let name = self.providers[provider].name.clone();
                    if let Err(e) = st.store.remove(&name, &id).await {
                        tracing::warn!(error = %e, "could not remove an untracked task from the store");
                    }
                }
                self.remove_key(provider, &id)
            }
            Command::Shutdown => return false,
        }
        true
    }

    pub(super) fn insert(
        &mut self,
        provider: usize,
        id: String,
        since: DateTime<Utc>,
        last: Option<TaskSnapshot>,
    ) {
        let shards = self.store.as_ref().map_or(1, |st| st.store.shards());
        let shard = shard_of(&self.providers[provider].name, &id, shards);
        let id: Arc<str> = Arc::from(id);
        if self.index.contains_key(&(provider, id.clone())) {
            return;
        }
        let now = self.clock.now();
        let age = (Utc::now() - since).to_std().unwrap_or_default();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            self.generations.push(0);
            (self.entries.len() - 1) as Slot
        });
        let cursor = PollCursor::resumed(
            &self.providers[provider].policy,
            now.checked_sub(age).unwrap_or(now),
            last.as_ref(),
        );
        // A task asks for polls from the moment it is tracked, not from its
        // first answer: counted now, a burst of new tasks is part of the
        // demand the first stretch is sized to, instead of joining it one
        // answer at a time while the polls already scheduled run late.
        let rate = poll_rate(cursor.interval());
        let singles = &mut self.singles[provider];
        singles.demand += f64::from(rate);
        self.entries[slot as usize] = Some(Entry {
            provider,
            shard,
            id: id.clone(),
            cursor,
            in_flight: false,
            final_unacked: false,
            rate,
        });
        self.index.insert((provider, id), slot);
        self.counters.tracked.fetch_add(1, Ordering::Relaxed);
        super::metrics::tracked(&self.providers[provider].name, 1.0);
        self.heaps[provider].push(Reverse((now, slot, self.generations[slot as usize])));
    }

    pub(super) fn remove_key(&mut self, provider: usize, id: &str) {
        if let Some(slot) = self.index.get(&(provider, Arc::from(id))).copied() {
            self.remove_slot(slot);
        }
    }

    pub(super) fn remove_slot(&mut self, slot: Slot) {
        if let Some(entry) = self.entries[slot as usize].take() {
            self.index.remove(&(entry.provider, entry.id));
            // A reused slot gets a new generation, so heap items and
            // in-flight answers meant for the old task are ignored.
            self.generations[slot as usize] = self.generations[slot as usize].wrapping_add(1);
            self.free.push(slot);
            let singles = &mut self.singles[entry.provider];
            singles.demand = (singles.demand - f64::from(entry.rate)).max(0.0);
            self.counters.tracked.fetch_sub(1, Ordering::Relaxed);
            super::metrics::tracked(&self.providers[entry.provider].name, -1.0);
        }
    }

    pub(super) async fn dispatch_due(&mut self) -> Vec<Request> {
        let now = self.clock.now();
        let mut due: Vec<Vec<(Slot, u32)>> = vec![Vec::new(); self.providers.len()];
        let mut expired = Vec::new();
        // Coalescing: with jittered intervals every task gets its own due
        // time, and a batching provider would be asked about one task per
        // request. So when a batch of a provider goes now, its tasks due
        // within a quarter of their own interval (at most COALESCE_MAX)
        // go with it, a little early.
        // Only a provider with a task due now is looked at, up to the
        // widest window its tasks may join within.
        let mut candidates = Vec::new();
        for (provider, heap) in self.heaps.iter_mut().enumerate() {
            if heap.peek().is_none_or(|Reverse((at, _, _))| *at > now) {
                continue;
            }
            let widest = if self.providers[provider].batches {
                COALESCE_MAX
            } else {
                SINGLES_COALESCE_MAX
            };
            let horizon = crate::time::after(now, widest);
            while let Some(Reverse((at, slot, generation))) = heap.peek().copied() {
                if at > horizon {
                    break;
                }
                heap.pop();
                candidates.push((at, slot, generation));
            }
        }
        let mut triggered = vec![false; self.providers.len()];
        for &(at, slot, generation) in &candidates {
            if at <= now {
                if let Some(e) = live(&mut self.entries, &self.generations, slot, generation) {
                    triggered[e.provider] = true;
                }
            }
        }
        let mut later = Vec::new();
        for (at, slot, generation) in candidates {
            let Some(entry) = live(&mut self.entries, &self.generations, slot, generation) else {
                continue;
            };
            if at > now {
                let window = coalescing_window(
                    self.providers[entry.provider].batches,
                    entry.cursor.interval(),
                );
                let joins = triggered[entry.provider] && at <= crate::time::after(now, window);
                if !joins {
                    later.push((entry.provider, Reverse((at, slot, generation))));
                    continue;
                }
            }
            if entry.in_flight {
                continue;
            }
            if entry
                .cursor
                .expired(&self.providers[entry.provider].policy, now)
            {
                expired.push(slot);
                continue;
            }
            entry.in_flight = true;
            if !self.providers[entry.provider].batches {
                let singles = &mut self.singles[entry.provider];
                let line = if entry.cursor.polls() == 0 {
                    &mut singles.arriving
                } else {
                    &mut singles.waiting
                };
                line.push_back((slot, generation, at));
                continue;
            }
            entry.begin_poll(
                &self.counters,
                &self.providers[entry.provider].name,
                at,
                now,
            );
            due[entry.provider].push((slot, generation));
        }
        for (provider, item) in later {
            self.heaps[provider].push(item);
        }
        for slot in expired {
            self.give_up_deadline(slot, now).await;
        }
        let mut futures: Vec<Request> = Vec::new();
        for provider in 0..self.providers.len() {
            futures.extend(self.start_singles(provider));
        }
        for (provider, slots) in due.into_iter().enumerate() {
            for chunk in slots.chunks(self.batch_size) {
                let ids: Vec<String> = chunk
                    .iter()
                    .filter_map(|(s, _)| {
                        self.entries[*s as usize].as_ref().map(|e| e.id.to_string())
                    })
                    .collect();
                let rt = self.providers[provider].clone();
                let slots = chunk.to_vec();
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                futures.push(Box::pin(async move {
                    // The semaphore is never closed, so acquire only fails
                    // if it were; then we simply run unthrottled.
                    let _permit = rt.permits.acquire_owned().await.ok();
                    let answers = rt.provider.snapshot_many(&ids).await;
                    BatchResult {
                        provider,
                        dispatched: now,
                        slots,
                        answers,
                    }
                }));
            }
        }
        futures
    }

    /// Sends the waiting tasks of `provider` (one without batch status) as
    /// places in its window of requests in flight allow. A task's poll
    /// counts as late from its due time to when its request goes.
    pub(super) fn start_singles(&mut self, provider: usize) -> Vec<Request> {
        let mut started = Vec::new();
        let now = self.clock.now();
        let mut late = false;
        while self.singles[provider].in_flight < self.status_concurrency {
            let Some((slot, generation, at)) = self.singles[provider].next() else {
                break;
            };
            let Some(entry) = live(&mut self.entries, &self.generations, slot, generation) else {
                continue;
            };
            let rt = &self.providers[provider];
            let lag = entry.begin_poll(&self.counters, &rt.name, at, now);
            late |= lag.is_some_and(|lag| lag > SATURATED_WAIT);
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            let id = entry.id.clone();
            let rt = rt.provider.clone();
            self.singles[provider].in_flight += 1;
            started.push(Box::pin(async move {
                let answer = rt.snapshot(&id).await;
                BatchResult {
                    provider,
                    dispatched: now,
                    slots: vec![(slot, generation)],
                    answers: vec![answer],
                }
            }) as Request);
        }
        let singles = &mut self.singles[provider];
        let load = if late {
            Load::Behind
        } else if singles.waiting.is_empty()
            && singles.arriving.is_empty()
            && singles.in_flight < self.status_concurrency
        {
            Load::KeepingUp
        } else {
            Load::Steady
        };
        if singles.adjust(now, load) {
            tracing::debug!(provider = %self.providers[provider].name, stretch = singles.stretch, "polls of this provider wait for places in flight; intervals stretched");
            let most = self.singles.iter().map(|s| s.stretch).fold(1.0, f64::max);
            self.counters
                .stretch_percent
                .store((most * 100.0) as u64, Ordering::Relaxed);
        }
        started
    }

    pub(super) fn reschedule(&mut self, slot: Slot, dispatched: Instant, now: Instant) {
        if let Some(entry) = self.entries[slot as usize].as_mut() {
            let policy = &self.providers[entry.provider].policy;
            let interval = entry.cursor.interval();
            let mut delay = policy.jittered(interval, (self.jitter)());
            let singles = &mut self.singles[entry.provider];
            let rate = poll_rate(interval);
            singles.demand = (singles.demand + f64::from(rate - entry.rate)).max(0.0);
            entry.rate = rate;
            // A hinted interval is the provider's own word on when there
            // is something to see (DCS's remaining seconds): stretching it
            // would only make the task's end seen late.
            if singles.stretch > 1.0 && !entry.cursor.hinted() {
                delay = delay.mul_f64(singles.stretch);
                self.counters.stretched.fetch_add(1, Ordering::Relaxed);
            }
            let due = next_due(dispatched, delay, now);
            self.heaps[entry.provider].push(Reverse((due, slot, self.generations[slot as usize])));
        }
    }
}

/// Polls a second a task asks for at `interval`; intervals under a
/// millisecond count as a thousand a second.
fn poll_rate(interval: std::time::Duration) -> f32 {
    1.0 / interval.as_secs_f32().max(0.001)
}

/// Commands carried out in one turn of the loop, at most, so a flood of
/// them does not hold up answers and due polls.
const COMMAND_BURST: usize = 1024;

/// How early a task may join a batch of its provider going now, at most.
const COALESCE_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// How early a task may go with a batch of its provider going now.
///
/// A batching provider answers many tasks in one request, so its tasks
/// join for up to a quarter of their interval (one list request per node
/// per tick). Every other provider still gains from going together: each
/// wake-up of the runtime and of the connection costs about as much as a
/// request's own work when requests trickle out one at a time, so tasks
/// due within an eighth of their interval (at most 100 ms) share one:
/// at 1,000 OCP tasks this halved the client's CPU for 1 % more requests.
fn coalescing_window(batches: bool, interval: std::time::Duration) -> std::time::Duration {
    if batches {
        (interval / 4).min(COALESCE_MAX)
    } else {
        (interval / 8).min(SINGLES_COALESCE_MAX)
    }
}

/// How early at most a task of a provider without batch status goes.
const SINGLES_COALESCE_MAX: std::time::Duration = std::time::Duration::from_millis(100);

/// When a task polled at `dispatched` is due again: one (jittered)
/// interval after the poll was sent, so slow answers do not make the
/// schedule drift, but never in the past.
fn next_due(dispatched: Instant, delay: std::time::Duration, now: Instant) -> Instant {
    crate::time::after(dispatched, delay).max(now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Clock, ManualClock};

    #[test]
    fn the_schedule_keeps_a_fixed_rate_and_never_looks_back() {
        let clock = ManualClock::new();
        let sent = clock.now();
        clock.advance(Duration::from_millis(30));
        assert_eq!(
            next_due(sent, Duration::from_millis(100), clock.now()),
            sent + Duration::from_millis(100),
            "a quick answer waits out the interval from the send"
        );
        clock.advance(Duration::from_millis(220));
        assert_eq!(
            next_due(sent, Duration::from_millis(100), clock.now()),
            clock.now(),
            "a slow answer is due at once, not in the past"
        );
        assert_eq!(
            next_due(sent, Duration::MAX, clock.now()),
            crate::time::after(sent, Duration::MAX),
            "no overflow"
        );
    }

    #[test]
    fn a_tracked_tasks_slot_stays_compact() {
        // Ten thousand of these live at once; the rare fields (last error,
        // running step) are boxed. Two cursors' worth of inline strings
        // would take it back to 200 bytes.
        assert!(
            std::mem::size_of::<Option<Entry>>() <= 152,
            "{} bytes",
            std::mem::size_of::<Option<Entry>>()
        );
    }
}
