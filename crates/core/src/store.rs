//! The store seam of the [`Tracker`](crate::Tracker): where the tracked set,
//! the leases that split it between replicas, and the durable event log live.
//!
//! The tracked set is cut into a fixed number of *shards* (a stable hash of
//! provider and id). A tracker replica holds leases on shards, renews them,
//! and tracks the entries of the shards it holds; a replica that dies stops
//! renewing, its leases expire after their TTL, and the others take its
//! shards over. Each replica aims at its fair share, `shards / live
//! replicas`, counted from heartbeats.
//!
//! A task's terminal event is appended at most once across all replicas and
//! restarts: [`TrackStore::append`] returns `None` for a terminal event of a
//! task that already has one, and the tracker then stays silent.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::event::TaskEvent;
use crate::model::TaskSnapshot;

/// Default number of shards.
pub const DEFAULT_SHARDS: u32 = 64;

/// A position in the event log, ordered by the store; `"0"` is the start.
/// Usable as an SSE `Last-Event-ID`. The bundled stores write `N` (memory,
/// file) or `MS-SEQ` (Redis stream ids); [`cursor_position`] orders both.
pub type Cursor = String;

/// A bundled store's cursor as a comparable position: `N` is `(N, 0)` and
/// `MS-SEQ` is `(MS, SEQ)`. `None` for anything else (signs, spaces, hex,
/// more than 20 digits), so a malformed `Last-Event-ID` can be refused
/// instead of silently replaying from the start.
pub fn cursor_position(cursor: &str) -> Option<(u64, u64)> {
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match cursor.split_once('-') {
        Some((major, minor)) => Some((number(major)?, number(minor)?)),
        None => Some((number(cursor)?, 0)),
    }
}

/// One tracked task, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackedEntry {
    /// Provider name.
    pub provider: String,
    /// Task id string.
    pub id: String,
    /// When tracking started.
    pub tracked_at: DateTime<Utc>,
    /// The last snapshot seen, if any.
    #[serde(default)]
    pub last: Option<TaskSnapshot>,
    /// When the next poll is due.
    pub next_due: DateTime<Utc>,
}

impl TrackedEntry {
    /// A new entry, due now.
    pub fn new(provider: impl Into<String>, id: impl Into<String>) -> Self {
        let now = Utc::now();
        TrackedEntry {
            provider: provider.into(),
            id: id.into(),
            tracked_at: now,
            last: None,
            next_due: now,
        }
    }

    /// The entry's key in a store: provider and id joined by U+001F.
    pub fn key(&self) -> String {
        entry_key(&self.provider, &self.id)
    }
}

/// A store key for a task: provider and id joined by U+001F.
pub fn entry_key(provider: &str, id: &str) -> String {
    format!("{provider}\u{1f}{id}")
}

