//! Tracking many tasks across many providers with one scheduler.
//!
//! A tracked task is plain data (provider, id string, last snapshot, next due
//! time) kept in one table; one timer heap orders the due times. Each tick
//! pops every due task, groups them per provider and asks
//! [`DynTaskProvider::status_many`] once per batch, so a provider that can
//! batch turns N polls into one request. No task spawns its own loop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::clock::{SharedClock, TokioClock};
use crate::error::{Error, Result};
use crate::model::{TaskSnapshot, TaskState};
use crate::policy::{random_jitter, JitterSource, PollPolicy};
use crate::provider::{DynTaskProvider, TaskHandle};
use crate::store::{shard_of, TrackStore, TrackedEntry};

/// Something that happened to a tracked task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// Provider name.
    pub provider: String,
    /// Task id in its string form.
    pub id: String,
    /// The state before this event (`None` for the first observation).
    pub previous: Option<TaskState>,
    /// What happened.
    #[serde(flatten)]
    pub kind: TaskEventKind,
    /// When the tracker saw it.
    pub at: DateTime<Utc>,
}

/// What a [`TaskEvent`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TaskEventKind {
    /// The task was seen for the first time, or changed.
    Changed {
        /// The new status (boxed: a snapshot is large next to `GaveUp`).
        snapshot: Box<TaskSnapshot>,
    },
    /// Tracking stopped without a terminal state: a permanent error (the
    /// task vanished, credentials were refused), the error budget ran out,
    /// or the deadline passed.
    GaveUp {
        /// [`Error::kind`] of the last error.
        error_kind: String,
        /// The error message.
        message: String,
    },
}

impl TaskEvent {
    /// The snapshot, for `Changed` events.
    pub fn snapshot(&self) -> Option<&TaskSnapshot> {
        match &self.kind {
            TaskEventKind::Changed { snapshot } => Some(snapshot),
            TaskEventKind::GaveUp { .. } => None,
        }
    }

    /// The task's state after this event (`None` after giving up).
    pub fn state(&self) -> Option<TaskState> {
        self.snapshot().map(|s| s.state)
    }

    /// True for the last event of a task: terminal state or gave up.
    pub fn is_final(&self) -> bool {
        match &self.kind {
            TaskEventKind::Changed { snapshot } => snapshot.state.is_terminal(),
            TaskEventKind::GaveUp { .. } => true,
        }
    }
}

/// Counters of a running tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStats {
    /// Tasks currently tracked.
    pub tracked: u64,
    /// Status answers processed (one per task per poll).
    pub status_updates: u64,
    /// `status_many` calls made.
    pub batches: u64,
    /// Events emitted.
    pub events: u64,
}

#[derive(Default)]
struct Counters {
    tracked: AtomicU64,
    status_updates: AtomicU64,
    batches: AtomicU64,
    events: AtomicU64,
}

/// Builds a [`Tracker`].
pub struct TrackerBuilder {
    providers: Vec<ProviderSlot>,
    default_policy: PollPolicy,
    clock: SharedClock,
    jitter: JitterSource,
    concurrency: usize,
    batch_size: usize,
    event_buffer: usize,
    store: Option<Arc<dyn TrackStore>>,
    owner: String,
    lease_ttl: Duration,
}

struct ProviderSlot {
    name: String,
    provider: Arc<dyn DynTaskProvider>,
    policy: Option<PollPolicy>,
}

impl Default for TrackerBuilder {
    fn default() -> Self {
        TrackerBuilder {
            providers: Vec::new(),
            default_policy: PollPolicy::default(),
            clock: Arc::new(TokioClock),
            jitter: random_jitter(),
            concurrency: 4,
            batch_size: 500,
            event_buffer: 1024,
            store: None,
            owner: format!(
                "tracker-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            lease_ttl: Duration::from_secs(15),
        }
    }
}

impl TrackerBuilder {
    /// Registers a provider under `name` (replacing one of the same name).
    pub fn provider(mut self, name: impl Into<String>, provider: Arc<dyn DynTaskProvider>) -> Self {
        self.push(name.into(), provider, None);
        self
    }

