//! A complete custom provider in under 40 lines of trait code, waited on
//! with the core `Poller`: `cargo run --example custom_provider`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tasktrack::{
    async_trait, Error, PollPolicy, Poller, Result, TaskProvider, TaskState, TaskStatus,
};

// ---- the provider: everything a backend needs to join tasktrack ----------

/// A toy build server: a job waits 300 ms in the queue, builds for 600 ms.
struct BuildServer {
    jobs: Mutex<HashMap<u32, Instant>>,
}

#[derive(Debug, Clone)]
struct BuildStatus(&'static str);

impl TaskStatus for BuildStatus {
    fn state(&self) -> TaskState {
        match self.0 {
            "queued" => TaskState::Pending,
            "building" => TaskState::Running,
            "passed" => TaskState::Succeeded,
            _ => TaskState::Unknown,
        }
    }
    fn vendor_state(&self) -> String {
        self.0.to_owned()
    }
}

#[async_trait]
impl TaskProvider for BuildServer {
    type Id = u32;
    type Status = BuildStatus;
    fn name(&self) -> &str {
        "builds"
    }
    async fn status(&self, id: &u32) -> Result<BuildStatus> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let started = jobs
            .get(id)
            .ok_or_else(|| Error::not_found("builds", format!("job {id}")))?;
        Ok(BuildStatus(match started.elapsed().as_millis() {
            0..300 => "queued",
            300..900 => "building",
            _ => "passed",
        }))
    }
}

// ---- using it --------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    let server = BuildServer {
        jobs: Mutex::new(HashMap::from([(42, Instant::now())])),
    };
    let poller = Poller::new(server, PollPolicy::fixed(Duration::from_millis(100)));
    let mut changes = std::pin::pin!(poller.watch(&42));
    while let Some(status) = changes.next().await {
        let status = status?;
        println!("build 42: {} ({})", status.state(), status.vendor_state());
    }
    let outcome = poller.wait(&42).await?;
    println!("done after {} poll(s): {}", outcome.polls, outcome.state());
    Ok(())
}
