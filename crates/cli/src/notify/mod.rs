//! Notifications: each `[[notify]]` sink reads the store's durable event
//! log from its own cursor, saved in the store, and delivers the events it
//! wants, retrying one until it is acknowledged or given up.
//!
//! One replica at a time delivers for a sink (it holds the store role
//! `notify:NAME`, renewed like a shard lease), and it moves the sink's
//! cursor only while it holds that role. So across replicas and restarts
//! an event is delivered to a sink once: a replica that dies mid-retry is
//! replaced by one that starts again at the same event. The one window
//! left is a replica dying between a sink's acknowledgement and the
//! cursor write (one store round trip): the event is then sent again, with
//! the same `delivery` id (and `X-Tasktrack-Delivery` header) for the
//! receiver to drop.

mod config;
mod deliver;

use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::{Cursor, TrackStore};
use tokio::task::JoinHandle;

pub use config::Sink;

/// Events read from the log per round trip.
const PAGE: usize = 100;
/// How often an idle sink looks for new events.
const IDLE: Duration = Duration::from_millis(500);

/// Describes the notification metrics to the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "tasktrack_notifications_total",
        "Notification attempts by sink and outcome: delivered, failed_attempt, gave_up, store_error."
    );
}

/// Counts, by sink, what happened to its notifications.
fn count(sink: &str, outcome: &'static str) {
    metrics::counter!("tasktrack_notifications_total", "sink" => sink.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Runs every sink until `stop` fires; each sink releases its role on the
/// way out so another replica takes over at once.
pub fn spawn(
    sinks: Vec<Sink>,
    store: Arc<dyn TrackStore>,
    owner: String,
    role_ttl: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, crate::error::CliError> {
    let http = deliver::http_client()
        .map_err(|e| crate::error::CliError::usage(e, "check the TLS setup of this machine"))?;
    Ok(sinks
        .into_iter()
        .map(|sink| {
            let runner = Runner {
                sink,
                store: store.clone(),
                owner: owner.clone(),
                ttl: role_ttl,
                http: http.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(runner.run())
        })
        .collect())
}

/// True when every sink's cursor is at the end of the log (nothing left
/// to deliver), or the store cannot say.
pub async fn caught_up(store: &Arc<dyn TrackStore>, sinks: &[Sink]) -> bool {
    if sinks.is_empty() {
        return true;
    }
    let Ok(last) = store.last_cursor().await else {
        return true;
    };
    let end = tasktrack_core::cursor_position(&last);
    for sink in sinks {
        match store.checkpoint(&sink.role()).await {
            Ok(Some(at)) if tasktrack_core::cursor_position(&at) >= end => {}
            Ok(None) if last == "0" => {}
            Err(_) => {}
            _ => return false,
        }
    }
    true
}

/// Waits for the sinks to stop (they stop between attempts), at most a
/// few seconds: a shutdown is never held up by a slow receiver.
pub async fn join(runners: Vec<JoinHandle<()>>) {
    let all = futures::future::join_all(runners);
    let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
}

struct Runner {
    sink: Sink,
    store: Arc<dyn TrackStore>,
    owner: String,
    ttl: Duration,
    http: reqwest::Client,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// Why a round ended early.
enum Interrupted {
    Stopped,
    LostRole,
}

impl Runner {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `d`, or less when asked to stop; true when stopping.
    async fn pause(&mut self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        self.stopped()
    }

    async fn run(mut self) {
        let role = self.sink.role();
        let renew = (self.ttl / 3).max(Duration::from_millis(100));
        while !self.stopped() {
            match self.store.acquire_role(&self.owner, &role, self.ttl).await {
                Ok(true) => match self.round(&role).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(Interrupted::Stopped) => break,
                    Err(Interrupted::LostRole) => {
                        tracing::info!(sink = %self.sink.name, "another replica took this sink over");
                    }
                },
                Ok(false) => {
                    if self.pause(renew).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(sink = %self.sink.name, error = %e, "cannot take the sink's role");
                    count(&self.sink.name, "store_error");
                }
            }
            if self.pause(IDLE.min(renew)).await {
                break;
            }
        }
        let _ = self.store.release_role(&self.owner, &role).await;
    }

    /// Delivers one page of events; `Ok(true)` when there may be more.
    async fn round(&mut self, role: &str) -> Result<bool, Interrupted> {
        let store_error = |e: tasktrack_core::Error| {
            tracing::warn!(error = %e, "the notification cursor cannot be read");
            Interrupted::LostRole
        };
        let (cursor, backfill_from) =
            match self.store.checkpoint(role).await.map_err(store_error)? {
                Some(c) => (c, None),
                // A new sink starts at the log's beginning but skips what is
                // older than its backfill window.
                None => (
                    "0".to_owned(),
                    chrono::Duration::from_std(self.sink.backfill)
                        .ok()
                        .map(|b| chrono::Utc::now() - b),
                ),
            };
        let page = self.store.read(&cursor, PAGE).await.map_err(store_error)?;
        let full = page.len() == PAGE;
        let mut done: Option<Cursor> = None;
        for (position, event) in page {
            let fresh = backfill_from.is_none_or(|from| event.at >= from);
            if let Some(on) = self.sink.wants(&event).filter(|_| fresh) {
                let body = deliver::body(
                    &self.sink,
                    &format!("{}:{position}", self.sink.name),
                    on,
                    &event,
                );
                self.deliver(role, &body).await?;
                self.save(role, &position).await?;
                done = None;
            } else {
                done = Some(position);
            }
        }
        if let Some(position) = done {
            self.save(role, &position).await?;
        }
        Ok(full)
    }

    async fn save(&self, role: &str, position: &str) -> Result<(), Interrupted> {
        match self
            .store
            .save_checkpoint(&self.owner, role, position)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Interrupted::LostRole),
            Err(e) => {
                tracing::warn!(sink = %self.sink.name, error = %e, "cannot save the notification cursor");
                Err(Interrupted::LostRole)
            }
        }
    }

    /// Takes the role again (renewing it): every attempt starts with a
    /// fresh lease and lasts at most half of it, so the role cannot lapse
    /// while a notification is in flight.
    async fn hold(&self, role: &str) -> Result<(), Interrupted> {
        match self.store.acquire_role(&self.owner, role, self.ttl).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Interrupted::LostRole),
            Err(e) => {
                tracing::warn!(sink = %self.sink.name, error = %e, "cannot renew the sink's role");
                Err(Interrupted::LostRole)
            }
        }
    }

    /// Waits `d` while keeping the role.
    async fn pause_holding(&mut self, role: &str, d: Duration) -> Result<(), Interrupted> {
        let until = tokio::time::Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            if self.pause(left.min(self.ttl / 3)).await {
                return Err(Interrupted::Stopped);
            }
            self.hold(role).await?;
        }
    }

    /// Sends until acknowledged; past `give_up_after` the notification is
    /// dropped, logged and counted.
    async fn deliver(&mut self, role: &str, body: &serde_json::Value) -> Result<(), Interrupted> {
        let started = tokio::time::Instant::now();
        let limit = (self.ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut backoff = Duration::from_millis(250).min(self.sink.max_backoff);
        let mut attempts = 0u32;
        loop {
            self.hold(role).await?;
            attempts += 1;
            let outcome =
                match tokio::time::timeout(limit, deliver::attempt(&self.http, &self.sink, body))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
                };
            match outcome {
                Ok(()) => {
                    count(&self.sink.name, "delivered");
                    return Ok(());
                }
                Err(why) => {
                    count(&self.sink.name, "failed_attempt");
                    if started.elapsed() >= self.sink.give_up_after {
                        count(&self.sink.name, "gave_up");
                        tracing::warn!(
                            sink = %self.sink.name,
                            delivery = %body["delivery"].as_str().unwrap_or_default(),
                            attempts,
                            error = %why,
                            "notification given up"
                        );
                        return Ok(());
                    }
                    tracing::debug!(sink = %self.sink.name, attempts, error = %why, "notification not acknowledged; retrying");
                }
            }
            let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
            self.pause_holding(role, jittered).await?;
            backoff = (backoff * 2).min(self.sink.max_backoff);
        }
    }
}
