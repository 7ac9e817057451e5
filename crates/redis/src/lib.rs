//! # tasktrack-redis
//!
//! [`RedisStore`]: a [`TrackStore`] on Redis, so several tracker replicas
//! share one tracked set and survive crashes.
//!
//! Keys under a configurable prefix (default `tasktrack`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:shard:N` | hash | tracked entries of shard N (field: provider U+001F id) |
//! | `P:ver:N` | string | a counter bumped when an entry is added to shard N |
//! | `P:lease:N` | string, with expiry | the replica holding shard N |
//! | `P:replicas` | sorted set | replicas alive, scored by heartbeat expiry |
//! | `P:final:KEY` | string, with expiry | marker: KEY's terminal event is logged |
//! | `P:role:NAME` | string, with expiry | the replica holding role NAME (e.g. `notify:SINK`) |
//! | `P:checkpoint:NAME` | string | the cursor saved by role NAME's holder |
//! | `P:rate:BUCKET` | string, with expiry | a shared request budget's next arrival time (µs, GCRA) |
//! | `P:events` | stream | the event log (`XADD … MAXLEN ~ N`), field `event` = JSON |
//!
//! A lease is taken with a compare-and-set script and expires unless renewed,
//! so a dead replica's shards pass to the others after the TTL. A terminal
//! event is appended by one script that sets the marker `NX` and adds to the
//! stream only if the marker was new: at most once across replicas, never
//! check-then-write. A dashboard follows the stream with `XREAD` (or a
//! consumer group) from any cursor.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tasktrack_core::Tracker;
//! use tasktrack_redis::RedisStore;
//!
//! # async fn run() -> tasktrack_core::Result<()> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379/0").await?;
//! let (tracker, events) = Tracker::builder().with_store(Arc::new(store)).with_owner("replica-1").build();
//! # let _ = (tracker, events);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod budget;
mod options;
mod scripts;
pub mod testing;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tasktrack_core::{
    entry_key, shard_of, Cursor, Error, Result, TaskEvent, TrackStore, TrackedEntry, DEFAULT_SHARDS,
};

pub use options::RedisOptions;
use scripts::{
    ACQUIRE, ACQUIRE_MANY, APPEND_FINAL, HOLD_REQUESTS, RELEASE, RELEASE_MANY, SAVE_CHECKPOINT,
    TAKE_REQUEST, TAKE_SLOT, UPDATE,
};

/// A tracked set, leases and event stream in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    display_url: String,
    options: RedisOptions,
    acquire: Script,
    acquire_many: Script,
    release: Script,
    save_checkpoint: Script,
    take_request: Script,
    hold_requests: Script,
    take_slot: Script,
    release_many: Script,
    update: Script,
    append_final: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.display_url)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
///
/// Only a well-formed URL with a host is shown; anything else (a typo such
/// as `redis:/:PASSWORD@host` parses with the password in its path) shows
/// its scheme alone, so no part that could be a secret is ever echoed.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() && !u.cannot_be_a_base() => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Ok(u) => format!("{}:<malformed, not shown>", u.scheme()),
        Err(_) => "<unparseable URL, not shown>".into(),
    }
}

fn failed(what: &str, e: redis::RedisError) -> Error {
    // Redis errors carry no credentials; the URL is never part of them.
    Error::Transport {
        provider: "redis-store".into(),
        operation: what.into(),
        message: e.to_string(),
        timed_out: e.is_timeout(),
    }
}

