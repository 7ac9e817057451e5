//! Commands on one task or one backend: wait, status, logs, list and the
//! control actions.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tasktrack_core::{
    Capabilities, DynTaskProvider, ErasedProvider, LogRange, PollPolicy, Poller, TaskAction,
    TaskFilter, TaskSnapshot, TaskState, TaskStatus,
};

use crate::config::Config;
use crate::error::CliError;
use crate::output::{self, note, out};
use crate::table::Row;

/// The provider and canonical id of a task whose log is read, or the one
/// line that says the backend has no logs.
pub(super) async fn log_source(
    config: &Config,
    backend: &str,
    id: &str,
) -> Result<(Arc<dyn DynTaskProvider>, String), CliError> {
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id).await?;
    if !provider.provider_capabilities().logs {
        return Err(CliError::usage(
            format!(
                "backend {backend} ({}) has no task logs",
                config.backend(backend)?.kind()
            ),
            "try `tasktrack status` instead",
        ));
    }
    Ok((provider, id))
}

/// Parses an id for a backend, saying the expected form when it is wrong.
/// A short id as `list` and `watch` print it (`pve1:001001F3`,
/// `8abf6e…0000001`) is looked up in the backend's listing and stands for
/// the one task it names.
pub(super) async fn task_id(
    config: &Config,
    backend: &str,
    provider: &Arc<dyn DynTaskProvider>,
    id: &str,
) -> Result<String, CliError> {
    let form = config.backend(backend)?.id_form();
    let refused = match provider.canonical_id(id) {
        Ok(id) => return Ok(id),
        Err(e) => e,
    };
    if let Some(full) = expand_short_id(backend, provider, id).await? {
        return Ok(full);
    }
    Err(CliError::usage(
        refused.to_string(),
        format!(
            "{} ids ({}) are {form}",
            crate::output::terminal_safe(backend),
            config.backend(backend).map_or("", |b| b.kind())
        ),
    ))
}

/// Tasks one listing reads when a short id is looked up.
const SHORT_ID_LOOKUP: usize = 500;

async fn expand_short_id(
    backend: &str,
    provider: &Arc<dyn DynTaskProvider>,
    short: &str,
) -> Result<Option<String>, CliError> {
    let short = short.replace("...", "\u{2026}");
    if !crate::table::is_short_form(&short) || !provider.provider_capabilities().list {
        return Ok(None);
    }
    let filter = tasktrack_core::TaskFilter::new().with_limit(SHORT_ID_LOOKUP);
    // A listing that fails leaves the id's own error to be said.
    let Ok(page) = provider.list_snapshots(&filter).await else {
        return Ok(None);
    };
    let mut found: Vec<String> = page
        .items
        .into_iter()
        .map(|s| s.id)
        .filter(|id| crate::table::short_id(id) == short)
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(CliError::usage(
            format!(
                "{} names {n} {} tasks",
                crate::output::terminal_safe(&short),
                crate::output::terminal_safe(backend)
            ),
            format!(
                "give the full id (tasktrack list {} --ids)",
                crate::output::terminal_safe(backend)
            ),
        )),
    }
}

/// How far past `--timeout` the log read after a failure may go.
const LOG_GRACE: Duration = Duration::from_millis(900);

/// How `wait` polls.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Give up after this long.
    pub timeout: Duration,
    /// A fixed interval instead of the backing-off default.
    pub interval: Option<Duration>,
    /// Give up on a task unchanged for this long.
    pub stall_after: Option<Duration>,
    /// Give up on a task pending this long.
    pub pending_for: Option<Duration>,
    /// Give up on a task running this long.
    pub running_for: Option<Duration>,
    /// Give up on a step running this long.
    pub step_for: Option<Duration>,
}

impl WaitPolicy {
    /// The poll policy.
    pub fn policy(&self) -> PollPolicy {
        match self.interval {
            Some(i) => PollPolicy::fixed(i),
            None => PollPolicy::default(),
        }
        .with_deadline(Some(self.timeout))
        .with_stall_after(self.stall_after, true)
        .with_phase_limits(self.pending_for, self.running_for, self.step_for)
    }
}