    /// Registers a provider with its own poll policy.
    pub fn provider_with_policy(
        mut self,
        name: impl Into<String>,
        provider: Arc<dyn DynTaskProvider>,
        policy: PollPolicy,
    ) -> Self {
        self.push(name.into(), provider, Some(policy));
        self
    }

    fn push(
        &mut self,
        name: String,
        provider: Arc<dyn DynTaskProvider>,
        policy: Option<PollPolicy>,
    ) {
        self.providers.retain(|p| p.name != name);
        self.providers.push(ProviderSlot {
            name,
            provider,
            policy,
        });
    }

    /// The policy for providers registered without one.
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// Uses another clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Uses another jitter source (uniform `0.0..1.0`).
    pub fn jitter_source(mut self, jitter: JitterSource) -> Self {
        self.jitter = jitter;
        self
    }

    /// At most this many `status_many` calls in flight per provider (default 4).
    pub fn concurrency_per_provider(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// At most this many ids per `status_many` call (default 500).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Events buffered before the scheduler waits for the reader (default 1024).
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n.max(1);
        self
    }

    /// Keeps the tracked set, leases and event log in `store`, so tracking
    /// survives restarts and several trackers (replicas) sharing one store
    /// split the work. Without a store the tracker keeps everything in its
    /// own memory, as fast as possible, and a restart forgets it.
    pub fn store(mut self, store: Arc<dyn TrackStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// This replica's name in the store's leases (default: unique per process).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// How long a lease lasts without renewal (default 15 s): a replica that
    /// dies has its tasks taken over after at most this long. Leases are
    /// renewed every third of it.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.clamp(Duration::from_millis(30), Duration::from_secs(86_400));
        self
    }

    /// Starts the scheduler on the current tokio runtime and returns the
    /// handle and the event stream. The scheduler stops when every
    /// [`Tracker`] clone is dropped or [`Tracker::shutdown`] is called.
    pub fn build(self) -> (Tracker, TaskEvents) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(self.event_buffer);
        let counters = Arc::new(Counters::default());
        let names: Arc<HashMap<String, usize>> = Arc::new(
            self.providers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
        );
        let providers: Vec<ProviderRuntime> = self
            .providers
            .into_iter()
            .map(|slot| ProviderRuntime {
                policy: slot.policy.unwrap_or_else(|| self.default_policy.clone()),
                name: Arc::from(slot.name.as_str()),
                provider: slot.provider,
                permits: Arc::new(Semaphore::new(self.concurrency)),
            })
            .collect();
        let scheduler = Scheduler {
            providers: providers.clone(),
            clock: self.clock,
            jitter: self.jitter,
            batch_size: self.batch_size,
            entries: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            heap: BinaryHeap::new(),
            counters: counters.clone(),
            events: ev_tx,
            store: self.store.map(|store| StoreState {
                store,
                owner: self.owner,
                ttl: self.lease_ttl,
                held: BTreeMap::new(),
                unsent: Vec::new(),
            }),
        };
        let task = tokio::spawn(scheduler.run(cmd_rx));
        let tracker = Tracker {
            commands: cmd_tx,
            names,
            providers: Arc::new(providers),
            counters,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        };
        (tracker, TaskEvents { rx: ev_rx })
    }
}

#[derive(Clone)]
struct ProviderRuntime {
    name: Arc<str>,
    provider: Arc<dyn DynTaskProvider>,
    policy: PollPolicy,
    permits: Arc<Semaphore>,
}

enum Command {
    Track {
        provider: usize,
        id: String,
        since: DateTime<Utc>,
    },
    Untrack {
        provider: usize,
        id: String,
    },
    Shutdown,
}

