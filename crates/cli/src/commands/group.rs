//! `tasktrack wait <backend> <id> <id>…`: many tasks of one backend through
//! one tracker (batched polls), one summary, one exit code.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tasktrack_core::{TaskEventKind, TaskState, Tracker};

use super::task::task_id;
use crate::config::Config;
use crate::error::CliError;
use crate::output::{self, note, out};

/// When a group wait is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Every task succeeds (the default).
    All,
    /// At least one succeeds.
    Any,
    /// At least this many succeed.
    AtLeast(usize),
}

/// What a group wait was asked for.
#[derive(Debug, Clone)]
pub struct GroupWait {
    /// When it is done.
    pub goal: Goal,
    /// With [`Goal::All`], stop at the first failure.
    pub fail_fast: bool,
    /// Timeout, interval and stall limit.
    pub poll: super::task::WaitPolicy,
    /// One JSON line per task as it ends.
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Succeeded,
    Failed,
    TimedOut,
}

/// Waits for `ids` of `backend`: exit 0 when the goal is met, 1 when it can
/// no longer be, 3 when time ran out first.
pub async fn wait_group(
    config: &Config,
    backend: &str,
    ids: &[String],
    opts: GroupWait,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    let mut wanted = Vec::new();
    for id in ids {
        let id = task_id(config, backend, &provider, id).await?;
        if !wanted.contains(&id) {
            wanted.push(id);
        }
    }
    let total = wanted.len();
    let need = match opts.goal {
        Goal::All => total,
        Goal::Any => 1,
        Goal::AtLeast(n) if n == 0 || n > total => {
            return Err(CliError::usage(
                format!("--at-least {n} with {total} task(s)"),
                "ask for at least 1 and at most the number of tasks",
            ))
        }
        Goal::AtLeast(n) => n,
    };
    let policy = opts.poll.policy();
    let (tracker, mut events) = Tracker::builder()
        .provider_with_policy(backend, provider, policy)
        .build();
    for id in &wanted {
        tracker.track(backend, id)?;
    }
    let mut ended: HashMap<String, End> = HashMap::new();
    let count =
        |ended: &HashMap<String, End>, what: End| ended.values().filter(|e| **e == what).count();
    // The tracker gives each task up at the timeout; this bounds the rest.
    let until = tokio::time::Instant::now() + opts.poll.timeout + Duration::from_secs(1);
    let outcome = loop {
        let succeeded = count(&ended, End::Succeeded);
        let failed = count(&ended, End::Failed);
        let timed_out = count(&ended, End::TimedOut);
        if succeeded >= need {
            break End::Succeeded;
        }
        // Impossible because of failures is a failure; because time ran out
        // for the rest, a timeout.
        if total - failed < need || (opts.fail_fast && failed > 0) {
            break End::Failed;
        }
        if total - failed - timed_out < need {
            break End::TimedOut;
        }
        let Ok(next) = tokio::time::timeout_at(until, events.next()).await else {
            break End::TimedOut;
        };
        let Some(event) = next else {
            break End::TimedOut;
        };
        if !event.is_final() || ended.contains_key(&event.id) {
            continue;
        }
        let (end, state, detail) = match &event.kind {
            TaskEventKind::Changed { snapshot } => {
                let end = if snapshot.state == TaskState::Succeeded {
                    End::Succeeded
                } else {
                    End::Failed
                };
                let detail = snapshot
                    .failure
                    .as_ref()
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| snapshot.vendor_state.clone());
                (end, snapshot.state.to_string(), detail)
            }
            TaskEventKind::GaveUp {
                error_kind,
                message,
            } => {
                let end = if error_kind == "timeout" {
                    End::TimedOut
                } else {
                    End::Failed
                };
                (end, "gave up".to_owned(), message.clone())
            }
            // Not final: filtered out above.
            TaskEventKind::Stalled { .. } => continue,
        };
        if opts.json {
            let _ = output::json(&serde_json::json!({
                "backend": backend, "id": event.id, "state": state, "detail": detail,
            }));
        } else {
            let _ = out!("{backend} task {}: {state} ({detail})", event.id);
        }
        ended.insert(event.id.clone(), end);
    };
    tracker.shutdown();
    let succeeded = count(&ended, End::Succeeded);
    let failed = count(&ended, End::Failed);
    let timed_out = count(&ended, End::TimedOut);
    let running = total - ended.len();
    note!("{succeeded} of {total} succeeded, {failed} failed, {timed_out} timed out, {running} unfinished");
    match outcome {
        End::Succeeded => Ok(()),
        End::Failed => Err(CliError::TaskFailed),
        End::TimedOut => Err(CliError::Timeout(format!(
            "gave up waiting after {}: {succeeded} of {need} needed succeeded",
            tasktrack_core::human_duration(opts.poll.timeout)
        ))),
    }
}
