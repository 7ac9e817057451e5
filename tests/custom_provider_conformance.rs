//! How a custom provider runs the same conformance kit as the vendor
//! adapters: implement `Harness` for your backend and call `run`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tasktrack::{
    async_trait, Clock, Error, Failure, ManualClock, Result, TaskProvider, TaskState, TaskStatus,
};
use tasktrack_testkit::{run, Expected, Harness, ScriptedTask};

/// A toy job queue whose jobs end at a fixed instant, read from a `Clock`.
struct JobQueue {
    clock: ManualClock,
    jobs: Mutex<HashMap<u32, (tokio::time::Instant, Option<String>)>>,
    fail_next: Mutex<u32>,
}

#[derive(Debug, Clone)]
struct JobStatus {
    done: bool,
    error: Option<String>,
}

impl TaskStatus for JobStatus {
    fn state(&self) -> TaskState {
        match (self.done, &self.error) {
            (false, _) => TaskState::Running,
            (true, None) => TaskState::Succeeded,
            (true, Some(_)) => TaskState::Failed,
        }
    }
    fn vendor_state(&self) -> String {
        format!("{:?}", self.state())
    }
    fn failure(&self) -> Option<Failure> {
        let message = self.error.clone().filter(|_| self.done)?;
        let (code, message) = message.split_once(": ").unwrap_or(("E", &message));
        Some(Failure::new(message).with_code(code))
    }
}

#[async_trait]
impl TaskProvider for JobQueue {
    type Id = u32;
    type Status = JobStatus;
    fn name(&self) -> &str {
        "jobs"
    }
    async fn status(&self, id: &u32) -> Result<JobStatus> {
        {
            let mut failing = self.fail_next.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(tasktrack::HttpError::new("jobs", "GET", "/jobs", 503).into());
            }
        }
        let jobs = self.jobs.lock().unwrap();
        let (ends, error) = jobs
            .get(id)
            .ok_or_else(|| Error::not_found("jobs", format!("job {id}")))?;
        Ok(JobStatus {
            done: self.clock.now() >= *ends,
            error: error.clone(),
        })
    }
}

struct JobHarness(Arc<JobQueue>);

#[async_trait]
impl Harness for JobHarness {
    type Provider = JobQueue;
    fn provider(&self) -> Arc<JobQueue> {
        self.0.clone()
    }
    fn clock(&self) -> ManualClock {
        self.0.clock.clone()
    }
    async fn create(&self, task: ScriptedTask) -> u32 {
        let mut jobs = self.0.jobs.lock().unwrap();
        let id = jobs.len() as u32 + 1;
        let error = match task.expected {
            Expected::Succeed => None,
            Expected::Fail { code, message } => Some(format!("{code}: {message}")),
        };
        jobs.insert(id, (self.0.clock.now() + task.duration, error));
        id
    }
    fn unknown_id(&self) -> u32 {
        u32::MAX
    }
    async fn inject_transient_faults(&self, n: u32) {
        *self.0.fail_next.lock().unwrap() = n;
    }
    async fn clear_faults(&self) {
        *self.0.fail_next.lock().unwrap() = 0;
    }
}

#[tokio::test]
async fn a_custom_provider_passes_the_conformance_kit() {
    let queue = JobQueue {
        clock: ManualClock::new(),
        jobs: Mutex::default(),
        fail_next: Mutex::new(0),
    };
    let report = run(&JobHarness(Arc::new(queue))).await;
    println!("{report}");
    report.assert_passed();
}