/// Tracks many tasks across named providers; cheap to clone.
#[derive(Clone)]
pub struct Tracker {
    commands: mpsc::UnboundedSender<Command>,
    names: Arc<HashMap<String, usize>>,
    providers: Arc<Vec<ProviderRuntime>>,
    counters: Arc<Counters>,
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("providers", &self.provider_names())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Tracker {
    /// Starts building a tracker.
    pub fn builder() -> TrackerBuilder {
        TrackerBuilder::default()
    }

    /// The registered provider names.
    pub fn provider_names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| &*p.name).collect()
    }

    /// The provider registered under `name`.
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn DynTaskProvider>> {
        self.names.get(name).map(|&i| &self.providers[i].provider)
    }

    fn provider_index(&self, name: &str) -> Result<usize> {
        self.names.get(name).copied().ok_or_else(|| {
            let mut known = self.provider_names();
            known.sort_unstable();
            Error::invalid_input(
                "tasktrack",
                format!(
                    "unknown provider {name:?}; registered: {}",
                    known.join(", ")
                ),
            )
        })
    }

    /// Starts tracking a task. The id is checked (and canonicalised) by the
    /// provider first, so a malformed id is refused here. Tracking a task
    /// already tracked changes nothing.
    pub fn track(&self, provider: &str, id: &str) -> Result<TaskHandle> {
        let idx = self.provider_index(provider)?;
        let id = self.providers[idx].provider.canonical_id(id)?;
        let since = Utc::now();
        self.send(Command::Track {
            provider: idx,
            id: id.clone(),
            since,
        })?;
        Ok(TaskHandle {
            provider: provider.to_owned(),
            id,
            tracked_since: since,
        })
    }

    /// Resumes tracking a saved handle.
    pub fn resume(&self, handle: &TaskHandle) -> Result<()> {
        let idx = self.provider_index(&handle.provider)?;
        let id = self.providers[idx].provider.canonical_id(&handle.id)?;
        self.send(Command::Track {
            provider: idx,
            id,
            since: handle.tracked_since,
        })
    }

    /// Stops tracking a task (no event is emitted for it).
    pub fn untrack(&self, provider: &str, id: &str) -> Result<()> {
        let idx = self.provider_index(provider)?;
        let id = self.providers[idx].provider.canonical_id(id)?;
        self.send(Command::Untrack { provider: idx, id })
    }

    /// Stops the scheduler; the event stream ends after the events already
    /// emitted. With a store, leases are released (see [`Tracker::stop`] to
    /// wait for that).
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Stops the scheduler at once *without* releasing leases or flushing
    /// anything, as a crashed process would: for failover tests and drills.
    pub fn kill(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }

    /// Stops the scheduler and waits until it has released its leases.
    pub async fn stop(&self) {
        self.shutdown();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Current counters.
    pub fn stats(&self) -> TrackerStats {
        let c = &self.counters;
        TrackerStats {
            tracked: c.tracked.load(Ordering::Relaxed),
            status_updates: c.status_updates.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
        }
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.commands
            .send(cmd)
            .map_err(|_| Error::invalid_input("tasktrack", "the tracker has shut down"))
    }
}

/// The stream of [`TaskEvent`]s of a [`Tracker`].
#[derive(Debug)]
pub struct TaskEvents {
    rx: mpsc::Receiver<TaskEvent>,
}

impl Stream for TaskEvents {
    type Item = TaskEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TaskEvent>> {
        self.rx.poll_recv(cx)
    }
}

struct Entry {
    provider: usize,
    shard: u32,
    id: Arc<str>,
    tracked_since: Instant,
    last: Option<TaskSnapshot>,
    interval: Duration,
    errors: u32,
    /// Answers received, for the give-up message.
    polls: u32,
    /// The last transient error, cleared by the next good answer.
    last_error: Option<String>,
    in_flight: bool,
    /// A final append failed without an answer: the store may have taken it.
    final_unacked: bool,
}

type Slot = u32;

