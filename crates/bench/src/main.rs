//! `tasktrack-bench`: tasktrack's `Tracker` against the naive polling loop,
//! over real loopback HTTP against the simulators.
//!
//! `cargo run --release -p tasktrack-bench` runs every scenario and prints
//! the table; `--scale` shrinks durations and intervals alike. The
//! simulators run in one child process and each measured client in another,
//! so the CPU time and peak memory reported are the client's alone.
//!
//! `cargo run --release -p tasktrack-bench -- soak --minutes 30` is the long
//! soak (not run in CI).

mod floor;
mod layers;
mod report;
mod soak;
mod store_bench;
mod throughput;

use report::print_table;
use throughput::{client, measure, serve_sims, start_sim_process};

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

pub(crate) const PROJECT: &str = "bench-project";

pub(crate) const INSTANCE: &str = "bench-instance";

#[derive(Parser)]
#[command(
    name = "tasktrack-bench",
    about = "Tracker vs the naive polling loop, over loopback HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Multiplies task durations (1-60 s) and poll intervals (2 s)
    /// [default: 1, or 0.25 with --quick].
    #[arg(long, global = true)]
    scale: Option<f64>,
    /// Only these scenarios (default: all).
    #[arg(long = "scenario", value_enum, global = true)]
    scenarios: Vec<Scenario>,
    /// The Tracker's poll policy: `default` is `PollPolicy::default()` (1 s
    /// growing to 30 s, ±20 % jitter) with its intervals scaled, what a
    /// user gets; `fixed` polls every 2 s (scaled) like the naive loop.
    #[arg(long, value_enum, default_value_t = Policy::Default)]
    policy: Policy,
    /// One shorter run (durations and intervals scaled by 0.25 unless
    /// --scale is given): a few minutes for every scenario.
    #[arg(long)]
    quick: bool,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Leave out the proxmoxer peer (it needs python3 with proxmoxer).
    #[arg(long)]
    no_peer: bool,
}

/// The Tracker's poll policy in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub(crate) enum Policy {
    /// `PollPolicy::default()`, intervals scaled.
    Default,
    /// Every 2 s (scaled), as the naive loop.
    Fixed,
}

impl Policy {
    /// As `--policy` spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Default => "default",
            Policy::Fixed => "fixed",
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Long soak: 10,000 tasks with faults sprinkled, then a fault-free drain;
    /// RSS at start and end.
    Soak {
        /// Minutes to run.
        #[arg(long, default_value_t = 30)]
        minutes: u64,
    },
    /// 10,000 tasks tracked by 3 replicas on Redis vs one in-memory tracker.
    Store {
        /// Tasks in the workload.
        #[arg(long, default_value_t = 10_000)]
        tasks: usize,
    },
    /// Client CPU per status request, one layer of the stack at a time,
    /// from a bare hyper client to the provider's snapshot.
    Layers {
        /// Rounds of every layer; the table shows each layer's median.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
        rounds: u16,
        /// Only these layers (repeatable), e.g. to profile one of them alone.
        #[arg(long, value_enum)]
        only: Vec<layers::Layer>,
    },
    /// (internal) Serve the four simulators.
    #[command(hide = true)]
    Sims,
    /// (internal) Track the tasks of a plan file and report.
    #[command(hide = true)]
    Client {
        /// The plan.
        plan: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub(crate) enum Scenario {
    /// 1,000 Proxmox tasks over 3 nodes.
    Proxmox,
    /// 1,000 OCP tasks.
    Ocp,
    /// 200 DCS tasks.
    Dcs,
    /// 10,000 tasks across all four.
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    Naive,
    Tracker,
    /// A bare hyper client asking OCP statuses (see `floor`).
    Floor,
    /// The peer Python users have: proxmoxer's `Tasks.blocking_status`, a
    /// thread per task, polling as often as the naive loop (2 s, scaled).
    Proxmoxer,
    /// The same at proxmoxer's default `polling_interval` (1 s, scaled),
    /// over 100 tasks.
    ProxmoxerDefault,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnostics on demand: `RUST_LOG=tasktrack_core=trace` logs to stderr.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let scale = cli.scale.unwrap_or(if cli.quick { 0.25 } else { 1.0 });
    if !(scale.is_finite() && (0.01..=100.0).contains(&scale)) {
        eprintln!("error: --scale must be between 0.01 and 100");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Cmd::Sims) => return serve_sims().await,
        Some(Cmd::Client { plan }) => return client(&plan).await,
        Some(Cmd::Store { tasks }) => {
            return exit_code(store_bench::store_bench(tasks, scale).await)
        }
        Some(Cmd::Layers { rounds, only }) => {
            return exit_code(layers::layers(usize::from(rounds), &only).await)
        }
        Some(Cmd::Soak { minutes }) => return exit_code(soak::soak(minutes).await),
        None => {}
    }
    let scenarios = if cli.scenarios.is_empty() {
        vec![
            Scenario::Proxmox,
            Scenario::Ocp,
            Scenario::Dcs,
            Scenario::Mixed,
        ]
    } else {
        cli.scenarios.clone()
    };
    let sims = match start_sim_process() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for scenario in scenarios {
        let peers: &[Mode] = if scenario == Scenario::Proxmox && !cli.no_peer {
            &[Mode::Proxmoxer, Mode::ProxmoxerDefault]
        } else {
            &[]
        };
        for &mode in [Mode::Naive, Mode::Tracker].iter().chain(peers) {
            eprintln!("running {scenario:?} with the {mode:?} client...");
            match measure(&sims, scenario, mode, scale, cli.policy).await {
                Ok(row) => rows.push(row),
                // The peer is a comparison, not the subject: without
                // python3 and proxmoxer the rest of the run still counts.
                Err(e) if peers.contains(&mode) => {
                    eprintln!("warning: no proxmoxer row: {e}");
                    break;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    eprintln!("running the floor (a bare hyper client)...");
    let floor = match measure(&sims, Scenario::Ocp, Mode::Floor, scale, cli.policy).await {
        Ok(row) => row,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.json {
        println!("{}", report::json_report(&rows, &floor, scale, cli.policy));
    } else {
        print_table(&rows, &floor, scale, cli.policy);
    }
    ExitCode::SUCCESS
}

/// A subcommand's outcome as the process's exit: an error is one line.
fn exit_code(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
