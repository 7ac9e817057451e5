//! The harness for the in-memory provider: the reference run of the suite.

use std::sync::Arc;

use async_trait::async_trait;
use tasktrack_core::{ManualClock, MemoryFault, MemoryProvider, ScriptOutcome, TaskScript};

use crate::harness::{Expected, Harness, ScriptedTask};

/// Drives a [`MemoryProvider`] on a [`ManualClock`].
#[derive(Debug)]
pub struct MemoryHarness {
    clock: ManualClock,
    provider: Arc<MemoryProvider>,
}

impl Default for MemoryHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHarness {
    /// A fresh provider named `memory`.
    pub fn new() -> Self {
        let clock = ManualClock::new();
        let provider = Arc::new(MemoryProvider::with_clock(
            "memory",
            Arc::new(clock.clone()),
        ));
        MemoryHarness { clock, provider }
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    type Provider = MemoryProvider;

    fn provider(&self) -> Arc<MemoryProvider> {
        self.provider.clone()
    }

    fn clock(&self) -> ManualClock {
        self.clock.clone()
    }

    async fn create(&self, task: ScriptedTask) -> u64 {
        let outcome = match task.expected {
            Expected::Succeed => ScriptOutcome::Succeeded,
            Expected::Fail { code, message } => ScriptOutcome::failed(code, message),
        };
        self.provider
            .start(TaskScript::new("suite", task.duration).with_outcome(outcome))
    }

    fn unknown_id(&self) -> u64 {
        u64::MAX
    }

    async fn inject_transient_faults(&self, n: u32) {
        self.provider
            .fail_next(n as usize, MemoryFault::Unavailable);
    }

    async fn clear_faults(&self) {
        self.provider.clear_faults();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run, CheckOutcome};

    #[tokio::test]
    async fn the_memory_provider_conforms() {
        let report = run(&MemoryHarness::new()).await;
        report.assert_passed();
        let passed = report
            .checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Passed)
            .count();
        assert!(passed >= 12, "{report}");
    }
}
