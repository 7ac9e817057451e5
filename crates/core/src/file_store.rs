//! [`FileStore`]: the embedded store for one machine, on redb.
//!
//! Every write is a committed, fsynced redb transaction, so a tracker killed
//! with `kill -9` resumes from the file with nothing lost and no terminal
//! event twice. redb locks the file: one tracker process uses it at a time
//! (for several replicas, use the Redis store).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, Result};
use crate::event::TaskEvent;
use crate::store::{
    entry_key, numeric_cursor, shard_of, Cursor, TrackStore, TrackedEntry, DEFAULT_SHARDS,
};

/// `shard(4 digits) U+001F provider U+001F id` → entry JSON.
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const VERSIONS: TableDefinition<u32, u64> = TableDefinition::new("versions");
/// Task key → cursor of its final event.
const FINALS: TableDefinition<&str, u64> = TableDefinition::new("finals");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const CHECKPOINTS: TableDefinition<&str, &str> = TableDefinition::new("checkpoints");

fn storage(operation: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport {
        provider: "file-store".into(),
        operation: operation.into(),
        message: e.to_string(),
        timed_out: false,
    }
}

fn row_key(shard: u32, provider: &str, id: &str) -> String {
    format!("{shard:04}\u{1f}{}", entry_key(provider, id))
}

/// A tracked set, leases and event log in one file.
#[derive(Clone)]
pub struct FileStore {
    db: Arc<Database>,
    path: Arc<Path>,
    shards: u32,
    buckets: Arc<std::sync::Mutex<crate::rate::LocalBuckets>>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens the store at `path`, creating it when no file is there.
    ///
    /// An existing file is checked first: a 0-byte file, a file that is not
    /// a store, or a damaged one is an [`Error::InvalidInput`] naming the
    /// file, and the file is left as it was. (redb panics on some damaged
    /// pages; the panic is caught and reported the same way.)
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.is_file() && meta.len() == 0 {
                return Err(unusable(
                    path,
                    "is empty (0 bytes), not a tasktrack store",
                    "remove it to start a new store",
                ));
            }
        }
        let opened = std::panic::catch_unwind(|| open_checked(path))
            .unwrap_or_else(|panic| Err(format!("is damaged ({})", panic_text(&*panic))));
        let db = opened.map_err(|what| {
            unusable(
                path,
                &what,
                "restore it from a backup, or move it aside to start a new store",
            )
        })?;
        Ok(FileStore {
            db: Arc::new(db),
            path: Arc::from(path),
            shards: DEFAULT_SHARDS,
            buckets: Arc::default(),
        })
    }

    /// Checks the store at `path` without changing it when it is sound:
    /// what `tasktrack store check FILE` runs.
    pub fn check(path: impl AsRef<Path>) -> Result<StoreSummary> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(unusable(path, "does not exist", "check the path"));
        }
        let store = FileStore::open(path)?;
        let counted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| count(&store.db)))
            .unwrap_or_else(|panic| Err(format!("is damaged ({})", panic_text(&*panic))));
        counted.map_err(|what| unusable(path, &what, "restore it from a backup"))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Database) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(answer) => answer.map_err(|e| storage(what, e)),
            Err(e) if e.is_panic() => Err(unusable(
                &self.path,
                &format!("is damaged ({})", panic_text(&*e.into_panic())),
                "restore it from a backup, or move it aside to start a new store",
            )),
            Err(e) => Err(storage(what, e)),
        }
    }
}

/// What a sound store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreSummary {
    /// Tracked tasks.
    pub entries: u64,
    /// Events in the log.
    pub events: u64,
    /// Tasks whose terminal event is logged.
    pub finals: u64,
}

fn unusable(path: &Path, what: &str, fix: &str) -> Error {
    Error::invalid_input(
        "file-store",
        format!("store file {} {what}; {fix}", path.display()),
    )
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "an internal check failed".to_owned());
    text.lines().next().unwrap_or_default().to_owned()
}

