//! [`RedisOptions`]: key prefix, stream length, marker lifetime.

use std::time::Duration;

/// Options of a [`RedisStore`](crate::RedisStore).
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Key prefix (default `tasktrack`).
    pub prefix: String,
    /// Approximate length the event stream is trimmed to (default 1,000,000).
    pub max_events: u64,
    /// How long a terminal-event marker lasts (default 30 days): a task
    /// tracked again after that may report its end again.
    pub final_marker_ttl: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "tasktrack".into(),
            max_events: 1_000_000,
            final_marker_ttl: Duration::from_secs(30 * 86_400),
        }
    }
}
