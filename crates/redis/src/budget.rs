//! Request budgets and concurrency slots shared by a fleet: each take is
//! one script on the server's clock, so replicas agree without their own
//! clocks agreeing.

use std::time::Duration;

use tasktrack_core::Result;

use crate::{failed, RedisStore};

impl RedisStore {
    pub(crate) async fn shared_take_request(
        &self,
        bucket: &str,
        limit: tasktrack_core::rate::RateLimit,
    ) -> Result<Duration> {
        let mut conn = self.conn.clone();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        let wait: i64 = self
            .take_request
            .key(self.key(&format!("rate:{bucket}")))
            .arg(micros(limit.interval()))
            .arg(u64::try_from(limit.tolerance().as_micros()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| failed("take a request from the shared budget", e))?;
        Ok(Duration::from_micros(wait.max(0) as u64))
    }

    pub(crate) async fn shared_hold_requests(&self, bucket: &str, pause: Duration) -> Result<()> {
        let mut conn = self.conn.clone();
        self.hold_requests
            .key(self.key(&format!("rate:{bucket}")))
            .arg(u64::try_from(pause.as_micros()).unwrap_or(u64::MAX))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| failed("hold the shared budget", e))
    }

    pub(crate) async fn shared_take_slot(
        &self,
        bucket: &str,
        token: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<bool> {
        let mut conn = self.conn.clone();
        let taken: i64 = self
            .take_slot
            .key(self.key(&format!("slots:{bucket}")))
            .arg(token)
            .arg(limit)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| failed("take a shared concurrency slot", e))?;
        Ok(taken == 1)
    }

    pub(crate) async fn shared_release_slot(&self, bucket: &str, token: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.key(&format!("slots:{bucket}")))
            .arg(token)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| failed("release a shared concurrency slot", e))
    }
}