/// `tasktrack wait`.
pub async fn wait(
    config: &Config,
    backend: &str,
    id: &str,
    poll: WaitPolicy,
    json: bool,
) -> Result<(), CliError> {
    let timeout = poll.timeout;
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id).await?;
    let policy = poll.policy();
    let poller = Poller::new(ErasedProvider(provider.clone()), policy);
    let bar = if json || !std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(100)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#>-"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = tokio::time::Instant::now();
    let mut changes = std::pin::pin!(poller.watch(&id));
    let mut last: Option<TaskSnapshot> = None;
    // A reader gone from stdout (`| head -1`) stops the printing, not the
    // wait: the exit code still says how the task ended.
    let mut printing = true;
    while let Some(item) = changes.next().await {
        let snapshot = match item {
            Ok(s) => s,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.into());
            }
        };
        if json && printing && output::json(&snapshot).is_err() {
            printing = false;
        }
        if let Some(p) = snapshot.progress.as_ref().and_then(|p| p.percent) {
            bar.set_position(p as u64);
        }
        bar.set_message(format!("{} ({})", snapshot.state, snapshot.vendor_state));
        last = Some(snapshot);
    }
    bar.finish_and_clear();
    let Some(last) = last else {
        return Err(CliError::usage("no status was read", "try again"));
    };
    if !last.state.is_unsuccessful() {
        if !json && printing {
            let _ = out!(
                "{backend} task {id}: {} ({})",
                last.state,
                last.vendor_state
            );
        }
        return Ok(());
    }
    let failure = last
        .failure()
        .map(|f| f.to_string())
        .unwrap_or_else(|| last.vendor_state.clone());
    note!("{backend} task {id} {}: {failure}", last.state);
    if provider.provider_capabilities().logs {
        // The timeout bounds the log read too (with a short grace, so a
        // task failing at the last moment still shows its log).
        let until = started + timeout.saturating_add(LOG_GRACE);
        match tokio::time::timeout_at(until, provider.log_lines(&id, LogRange::Tail(20))).await {
            Ok(Ok(lines)) if !lines.is_empty() => {
                note!("last log lines:");
                for l in lines {
                    note!("  {}", l.text);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => note!("(could not read the log: {e})"),
            Err(_) => note!("(the log was not read before the timeout)"),
        }
    }
    Err(CliError::TaskFailed)
}

/// `tasktrack status`.
pub async fn status(config: &Config, backend: &str, id: &str, json: bool) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id).await?;
    let s = provider.snapshot(&id).await?;
    if json {
        return output::json(&s);
    }
    out!("backend:  {backend}")?;
    out!("id:       {}", s.id)?;
    if let Some(t) = &s.title {
        out!("title:    {t}")?;
    }
    out!("state:    {} ({})", s.state, s.vendor_state)?;
    if let Some(p) = s.progress.as_ref() {
        let steps = match (p.steps_done, p.steps_total) {
            (Some(d), Some(t)) => format!(", {d}/{t} steps"),
            _ => String::new(),
        };
        let remaining = p
            .remaining
            .map(|r| format!(", {}s left", r.as_secs()))
            .unwrap_or_default();
        out!(
            "progress: {:.0}%{steps}{remaining}",
            p.percent.unwrap_or(0.0)
        )?;
    }
    if let Some(f) = &s.failure {
        out!("failure:  {f}")?;
    }
    if let Some(w) = s.warnings {
        out!("warnings: {w}")?;
    }
    for message in &s.warning_messages {
        out!("  WARN: {message}")?;
    }
    for (k, v) in &s.attributes {
        out!("{:<9} {v}", format!("{k}:"))?;
    }
    for step in &s.steps {
        out!("  {:<10} {:<8} {}", step.vendor_state, step.id, step.name)?;
        for sub in &step.steps {
            out!("    {:<10} {}", sub.vendor_state, sub.name)?;
        }
    }
    Ok(())
}

/// `tasktrack logs`.
pub async fn logs(
    config: &Config,
    backend: &str,
    id: &str,
    tail: Option<usize>,
    json: bool,
) -> Result<(), CliError> {
    let (provider, id) = log_source(config, backend, id).await?;
    let range = tail.map_or(LogRange::All, LogRange::Tail);
    for line in provider.log_lines(&id, range).await? {
        if json {
            output::json(&line)?;
        } else {
            out!("{:>5} {}", line.n, line.text)?;
        }
    }
    Ok(())
}

/// How `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// The table.
    Table,
    /// One JSON snapshot per line.
    Json,
    /// One full id per line.
    Ids,
}

/// `tasktrack list`.
pub async fn list(
    config: &Config,
    backend: &str,
    states: &[TaskState],
    kind: Option<String>,
    limit: Option<usize>,
    format: ListFormat,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    if !provider.provider_capabilities().list {
        return Err(CliError::usage(
            format!("backend {backend} cannot list tasks"),
            "query one task with `tasktrack status`",
        ));
    }
    let mut filter = TaskFilter::new().with_states(states.iter().copied());
    (filter.kind, filter.limit) = (kind, limit);
    let page = provider.list_snapshots(&filter).await?;
    match format {
        ListFormat::Json => return page.items.iter().try_for_each(output::json),
        ListFormat::Ids => {
            for s in &page.items {
                out!("{}", s.id)?;
            }
            return Ok(());
        }
        ListFormat::Table => {}
    }
    out!("{}", crate::table::header())?;
    for s in &page.items {
        out!("{}", Row::from_snapshot(s).render(false).trim_end())?;
    }
    if let Some(total) = page.total {
        out!("{} of {total} task(s)", page.items.len())?;
    }
    Ok(())
}

fn supported_actions(c: &Capabilities) -> Vec<&'static str> {
    [
        (c.cancel, "cancel"),
        (c.retry, "retry"),
        (c.rollback, "rollback"),
        (c.retry_step, "retry-step"),
        (c.skip_step, "skip-step"),
        (c.cancel_step, "cancel-step"),
        (c.delete, "delete"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// `tasktrack retry|rollback|cancel|retry-step|skip-step|cancel-step`.
pub async fn act(
    config: &Config,
    backend: &str,
    id: &str,
    action: TaskAction,
    yes: bool,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    let caps = provider.provider_capabilities();
    if !caps.supports(&action) {
        let kind = config.backend(backend)?.kind();
        let supported = supported_actions(&caps);
        return Err(CliError::usage(
            format!("backend {backend} ({kind}) cannot {}", action.name()),
            if supported.is_empty() {
                format!("{kind} backends support no control action")
            } else {
                format!("{kind} backends support: {}", supported.join(", "))
            },
        ));
    }
    let id = task_id(config, backend, &provider, id).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(
                format!("refusing to {action} task {id} without confirmation"),
                "pass --yes",
            ));
        }
        eprint!(
            "{} [y/N] ",
            output::terminal_safe(&format!("{action} task {id} on {backend}?"))
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(CliError::usage(
                "not confirmed; nothing was sent",
                "answer y, or pass --yes",
            ));
        }
    }
    let receipt = provider.perform(&id, action.clone()).await?;
    match receipt.message {
        Some(m) => out!("{action} sent to {backend} task {id}: {m}"),
        None => out!("{action} sent to {backend} task {id}"),
    }
}