/// The shard of a task: a stable FNV-1a hash of its key (the same in every
/// process and version, unlike `std`'s randomised hasher).
pub fn shard_of(provider: &str, id: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in entry_key(provider, id).bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

/// Where a tracker keeps its tracked set, its leases and its event log.
#[async_trait]
pub trait TrackStore: Send + Sync + 'static {
    /// Number of shards (fixed for the life of the store's data).
    fn shards(&self) -> u32 {
        DEFAULT_SHARDS
    }
    /// Adds an entry (or replaces it) and marks its shard as changed.
    async fn put(&self, entry: &TrackedEntry) -> Result<()>;
    /// Saves an entry's progress (last snapshot, next due) if it is still
    /// tracked; does not mark the shard as changed.
    async fn update(&self, entry: &TrackedEntry) -> Result<()>;
    /// Forgets an entry.
    async fn remove(&self, provider: &str, id: &str) -> Result<()>;
    /// The entries of one shard.
    async fn entries(&self, shard: u32) -> Result<Vec<TrackedEntry>>;
    /// The entries of several shards, in the order asked. The default
    /// reads them one by one; a networked store should do it in one round
    /// trip (a replica taking over loads dozens of shards at once).
    async fn entries_many(&self, shards: &[u32]) -> Result<Vec<Vec<TrackedEntry>>> {
        let mut out = Vec::with_capacity(shards.len());
        for &shard in shards {
            out.push(self.entries(shard).await?);
        }
        Ok(out)
    }
    /// A number per shard that changes whenever an entry is put there.
    async fn versions(&self, shards: &[u32]) -> Result<Vec<u64>>;
    /// Announces `owner` alive for `ttl`; the number of live replicas.
    async fn heartbeat(&self, owner: &str, ttl: Duration) -> Result<usize>;
    /// Takes, or renews, the lease on `shard` for `owner`; false when another
    /// owner holds it.
    async fn acquire(&self, owner: &str, shard: u32, ttl: Duration) -> Result<bool>;
    /// Takes or renews the leases on `shards` for `owner`, in order,
    /// stopping after `limit` successes: one answer per shard tried (the
    /// shards after the stop are left out). The default calls
    /// [`acquire`](Self::acquire) per shard; a networked store should do
    /// it in one round trip, since a replica renews all its leases each
    /// period and a slow link must not let them lapse.
    async fn acquire_many(
        &self,
        owner: &str,
        shards: &[u32],
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<bool>> {
        let mut answers = Vec::with_capacity(shards.len());
        let mut got = 0;
        for &shard in shards {
            if got >= limit {
                break;
            }
            let ok = self.acquire(owner, shard, ttl).await?;
            got += usize::from(ok);
            answers.push(ok);
        }
        Ok(answers)
    }
    /// How many tasks are tracked in all shards together. The default reads
    /// every shard; a networked store should count in one round trip.
    async fn tracked_count(&self) -> Result<u64> {
        let mut n = 0;
        for shard in 0..self.shards() {
            n += self.entries(shard).await?.len() as u64;
        }
        Ok(n)
    }
    /// Gives a lease up (when `owner` holds it).
    async fn release(&self, owner: &str, shard: u32) -> Result<()>;
    /// Gives several leases up. The default calls [`release`](Self::release)
    /// per shard; a networked store should do it in one round trip, since a
    /// replica sheds half its shards when another one joins.
    async fn release_many(&self, owner: &str, shards: &[u32]) -> Result<()> {
        for &shard in shards {
            self.release(owner, shard).await?;
        }
        Ok(())
    }
    /// Appends an event to the log; its cursor. A *final* event of a task
    /// whose final event is already logged is not appended: `None`.
    /// Atomic: concurrent replicas cannot both append a final event.
    async fn append(&self, event: &TaskEvent) -> Result<Option<Cursor>>;
    /// Up to `max` events after `after`, oldest first. A malformed cursor
    /// is [`Error::InvalidInput`](crate::Error::InvalidInput).
    async fn read(&self, after: &str, max: usize) -> Result<Vec<(Cursor, TaskEvent)>>;
    /// Takes or renews the named *role* `role` for `owner` until `ttl` from
    /// now: one holder at a time across every replica sharing the store
    /// (a notification sink's delivery, for one). `false` while another
    /// owner holds it. The default says the store has no roles.
    async fn acquire_role(&self, owner: &str, role: &str, ttl: Duration) -> Result<bool> {
        let _ = (owner, role, ttl);
        Err(crate::Error::unsupported("store", "named roles"))
    }
    /// Gives a role up, if `owner` holds it.
    async fn release_role(&self, owner: &str, role: &str) -> Result<()> {
        let _ = (owner, role);
        Ok(())
    }
    /// The cursor saved under `role` (the last event a role holder finished
    /// with), if any.
    async fn checkpoint(&self, role: &str) -> Result<Option<Cursor>> {
        let _ = role;
        Err(crate::Error::unsupported("store", "checkpoints"))
    }
    /// Saves `cursor` under `role`, only while `owner` holds the role
    /// (atomically with that check): `false`, and nothing written, when it
    /// does not, so a replica that lost the role cannot move the cursor.
    async fn save_checkpoint(&self, owner: &str, role: &str, cursor: &str) -> Result<bool> {
        let _ = (owner, role, cursor);
        Err(crate::Error::unsupported("store", "checkpoints"))
    }
    /// Takes one request from the shared rate bucket `bucket` (every
    /// replica's clients of one backend draw from it): `Duration::ZERO`
    /// when the request may go now, else how long until it may. The
    /// default says the store has no shared buckets.
    async fn take_request(&self, bucket: &str, limit: crate::rate::RateLimit) -> Result<Duration> {
        let _ = (bucket, limit);
        Err(crate::Error::unsupported("store", "shared request budgets"))
    }
    /// Holds every replica's requests of `bucket` back for `pause`: a
    /// server answered that it throttles.
    async fn hold_requests(&self, bucket: &str, pause: Duration) -> Result<()> {
        let _ = (bucket, pause);
        Ok(())
    }
    /// Takes one of the `limit` concurrency slots of `bucket` for `token`
    /// (unique per request), shared by every replica: true when taken. A
    /// slot is held until [`release_slot`](Self::release_slot) or for
    /// `ttl`, so a replica that dies gives its slots back. The default says
    /// the store has no shared slots.
    async fn take_slot(
        &self,
        bucket: &str,
        token: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<bool> {
        let _ = (bucket, token, limit, ttl);
        Err(crate::Error::unsupported(
            "store",
            "shared concurrency slots",
        ))
    }
    /// Gives a slot taken with [`take_slot`](Self::take_slot) back.
    async fn release_slot(&self, bucket: &str, token: &str) -> Result<()> {
        let _ = (bucket, token);
        Ok(())
    }
    /// The cursor of the newest event (`"0"` when the log is empty): where
    /// a reader that wants only new events starts. The default reads the
    /// log to its end; the bundled stores look it up directly.
    async fn last_cursor(&self) -> Result<Cursor> {
        let mut last: Cursor = "0".into();
        loop {
            let page = self.read(&last, 1000).await?;
            match page.last() {
                Some((cursor, _)) if page.len() == 1000 => last = cursor.clone(),
                Some((cursor, _)) => return Ok(cursor.clone()),
                None => return Ok(last),
            }
        }
    }
}

#[derive(Default)]
struct MemoryInner {
    entries: BTreeMap<u32, HashMap<String, TrackedEntry>>,
    versions: HashMap<u32, u64>,
    leases: HashMap<u32, (String, tokio::time::Instant)>,
    replicas: HashMap<String, tokio::time::Instant>,
    finals: std::collections::HashSet<String>,
    log: Vec<TaskEvent>,
    roles: HashMap<String, (String, tokio::time::Instant)>,
    checkpoints: HashMap<String, Cursor>,
    buckets: crate::rate::LocalBuckets,
}

/// A store in this process's memory: trackers sharing one `MemoryStore`
/// share the tracked set and the log. Nothing survives a restart.
#[derive(Default)]
pub struct MemoryStore {
    shards: u32,
    inner: Mutex<MemoryInner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store with the default shard count.
    pub fn new() -> Self {
        MemoryStore {
            shards: DEFAULT_SHARDS,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parses a numeric cursor (memory and file stores): the empty string is
/// the start, anything but digits is an invalid-input error naming `store`.
pub fn numeric_cursor(store: &str, cursor: &str) -> Result<u64> {
    if cursor.is_empty() {
        return Ok(0);
    }
    match cursor_position(cursor) {
        Some((n, 0)) if !cursor.contains('-') => Ok(n),
        _ => Err(crate::Error::invalid_input(
            store,
            "an event cursor is a number (as returned with each event)",
        )),
    }
}

#[async_trait]
impl TrackStore for MemoryStore {
    fn shards(&self) -> u32 {
        self.shards
    }

    async fn put(&self, entry: &TrackedEntry) -> Result<()> {
        let shard = shard_of(&entry.provider, &entry.id, self.shards);
        let mut inner = self.lock();
        inner
            .entries
            .entry(shard)
            .or_default()
            .insert(entry.key(), entry.clone());
        *inner.versions.entry(shard).or_default() += 1;
        Ok(())
    }

    async fn update(&self, entry: &TrackedEntry) -> Result<()> {
        let shard = shard_of(&entry.provider, &entry.id, self.shards);
        let mut inner = self.lock();
        if let Some(e) = inner
            .entries
            .get_mut(&shard)
            .and_then(|m| m.get_mut(&entry.key()))
        {
            *e = entry.clone();
        }
        Ok(())
    }

    async fn remove(&self, provider: &str, id: &str) -> Result<()> {
        let shard = shard_of(provider, id, self.shards);
        if let Some(m) = self.lock().entries.get_mut(&shard) {
            m.remove(&entry_key(provider, id));
        }
        Ok(())
    }

    async fn entries(&self, shard: u32) -> Result<Vec<TrackedEntry>> {
        Ok(self
            .lock()
            .entries
            .get(&shard)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn versions(&self, shards: &[u32]) -> Result<Vec<u64>> {
        let inner = self.lock();
        Ok(shards
            .iter()
            .map(|s| inner.versions.get(s).copied().unwrap_or(0))
            .collect())
    }

    async fn heartbeat(&self, owner: &str, ttl: Duration) -> Result<usize> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        inner
            .replicas
            .insert(owner.to_owned(), crate::time::after(now, ttl));
        inner.replicas.retain(|_, until| *until > now);
        Ok(inner.replicas.len())
    }

    async fn acquire(&self, owner: &str, shard: u32, ttl: Duration) -> Result<bool> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        match inner.leases.get(&shard) {
            Some((holder, until)) if holder != owner && *until > now => Ok(false),
            _ => {
                inner
                    .leases
                    .insert(shard, (owner.to_owned(), crate::time::after(now, ttl)));
                Ok(true)
            }
        }
    }

    async fn release(&self, owner: &str, shard: u32) -> Result<()> {
        let mut inner = self.lock();
        if inner
            .leases
            .get(&shard)
            .is_some_and(|(holder, _)| holder == owner)
        {
            inner.leases.remove(&shard);
        }
        Ok(())
    }

    async fn acquire_role(&self, owner: &str, role: &str, ttl: Duration) -> Result<bool> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        match inner.roles.get(role) {
            Some((holder, until)) if holder != owner && *until > now => Ok(false),
            _ => {
                inner.roles.insert(
                    role.to_owned(),
                    (owner.to_owned(), crate::time::after(now, ttl)),
                );
                Ok(true)
            }
        }
    }

    async fn release_role(&self, owner: &str, role: &str) -> Result<()> {
        let mut inner = self.lock();
        if inner
            .roles
            .get(role)
            .is_some_and(|(holder, _)| holder == owner)
        {
            inner.roles.remove(role);
        }
        Ok(())
    }

    async fn checkpoint(&self, role: &str) -> Result<Option<Cursor>> {
        Ok(self.lock().checkpoints.get(role).cloned())
    }

    async fn take_request(&self, bucket: &str, limit: crate::rate::RateLimit) -> Result<Duration> {
        let now = tokio::time::Instant::now();
        Ok(self.lock().buckets.take(bucket, limit, now))
    }

    async fn hold_requests(&self, bucket: &str, pause: Duration) -> Result<()> {
        let now = tokio::time::Instant::now();
        self.lock().buckets.hold(bucket, pause, now);
        Ok(())
    }

    async fn take_slot(
        &self,
        bucket: &str,
        token: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<bool> {
        let now = tokio::time::Instant::now();
        Ok(self
            .lock()
            .buckets
            .take_slot(bucket, token, limit, ttl, now))
    }

    async fn release_slot(&self, bucket: &str, token: &str) -> Result<()> {
        self.lock().buckets.release_slot(bucket, token);
        Ok(())
    }

    async fn save_checkpoint(&self, owner: &str, role: &str, cursor: &str) -> Result<bool> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        let held = inner
            .roles
            .get(role)
            .is_some_and(|(holder, until)| holder == owner && *until > now);
        if held {
            inner.checkpoints.insert(role.to_owned(), cursor.to_owned());
        }
        Ok(held)
    }

    async fn append(&self, event: &TaskEvent) -> Result<Option<Cursor>> {
        let mut inner = self.lock();
        if event.is_final() && !inner.finals.insert(entry_key(&event.provider, &event.id)) {
            return Ok(None);
        }
        inner.log.push(event.clone());
        Ok(Some(inner.log.len().to_string()))
    }

    async fn read(&self, after: &str, max: usize) -> Result<Vec<(Cursor, TaskEvent)>> {
        let from = usize::try_from(numeric_cursor("memory-store", after)?).unwrap_or(usize::MAX);
        let inner = self.lock();
        Ok(inner
            .log
            .iter()
            .enumerate()
            .skip(from)
            .take(max)
            .map(|(i, e)| ((i + 1).to_string(), e.clone()))
            .collect())
    }

    async fn last_cursor(&self) -> Result<Cursor> {
        Ok(self.lock().log.len().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(
            shard_of("proxmox", "UPID:pve1:1", 64),
            shard_of("proxmox", "UPID:pve1:1", 64)
        );
        let mut counts = vec![0; 64];
        for i in 0..6400 {
            counts[shard_of("ocp", &i.to_string(), 64) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50 && *c < 150), "{counts:?}");
    }

    #[tokio::test]
    async fn leases_exclude_other_owners_until_they_expire() {
        let s = MemoryStore::new();
        assert!(s.acquire("a", 1, Duration::from_millis(30)).await.unwrap());
        assert!(!s.acquire("b", 1, Duration::from_secs(1)).await.unwrap());
        assert!(
            s.acquire("a", 1, Duration::from_millis(30)).await.unwrap(),
            "renewal"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(
            s.acquire("b", 1, Duration::from_secs(1)).await.unwrap(),
            "taken over after expiry"
        );
        s.release("a", 1).await.unwrap();
        assert!(
            !s.acquire("a", 1, Duration::from_secs(1)).await.unwrap(),
            "a release by a non-holder is ignored"
        );
    }
}
