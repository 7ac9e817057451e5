//! [`TrackerBuilder`]: providers, policies, store, and the scheduler it starts.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use super::{Counters, ProviderRuntime, Scheduler, StoreState, TaskEvents, Tracker};
use crate::clock::{SharedClock, TokioClock};
use crate::erased::DynTaskProvider;
use crate::policy::{random_jitter, JitterSource, PollPolicy};
use crate::store::TrackStore;

/// Builds a [`Tracker`].
pub struct TrackerBuilder {
    pub(super) providers: Vec<ProviderSlot>,
    pub(super) default_policy: PollPolicy,
    pub(super) clock: SharedClock,
    pub(super) jitter: JitterSource,
    pub(super) concurrency: usize,
    pub(super) status_concurrency: usize,
    pub(super) batch_size: usize,
    pub(super) event_buffer: usize,
    pub(super) store: Option<Arc<dyn TrackStore>>,
    pub(super) owner: String,
    pub(super) lease_ttl: Duration,
}

pub(super) struct ProviderSlot {
    pub(super) name: String,
    pub(super) provider: Arc<dyn DynTaskProvider>,
    pub(super) policy: Option<PollPolicy>,
}

impl Default for TrackerBuilder {
    fn default() -> Self {
        TrackerBuilder {
            providers: Vec::new(),
            default_policy: PollPolicy::default(),
            clock: Arc::new(TokioClock),
            jitter: random_jitter(),
            concurrency: 4,
            status_concurrency: 32,
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
    pub fn with_provider(
        mut self,
        name: impl Into<String>,
        provider: Arc<dyn DynTaskProvider>,
    ) -> Self {
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
    pub fn with_policy(mut self, policy: PollPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// Uses another clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Uses another jitter source (uniform `0.0..1.0`).
    pub fn with_jitter_source(mut self, jitter: JitterSource) -> Self {
        self.jitter = jitter;
        self
    }

    /// At most this many `status_many` calls in flight per provider that
    /// answers many tasks in one request ([`Capabilities::batch_status`];
    /// default 4).
    ///
    /// [`Capabilities::batch_status`]: crate::Capabilities::batch_status
    pub fn with_concurrency_per_provider(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// At most this many status requests in flight per provider without
    /// batch status (default 32). Each task is asked on its own and its
    /// answer applied as it arrives, so one slow answer holds up nothing
    /// else; the provider's HTTP client may bound requests further
    /// (`ClientOptions::concurrency`). Every place in flight is a
    /// connection with its buffers: at 10,000 tasks over three such
    /// providers, 64 places cost about 1 KiB more a task than 32, for no
    /// earlier detection against the simulators (docs/performance.md).
    pub fn with_status_concurrency(mut self, n: usize) -> Self {
        self.status_concurrency = n.max(1);
        self
    }

    /// At most this many ids per `status_many` call (default 500).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Events buffered before the scheduler waits for the reader (default 1024).
    pub fn with_event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n.max(1);
        self
    }

    /// Keeps the tracked set, leases and event log in `store`, so tracking
    /// survives restarts and several trackers (replicas) sharing one store
    /// split the work. Without a store the tracker keeps everything in its
    /// own memory, as fast as possible, and a restart forgets it.
    pub fn with_store(mut self, store: Arc<dyn TrackStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// This replica's name in the store's leases (default: unique per process).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
    /// This replica's name in the store (given, or unique per process by
    /// default): what other store roles it takes are held under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a lease lasts without renewal (default 15 s): a replica that
    /// dies has its tasks taken over after at most this long. Leases are
    /// renewed every third of it.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
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
                batches: slot.provider.provider_capabilities().batch_status,
                provider: slot.provider,
                permits: Arc::new(Semaphore::new(self.concurrency)),
            })
            .collect();
        let scheduler = Scheduler {
            providers: providers.clone(),
            clock: self.clock,
            jitter: self.jitter,
            batch_size: self.batch_size,
            status_concurrency: self.status_concurrency,
            singles: providers.iter().map(|_| Default::default()).collect(),
            entries: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            heaps: providers.iter().map(|_| BinaryHeap::new()).collect(),
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
