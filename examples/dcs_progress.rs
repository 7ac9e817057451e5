//! Watch a DCS background task with a progress bar and its step names:
//! `cargo run --example dcs_progress`.
//!
//! By default against a DCS simulator running a three-step scale-out.
//! Against a real or compatible endpoint, set HUAWEICLOUD_DCS_ENDPOINT,
//! HUAWEICLOUD_PROJECT_ID, CLOUD_SDK_AK + CLOUD_SDK_SK (or HUAWEICLOUD_TOKEN),
//! DCS_INSTANCE_ID and DCS_TASK_ID. The exit code is 1 when the task failed.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tasktrack::dcs::{DcsClient, DcsProvider, DcsTaskId};
use tasktrack::huaweicloud::{Credentials, ServiceConfig};
use tasktrack::{Error, PollPolicy, Poller, TaskState, TaskStatus};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::{SimBuilder, SimHandle, StepSpec, TaskSpec};

const INSTANCE: &str = "5560df16-cebf-4473-95c4-d1b573c16e79";

async fn simulator() -> Result<(SimHandle, DcsClient, DcsTaskId), Error> {
    let project = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
    let sim = SimBuilder::new(Dcs::new(
        HuaweiAuth::new(project).with_token("demo-token"),
        [INSTANCE],
    ))
    .start()
    .await
    .map_err(|e| Error::invalid_input("simulator", e.to_string()))?;
    let s = Duration::from_secs;
    let task = sim.create_task(
        TaskSpec::new("ChangeInstanceSpec", s(0))
            .with_step(
                StepSpec::new("precheck", s(2)).with_substeps(["resource check", "instance check"]),
            )
            .with_step(StepSpec::new("migrate data", s(4)).with_substeps([
                "allocate",
                "copy slots 0-5460",
                "copy slots 5461-10921",
            ]))
            .with_step(StepSpec::new("switch over", s(2))),
    );
    let client = DcsClient::new(&ServiceConfig::new(
        "dcs",
        sim.base_url(),
        project,
        Credentials::token("demo-token"),
    ))?;
    Ok((sim, client, DcsTaskId::new(INSTANCE, task)))
}

async fn run() -> Result<bool, Error> {
    let (_sim, client, id, policy) = match (
        std::env::var("DCS_INSTANCE_ID"),
        std::env::var("DCS_TASK_ID"),
    ) {
        (Ok(instance), Ok(task)) => (
            None,
            DcsClient::from_env()?,
            DcsTaskId::new(instance, task),
            PollPolicy::default(),
        ),
        (Err(_), Err(_)) => {
            let (sim, client, id) = simulator().await?;
            println!("simulated DCS at {}", sim.base_url());
            (
                Some(sim),
                client,
                id,
                PollPolicy::default()
                    .with_initial_interval(Duration::from_millis(300))
                    .with_max_interval(Duration::from_millis(500)),
            )
        }
        _ => {
            return Err(Error::invalid_input(
                "dcs",
                "set both DCS_INSTANCE_ID and DCS_TASK_ID, or neither",
            ))
        }
    };
    println!("watching {id}");
    let bar = ProgressBar::new(100).with_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let poller = Poller::new(DcsProvider::new(client), policy);
    let mut changes = std::pin::pin!(poller.watch(&id));
    let mut last = None;
    while let Some(status) = changes.next().await {
        let status = status?;
        let percent = status.progress().and_then(|p| p.percent).unwrap_or(0.0);
        bar.set_position(percent as u64);
        let current = status
            .steps()
            .into_iter()
            .find(|s| s.state != TaskState::Succeeded);
        bar.set_message(match current {
            Some(step) => format!("{} [{}]", step.name, step.vendor_state),
            None => status.state().to_string(),
        });
        last = Some(status);
    }
    bar.finish();
    let Some(last) = last else { return Ok(false) };
    for step in last.steps() {
        println!("  {:<10} {}", step.vendor_state, step.name);
        for sub in &step.steps {
            println!("    {:<10} {}", sub.vendor_state, sub.name);
        }
    }
    match last.failure() {
        Some(f) => {
            println!("failed: {f}");
            Ok(false)
        }
        None => {
            println!("{}", last.state());
            Ok(true)
        }
    }
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