impl RedisStore {
    /// Connects to `redis://` or `rediss://` (TLS) with default options.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects with `options`. The connection reconnects by itself after
    /// the server goes away; commands fail (transiently) meanwhile.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self> {
        let display_url = redact_url(url);
        // rustls needs one crypto provider for rediss://; ring is the one the
        // rest of tasktrack uses. A provider already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url).map_err(|e| {
            Error::invalid_input("redis-store", format!("bad Redis URL {display_url}: {e}"))
        })?;
        // No store call may hang the tracker's scheduler: bounded connects
        // and answers, a few quick reconnect attempts, then an error (which
        // the tracker treats as transient).
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(3)
            .set_max_delay(1000);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Error::Transport {
                provider: "redis-store".into(),
                operation: format!("connect to {display_url}"),
                message: e.to_string(),
                timed_out: e.is_timeout(),
            })?;
        Ok(RedisStore {
            conn,
            display_url,
            options,
            acquire: Script::new(ACQUIRE),
            acquire_many: Script::new(ACQUIRE_MANY),
            release: Script::new(RELEASE),
            save_checkpoint: Script::new(SAVE_CHECKPOINT),
            take_request: Script::new(TAKE_REQUEST),
            hold_requests: Script::new(HOLD_REQUESTS),
            take_slot: Script::new(TAKE_SLOT),
            release_many: Script::new(RELEASE_MANY),
            update: Script::new(UPDATE),
            append_final: Script::new(APPEND_FINAL),
        })
    }

    fn key(&self, tail: &str) -> String {
        format!("{}:{tail}", self.options.prefix)
    }

    /// The stream key, for dashboards that `XREAD` it directly.
    pub fn events_key(&self) -> String {
        self.key("events")
    }

    /// Which replica holds each shard's lease now (shards nobody holds are
    /// left out), read in one round trip: for operators checking the split
    /// and for tests asserting it.
    pub async fn lease_holders(&self) -> Result<BTreeMap<u32, String>> {
        let keys: Vec<String> = (0..self.shards())
            .map(|shard| self.key(&format!("lease:{shard}")))
            .collect();
        let mut conn = self.conn.clone();
        let holders: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("read lease holders", e))?;
        Ok((0..)
            .zip(holders)
            .filter_map(|(shard, holder)| holder.map(|h| (shard, h)))
            .collect())
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl TrackStore for RedisStore {
    fn shards(&self) -> u32 {
        DEFAULT_SHARDS
    }

    async fn put(&self, entry: &TrackedEntry) -> Result<()> {
        let shard = shard_of(&entry.provider, &entry.id, self.shards());
        let json = serde_json::to_string(entry)
            .map_err(|e| Error::invalid_input("redis-store", e.to_string()))?;
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset(self.key(&format!("shard:{shard}")), entry.key(), json)
            .incr(self.key(&format!("ver:{shard}")), 1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| failed("put", e))
    }

    async fn update(&self, entry: &TrackedEntry) -> Result<()> {
        let shard = shard_of(&entry.provider, &entry.id, self.shards());
        let json = serde_json::to_string(entry)
            .map_err(|e| Error::invalid_input("redis-store", e.to_string()))?;
        let mut conn = self.conn.clone();
        self.update
            .key(self.key(&format!("shard:{shard}")))
            .arg(entry.key())
            .arg(json)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| failed("update", e))
    }

    async fn remove(&self, provider: &str, id: &str) -> Result<()> {
        let shard = shard_of(provider, id, self.shards());
        let mut conn = self.conn.clone();
        conn.hdel::<_, _, i64>(self.key(&format!("shard:{shard}")), entry_key(provider, id))
            .await
            .map(|_| ())
            .map_err(|e| failed("remove", e))
    }

    async fn entries(&self, shard: u32) -> Result<Vec<TrackedEntry>> {
        let mut conn = self.conn.clone();
        let raw: Vec<(String, String)> = conn
            .hgetall(self.key(&format!("shard:{shard}")))
            .await
            .map_err(|e| failed("entries", e))?;
        raw.into_iter()
            .map(|(k, v)| {
                serde_json::from_str(&v).map_err(|e| {
                    Error::decode("redis-store", format!("entry {k:?}"), ".", e.to_string())
                })
            })
            .collect()
    }

    async fn entries_many(&self, shards: &[u32]) -> Result<Vec<Vec<TrackedEntry>>> {
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for shard in shards {
            pipe.hgetall(self.key(&format!("shard:{shard}")));
        }
        let mut conn = self.conn.clone();
        let raw: Vec<Vec<(String, String)>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("entries", e))?;
        raw.into_iter()
            .map(|rows| {
                rows.into_iter()
                    .map(|(k, v)| {
                        serde_json::from_str(&v).map_err(|e| {
                            Error::decode("redis-store", format!("entry {k:?}"), ".", e.to_string())
                        })
                    })
                    .collect()
            })
            .collect()
    }

    async fn versions(&self, shards: &[u32]) -> Result<Vec<u64>> {
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = shards
            .iter()
            .map(|s| self.key(&format!("ver:{s}")))
            .collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("versions", e))?;
        Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
    }

    async fn heartbeat(&self, owner: &str, ttl: Duration) -> Result<usize> {
        let now = now_ms();
        let key = self.key("replicas");
        let mut conn = self.conn.clone();
        let (_, _, live): ((), (), usize) = redis::pipe()
            .atomic()
            .zadd(&key, owner, now + ttl.as_millis() as i64)
            .zrembyscore(&key, "-inf", now)
            .zcard(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("heartbeat", e))?;
        Ok(live)
    }

    async fn acquire(&self, owner: &str, shard: u32, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let got: i64 = self
            .acquire
            .key(self.key(&format!("lease:{shard}")))
            .arg(owner)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| failed("acquire lease", e))?;
        Ok(got == 1)
    }

    async fn acquire_many(
        &self,
        owner: &str,
        shards: &[u32],
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<bool>> {
        if shards.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.acquire_many.prepare_invoke();
        for shard in shards {
            invocation.key(self.key(&format!("lease:{shard}")));
        }
        invocation
            .arg(owner)
            .arg(ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64)
            .arg(limit.min(shards.len()));
        let mut conn = self.conn.clone();
        let answers: Vec<i64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| failed("acquire leases", e))?;
        Ok(answers.into_iter().map(|a| a == 1).collect())
    }

    async fn tracked_count(&self) -> Result<u64> {
        let mut pipe = redis::pipe();
        for shard in 0..self.shards() {
            pipe.hlen(self.key(&format!("shard:{shard}")));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<u64> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("count tracked tasks", e))?;
        Ok(counts.into_iter().sum())
    }

    async fn release(&self, owner: &str, shard: u32) -> Result<()> {
        let mut conn = self.conn.clone();
        self.release
            .key(self.key(&format!("lease:{shard}")))
            .arg(owner)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| failed("release lease", e))
    }

    async fn acquire_role(&self, owner: &str, role: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let got: i64 = self
            .acquire
            .key(self.key(&format!("role:{role}")))
            .arg(owner)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| failed("acquire role", e))?;
        Ok(got == 1)
    }

    async fn release_role(&self, owner: &str, role: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        self.release
            .key(self.key(&format!("role:{role}")))
            .arg(owner)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| failed("release role", e))
    }

    async fn checkpoint(&self, role: &str) -> Result<Option<Cursor>> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.key(&format!("checkpoint:{role}")))
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("read checkpoint", e))
    }

    async fn save_checkpoint(&self, owner: &str, role: &str, cursor: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let saved: i64 = self
            .save_checkpoint
            .key(self.key(&format!("role:{role}")))
            .key(self.key(&format!("checkpoint:{role}")))
            .arg(owner)
            .arg(cursor)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| failed("save checkpoint", e))?;
        Ok(saved == 1)
    }

    async fn take_request(
        &self,
        bucket: &str,
        limit: tasktrack_core::rate::RateLimit,
    ) -> Result<Duration> {
        self.shared_take_request(bucket, limit).await
    }

    async fn hold_requests(&self, bucket: &str, pause: Duration) -> Result<()> {
        self.shared_hold_requests(bucket, pause).await
    }

    async fn take_slot(
        &self,
        bucket: &str,
        token: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<bool> {
        self.shared_take_slot(bucket, token, limit, ttl).await
    }

    async fn release_slot(&self, bucket: &str, token: &str) -> Result<()> {
        self.shared_release_slot(bucket, token).await
    }

    async fn release_many(&self, owner: &str, shards: &[u32]) -> Result<()> {
        if shards.is_empty() {
            return Ok(());
        }
        let mut invocation = self.release_many.prepare_invoke();
        for shard in shards {
            invocation.key(self.key(&format!("lease:{shard}")));
        }
        invocation.arg(owner);
        let mut conn = self.conn.clone();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| failed("release leases", e))
    }

    async fn append(&self, event: &TaskEvent) -> Result<Option<Cursor>> {
        let json = serde_json::to_string(event)
            .map_err(|e| Error::invalid_input("redis-store", e.to_string()))?;
        let mut conn = self.conn.clone();
        if event.is_final() {
            let marker = self.key(&format!("final:{}", entry_key(&event.provider, &event.id)));
            let id: Option<String> = self
                .append_final
                .key(marker)
                .key(self.events_key())
                .arg(json)
                .arg(self.options.max_events)
                .arg(self.options.final_marker_ttl.as_millis() as u64)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| failed("append final event", e))?;
            return Ok(id);
        }
        let id: String = redis::cmd("XADD")
            .arg(self.events_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(self.options.max_events)
            .arg("*")
            .arg("event")
            .arg(json)
            .query_async(&mut conn)
            .await
            .map_err(|e| failed("append event", e))?;
        Ok(Some(id))
    }

    /// Events after `after` (a stream id; `"0"` for the start).
    async fn read(&self, after: &str, max: usize) -> Result<Vec<(Cursor, TaskEvent)>> {
        if !after.is_empty() && tasktrack_core::cursor_position(after).is_none() {
            return Err(Error::invalid_input(
                "redis-store",
                "an event cursor is a Redis stream id, MS-SEQ (as returned with each event)",
            ));
        }
        let start = if after == "0" || after.is_empty() {
            "-".to_owned()
        } else {
            format!("({after}")
        };
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = conn
            .xrange_count(self.events_key(), start, "+", max.max(1))
            .await
            .map_err(|e| failed("read events", e))?;
        let mut out = Vec::with_capacity(reply.ids.len());
        for entry in reply.ids {
            let Some(redis::Value::BulkString(bytes)) = entry.map.get("event") else {
                continue;
            };
            let event: TaskEvent = serde_json::from_slice(bytes).map_err(|e| {
                Error::decode(
                    "redis-store",
                    format!("event {}", entry.id),
                    ".",
                    e.to_string(),
                )
            })?;
            out.push((entry.id, event));
        }
        Ok(out)
    }

    async fn last_cursor(&self) -> Result<Cursor> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = conn
            .xrevrange_count(self.events_key(), "+", "-", 1)
            .await
            .map_err(|e| failed("read the newest event", e))?;
        Ok(reply
            .ids
            .into_iter()
            .next()
            .map_or_else(|| "0".to_owned(), |entry| entry.id))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            super::redact_url("rediss://user:pw@h/1"),
            "rediss://user:***@h/1"
        );
        assert_eq!(
            super::redact_url("redis://127.0.0.1/"),
            "redis://127.0.0.1/"
        );
        assert_eq!(
            super::redact_url("REDIS://:pw@Host:6379/0"),
            "redis://:***@Host:6379/0"
        );
        for typo in [
            "redis:/:hunter2@127.0.0.1",
            "redis::hunter2@h",
            "redis:hunter2",
        ] {
            let shown = super::redact_url(typo);
            assert!(!shown.contains("hunter2"), "{typo} -> {shown}");
            assert!(shown.starts_with("redis:"), "{shown}");
        }
        assert!(!super::redact_url("%%hunter2").contains("hunter2"));
        assert!(!super::redact_url("redis://h/0?password=hunter2").contains("hunter2"));
    }
}
