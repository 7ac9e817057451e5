//! The suite's findings.

use std::fmt;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// It held.
    Passed,
    /// It did not, and why.
    Failed(String),
    /// It did not apply, and why.
    Skipped(String),
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Check name, e.g. `unknown_id_is_not_found`.
    pub name: &'static str,
    /// Result.
    pub outcome: CheckOutcome,
}

/// Everything the suite found for one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Provider name.
    pub provider: String,
    /// Checks in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, CheckOutcome::Failed(_)))
            .collect()
    }

    /// True when nothing failed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// Panics with the whole report when a check failed (for tests).
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "conformance failed:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance of provider {:?}:", self.provider)?;
        for c in &self.checks {
            match &c.outcome {
                CheckOutcome::Passed => writeln!(f, "  ok    {}", c.name)?,
                CheckOutcome::Failed(why) => writeln!(f, "  FAIL  {}: {why}", c.name)?,
                CheckOutcome::Skipped(why) => writeln!(f, "  skip  {}: {why}", c.name)?,
            }
        }
        Ok(())
    }
}
