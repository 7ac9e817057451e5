//! `--store URL`: where trackers keep the shared tracked set and event log.

use std::sync::Arc;

use tasktrack_core::{FileStore, MemoryStore, TrackStore};
use tasktrack_redis::{redact_url, RedisStore};

use crate::error::CliError;

/// Opens `file:PATH`, `redis://…`, `rediss://…` or `memory`.
pub async fn open(url: &str) -> Result<Arc<dyn TrackStore>, CliError> {
    if let Some(path) = url.strip_prefix("file:") {
        return FileStore::open(path).map(|s| Arc::new(s) as Arc<dyn TrackStore>).map_err(|e| {
            CliError::usage(e.to_string(), "is another tasktrack process using this file? (one at a time; use Redis to share)")
        });
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return RedisStore::connect(url)
            .await
            .map(|s| Arc::new(s) as Arc<dyn TrackStore>)
            .map_err(|e| {
                CliError::usage(
                    e.to_string().replace(url, &redact_url(url)),
                    "check the Redis URL and that the server is reachable",
                )
            });
    }
    if url == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    Err(CliError::usage(
        format!("unknown store {:?}", redact_url(url)),
        "use file:./tasktrack.db, redis://host:6379/0 or rediss://host:6380/0",
    ))
}
