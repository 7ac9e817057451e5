//! Commands that share a tracked set through a store: watch, track,
//! events and worker.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tasktrack_core::{Error, TaskFilter, TaskState, TrackStore, TrackedEntry, Tracker};

use super::serve::shutdown_signal;
use super::task::{log_source, task_id};
use crate::config::Config;
use crate::error::CliError;
use crate::output::{self, note, out};
use crate::table::LiveTable;

/// What `tasktrack watch` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Task events as JSON lines.
    pub json: bool,
    /// How often the backends are listed again.
    pub relist: Duration,
    /// Exit once nothing listed is still running.
    pub exit_when_idle: bool,
}

/// `tasktrack watch`: the running (and failed) tasks of backends, live,
/// listed again every `relist` so tasks started later appear too.
pub async fn watch(
    config: &Config,
    backends: &[String],
    store: Option<Arc<dyn TrackStore>>,
    opts: WatchOptions,
) -> Result<(), CliError> {
    let json = opts.json;
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
        builder = builder.with_store(store);
    }
    let mut providers = Vec::new();
    for name in &names {
        let p = config.provider(name)?;
        builder = builder.with_provider(name.clone(), p.clone());
        providers.push((name.clone(), p));
    }
    let (tracker, mut events) = builder.build();
    let mut table = LiveTable::new(!json);
    for (name, p) in &providers {
        if !p.provider_capabilities().list {
            table.note(&format!("{name}: cannot list tasks; skipped"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut live = 0usize;
    let mut ended = 0usize;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut relist = tokio::time::interval(opts.relist);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut listed_once = false;
    loop {
        if listed_once && opts.exit_when_idle && ended >= live {
            break;
        }
        tokio::select! {
            _ = relist.tick() => {
                live += list_into(&providers, &tracker, &mut table, &mut seen, json).await?;
                listed_once = true;
            }
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
            _ = &mut stop => break,
        }
    }
    tracker.stop().await;
    let text = table.finish();
    if !json {
        crate::output::write_block(&text)?;
    }
    Ok(())
}

/// Lists every backend that can list, shows what is new and tracks what
/// still runs; how many new tasks are tracked.
async fn list_into(
    providers: &[(String, Arc<dyn tasktrack_core::DynTaskProvider>)],
    tracker: &Tracker,
    table: &mut LiveTable,
    seen: &mut std::collections::HashSet<(String, String)>,
    json: bool,
) -> Result<usize, CliError> {
    let mut tracked = 0;
    for (name, p) in providers {
        if !p.provider_capabilities().list {
            continue;
        }
        let filter = TaskFilter::new()
            .with_states([
                TaskState::Pending,
                TaskState::Running,
                TaskState::Failed,
                TaskState::Unknown,
            ])
            .with_limit(200);
        let page = match p.list_snapshots(&filter).await {
            Ok(page) => page,
            Err(e) => {
                table.note(&format!("{name}: {}", CliError::from(e)));
                continue;
            }
        };
        for s in page.items {
            // Each task counts once, across listings and within one (a
            // listing may repeat an id: pages shifting, a hostile server).
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
                tracked += 1;
            }
        }
    }
    Ok(tracked)
}

/// `tasktrack track`: adds a task to a store's tracked set.
pub async fn track(
    config: &Config,
    backend: &str,
    id: &str,
    store: Arc<dyn TrackStore>,
) -> Result<(), CliError> {
    let provider = config.provider(backend)?;
    let id = task_id(config, backend, &provider, id).await?;
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
    let stop = shutdown_signal();
    tokio::pin!(stop);
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
                _ = &mut stop => return Ok(()),
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
        .with_store(store.clone())
        .with_lease_ttl(opts.lease_ttl);
    if let Some(owner) = &opts.owner {
        builder = builder.with_owner(owner.clone());
    }
    let owner = builder.owner().to_owned();
    for name in config.backends.keys() {
        builder = builder.with_provider(name.clone(), config.provider(name)?);
    }
    // Checked before anything starts: a bad sink is a usage error now, not
    // a silent gap in notifications later.
    let sinks = config.sinks()?;
    let (stop_notifying, notify_stop) = tokio::sync::watch::channel(false);
    let notifiers = crate::notify::spawn(
        sinks.clone(),
        store.clone(),
        owner,
        opts.lease_ttl,
        notify_stop,
    )?;
    let (tracker, mut events) = builder.build();
    if !opts.json {
        note!(
            "worker running on {} backend(s); Ctrl-C or SIGTERM stops it and releases its leases",
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
    // One listener for the whole run, so a signal between two turns of the
    // loop is not missed.
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(event) => print(&event),
                // Only stop() ends the stream; ending on its own means the
                // scheduler died, and a supervisor must hear about it.
                None => return Err(scheduler_died()),
            },
            _ = idle_check.tick(), if opts.exit_when_idle => {
                if tracker.stats().tracked == 0
                    && store_is_empty(&store).await
                    && crate::notify::caught_up(&store, &sinks).await
                {
                    break;
                }
            }
            _ = &mut stop => {
                super::serve::exit_on_second_signal();
                break;
            }
        }
    }
    // Events already emitted are printed before exiting: the stream ends once
    // the scheduler has stopped.
    super::serve::stop_within(&tracker).await;
    while let Some(event) = events.next().await {
        print(&event);
    }
    let _ = stop_notifying.send(true);
    crate::notify::join(notifiers).await;
    Ok(())
}

pub(super) fn scheduler_died() -> CliError {
    CliError::usage(
        "the tracker stopped unexpectedly",
        "run again with RUST_LOG=tasktrack=debug and report what it logs",
    )
}

async fn store_is_empty(store: &Arc<dyn TrackStore>) -> bool {
    matches!(store.tracked_count().await, Ok(0))
}

/// Log lines read per request while following.
const FOLLOW_PAGE: usize = 500;

/// `tasktrack logs --follow`: the status first, then every line written
/// since, so nothing written just before the end is lost; ends with the
/// task's final state.
pub async fn follow_logs(
    config: &Config,
    backend: &str,
    id: &str,
    interval: Duration,
    json: bool,
) -> Result<(), CliError> {
    let (provider, id) = log_source(config, backend, id).await?;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut next: u64 = 0;
    let mut transient = 0u32;
    loop {
        let status = match provider.snapshot(&id).await {
            Ok(s) => {
                transient = 0;
                s
            }
            Err(e) if e.is_retryable() && transient < 5 => {
                transient += 1;
                tokio::time::sleep(interval).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // At most 200 pages a round: a log growing faster than it is read
        // is still followed, a round at a time.
        for _ in 0..200 {
            let range = tasktrack_core::LogRange::Range {
                start: next,
                limit: FOLLOW_PAGE,
            };
            let lines = provider.log_lines(&id, range).await?;
            for line in &lines {
                if json {
                    output::json(line)?;
                } else {
                    out!("{:>5} {}", line.n, line.text)?;
                }
            }
            next += lines.len() as u64;
            if lines.len() < FOLLOW_PAGE {
                break;
            }
        }
        if status.state.is_terminal() {
            note!(
                "{backend} task {id}: {} ({})",
                status.state,
                status.vendor_state
            );
            return if status.state.is_unsuccessful() {
                Err(CliError::TaskFailed)
            } else {
                Ok(())
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut stop => return Ok(()),
        }
    }
}
