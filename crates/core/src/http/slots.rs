//! A backend's concurrency bound: at most `limit` requests in flight at
//! once, in this process or, when a shared store is given, across every
//! replica drawing slots from one bucket.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::{SharedClock, TokioClock};
use crate::TrackStore;

/// How long a replica waits before asking a full shared bucket again; the
/// jitter keeps waiting replicas from asking in step.
const RETRY_MIN: Duration = Duration::from_millis(10);
const RETRY_SPREAD_MS: u64 = 40;

/// Where a backend's requests take a slot before they are sent.
#[derive(Clone)]
pub struct ConcurrencyGate {
    limit: usize,
    local: Arc<Semaphore>,
    shared: Option<SharedSlots>,
    clock: SharedClock,
}

#[derive(Clone)]
struct SharedSlots {
    bucket: String,
    store: Arc<dyn TrackStore>,
}

impl std::fmt::Debug for ConcurrencyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyGate")
            .field("limit", &self.limit)
            .field("shared", &self.shared.as_ref().map(|s| &s.bucket))
            .finish()
    }
}

impl ConcurrencyGate {
    /// At most `limit` (at least 1) requests in flight in this process.
    pub fn local(limit: usize) -> Self {
        let limit = limit.max(1);
        ConcurrencyGate {
            limit,
            local: Arc::new(Semaphore::new(limit)),
            shared: None,
            clock: Arc::new(TokioClock),
        }
    }

    /// At most `limit` requests in flight across every client drawing from
    /// `bucket` through `store`. While the store is away, the bound holds
    /// per process.
    pub fn shared(limit: usize, bucket: impl Into<String>, store: Arc<dyn TrackStore>) -> Self {
        ConcurrencyGate {
            shared: Some(SharedSlots {
                bucket: bucket.into(),
                store,
            }),
            ..ConcurrencyGate::local(limit)
        }
    }

    /// Waits for a full shared bucket through `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits for a slot; it is held until the returned [`Slot`] drops. A
    /// shared slot lapses after `ttl` if its holder dies first, so `ttl`
    /// must outlast one request.
    pub async fn acquire(&self, ttl: Duration) -> Slot {
        let local = self.local.clone().acquire_owned().await.ok();
        let Some(shared) = &self.shared else {
            return Slot {
                _local: local,
                shared: None,
            };
        };
        let token = format!("{:016x}", rand::random::<u64>());
        loop {
            match shared
                .store
                .take_slot(&shared.bucket, &token, self.limit, ttl)
                .await
            {
                Ok(true) => {
                    return Slot {
                        _local: local,
                        shared: Some((shared.clone(), token)),
                    }
                }
                Ok(false) => {
                    let spread = rand::random::<u64>() % RETRY_SPREAD_MS;
                    self.clock
                        .sleep(RETRY_MIN + Duration::from_millis(spread))
                        .await;
                }
                // The store is away: this process's bound still holds.
                Err(e) => {
                    tracing::debug!(bucket = %shared.bucket, error = %e, "shared concurrency slots unavailable; using this process's");
                    return Slot {
                        _local: local,
                        shared: None,
                    };
                }
            }
        }
    }
}

/// A request's place in a [`ConcurrencyGate`], given back on drop.
#[must_use = "the slot is given back when dropped"]
pub struct Slot {
    _local: Option<OwnedSemaphorePermit>,
    shared: Option<(SharedSlots, String)>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((shared, token)) = self.shared.take() else {
            return;
        };
        // Dropped outside a runtime (at exit): the slot lapses by its TTL.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = shared.store.release_slot(&shared.bucket, &token).await {
                    tracing::debug!(bucket = %shared.bucket, error = %e, "cannot release a shared concurrency slot; it lapses by its TTL");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn gates_sharing_a_store_share_one_bound() {
        let store: Arc<dyn TrackStore> = Arc::new(MemoryStore::new());
        let a = ConcurrencyGate::shared(1, "pve", store.clone());
        let b = ConcurrencyGate::shared(1, "pve", store.clone());
        let ttl = Duration::from_secs(60);
        let held = a.acquire(ttl).await;
        let mut waiting = Box::pin(b.acquire(ttl));
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "the other gate waits while the one slot is held"
        );
        drop(held);
        let _second = waiting.await;
        assert!(
            a.acquire(ttl).now_or_never().is_none(),
            "the slot passed to the other gate"
        );
    }

    #[tokio::test]
    async fn a_local_gate_bounds_this_process() {
        let gate = ConcurrencyGate::local(0);
        assert_eq!(gate.limit(), 1, "a bound of zero would never admit");
        let held = gate.acquire(Duration::from_secs(1)).await;
        assert!(gate
            .acquire(Duration::from_secs(1))
            .now_or_never()
            .is_none());
        drop(held);
        assert!(gate
            .acquire(Duration::from_secs(1))
            .now_or_never()
            .is_some());
    }
}
