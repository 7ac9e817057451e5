//! Watch one OCP task until it ends, printing each change and subtask
//! progress: `cargo run --example ocp_watch`.
//!
//! By default against the simulator. Against a real OCP, set OCP_URL (e.g.
//! http://ocp.example.com:8080), OCP_USER, OCP_PASSWORD and OCP_TASK_ID; the
//! exit code is then 1 when the task failed.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use tasktrack::ocp::{OcpClient, OcpProvider};
use tasktrack::{Error, PollPolicy, Poller, Secret, TaskState, TaskStatus};
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::{SimBuilder, SimHandle};

async fn simulated() -> Result<(SimHandle, OcpClient, u64, PollPolicy), Error> {
    let ocp = Ocp::new("admin", "demo-password");
    let sim = SimBuilder::new(ocp.clone())
        .start()
        .await
        .map_err(|e| Error::invalid_input("simulator", e.to_string()))?;
    let ms = Duration::from_millis;
    let id = ocp.create(OcpTaskSpec::new(
        "Add zone",
        vec![
            OcpSubtaskSpec::new("Check hosts", ms(300), &[]),
            OcpSubtaskSpec::new("Install observer", ms(600), &[0]),
            OcpSubtaskSpec::new("Start observer", ms(300), &[1]),
            OcpSubtaskSpec::new("Add zone to cluster", ms(300), &[2]),
        ],
    ));
    let client =
        OcpClient::builder(sim.base_url(), "admin", &Secret::new("demo-password")).build()?;
    Ok((
        sim,
        client,
        id,
        PollPolicy::fixed(Duration::from_millis(150)),
    ))
}

async fn run() -> Result<bool, Error> {
    let env = |k: &str| std::env::var(k).ok();
    let (_sim, client, id, policy) = match (
        env("OCP_URL"),
        env("OCP_USER"),
        env("OCP_PASSWORD"),
        env("OCP_TASK_ID"),
    ) {
        (Some(url), Some(user), Some(password), Some(task)) => {
            let id = task.parse().map_err(|_| {
                Error::invalid_input(
                    "ocp",
                    format!("OCP_TASK_ID {task:?} is not a task instance id (a number)"),
                )
            })?;
            // OceanBase's own tool polls OCP every 20 s; start faster, back off to that.
            let policy = PollPolicy::default()
                .with_initial_interval(Duration::from_secs(2))
                .with_max_interval(Duration::from_secs(20));
            (
                None,
                OcpClient::builder(url, &user, &Secret::new(password)).build()?,
                id,
                policy,
            )
        }
        (None, None, None, None) => {
            let (sim, client, id, policy) = simulated().await?;
            println!("simulated OCP at {}", sim.base_url());
            (Some(sim), client, id, policy)
        }
        _ => {
            return Err(Error::invalid_input(
                "ocp",
                "set all of OCP_URL, OCP_USER, OCP_PASSWORD and OCP_TASK_ID, or none",
            ))
        }
    };
    let poller = Poller::new(OcpProvider::new(client), policy);
    let mut changes = std::pin::pin!(poller.watch(&id));
    let mut last = None;
    while let Some(task) = changes.next().await {
        let task = task?;
        let progress = task.progress().map(|p| {
            format!(
                "{}/{}",
                p.steps_done.unwrap_or(0),
                p.steps_total.unwrap_or(0)
            )
        });
        let current: Vec<String> = task
            .steps()
            .into_iter()
            .filter(|s| s.state == TaskState::Running)
            .map(|s| s.name)
            .collect();
        println!(
            "task {id} {:<22} subtasks {:<6} {}",
            task.vendor_state(),
            progress.unwrap_or_default(),
            current.join(", ")
        );
        last = Some(task);
    }
    let Some(last) = last else { return Ok(false) };
    if let Some(f) = last.failure() {
        println!("failed: {f}");
    }
    Ok(last.state() == TaskState::Succeeded)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
