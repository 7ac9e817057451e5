//! The kit must fail providers that break the contract, naming the check.

use std::sync::Arc;

use tasktrack_core::{
    async_trait, Capabilities, Error, LogLine, LogRange, ManualClock, MemoryProvider, MemoryTask,
    Result, TaskFilter, TaskPage, TaskProvider, TaskState,
};
use tasktrack_testkit::{run, CheckOutcome, Harness, MemoryHarness, ScriptedTask};

/// Wraps the memory provider and breaks three promises: it claims `logs`
/// without serving them, hides failures as success, and turns unknown ids
/// into a 500.
struct Liar(Arc<MemoryProvider>);

#[async_trait]
impl TaskProvider for Liar {
    type Id = u64;
    type Status = MemoryTask;
    fn name(&self) -> &str {
        "liar"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_logs()
    }
    async fn status(&self, id: &u64) -> Result<MemoryTask> {
        match self.0.status(id).await {
            Ok(mut s) if s.state == TaskState::Failed => {
                s.state = TaskState::Succeeded;
                s.failure = None;
                Ok(s)
            }
            Err(Error::NotFound { .. }) => {
                Err(tasktrack_core::HttpError::new("liar", "GET", "/x", 500).into())
            }
            other => other,
        }
    }
    async fn logs(&self, _id: &u64, _r: LogRange) -> Result<Vec<LogLine>> {
        Err(Error::unsupported("liar", "logs"))
    }
    async fn list(&self, f: &TaskFilter) -> Result<TaskPage<(u64, MemoryTask)>> {
        // Lists although the capability says it cannot.
        self.0.list(f).await
    }
}

struct LiarHarness {
    inner: MemoryHarness,
    liar: Arc<Liar>,
}

#[async_trait]
impl Harness for LiarHarness {
    type Provider = Liar;
    fn provider(&self) -> Arc<Liar> {
        self.liar.clone()
    }
    fn clock(&self) -> ManualClock {
        self.inner.clock()
    }
    async fn create(&self, task: ScriptedTask) -> u64 {
        self.inner.create(task).await
    }
    fn unknown_id(&self) -> u64 {
        u64::MAX
    }
    async fn inject_transient_faults(&self, n: u32) {
        self.inner.inject_transient_faults(n).await
    }
    async fn clear_faults(&self) {
        self.inner.clear_faults().await
    }
}

#[tokio::test]
async fn a_lying_provider_fails_the_right_checks() {
    let inner = MemoryHarness::new();
    let liar = Arc::new(Liar(inner.provider()));
    let report = run(&LiarHarness { inner, liar }).await;
    assert!(!report.passed());
    let failed: Vec<&str> = report.failures().iter().map(|c| c.name).collect();
    for expected in [
        "failure_carries_code_and_message",
        "unknown_id_is_not_found",
        "list_matches_capability",
        "logs_match_capability",
        "poller_survives_faults_within_budget",
    ] {
        assert!(
            failed.contains(&expected),
            "{expected} should fail:\n{report}"
        );
    }
    assert!(report
        .checks
        .iter()
        .any(|c| c.name == "running_then_terminal" && c.outcome == CheckOutcome::Passed));
    assert!(
        report
            .to_string()
            .contains("FAIL  unknown_id_is_not_found: expected NotFound, got http error"),
        "{report}"
    );
}
