//! The [`Tracker`] handle, its commands and its event stream.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

use super::TrackerBuilder;
use crate::erased::DynTaskProvider;
use crate::error::{Error, Result};
use crate::event::TaskEvent;
use crate::policy::PollPolicy;
use crate::provider::TaskHandle;

/// Counters of a running tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackerStats {
    /// Tasks currently tracked.
    pub tracked: u64,
    /// Status answers processed (one per task per poll).
    pub status_updates: u64,
    /// Requests made: `status_many` calls, and single status requests to
    /// providers without batch status.
    pub batches: u64,
    /// Events emitted.
    pub events: u64,
    /// How late polls ran against their due time: every poll after a
    /// task's first.
    pub schedule_lag: super::lag::LagHistogram,
    /// How long first polls of newly tracked (or taken over) tasks waited
    /// to be sent: a burst of new tasks waits for places in flight.
    pub first_poll_wait: super::lag::LagHistogram,
    /// Polls scheduled later than the policy says because their provider
    /// could not answer as often as the policy asks (see `stretch_percent`).
    pub stretched_polls: u64,
    /// The most any provider's intervals are stretched now, in percent of
    /// the policy's: 100 while every provider keeps up, up to 1600.
    pub stretch_percent: u64,
}

pub(super) struct Counters {
    pub(super) tracked: AtomicU64,
    pub(super) status_updates: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) lag: super::lag::LagCounters,
    pub(super) first_wait: super::lag::LagCounters,
    pub(super) stretched: AtomicU64,
    /// The most any provider's intervals are stretched, in percent.
    pub(super) stretch_percent: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            tracked: AtomicU64::default(),
            status_updates: AtomicU64::default(),
            batches: AtomicU64::default(),
            events: AtomicU64::default(),
            lag: Default::default(),
            first_wait: Default::default(),
            stretched: AtomicU64::default(),
            stretch_percent: AtomicU64::new(100),
        }
    }
}

#[derive(Clone)]
pub(super) struct ProviderRuntime {
    pub(super) name: Arc<str>,
    pub(super) provider: Arc<dyn DynTaskProvider>,
    pub(super) policy: PollPolicy,
    pub(super) permits: Arc<Semaphore>,
    /// The provider answers many ids with one request (its due tasks are
    /// gathered into one batch; see `Scheduler::dispatch_due`).
    pub(super) batches: bool,
}

pub(super) enum Command {
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
///
/// One scheduler polls every tracked task by its provider's policy,
/// batching where a provider can, and reports each change once on the
/// event stream; a task leaves the set when it ends.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use futures::StreamExt;
/// use tasktrack_core::{MemoryProvider, PollPolicy, TaskScript, TaskState, Tracker};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tasktrack_core::Result<()> {
/// let backups = Arc::new(MemoryProvider::new("backups"));
/// let builds = Arc::new(MemoryProvider::new("builds"));
/// let (tracker, mut events) = Tracker::builder()
///     .with_provider("backups", backups.clone())
///     .with_provider("builds", builds.clone())
///     .with_policy(PollPolicy::fixed(Duration::from_millis(5)))
///     .build();
/// tracker.track("backups", &backups.start(TaskScript::new("vzdump", Duration::from_millis(20))).to_string())?;
/// tracker.track("builds", &builds.start(TaskScript::new("image", Duration::from_millis(10))).to_string())?;
///
/// let mut finished = 0;
/// while let Some(event) = events.next().await {
///     if event.is_final() {
///         assert_eq!(event.state(), Some(TaskState::Succeeded));
///         finished += 1;
///         if finished == 2 {
///             break;
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tracker {
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) names: Arc<HashMap<String, usize>>,
    pub(super) providers: Arc<Vec<ProviderRuntime>>,
    pub(super) counters: Arc<Counters>,
    pub(super) task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
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
            schedule_lag: c.lag.snapshot(),
            first_poll_wait: c.first_wait.snapshot(),
            stretched_polls: c.stretched.load(Ordering::Relaxed),
            stretch_percent: c.stretch_percent.load(Ordering::Relaxed),
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
    pub(super) rx: mpsc::Receiver<TaskEvent>,
}

impl Stream for TaskEvents {
    type Item = TaskEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TaskEvent>> {
        self.rx.poll_recv(cx)
    }
}