/// Opens (or creates) the database, checks its integrity and makes sure
/// its tables exist; the error says what is wrong with the file.
fn open_checked(path: &Path) -> std::result::Result<Database, String> {
    let first_line =
        |e: &dyn std::fmt::Display| e.to_string().lines().next().unwrap_or_default().to_owned();
    let existed = path.exists();
    let mut db = Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            "is in use by another process (one process opens a file store at a time)".to_owned()
        }
        other => format!("cannot be opened: {}", first_line(&other)),
    })?;
    if existed {
        match db.check_integrity() {
            Ok(_) => {}
            Err(e) => return Err(format!("is damaged: {}", first_line(&e))),
        }
    }
    let tables = || -> std::result::Result<(), String> {
        let txn = db.begin_write().map_err(s)?;
        {
            txn.open_table(ENTRIES).map_err(s)?;
            txn.open_table(VERSIONS).map_err(s)?;
            txn.open_table(FINALS).map_err(s)?;
            txn.open_table(EVENTS).map_err(s)?;
            txn.open_table(CHECKPOINTS).map_err(s)?;
        }
        txn.commit().map_err(s)
    };
    tables().map_err(|e| format!("is not a usable store: {}", first_line(&e)))?;
    Ok(db)
}

fn count(db: &Database) -> std::result::Result<StoreSummary, String> {
    let txn = db.begin_read().map_err(s)?;
    let entries = {
        let t = txn.open_table(ENTRIES).map_err(s)?;
        let mut n = 0;
        for row in t.iter().map_err(s)? {
            let (_, v) = row.map_err(s)?;
            serde_json::from_slice::<TrackedEntry>(v.value()).map_err(s)?;
            n += 1;
        }
        n
    };
    let events = {
        let t = txn.open_table(EVENTS).map_err(s)?;
        let mut n = 0;
        for row in t.iter().map_err(s)? {
            let (_, v) = row.map_err(s)?;
            serde_json::from_slice::<TaskEvent>(v.value()).map_err(s)?;
            n += 1;
        }
        n
    };
    let finals = {
        let t = txn.open_table(FINALS).map_err(s)?;
        let mut n = 0;
        for row in t.iter().map_err(s)? {
            row.map_err(s)?;
            n += 1;
        }
        n
    };
    Ok(StoreSummary {
        entries,
        events,
        finals,
    })
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

#[async_trait]
impl TrackStore for FileStore {
    fn shards(&self) -> u32 {
        self.shards
    }

    async fn put(&self, entry: &TrackedEntry) -> Result<()> {
        let shard = shard_of(&entry.provider, &entry.id, self.shards);
        let key = row_key(shard, &entry.provider, &entry.id);
        let json = serde_json::to_vec(entry).map_err(|e| storage("put", e))?;
        self.blocking("put", move |db| {
            let txn = db.begin_write().map_err(s)?;
            {
                txn.open_table(ENTRIES)
                    .map_err(s)?
                    .insert(key.as_str(), json.as_slice())
                    .map_err(s)?;
                let mut versions = txn.open_table(VERSIONS).map_err(s)?;
                let v = versions.get(shard).map_err(s)?.map_or(0, |g| g.value());
                versions.insert(shard, v + 1).map_err(s)?;
            }
            txn.commit().map_err(s)
        })
        .await
    }

    async fn update(&self, entry: &TrackedEntry) -> Result<()> {
        let shard = shard_of(&entry.provider, &entry.id, self.shards);
        let key = row_key(shard, &entry.provider, &entry.id);
        let json = serde_json::to_vec(entry).map_err(|e| storage("update", e))?;
        self.blocking("update", move |db| {
            let txn = db.begin_write().map_err(s)?;
            {
                let mut table = txn.open_table(ENTRIES).map_err(s)?;
                let present = table.get(key.as_str()).map_err(s)?.is_some();
                if present {
                    table.insert(key.as_str(), json.as_slice()).map_err(s)?;
                }
            }
            txn.commit().map_err(s)
        })
        .await
    }

    async fn remove(&self, provider: &str, id: &str) -> Result<()> {
        let key = row_key(shard_of(provider, id, self.shards), provider, id);
        self.blocking("remove", move |db| {
            let txn = db.begin_write().map_err(s)?;
            txn.open_table(ENTRIES)
                .map_err(s)?
                .remove(key.as_str())
                .map_err(s)?;
            txn.commit().map_err(s)
        })
        .await
    }

    async fn entries(&self, shard: u32) -> Result<Vec<TrackedEntry>> {
        let prefix = format!("{shard:04}\u{1f}");
        self.blocking("entries", move |db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(ENTRIES).map_err(s)?;
            let mut out = Vec::new();
            for row in table.range(prefix.as_str()..).map_err(s)? {
                let (k, v) = row.map_err(s)?;
                if !k.value().starts_with(&prefix) {
                    break;
                }
                match serde_json::from_slice::<TrackedEntry>(v.value()) {
                    Ok(e) => out.push(e),
                    Err(e) => return Err(format!("corrupt entry {:?}: {e}", k.value())),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn versions(&self, shards: &[u32]) -> Result<Vec<u64>> {
        let shards = shards.to_vec();
        self.blocking("versions", move |db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(VERSIONS).map_err(s)?;
            shards
                .iter()
                .map(|sh| Ok(table.get(*sh).map_err(s)?.map_or(0, |g| g.value())))
                .collect()
        })
        .await
    }

    /// One process holds the file: it is the only replica.
    async fn heartbeat(&self, _owner: &str, _ttl: Duration) -> Result<usize> {
        Ok(1)
    }

    /// The process holding the file holds every lease.
    async fn acquire(&self, _owner: &str, _shard: u32, _ttl: Duration) -> Result<bool> {
        Ok(true)
    }

    async fn release(&self, _owner: &str, _shard: u32) -> Result<()> {
        Ok(())
    }

    /// One process holds the file: its buckets are this process's.
    async fn take_request(&self, bucket: &str, limit: crate::rate::RateLimit) -> Result<Duration> {
        let now = tokio::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(buckets.take(bucket, limit, now))
    }

    async fn hold_requests(&self, bucket: &str, pause: Duration) -> Result<()> {
        let now = tokio::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.hold(bucket, pause, now);
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
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(buckets.take_slot(bucket, token, limit, ttl, now))
    }

    async fn release_slot(&self, bucket: &str, token: &str) -> Result<()> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.release_slot(bucket, token);
        Ok(())
    }

    /// The process holding the file holds every role.
    async fn acquire_role(&self, _owner: &str, _role: &str, _ttl: Duration) -> Result<bool> {
        Ok(true)
    }

    async fn checkpoint(&self, role: &str) -> Result<Option<Cursor>> {
        let role = role.to_owned();
        self.blocking("read checkpoint", move |db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(CHECKPOINTS).map_err(s)?;
            let saved = table.get(role.as_str()).map_err(s)?;
            Ok(saved.map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn save_checkpoint(&self, _owner: &str, role: &str, cursor: &str) -> Result<bool> {
        let (role, cursor) = (role.to_owned(), cursor.to_owned());
        self.blocking("save checkpoint", move |db| {
            let txn = db.begin_write().map_err(s)?;
            {
                let mut table = txn.open_table(CHECKPOINTS).map_err(s)?;
                table.insert(role.as_str(), cursor.as_str()).map_err(s)?;
            }
            txn.commit().map_err(s)?;
            Ok(true)
        })
        .await
    }

    async fn append(&self, event: &TaskEvent) -> Result<Option<Cursor>> {
        let json = serde_json::to_vec(event).map_err(|e| storage("append", e))?;
        let final_key = event
            .is_final()
            .then(|| entry_key(&event.provider, &event.id));
        self.blocking("append", move |db| {
            let txn = db.begin_write().map_err(s)?;
            let cursor = {
                let mut finals = txn.open_table(FINALS).map_err(s)?;
                if let Some(k) = &final_key {
                    if finals.get(k.as_str()).map_err(s)?.is_some() {
                        return Ok(None);
                    }
                }
                let mut events = txn.open_table(EVENTS).map_err(s)?;
                let next = events.last().map_err(s)?.map_or(1, |(k, _)| k.value() + 1);
                events.insert(next, json.as_slice()).map_err(s)?;
                if let Some(k) = &final_key {
                    finals.insert(k.as_str(), next).map_err(s)?;
                }
                next
            };
            txn.commit().map_err(s)?;
            Ok(Some(cursor.to_string()))
        })
        .await
    }

    async fn read(&self, after: &str, max: usize) -> Result<Vec<(Cursor, TaskEvent)>> {
        let from = numeric_cursor("file-store", after)?.saturating_add(1);
        self.blocking("read", move |db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(EVENTS).map_err(s)?;
            let mut out = Vec::new();
            for row in table.range(from..).map_err(s)?.take(max) {
                let (k, v) = row.map_err(s)?;
                let event: TaskEvent = serde_json::from_slice(v.value())
                    .map_err(|e| format!("corrupt event {}: {e}", k.value()))?;
                out.push((k.value().to_string(), event));
            }
            Ok(out)
        })
        .await
    }

    async fn last_cursor(&self) -> Result<Cursor> {
        self.blocking("read", |db| {
            let txn = db.begin_read().map_err(s)?;
            let table = txn.open_table(EVENTS).map_err(s)?;
            let last = table.last().map_err(s)?;
            Ok(last.map_or(0, |(k, _)| k.value()).to_string())
        })
        .await
    }
}
