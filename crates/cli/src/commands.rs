//! The commands that work on configured backends.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tasktrack_core::{
    Capabilities, DynTaskProvider, ErasedProvider, Error, LogRange, PollPolicy, Poller, TaskAction,
    TaskFilter, TaskSnapshot, TaskState, TaskStatus, TrackStore, TrackedEntry, Tracker,
};

use crate::config::Config;
use crate::error::CliError;
use crate::output::{self, note, out};
use crate::table::{LiveTable, Row};

/// Parses an id for a backend, saying the expected form when it is wrong.
fn task_id(
    config: &Config,
    backend: &str,
    provider: &Arc<dyn DynTaskProvider>,
    id: &str,
) -> Result<String, CliError> {
    let form = config.backend(backend)?.id_form();
    provider.canonical_id(id).map_err(|e| {
        let first = e.to_string();
        CliError::usage(
            first,
            format!(
                "a {} task id is {form}",
                config.backend(backend).map_or("", |b| b.kind())
            ),
        )
    })
}

/// How far past `--timeout` the log read after a failure may go.
const LOG_GRACE: Duration = Duration::from_millis(900);

/// `tasktrack wait`.
pub async fn wait(
    config: &Config,
    backend: &str,
    id: &str,
    timeout: Duration,
    interval: Option<Duration>,
    json: bool,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id)?;
    let policy = match interval {
        Some(i) => PollPolicy::fixed(i),
        None => PollPolicy::default(),
    }
    .with_deadline(Some(timeout));
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
    let id = task_id(config, backend, &provider, id)?;
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
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id)?;
    if !provider.provider_capabilities().logs {
        return Err(CliError::usage(
            format!(
                "backend {backend} ({}) has no task logs",
                config.backend(backend)?.kind()
            ),
            "try `tasktrack status` instead",
        ));
    }
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

