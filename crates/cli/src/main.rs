//! `tasktrack`: follow long-running infrastructure tasks from the command line.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod config;
mod demo;
mod error;
mod logging;
mod notify;
mod output;
mod store;
mod table;
#[cfg(feature = "otel")]
mod telemetry;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tasktrack_core::{TaskAction, TaskState};
use tasktrack_sim::standalone::{SimOptions, VendorName, CONTROL_API_HELP};

use crate::config::Config;
use crate::error::CliError;

/// Requests a one-shot command (list, logs, status, an action) sends to a
/// backend at most.
const ONE_SHOT_REQUESTS: u64 = 10_000;

/// Track long-running tasks on Proxmox VE, Huawei Cloud KPS and DCS, and
/// OceanBase OCP through one tool.
///
/// Backends are named in a config file (`tasktrack.toml`; `tasktrack demo
/// --print-config` prints an example). Exit codes: 0 success, 1 the task
/// failed, 2 usage, configuration, credential or connection problem, 3 timeout.
#[derive(Parser, Debug)]
#[command(name = "tasktrack", version)]
struct Cli {
    /// Config file (default: ./tasktrack.toml, else
    /// ~/.config/tasktrack/tasktrack.toml).
    #[arg(long, global = true, env = "TASKTRACK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log lines on stderr (-v info, -vv debug, -vvv trace); RUST_LOG
    /// overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No log lines at all (errors still print one line).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log lines as text or as JSON objects (for a log collector).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run four simulated backends with ~40 tasks in one live table (~30 s).
    Demo {
        /// Print one JSON task event per line instead of the table.
        #[arg(long)]
        json: bool,
        /// Print a config for simulators started with `tasktrack sim`, and exit.
        #[arg(long)]
        print_config: bool,
        /// Multiply every task's duration (tests use small values).
        #[arg(long, default_value_t = 1.0, hide = true, value_parser = args::time_scale)]
        time_scale: f64,
        /// Also serve the live web dashboard (and keep it up after the run).
        #[arg(long)]
        web: bool,
        /// Address of the web dashboard.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Serve the live web dashboard of every configured backend.
    Serve {
        /// Address to listen on (non-loopback needs a token).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Share the tracked set and replay events (Last-Event-ID) from a store.
        #[arg(long, env = "TASKTRACK_STORE")]
        store: Option<String>,
        /// Allow control actions through the API (POST, bearer token required).
        #[arg(long)]
        allow_actions: bool,
        /// The bearer token for actions (and for a non-loopback address).
        #[arg(long, env = "TASKTRACK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Connections held at once; more get 503 (lowered to fit the
        /// file-descriptor limit, which is raised at start where allowed).
        #[arg(long, default_value_t = web::DEFAULT_MAX_CONNECTIONS, value_parser = args::max_connections)]
        max_connections: usize,
        /// The URL people reach the dashboard at (behind a proxy, or a DNS
        /// name): requests naming another `Host` are refused.
        #[arg(long, value_parser = args::public_url)]
        public_url: Option<url::Url>,
    },
    /// Wait for a task (with a progress bar), or for many: exit 0 on success, 1 on failure, 3 on timeout.
    Wait {
        /// Backend name from the config.
        backend: String,
        /// Task ids (`-` reads more from stdin, whitespace-separated).
        #[arg(required = true)]
        task_ids: Vec<String>,
        /// With many tasks: done when any one succeeds.
        #[arg(long, conflicts_with = "at_least")]
        any: bool,
        /// With many tasks: done when at least N succeed.
        #[arg(long, value_name = "N")]
        at_least: Option<usize>,
        /// With many tasks: stop at the first failure.
        #[arg(long)]
        fail_fast: bool,
        /// Give up (exit 3, naming the stall) on a task whose state,
        /// progress and steps have not changed for this long.
        #[arg(long, value_parser = args::timeout)]
        stall_after: Option<Duration>,
        /// Give up (exit 3) on a task still pending after this long.
        #[arg(long, value_parser = args::timeout)]
        pending_for: Option<Duration>,
        /// Give up (exit 3) on a task still running after this long, however
        /// much it changes.
        #[arg(long, value_parser = args::timeout)]
        running_for: Option<Duration>,
        /// Give up (exit 3) when one step of a task runs longer than this.
        #[arg(long, value_parser = args::timeout)]
        step_for: Option<Duration>,
        /// Give up after this long.
        #[arg(long, default_value = "1h", value_parser = args::timeout)]
        timeout: Duration,
        /// Poll at this fixed interval (default: 1 s backing off to 30 s).
        #[arg(long, value_parser = args::interval)]
        interval: Option<Duration>,
        /// Print each status as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Follow running (and show recently failed) tasks of backends live.
    Watch {
        /// Backend names (default: all).
        backends: Vec<String>,
        /// Print task events as JSON lines.
        #[arg(long)]
        json: bool,
        /// Share the tracked set through a store (file:PATH, redis://...).
        #[arg(long, env = "TASKTRACK_STORE")]
        store: Option<String>,
        /// List the backends again this often, to pick up new tasks.
        #[arg(long, default_value = "10s", value_parser = args::interval)]
        relist: Duration,
        /// Exit once nothing listed is still running (default: keep watching
        /// until Ctrl-C or SIGTERM).
        #[arg(long)]
        exit_when_idle: bool,
    },
    /// Add a task to a store's shared tracked set (the fleet of workers tracks it).
    Track {
        /// Backend name.
        backend: String,
        /// Task id.
        task_id: String,
        /// The store (file:PATH, redis://..., rediss://...).
        #[arg(long, env = "TASKTRACK_STORE")]
        store: String,
    },
    /// Print a store's durable event log.
    Events {
        /// The store.
        #[arg(long, env = "TASKTRACK_STORE")]
        store: String,
        /// Start after this cursor.
        #[arg(long, default_value = "0")]
        after: String,
        /// Keep printing new events.
        #[arg(long)]
        follow: bool,
        /// JSON lines (with their cursor).
        #[arg(long)]
        json: bool,
    },
    /// Run one tracker replica on a store until interrupted (Ctrl-C releases its leases).
    Worker {
        /// The store.
        #[arg(long, env = "TASKTRACK_STORE")]
        store: String,
        /// This replica's name (default: unique per process).
        #[arg(long)]
        owner: Option<String>,
        /// Lease time-to-live: a dead worker's tasks move after this long.
        #[arg(long, default_value = "15s", value_parser = args::lease_ttl)]
        lease_ttl: Duration,
        /// Exit once the shared tracked set is empty.
        #[arg(long)]
        exit_when_idle: bool,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
        /// Serve /metrics (Prometheus), /healthz and /readyz on this address.
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// List a backend's tasks.
    List {
        /// Backend name.
        backend: String,
        /// Only these states (repeatable): pending, running, succeeded, failed, cancelled.
        #[arg(long = "state", value_parser = args::state)]
        states: Vec<TaskState>,
        /// Only this kind (task type or name).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        /// One full task id per line, for scripts (`tasktrack wait pve $(tasktrack list pve --ids)`).
        #[arg(long, conflicts_with = "json")]
        ids: bool,
    },
    /// Print a task's log.
    Logs {
        /// Backend name.
        backend: String,
        /// Task id.
        task_id: String,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        /// Keep printing new lines until the task ends; exit 0 when it
        /// succeeded, 1 when it did not.
        #[arg(long, short = 'f')]
        follow: bool,
        /// With --follow: how often to look for new lines.
        #[arg(long, default_value = "1s", value_parser = args::interval)]
        interval: Duration,
    },
    /// Show a task's status, progress and steps.
    Status {
        /// Backend name.
        backend: String,
        /// Task id.
        task_id: String,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retry a failed task (OCP).
    Retry(ActionArgs),
    /// Roll a failed task back (OCP).
    Rollback(ActionArgs),
    /// Cancel (stop) a running task (Proxmox VE).
    Cancel(ActionArgs),
    /// Retry a failed step (OCP subtask).
    RetryStep(StepArgs),
    /// Skip a failed step (OCP subtask).
    SkipStep(StepArgs),
    /// Cancel a running step (OCP subtask).
    CancelStep(StepArgs),
    /// Work with a store file.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Run one simulator in the foreground.
    #[command(after_help = CONTROL_API_HELP)]
    Sim {
        /// Which vendor's API to speak.
        #[arg(value_enum)]
        vendor: VendorName,
        #[command(flatten)]
        options: Box<SimOptions>,
    },
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Verify a file store (exit 0 when sound, 2 when empty or damaged).
    Check {
        /// The store file (a `file:` store's path).
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct ActionArgs {
    /// Backend name.
    backend: String,
    /// Task id.
    task_id: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(clap::Args, Debug)]
struct StepArgs {
    /// Backend name.
    backend: String,
    /// Task id.
    task_id: String,
    /// Step (subtask) id.
    step_id: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = || Config::load(cli.config.as_deref());
    // A one-shot command makes a bounded number of requests whatever a
    // server answers (pages that never end, redirects, retries).
    let one_shot = || config().map(|c| c.with_request_budget(ONE_SHOT_REQUESTS));
    let act = |a: ActionArgs, action: TaskAction| async move {
        commands::act(&one_shot()?, &a.backend, &a.task_id, action, a.yes).await
    };
    let step_act = |s: StepArgs, action: fn(String) -> TaskAction| async move {
        commands::act(
            &one_shot()?,
            &s.backend,
            &s.task_id,
            action(s.step_id),
            s.yes,
        )
        .await
    };
    match cli.command {
        Command::Demo {
            print_config: true, ..
        } => {
            print!("{}", demo::example_config());
            Ok(())
        }
        Command::Demo {
            json,
            time_scale,
            web,
            listen,
            ..
        } => {
            if web {
                web::check_listen(listen, None)?;
            }
            demo::run(demo::DemoOptions {
                json,
                time_scale,
                web: web.then_some(listen),
            })
            .await
        }
        Command::Serve {
            listen,
            store,
            allow_actions,
            token,
            max_connections,
            public_url,
        } => {
            let token = token
                .filter(|t| !t.is_empty())
                .map(tasktrack_core::Secret::new);
            web::check_listen(listen, token.as_ref())?;
            if allow_actions && token.is_none() {
                return Err(CliError::usage(
                    "--allow-actions needs a token",
                    "set --token or TASKTRACK_TOKEN",
                ));
            }
            let store = store::open_if_given(store).await?;
            let options = commands::ServeOptions {
                listen,
                store,
                allow_actions,
                token,
                max_connections,
                public_url,
            };
            let config = match &options.store {
                Some(store) => config()?.with_shared_budget(store.clone()),
                None => config()?,
            };
            commands::serve(&config, options).await
        }
        Command::Wait {
            backend,
            task_ids,
            any,
            at_least,
            fail_fast,
            stall_after,
            pending_for,
            running_for,
            step_for,
            timeout,
            interval,
            json,
        } => {
            let ids = args::with_stdin_ids(task_ids)?;
            let poll = commands::WaitPolicy {
                timeout,
                interval,
                stall_after,
                pending_for,
                running_for,
                step_for,
            };
            if let [id] = ids.as_slice() {
                if !any && at_least.is_none() {
                    return commands::wait(&config()?, &backend, id, poll, json).await;
                }
            }
            let goal = match (any, at_least) {
                (true, _) => commands::Goal::Any,
                (_, Some(n)) => commands::Goal::AtLeast(n),
                _ => commands::Goal::All,
            };
            let opts = commands::GroupWait {
                goal,
                fail_fast,
                poll,
                json,
            };
            commands::wait_group(&config()?, &backend, &ids, opts).await
        }
        Command::Watch {
            backends,
            json,
            store,
            relist,
            exit_when_idle,
        } => {
            let store = store::open_if_given(store).await?;
            let opts = commands::WatchOptions {
                json,
                relist,
                exit_when_idle,
            };
            commands::watch(&config()?, &backends, store, opts).await
        }
        Command::Track {
            backend,
            task_id,
            store,
        } => commands::track(&config()?, &backend, &task_id, store::open(&store).await?).await,
        Command::Events {
            store,
            after,
            follow,
            json,
        } => commands::events(store::open(&store).await?, after, follow, json).await,
        Command::Worker {
            store,
            owner,
            lease_ttl,
            exit_when_idle,
            json,
            metrics_listen,
        } => {
            let store = store::open(&store).await?;
            let config = config()?.with_shared_budget(store.clone());
            if let Some(addr) = metrics_listen {
                let bound = web::ops::serve(addr, Some(store.clone())).await?;
                output::note!("metrics: http://{bound}/metrics");
            }
            let opts = commands::WorkerOptions {
                owner,
                lease_ttl,
                exit_when_idle,
                json,
            };
            commands::worker(&config, store, opts).await
        }
        Command::List {
            backend,
            states,
            kind,
            limit,
            json,
            ids,
        } => {
            let format = match (json, ids) {
                (true, _) => commands::ListFormat::Json,
                (_, true) => commands::ListFormat::Ids,
                _ => commands::ListFormat::Table,
            };
            commands::list(&one_shot()?, &backend, &states, kind, limit, format).await
        }
        Command::Logs {
            backend,
            task_id,
            tail,
            json,
            follow: false,
            ..
        } => commands::logs(&one_shot()?, &backend, &task_id, tail, json).await,
        Command::Logs {
            backend,
            task_id,
            json,
            interval,
            ..
        } => commands::follow_logs(&config()?, &backend, &task_id, interval, json).await,
        Command::Status {
            backend,
            task_id,
            json,
        } => commands::status(&one_shot()?, &backend, &task_id, json).await,
        Command::Retry(a) => act(a, TaskAction::Retry).await,
        Command::Rollback(a) => act(a, TaskAction::Rollback).await,
        Command::Cancel(a) => act(a, TaskAction::Cancel).await,
        Command::RetryStep(s) => step_act(s, TaskAction::RetryStep).await,
        Command::SkipStep(s) => step_act(s, TaskAction::SkipStep).await,
        Command::CancelStep(s) => step_act(s, TaskAction::CancelStep).await,
        Command::Store {
            command: StoreCommand::Check { file },
        } => {
            let summary = tasktrack_core::FileStore::check(&file)?;
            output::out!(
                "store file {} is sound: {} tracked task(s), {} event(s), {} terminal",
                file.display(),
                summary.entries,
                summary.events,
                summary.finals
            )
        }
        Command::Sim { vendor, options } => {
            let code = tasktrack_sim::standalone::serve(vendor, *options).await;
            if code == ExitCode::SUCCESS {
                Ok(())
            } else {
                Err(CliError::usage(
                    "the simulator could not start",
                    "pick another --port",
                ))
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    logging::quiet_panics();
    let cli = Cli::parse();
    let service = matches!(cli.command, Command::Worker { .. } | Command::Serve { .. });
    let telemetry = logging::init(cli.log_format, cli.quiet, cli.verbose, service);
    let outcome = run(cli).await;
    telemetry.shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (CliError::TaskFailed | CliError::Closed)) => e.exit_code(),
        Err(e) => {
            output::note!("{e}");
            e.exit_code()
        }
    }
}