struct BatchResult {
    provider: usize,
    /// When the batch was sent: the next poll is due an interval after
    /// this, not after the answer, so slow answers do not make the
    /// schedule drift (fixed rate, like `tokio::time::interval`).
    dispatched: Instant,
    slots: Vec<(Slot, u32)>,
    answers: Vec<Result<TaskSnapshot>>,
}

/// The entry in `slot` if it still belongs to `generation`. A free function
/// over the two fields so the caller keeps access to the others.
fn live<'a>(
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

struct Scheduler {
    providers: Vec<ProviderRuntime>,
    clock: SharedClock,
    jitter: JitterSource,
    batch_size: usize,
    entries: Vec<Option<Entry>>,
    generations: Vec<u32>,
    free: Vec<Slot>,
    index: HashMap<(usize, Arc<str>), Slot>,
    heap: BinaryHeap<Reverse<(Instant, Slot, u32)>>,
    counters: Arc<Counters>,
    events: mpsc::Sender<TaskEvent>,
    store: Option<StoreState>,
}

/// The scheduler's side of a [`TrackStore`].
struct StoreState {
    store: Arc<dyn TrackStore>,
    owner: String,
    ttl: Duration,
    /// Shards this replica holds, with the version last loaded.
    held: BTreeMap<u32, u64>,
    /// Non-final events the store could not take yet (it was down).
    unsent: Vec<TaskEvent>,
}

impl Scheduler {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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

    /// A `track` command: write the entry through to the store and track it
    /// here when this replica holds its shard (otherwise its holder will).
    async fn track(&mut self, provider: usize, id: String, since: DateTime<Utc>) {
        let Some(st) = &mut self.store else {
            self.insert(provider, id, since, None);
            return;
        };
        let name = self.providers[provider].name.to_string();
        let shard = shard_of(&name, &id, st.store.shards());
        let entry = TrackedEntry {
            provider: name,
            id: id.clone(),
            tracked_at: since,
            last: None,
            next_due: Utc::now(),
        };
        if let Err(e) = st.store.put(&entry).await {
            tracing::warn!(error = %e, task = %id, "could not save a tracked task to the store; tracking it here only");
            self.insert(provider, id, since, None);
            return;
        }
        if st.held.contains_key(&shard) {
            self.insert(provider, id, since, None);
        }
    }