/// `tasktrack list`.
pub async fn list(
    config: &Config,
    backend: &str,
    states: &[TaskState],
    kind: Option<String>,
    limit: Option<usize>,
    json: bool,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    if !provider.provider_capabilities().list {
        return Err(CliError::usage(
            format!("backend {backend} cannot list tasks"),
            "query one task with `tasktrack status`",
        ));
    }
    let filter = TaskFilter {
        states: states.to_vec(),
        kind,
        limit,
        ..TaskFilter::default()
    };
    let page = provider.list_snapshots(&filter).await?;
    if json {
        return page.items.iter().try_for_each(output::json);
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
    let id = task_id(config, backend, &provider, id)?;
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

/// `tasktrack watch`: running and failed tasks listed from the backends,
/// the running ones followed live until they end (or Ctrl-C).
pub async fn watch(
    config: &Config,
    backends: &[String],
    json: bool,
    store: Option<Arc<dyn TrackStore>>,
) -> Result<(), CliError> {
    let names: Vec<String> = if backends.is_empty() {
        config.backends.keys().cloned().collect()
    } else {
        backends.to_vec()
    };
    if names.is_empty() {
        return Err(CliError::usage(
            format!("{} defines no backend", config.path.display()),
            "add a [backends.NAME] section",
        ));
    }
    let mut builder = Tracker::builder();
    if let Some(store) = store {
        builder = builder.store(store);
    }
    let mut providers = Vec::new();
    for name in &names {
        let p = config.provider(name)?;
        builder = builder.provider(name.clone(), p.clone());
        providers.push((name.clone(), p));
    }
    let (tracker, mut events) = builder.build();
    let mut table = LiveTable::new(!json);
    let mut live = 0usize;
    let mut seen = std::collections::HashSet::new();
    for (name, p) in &providers {
        if !p.provider_capabilities().list {
            table.note(&format!("{name}: cannot list tasks; skipped"));
            continue;
        }
        let filter = TaskFilter {
            states: vec![
                TaskState::Pending,
                TaskState::Running,
                TaskState::Failed,
                TaskState::Unknown,
            ],
            limit: Some(200),
            ..TaskFilter::default()
        };
        let page = match p.list_snapshots(&filter).await {
            Ok(page) => page,
            Err(e) => {
                table.note(&format!("{name}: {}", CliError::from(e)));
                continue;
            }
        };
        for s in page.items {
            // A listing may repeat an id (pages shifting under us, or a
            // hostile server): each task counts once.
            if !seen.insert((name.clone(), s.id.clone())) {
                continue;
            }
            if json {
                output::json(&s)?;
            }
            if s.state.is_terminal() {
                table.show(&s);
            } else {
                table.ensure(name, &s.id);
                table.show(&s);
                tracker
                    .track(name, &s.id)
                    .map_err(|e: Error| CliError::from(e))?;
                live += 1;
            }
        }
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut ended = 0;
    while ended < live {
        tokio::select! {
            e = events.next() => match e {
                Some(event) => {
                    if json {
                        output::json(&event)?;
                    }
                    table.apply(&event);
                    if event.is_final() {
                        ended += 1;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => table.tick(),
            _ = shutdown_signal() => break,
        }
    }
    tracker.stop().await;
    let text = table.finish();
    if !json {
        out!("{text}")?;
    }
    Ok(())
}

/// `tasktrack track`: adds a task to a store's tracked set.
pub async fn track(
    config: &Config,
    backend: &str,
    id: &str,
    store: Arc<dyn TrackStore>,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id)?;
    store.put(&TrackedEntry::new(backend, id.clone())).await?;
    out!("{backend} task {id} added to the tracked set")
}

/// `tasktrack events`: prints the durable event log.
pub async fn events(
    store: Arc<dyn TrackStore>,
    mut after: String,
    follow: bool,
    json: bool,
) -> Result<(), CliError> {
    loop {
        let page = store.read(&after, 1000).await?;
        for (cursor, event) in &page {
            if json {
                output::json(&serde_json::json!({ "cursor": cursor, "event": event }))?;
            } else {
                let state = event
                    .state()
                    .map_or("gave up".to_owned(), |s| s.to_string());
                out!(
                    "{cursor:>20}  {} {:<10} {} {}",
                    event.at.format("%H:%M:%S"),
                    event.provider,
                    state,
                    event.id
                )?;
            }
        }
        if let Some((last, _)) = page.last() {
            after = last.clone();
        }
        if page.len() < 1000 {
            if !follow {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown_signal() => return Ok(()),
            }
        }
    }
}

/// Options of `tasktrack worker`.
#[derive(Debug)]
pub struct WorkerOptions {
    /// Replica name.
    pub owner: Option<String>,
    /// Lease TTL.
    pub lease_ttl: Duration,
    /// Exit when nothing is left to track.
    pub exit_when_idle: bool,
    /// JSON lines.
    pub json: bool,
}

/// `tasktrack worker`: one tracker replica on a shared store.
pub async fn worker(
    config: &Config,
    store: Arc<dyn TrackStore>,
    opts: WorkerOptions,
) -> Result<(), CliError> {
    let mut builder = Tracker::builder()
        .store(store.clone())
        .lease_ttl(opts.lease_ttl);
    if let Some(owner) = &opts.owner {
        builder = builder.owner(owner.clone());
    }
    for name in config.backends.keys() {
        builder = builder.provider(name.clone(), config.provider(name)?);
    }
    let (tracker, mut events) = builder.build();
    if !opts.json {
        note!(
            "worker running on {} backend(s); Ctrl-C stops it and releases its leases",
            config.backends.len()
        );
    }
    // A worker is a service: its output going away does not stop tracking.
    let print = |event: &tasktrack_core::TaskEvent| {
        let _ = if opts.json {
            output::json(event)
        } else {
            let state = event
                .state()
                .map_or("gave up".to_owned(), |s| s.to_string());
            out!("{} {} {state}", event.provider, event.id)
        };
    };
    let mut idle_check = tokio::time::interval(opts.lease_ttl.max(Duration::from_millis(300)));
    idle_check.tick().await;
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(event) => print(&event),
                // Only stop() ends the stream; ending on its own means the
                // scheduler died, and a supervisor must hear about it.
                None => return Err(scheduler_died()),
            },
            _ = idle_check.tick(), if opts.exit_when_idle => {
                if tracker.stats().tracked == 0 && store_is_empty(&store).await {
                    break;
                }
            }
            _ = shutdown_signal() => break,
        }
    }
    // Events already emitted are printed before exiting: the stream ends once
    // the scheduler has stopped.
    tracker.stop().await;
    while let Some(event) = events.next().await {
        print(&event);
    }
    Ok(())
}

fn scheduler_died() -> CliError {
    CliError::usage(
        "the tracker stopped unexpectedly",
        "run again with RUST_LOG=tasktrack=debug and report what it logs",
    )
}

async fn store_is_empty(store: &Arc<dyn TrackStore>) -> bool {
    matches!(store.tracked_count().await, Ok(0))
}

/// What `tasktrack serve` was asked for.
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// Shared tracked set and event log.
    pub store: Option<Arc<dyn TrackStore>>,
    /// Whether control actions are allowed.
    pub allow_actions: bool,
    /// The bearer token.
    pub token: Option<tasktrack_core::Secret>,
    /// Connections held at once.
    pub max_connections: usize,
}

/// `tasktrack serve`: the web dashboard over every configured backend.
pub async fn serve(config: &Config, options: ServeOptions) -> Result<(), CliError> {
    let mut named = Vec::new();
    let mut builder = Tracker::builder();
    if let Some(s) = &options.store {
        builder = builder.store(s.clone());
    }
    for name in config.backends.keys() {
        let p = config.provider(name)?;
        builder = builder.provider(name.clone(), p.clone());
        named.push((name.clone(), p));
    }
    let (tracker, mut events) = builder.build();
    let dashboard = crate::web::Dashboard::new(
        named.clone(),
        options.store,
        options.allow_actions,
        options.token,
    );
    let bound =
        crate::web::start(dashboard.clone(), options.listen, options.max_connections).await?;
    let _ = out!(
        "dashboard: http://{bound}/ ({} backend(s); Ctrl-C stops)",
        named.len()
    );
    // Each backend is listed on its own, off this loop: a slow one cannot
    // hold up the events of the others.
    let listings: Vec<_> = named
        .iter()
        .filter(|(_, p)| p.provider_capabilities().list)
        .map(|(name, p)| {
            crate::web::relist::spawn(
                dashboard.clone(),
                tracker.clone(),
                name.clone(),
                p.clone(),
                crate::web::relist::EVERY,
                crate::web::relist::TIMEOUT,
            )
        })
        .collect();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let result = loop {
        tokio::select! {
            e = events.next() => match e {
                Some(event) => dashboard.publish(&event),
                None => break Err(scheduler_died()),
            },
            _ = &mut stop => break Ok(()),
        }
    };
    for listing in listings {
        listing.abort();
    }
    tracker.stop().await;
    result
}

/// Resolves on Ctrl-C or SIGTERM: either is a clean shutdown.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
