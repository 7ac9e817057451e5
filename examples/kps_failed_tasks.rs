//! List every failed KPS key-pair task as a table:
//! `cargo run --example kps_failed_tasks`.
//!
//! By default against a KPS simulator holding a dozen failed tasks (read in
//! pages of 5 to show the paging). Against a real or compatible endpoint, set
//! HUAWEICLOUD_KPS_ENDPOINT (e.g. https://kms.cn-north-4.myhuaweicloud.com),
//! HUAWEICLOUD_PROJECT_ID, and CLOUD_SDK_AK + CLOUD_SDK_SK (or
//! HUAWEICLOUD_TOKEN); requests are then signed as the official SDKs sign them.

use std::process::ExitCode;
use std::time::Duration;

use futures::TryStreamExt;
use tasktrack::huaweicloud::{Credentials, ServiceConfig};
use tasktrack::kps::{FailedTask, KpsClient};
use tasktrack::Error;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::{SimBuilder, SimHandle, TaskSpec};

async fn simulator() -> Result<(SimHandle, KpsClient), Error> {
    let project = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
    let sim = SimBuilder::new(Kps::new(
        HuaweiAuth::new(project).with_aksk("DEMOAK", "demo-sk"),
    ))
    .start()
    .await
    .map_err(|e| Error::invalid_input("simulator", e.to_string()))?;
    for (i, (op, msg)) in [
        ("RESET", "Update public key error"),
        ("REPLACE", "server is not running"),
        ("UNBIND", "key pair not bound"),
    ]
    .iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        sim.create_task(
            TaskSpec::new(op.to_lowercase(), Duration::ZERO)
                .with_attr("operation", *op)
                .with_attr("server_name", format!("ecs-{i:02}"))
                .with_attr("keypair_name", format!("KeyPair-{i:02}"))
                .with_failure(format!("KPS.{:04}", 100 + i), *msg),
        );
    }
    let client = KpsClient::new(&ServiceConfig::new(
        "kps",
        sim.base_url(),
        project,
        Credentials::aksk("DEMOAK", "demo-sk"),
    ))?;
    Ok((sim, client))
}

fn print(tasks: &[FailedTask]) {
    println!(
        "{:<38} {:<15} {:<10} {:<12} {:<10} MESSAGE",
        "TASK", "OPERATION", "CODE", "KEY PAIR", "SERVER"
    );
    for t in tasks {
        println!(
            "{:<38} {:<15} {:<10} {:<12} {:<10} {}",
            t.task_id,
            t.operate_type.as_ref().map_or("-", |o| o.as_str()),
            t.task_error_code.as_deref().unwrap_or("-"),
            t.keypair_name.as_deref().unwrap_or("-"),
            t.server_name.as_deref().unwrap_or("-"),
            t.task_error_msg.as_deref().unwrap_or("")
        );
    }
    println!("{} failed task(s)", tasks.len());
}

async fn run() -> Result<(), Error> {
    let real = std::env::var("HUAWEICLOUD_KPS_ENDPOINT").is_ok();
    let (_sim, client, page) = if real {
        (None, KpsClient::from_env()?, tasktrack::kps::DEFAULT_LIMIT)
    } else {
        let (sim, client) = simulator().await?;
        println!("simulated KPS at {}", sim.base_url());
        (Some(sim), client, 5)
    };
    let tasks: Vec<FailedTask> = client.failed_tasks(page).try_collect().await?;
    print(&tasks);
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