    /// Keeps this replica's share of shards: heartbeat, renew, shed extras,
    /// claim free ones, reload shards that changed, resend unsent events.
    async fn lease_tick(&mut self) {
        let Some(st) = &mut self.store else { return };
        let (store, owner, ttl) = (st.store.clone(), st.owner.clone(), st.ttl);
        let unsent = std::mem::take(&mut st.unsent);
        for (i, event) in unsent.iter().enumerate() {
            if let Err(e) = store.append(event).await {
                tracing::debug!(error = %e, "store still unavailable for events");
                st.unsent.extend(unsent[i..].iter().cloned());
                break;
            }
        }
        let live = match store.heartbeat(&owner, ttl).await {
            Ok(n) => n.max(1),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable; tracking the tasks already held");
                return;
            }
        };
        let shards = store.shards();
        let target = (shards as usize).div_ceil(live);
        let mut lost = Vec::new();
        let held: Vec<u32> = st.held.keys().copied().collect();
        if !held.is_empty() {
            match store.acquire_many(&owner, &held, ttl, usize::MAX).await {
                Ok(answers) => lost.extend(
                    held.iter()
                        .zip(answers)
                        .filter(|(_, renewed)| !renewed)
                        .map(|(s, _)| *s),
                ),
                Err(e) => {
                    tracing::debug!(error = %e, "lease renewal failed; keeping the shards for now")
                }
            }
        }
        let kept = st.held.len() - lost.len();
        if kept > target {
            // Shed the excess in one round trip: on a slow link, one release
            // per shard would outlast the leases being kept.
            let extra: Vec<u32> = st
                .held
                .keys()
                .rev()
                .filter(|s| !lost.contains(s))
                .take(kept - target)
                .copied()
                .collect();
            if let Err(e) = store.release_many(&owner, &extra).await {
                tracing::debug!(error = %e, "could not release shards; they lapse by themselves");
            }
            lost.extend(extra);
        }
        for shard in &lost {
            st.held.remove(shard);
        }
        let start = shard_of(&owner, "", shards);
        let mut claimed = Vec::new();
        let need = target.saturating_sub(st.held.len());
        if need > 0 {
            let candidates: Vec<u32> = (0..shards)
                .map(|k| (start + k) % shards)
                .filter(|s| !st.held.contains_key(s))
                .collect();
            match store.acquire_many(&owner, &candidates, ttl, need).await {
                Ok(answers) => claimed.extend(
                    candidates
                        .iter()
                        .zip(answers)
                        .filter(|(_, got)| *got)
                        .map(|(s, _)| *s),
                ),
                Err(e) => tracing::debug!(error = %e, "could not claim free shards this round"),
            }
        }
        let held: Vec<u32> = st.held.keys().copied().collect();
        let versions = store.versions(&held).await.unwrap_or_default();
        let mut reload: Vec<u32> = held
            .iter()
            .zip(versions)
            .filter(|(s, v)| st.held.get(s) != Some(v))
            .map(|(s, _)| *s)
            .collect();
        reload.extend(claimed.iter().copied());
        for shard in lost {
            self.drop_shard(shard);
        }
        self.load_shards(&reload).await;
    }

    /// Loads shards just taken or changed: two round trips whatever their
    /// number (versions first, so a put racing the load reloads next time).
    async fn load_shards(&mut self, shards: &[u32]) {
        if shards.is_empty() {
            return;
        }
        let Some(st) = &mut self.store else { return };
        let store = st.store.clone();
        let versions = store.versions(shards).await.unwrap_or_default();
        let loaded = match store.entries_many(shards).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(shards = shards.len(), error = %e, "could not load shards; will retry");
                return;
            }
        };
        for (i, (&shard, entries)) in shards.iter().zip(loaded).enumerate() {
            if let Some(st) = &mut self.store {
                st.held.insert(shard, versions.get(i).copied().unwrap_or(0));
            }
            self.insert_loaded(entries);
        }
    }

    fn insert_loaded(&mut self, entries: Vec<TrackedEntry>) {
        for entry in entries {
            let Some(provider) = self
                .providers
                .iter()
                .position(|p| *p.name == entry.provider)
            else {
                tracing::warn!(provider = %entry.provider, "the store tracks a task of a provider this tracker lacks; left for another replica");
                continue;
            };
            self.insert(provider, entry.id, entry.tracked_at, entry.last);
        }
    }

    fn drop_shard(&mut self, shard: u32) {
        let slots: Vec<Slot> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().filter(|e| e.shard == shard).map(|_| i as Slot))
            .collect();
        for slot in slots {
            self.remove_slot(slot);
        }
    }

    fn insert(
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
            tracked_since: now.checked_sub(age).unwrap_or(now),
            last,
            interval: self.providers[provider].policy.initial_interval,
            errors: 0,
            polls: 0,
            last_error: None,
            in_flight: false,
            final_unacked: false,
        });
        self.index.insert((provider, id), slot);
        self.counters.tracked.fetch_add(1, Ordering::Relaxed);
        self.heap
            .push(Reverse((now, slot, self.generations[slot as usize])));
    }

    fn remove_key(&mut self, provider: usize, id: &str) {
        if let Some(slot) = self.index.get(&(provider, Arc::from(id))).copied() {
            self.remove_slot(slot);
        }
    }

    fn remove_slot(&mut self, slot: Slot) {
        if let Some(entry) = self.entries[slot as usize].take() {
            self.index.remove(&(entry.provider, entry.id));
            // A reused slot gets a new generation, so heap items and
            // in-flight answers meant for the old task are ignored.
            self.generations[slot as usize] = self.generations[slot as usize].wrapping_add(1);
            self.free.push(slot);
            self.counters.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn dispatch_due(
        &mut self,
    ) -> Vec<Pin<Box<dyn std::future::Future<Output = BatchResult> + Send>>> {
        let now = self.clock.now();
        let mut due: Vec<Vec<(Slot, u32)>> = vec![Vec::new(); self.providers.len()];
        let mut expired = Vec::new();
        while let Some(Reverse((at, slot, generation))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(entry) = live(&mut self.entries, &self.generations, slot, generation) else {
                continue;
            };
            if entry.in_flight {
                continue;
            }
            let policy = &self.providers[entry.provider].policy;
            if policy
                .deadline
                .is_some_and(|d| now - entry.tracked_since >= d)
            {
                expired.push(slot);
                continue;
            }
            entry.in_flight = true;
            tracing::trace!(task = %entry.id, "dispatching");
            due[entry.provider].push((slot, generation));
        }
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

    async fn give_up_deadline(&mut self, slot: Slot, now: Instant) {
        let Some(entry) = self.entries[slot as usize].as_ref() else {
            return;
        };
        let err = Error::Timeout {
            provider: self.providers[entry.provider].name.to_string(),
            id: entry.id.to_string(),
            elapsed: now.saturating_duration_since(entry.tracked_since),
            polls: u64::from(entry.polls),
            last_error: entry.last_error.clone(),
        };
        self.finish_with_error(slot, &err).await;
    }

    /// Applies a batch of answers; false when the event reader is gone for
    /// good and the scheduler should stop.
    async fn apply(&mut self, batch: BatchResult) -> bool {
        let now = self.clock.now();
        let dispatched = batch.dispatched;
        let provider_name = self.providers[batch.provider].name.clone();
        let mut answers = batch.answers.into_iter();
        for (slot, generation) in batch.slots {
            let answer = answers.next().unwrap_or_else(|| {
                Err(Error::decode(
                    &*provider_name,
                    "status_many answer",
                    ".",
                    "provider returned fewer answers than ids",
                ))
            });
            let Some(entry) = live(&mut self.entries, &self.generations, slot, generation) else {
                continue;
            };
            entry.in_flight = false;
            entry.polls = entry.polls.saturating_add(1);
            self.counters.status_updates.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(provider = %provider_name, task = %entry.id, answer = ?answer.as_ref().map(|s| s.state), "status answer");
            let policy = &self.providers[entry.provider].policy;
            match answer {
                Ok(mut snapshot) => {
                    entry.errors = 0;
                    entry.last_error = None;
                    let hint = snapshot.poll_hint.take();
                    let changed = entry.last.as_ref() != Some(&snapshot);
                    entry.interval = policy.next_interval(entry.interval, changed, hint);
                    let terminal = snapshot.state.is_terminal();
                    let event = TaskEvent {
                        provider: provider_name.to_string(),
                        id: entry.id.to_string(),
                        previous: entry.last.as_ref().map(|s| s.state),
                        kind: TaskEventKind::Changed {
                            snapshot: Box::new(snapshot.clone()),
                        },
                        at: Utc::now(),
                    };
                    if changed {
                        entry.last = Some(snapshot);
                    }
                    if terminal {
                        // With a store the terminal event is logged at most
                        // once across replicas; unlogged (store down), the
                        // task is polled again and the append retried.
                        let unacked = entry.final_unacked;
                        match self.log_final(&event).await {
                            // Report it when logged now, or logged by an
                            // earlier attempt of this replica whose answer
                            // was lost; stay silent when another logged it.
                            Some(logged_now) => {
                                self.remove_slot(slot);
                                if (logged_now || unacked) && !self.emit(event).await {
                                    return false;
                                }
                            }
                            None => {
                                if let Some(e) = self.entries[slot as usize].as_mut() {
                                    e.final_unacked = true;
                                }
                                self.reschedule(slot, dispatched, now)
                            }
                        }
                    } else {
                        if changed {
                            self.log_change(&event, slot).await;
                            if !self.emit(event).await {
                                return false;
                            }
                        }
                        self.reschedule(slot, dispatched, now);
                    }
                }
                Err(e) if e.is_retryable() && entry.errors < policy.error_budget => {
                    entry.errors += 1;
                    entry.last_error = Some(e.to_string());
                    entry.interval = policy.interval_after_error(entry.interval, e.retry_after());
                    tracing::debug!(provider = %provider_name, task = %entry.id, error = %e, "transient error while tracking");
                    self.reschedule(slot, dispatched, now);
                }
                Err(e) => {
                    if !self.finish_with_error(slot, &e).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn reschedule(&mut self, slot: Slot, dispatched: Instant, now: Instant) {
        if let Some(entry) = self.entries[slot as usize].as_ref() {
            let policy = &self.providers[entry.provider].policy;
            let delay = policy.jittered(entry.interval, (self.jitter)());
            let due = crate::time::after(dispatched, delay).max(now);
            self.heap
                .push(Reverse((due, slot, self.generations[slot as usize])));
        }
    }

    /// Logs a final event: `Some(true)` to emit it, `Some(false)` when
    /// another replica (or an earlier life of this one) already did, `None`
    /// when the store could not be reached (try again later).
    async fn log_final(&mut self, event: &TaskEvent) -> Option<bool> {
        let Some(st) = &self.store else {
            return Some(true);
        };
        match st.store.append(event).await {
            Ok(Some(_)) => {
                if let Err(e) = st.store.remove(&event.provider, &event.id).await {
                    tracing::warn!(task = %event.id, error = %e, "could not remove a finished task from the store");
                }
                Some(true)
            }
            Ok(None) => {
                let _ = st.store.remove(&event.provider, &event.id).await;
                Some(false)
            }
            Err(e) => {
                tracing::warn!(task = %event.id, error = %e, "could not log a final event; will retry");
                None
            }
        }
    }

    /// Logs a non-final change and saves the entry's progress; when the
    /// store is down the event waits in `unsent` for the next lease tick.
    async fn log_change(&mut self, event: &TaskEvent, slot: Slot) {
        let Some(st) = &mut self.store else { return };
        if let Err(e) = st.store.append(event).await {
            tracing::debug!(error = %e, "store unavailable; event kept for later");
            st.unsent.push(event.clone());
            return;
        }
        if let Some(entry) = self.entries[slot as usize].as_ref() {
            let saved = TrackedEntry {
                provider: event.provider.clone(),
                id: event.id.clone(),
                tracked_at: chrono::Duration::from_std(self.clock.now() - entry.tracked_since)
                    .ok()
                    .and_then(|age| Utc::now().checked_sub_signed(age))
                    .unwrap_or_else(Utc::now),
                last: entry.last.clone(),
                next_due: crate::time::wall_after(Utc::now(), entry.interval),
            };
            if let Err(e) = st.store.update(&saved).await {
                tracing::debug!(error = %e, "could not save a task's progress");
            }
        }
    }

    async fn finish_with_error(&mut self, slot: Slot, err: &Error) -> bool {
        let Some(entry) = self.entries[slot as usize].as_ref() else {
            return true;
        };
        let event = TaskEvent {
            provider: self.providers[entry.provider].name.to_string(),
            id: entry.id.to_string(),
            previous: entry.last.as_ref().map(|s| s.state),
            kind: TaskEventKind::GaveUp {
                error_kind: err.kind().to_owned(),
                message: err.to_string(),
            },
            at: Utc::now(),
        };
        self.remove_slot(slot);
        match self.log_final(&event).await {
            Some(false) => true,
            Some(true) => self.emit(event).await,
            None => {
                // The store is down and the task cannot be polled again to
                // find out: report it, and log it when the store is back.
                if let Some(st) = &mut self.store {
                    st.unsent.push(event.clone());
                }
                self.emit(event).await
            }
        }
    }

    async fn emit(&mut self, event: TaskEvent) -> bool {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        self.events.send(event).await.is_ok()
    }
}
