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
use crate::store::{
    entry_key, numeric_cursor, shard_of, Cursor, TrackStore, TrackedEntry, DEFAULT_SHARDS,
};
use crate::tracker::TaskEvent;

/// `shard(4 digits) U+001F provider U+001F id` → entry JSON.
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const VERSIONS: TableDefinition<u32, u64> = TableDefinition::new("versions");
/// Task key → cursor of its final event.
const FINALS: TableDefinition<&str, u64> = TableDefinition::new("finals");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

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
    shards: u32,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|e| {
            Error::invalid_input("file-store", format!("cannot open {}: {e}", path.display()))
        })?;
        let txn = db.begin_write().map_err(|e| storage("open", e))?;
        {
            txn.open_table(ENTRIES).map_err(|e| storage("open", e))?;
            txn.open_table(VERSIONS).map_err(|e| storage("open", e))?;
            txn.open_table(FINALS).map_err(|e| storage("open", e))?;
            txn.open_table(EVENTS).map_err(|e| storage("open", e))?;
        }
        txn.commit().map_err(|e| storage("open", e))?;
        Ok(FileStore {
            db: Arc::new(db),
            shards: DEFAULT_SHARDS,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Database) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| storage(what, e))?
            .map_err(|e| storage(what, e))
    }
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
        let from = numeric_cursor(after) + 1;
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
}
