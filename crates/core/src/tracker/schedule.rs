//! The scheduler: one table of tracked tasks, one timer heap of due times,
//! and the loop that runs them.

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

use super::{Command, Counters, ProviderRuntime};
use crate::clock::SharedClock;
use crate::cursor::PollCursor;
use crate::error::Result;
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
}

pub(super) type Slot = u32;

pub(super) struct BatchResult {
    pub(super) provider: usize,
    /// When the batch was sent: the next poll is due an interval after
    /// this, not after the answer, so slow answers do not make the
    /// schedule drift (fixed rate, like `tokio::time::interval`).
    pub(super) dispatched: Instant,
    pub(super) slots: Vec<(Slot, u32)>,
    pub(super) answers: Vec<Result<TaskSnapshot>>,
}

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
    pub(super) entries: Vec<Option<Entry>>,
    pub(super) generations: Vec<u32>,
    pub(super) free: Vec<Slot>,
    pub(super) index: HashMap<(usize, Arc<str>), Slot>,
    pub(super) heap: BinaryHeap<Reverse<(Instant, Slot, u32)>>,
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
        let mut in_flight = FuturesUnordered::new();
        let mut next_lease = self.clock.now();
        loop {
            let sleep = match self.heap.peek() {
                Some(Reverse((due, _, _))) => self
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
                cmd = commands.recv() => match cmd {
                    Some(Command::Track { provider, id, since }) => self.track(provider, id, since).await,
                    Some(Command::Untrack { provider, id }) => {
                        if let Some(st) = &self.store {
                            let name = self.providers[provider].name.clone();
                            if let Err(e) = st.store.remove(&name, &id).await {
                                tracing::warn!(error = %e, "could not remove an untracked task from the store");
                            }
                        }
                        self.remove_key(provider, &id)
                    }
                    Some(Command::Shutdown) | None => break,
                },
                _ = lease_sleep => {
                    self.lease_tick().await;
                    let ttl = self.store.as_ref().map_or(Duration::from_secs(1), |st| st.ttl);
                    next_lease = crate::time::after(self.clock.now(), ttl / 3);
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if !self.apply(done).await {
                        break;
                    }
                }
                _ = sleep => {
                    for fut in self.dispatch_due().await {
                        in_flight.push(fut);
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
        self.entries[slot as usize] = Some(Entry {
            provider,
            shard,
            id: id.clone(),
            cursor: PollCursor::resumed(
                &self.providers[provider].policy,
                now.checked_sub(age).unwrap_or(now),
                last,
            ),
            in_flight: false,
            final_unacked: false,
        });
        self.index.insert((provider, id), slot);
        self.counters.tracked.fetch_add(1, Ordering::Relaxed);
        super::metrics::tracked(&self.providers[provider].name, 1.0);
        self.heap
            .push(Reverse((now, slot, self.generations[slot as usize])));
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
            self.counters.tracked.fetch_sub(1, Ordering::Relaxed);
            super::metrics::tracked(&self.providers[entry.provider].name, -1.0);
        }
    }

    pub(super) async fn dispatch_due(
        &mut self,
    ) -> Vec<Pin<Box<dyn std::future::Future<Output = BatchResult> + Send>>> {
        let now = self.clock.now();
        let mut due: Vec<Vec<(Slot, u32)>> = vec![Vec::new(); self.providers.len()];
        let mut expired = Vec::new();
        // Coalescing: with jittered intervals every task gets its own due
        // time, and a batching provider would be asked about one task per
        // request. So when a batch of a provider goes now, its tasks due
        // within a quarter of their own interval (at most COALESCE_MAX)
        // go with it, a little early.
        let mut candidates = Vec::new();
        let horizon = crate::time::after(now, COALESCE_MAX);
        while let Some(Reverse((at, slot, generation))) = self.heap.peek().copied() {
            if at > horizon {
                break;
            }
            self.heap.pop();
            candidates.push((at, slot, generation));
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
                let window = (entry.cursor.interval() / 4).min(COALESCE_MAX);
                let joins = self.providers[entry.provider].batches
                    && triggered[entry.provider]
                    && at <= crate::time::after(now, window);
                if !joins {
                    later.push(Reverse((at, slot, generation)));
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
            entry.cursor.begin_poll();
            let lag = now.saturating_duration_since(at);
            super::metrics::schedule_lag(&self.providers[entry.provider].name, lag);
            self.counters.lag.record(lag);
            entry.in_flight = true;
            tracing::trace!(task = %entry.id, "dispatching");
            due[entry.provider].push((slot, generation));
        }
        self.heap.extend(later);
        for slot in expired {
            self.give_up_deadline(slot, now).await;
        }
        let mut futures: Vec<Pin<Box<dyn std::future::Future<Output = BatchResult> + Send>>> =
            Vec::new();
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

    pub(super) fn reschedule(&mut self, slot: Slot, dispatched: Instant, now: Instant) {
        if let Some(entry) = self.entries[slot as usize].as_ref() {
            let policy = &self.providers[entry.provider].policy;
            let delay = policy.jittered(entry.cursor.interval(), (self.jitter)());
            let due = next_due(dispatched, delay, now);
            self.heap
                .push(Reverse((due, slot, self.generations[slot as usize])));
        }
    }
}

/// How early a task may join a batch of its provider going now, at most.
const COALESCE_MAX: std::time::Duration = std::time::Duration::from_secs(5);

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
}
