//! The OCP control story against the simulator:
//! `cargo run --example ocp_retry_rollback`.
//!
//! A cluster upgrade fails at its third stage; its log is read; the subtask
//! is retried and fails again; it is skipped and the task completes.
//! Another task is rolled back. Impossible actions are refused locally.

use std::process::ExitCode;
use std::time::Duration;

use tasktrack::ocp::{OcpClient, OcpProvider};
use tasktrack::{
    Error, LogRange, PollPolicy, Poller, Secret, TaskAction, TaskProvider, TaskStatus,
};
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::SimBuilder;

async fn wait(poller: &Poller<OcpProvider>, id: u64) -> Result<(), Error> {
    let outcome = poller.wait(&id).await?;
    let progress = outcome
        .status
        .progress()
        .and_then(|p| p.percent)
        .unwrap_or(0.0);
    println!(
        "  task {id}: {} ({progress:.0}% of subtasks done)",
        outcome.status.vendor_state()
    );
    Ok(())
}

async fn run() -> Result<(), Error> {
    let ocp = Ocp::new("admin", "demo-password");
    let sim = SimBuilder::new(ocp.clone())
        .start()
        .await
        .map_err(|e| Error::invalid_input("simulator", e.to_string()))?;
    println!("simulated OCP at {}", sim.base_url());
    let client =
        OcpClient::builder(sim.base_url(), "admin", &Secret::new("demo-password")).build()?;
    let provider = OcpProvider::new(client);
    let poller = Poller::new(
        provider.clone(),
        PollPolicy::fixed(Duration::from_millis(100)),
    );
    let ms = Duration::from_millis;

    println!("1. an upgrade whose third stage fails twice");
    let upgrade = ocp.create(OcpTaskSpec::new(
        "Upgrade cluster",
        vec![
            OcpSubtaskSpec::new("Prepare host", ms(200), &[]),
            OcpSubtaskSpec::new("Install on zone1", ms(300), &[0]).with_parallel_idx(0),
            OcpSubtaskSpec::new("Install on zone2", ms(400), &[0]).with_parallel_idx(1),
            OcpSubtaskSpec::new("Start observer", ms(200), &[1, 2])
                .with_fail_runs(2)
                .with_log(["observer exited with code 1"]),
            OcpSubtaskSpec::new("Check cluster", ms(100), &[3]),
        ],
    ));
    wait(&poller, upgrade).await?;
    let failed = provider
        .status(&upgrade)
        .await?
        .failed_subtasks()
        .first()
        .map(|s| s.id)
        .unwrap_or_default();
    println!("2. its log");
    for line in provider.logs(&upgrade, LogRange::Tail(3)).await? {
        println!("  | {}", line.text);
    }
    println!("3. skipping a subtask that did not fail is refused locally");
    if let Err(e) = provider
        .act(
            &upgrade,
            TaskAction::SkipStep(ocp.subtask_ids(upgrade)[4].to_string()),
        )
        .await
    {
        println!("  refused: {e}");
    }
    println!("4. retry subtask {failed}");
    provider
        .act(&upgrade, TaskAction::RetryStep(failed.to_string()))
        .await?;
    wait(&poller, upgrade).await?;
    println!("5. skip subtask {failed}: the downstream goes on");
    provider
        .act(&upgrade, TaskAction::SkipStep(failed.to_string()))
        .await?;
    wait(&poller, upgrade).await?;

    println!("6. a tenant creation that fails, rolled back");
    let tenant = ocp.create(OcpTaskSpec::new(
        "Create tenant",
        vec![
            OcpSubtaskSpec::new("Create unit", ms(200), &[]),
            OcpSubtaskSpec::new("Create resource pool", ms(200), &[0]),
            OcpSubtaskSpec::new("Create tenant", ms(200), &[1]).with_fail_runs(u32::MAX),
        ],
    ));
    wait(&poller, tenant).await?;
    provider.act(&tenant, TaskAction::Rollback).await?;
    wait(&poller, tenant).await?;
    for step in provider.status(&tenant).await?.steps() {
        println!("  {:<22} {}", step.name, step.vendor_state);
    }
    println!("7. rolling back again is refused locally");
    if let Err(e) = provider.act(&tenant, TaskAction::Rollback).await {
        println!("  refused: {e}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
