//! The tracker's metrics, through the `metrics` facade: nothing is recorded
//! until the application installs a recorder (the CLI installs a Prometheus
//! one). Names follow Prometheus conventions (`tasktrack_` prefix, `_total`
//! counters, `_seconds` units); labels are low-cardinality only (`backend`,
//! `state`, `error_kind`), never a task id.

use std::time::Duration;

use crate::error::Error;
use crate::model::TaskSnapshot;

/// Describes every metric once, so an exporter shows help text.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!("tasktrack_tasks_tracked", "Tasks this process tracks now.");
    describe_counter!(
        "tasktrack_task_transitions_total",
        "Changes of a tracked task, by the state it changed to."
    );
    describe_histogram!(
        "tasktrack_task_duration_seconds",
        Unit::Seconds,
        "From tracking start to a terminal state."
    );
    describe_histogram!(
        "tasktrack_detection_lag_seconds",
        Unit::Seconds,
        "From the end the backend reports to when the tracker saw it."
    );
    describe_counter!(
        "tasktrack_poll_requests_total",
        "Status answers, by result (ok or the error kind)."
    );
    describe_counter!(
        "tasktrack_throttled_total",
        "Answers that asked the tracker to slow down (429, Retry-After)."
    );
    describe_counter!("tasktrack_gave_up_total", "Tasks given up, by error kind.");
    describe_counter!(
        "tasktrack_stalled_total",
        "Tasks that went unchanged for the policy's stall_after."
    );
    describe_histogram!(
        "tasktrack_schedule_lag_seconds",
        Unit::Seconds,
        "How late polls are sent against their due time."
    );
    describe_gauge!("tasktrack_lease_shards", "Shards this replica holds.");
    describe_gauge!("tasktrack_replicas", "Live replicas the store reports.");
    describe_counter!(
        "tasktrack_store_errors_total",
        "Store operations that failed, by operation."
    );
}

pub(super) fn tracked(backend: &str, delta: f64) {
    metrics::gauge!("tasktrack_tasks_tracked", "backend" => backend.to_owned()).increment(delta);
}

pub(super) fn answer(backend: &str, result: &Result<TaskSnapshot, Error>) {
    let label = match result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    metrics::counter!("tasktrack_poll_requests_total", "backend" => backend.to_owned(), "result" => label)
        .increment(1);
    if let Err(e) = result {
        if e.retry_after().is_some() || matches!(e, Error::Http(h) if h.status == 429) {
            metrics::counter!("tasktrack_throttled_total", "backend" => backend.to_owned())
                .increment(1);
        }
    }
}

pub(super) fn transition(backend: &str, snapshot: &TaskSnapshot, tracked_for: Duration) {
    let state = snapshot.state.as_str();
    metrics::counter!("tasktrack_task_transitions_total", "backend" => backend.to_owned(), "state" => state)
        .increment(1);
    if snapshot.state.is_terminal() {
        metrics::histogram!("tasktrack_task_duration_seconds", "backend" => backend.to_owned(), "state" => state)
            .record(tracked_for.as_secs_f64());
        if let Some(lag) = snapshot
            .finished_at
            .and_then(|end| (chrono::Utc::now() - end).to_std().ok())
        {
            metrics::histogram!("tasktrack_detection_lag_seconds", "backend" => backend.to_owned())
                .record(lag.as_secs_f64());
        }
    }
}

pub(super) fn gave_up(backend: &str, error_kind: &str) {
    metrics::counter!("tasktrack_gave_up_total", "backend" => backend.to_owned(), "error_kind" => error_kind.to_owned())
        .increment(1);
}

pub(super) fn stalled(backend: &str) {
    metrics::counter!("tasktrack_stalled_total", "backend" => backend.to_owned()).increment(1);
}

pub(super) fn schedule_lag(backend: &str, lag: Duration) {
    metrics::histogram!("tasktrack_schedule_lag_seconds", "backend" => backend.to_owned())
        .record(lag.as_secs_f64());
}

pub(super) fn leases(shards: usize, replicas: usize) {
    metrics::gauge!("tasktrack_lease_shards").set(shards as f64);
    metrics::gauge!("tasktrack_replicas").set(replicas as f64);
}

pub(super) fn store_error(operation: &'static str) {
    metrics::counter!("tasktrack_store_errors_total", "operation" => operation).increment(1);
}
