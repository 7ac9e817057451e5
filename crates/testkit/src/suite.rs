//! The checks.

use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::{
    DynTaskProvider, Error, LogRange, PollPolicy, Poller, TaskAction, TaskFilter, TaskProvider,
    TaskSnapshot, TaskState, TaskStatus,
};

use crate::harness::{Harness, ScriptedTask};
use crate::report::{Check, CheckOutcome, Report};

type CheckResult = Result<(), String>;

/// The poller's error budget in the fault checks.
const BUDGET: u32 = 3;

/// Runs every check against the harness's provider and reports each one.
/// Never panics on a misbehaving provider: a failure is reported, not raised.
pub async fn run<H: Harness>(h: &H) -> Report {
    let provider = h.provider();
    let mut report = Report {
        provider: provider.name().to_owned(),
        checks: Vec::new(),
    };
    let mut record = |name: &'static str, result: CheckResult| {
        let outcome = match result {
            Ok(()) => CheckOutcome::Passed,
            Err(why) if why.starts_with("skip: ") => CheckOutcome::Skipped(why[6..].to_owned()),
            Err(why) => CheckOutcome::Failed(why),
        };
        report.checks.push(Check { name, outcome });
    };
    record("running_then_terminal", running_then_terminal(h).await);
    record(
        "failure_carries_code_and_message",
        failure_carries_code_and_message(h).await,
    );
    record("unknown_id_is_not_found", unknown_id_is_not_found(h).await);
    record(
        "status_many_agrees_with_status",
        status_many_agrees(h).await,
    );
    record("list_matches_capability", list_matches_capability(h).await);
    record("logs_match_capability", logs_match_capability(h).await);
    for action in all_actions() {
        let name = match action {
            TaskAction::Cancel => "action_cancel_matches_capability",
            TaskAction::Retry => "action_retry_matches_capability",
            TaskAction::Rollback => "action_rollback_matches_capability",
            TaskAction::RetryStep(_) => "action_retry_step_matches_capability",
            TaskAction::SkipStep(_) => "action_skip_step_matches_capability",
            TaskAction::CancelStep(_) => "action_cancel_step_matches_capability",
            _ => "action_delete_matches_capability",
        };
        record(name, action_matches_capability(h, action).await);
    }
    record("snapshots_round_trip", snapshots_round_trip(h).await);
    record(
        "poller_survives_faults_within_budget",
        poller_within_budget(h).await,
    );
    record("poller_gives_up_past_budget", poller_past_budget(h).await);
    h.clear_faults().await;
    report
}

fn all_actions() -> Vec<TaskAction> {
    vec![
        TaskAction::Cancel,
        TaskAction::Retry,
        TaskAction::Rollback,
        TaskAction::RetryStep("1".into()),
        TaskAction::SkipStep("1".into()),
        TaskAction::CancelStep("1".into()),
        TaskAction::Delete,
    ]
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn expect_ok<T>(what: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

async fn running_then_terminal<H: Harness>(h: &H) -> CheckResult {
    let p = h.provider();
    let id = h.create(ScriptedTask::succeeding(10)).await;
    let first = expect_ok("status of a new task", p.status(&id).await)?;
    if first.state().is_terminal() {
        return Err(format!(
            "a 10 s task is already {} right after creation",
            first.state()
        ));
    }
    h.clock().advance(secs(11));
    let last = expect_ok("status after the task's end", p.status(&id).await)?;
    if last.state() != TaskState::Succeeded {
        return Err(format!(
            "after its end the task is {} ({}), expected succeeded",
            last.state(),
            last.vendor_state()
        ));
    }
    Ok(())
}

async fn failure_carries_code_and_message<H: Harness>(h: &H) -> CheckResult {
    let p = h.provider();
    let id = h
        .create(ScriptedTask::failing(5, "E_SUITE", "suite failure 42"))
        .await;
    h.clock().advance(secs(6));
    let s = expect_ok("status of a failed task", p.status(&id).await)?;
    if s.state() != TaskState::Failed {
        return Err(format!(
            "expected failed, got {} ({})",
            s.state(),
            s.vendor_state()
        ));
    }
    let failure = s.failure().ok_or("a failed task has no failure()")?;
    if !failure.message.contains("suite failure 42") {
        return Err(format!(
            "failure message {:?} lost the backend's message",
            failure.message
        ));
    }
    if h.reports_failure_codes() && failure.code.as_deref() != Some("E_SUITE") {
        return Err(format!(
            "failure code {:?}, expected \"E_SUITE\"",
            failure.code
        ));
    }
    Ok(())
}

async fn unknown_id_is_not_found<H: Harness>(h: &H) -> CheckResult {
    match h.provider().status(&h.unknown_id()).await {
        Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(format!("expected NotFound, got {} error: {e}", e.kind())),
        Ok(s) => Err(format!(
            "expected NotFound, got a status ({})",
            s.vendor_state()
        )),
    }
}

fn summary(r: &Result<TaskSnapshot, Error>) -> String {
    match r {
        Ok(s) => format!("{} ({})", s.state, s.vendor_state),
        Err(e) => format!("error {}", e.kind()),
    }
}

async fn status_many_agrees<H: Harness>(h: &H) -> CheckResult {
    let p = h.provider();
    let a = h.create(ScriptedTask::succeeding(5)).await;
    let b = h.create(ScriptedTask::failing(1, "E_B", "b failed")).await;
    let c = h.create(ScriptedTask::succeeding(30)).await;
    h.clock().advance(secs(2));
    let ids = vec![a.clone(), h.unknown_id(), b, c, a];
    let many = p.status_many(&ids).await;
    if many.len() != ids.len() {
        return Err(format!("{} answers for {} ids", many.len(), ids.len()));
    }
    let name = p.name().to_owned();
    for (i, (id, answer)) in ids.iter().zip(many).enumerate() {
        let single = p.status(id).await;
        let many_snap = answer.map(|s| s.snapshot(&name, &id.to_string()));
        let single_snap = single.map(|s| s.snapshot(&name, &id.to_string()));
        let agree = match (&many_snap, &single_snap) {
            (Ok(m), Ok(s)) => m.state == s.state && m.vendor_state == s.vendor_state,
            (Err(m), Err(s)) => m.kind() == s.kind(),
            _ => false,
        };
        if !agree {
            return Err(format!(
                "id #{i} ({id}): status_many says {}, status says {}",
                summary(&many_snap),
                summary(&single_snap)
            ));
        }
    }
    Ok(())
}

async fn list_matches_capability<H: Harness>(h: &H) -> CheckResult {
    let p = h.provider();
    h.create(ScriptedTask::failing(1, "E_L", "listed failure"))
        .await;
    h.clock().advance(secs(2));
    let typed = p.list(&TaskFilter::default()).await;
    let erased = p.list_snapshots(&TaskFilter::default()).await;
    match (p.capabilities().list, typed, erased) {
        (true, Ok(page), Ok(dyn_page)) => {
            if page.items.is_empty() {
                return Err(
                    "list capability is set but the list of existing tasks is empty".into(),
                );
            }
            if page.items.len() != dyn_page.items.len() {
                return Err("typed and erased list disagree".into());
            }
            Ok(())
        }
        (true, Err(e), _) | (true, _, Err(e)) => {
            Err(format!("list capability is set but list failed: {e}"))
        }
        (false, Err(Error::Unsupported { .. }), Err(Error::Unsupported { .. })) => Ok(()),
        (false, _, _) => Err("list capability is false but list did not answer Unsupported".into()),
    }
}

async fn logs_match_capability<H: Harness>(h: &H) -> CheckResult {
    let p = h.provider();
    let id = h
        .create(ScriptedTask::failing(2, "E_LOG", "logged failure"))
        .await;
    h.clock().advance(secs(3));
    let tail = p.logs(&id, LogRange::Tail(10)).await;
    match (p.capabilities().logs, tail) {
        (true, Ok(lines)) => {
            if lines.is_empty() {
                return Err("a finished task has an empty log".into());
            }
            if lines.len() > 10 {
                return Err(format!("Tail(10) gave {} lines", lines.len()));
            }
            let first = expect_ok(
                "logs Range",
                p.logs(&id, LogRange::Range { start: 0, limit: 1 }).await,
            )?;
            if first.len() > 1 {
                return Err(format!("Range limit 1 gave {} lines", first.len()));
            }
            Ok(())
        }
        (true, Err(e)) => Err(format!("logs capability is set but logs failed: {e}")),
        (false, Err(Error::Unsupported { .. })) => Ok(()),
        (false, _) => Err("logs capability is false but logs did not answer Unsupported".into()),
    }
}

async fn action_matches_capability<H: Harness>(h: &H, action: TaskAction) -> CheckResult {
    let p = h.provider();
    let supported = p.capabilities().supports(&action);
    if !supported {
        let id = h.create(ScriptedTask::succeeding(100)).await;
        return match p.act(&id, action.clone()).await {
            Err(Error::Unsupported { .. }) => Ok(()),
            Err(e) => Err(format!(
                "{action} is not a capability but answered {} error: {e}",
                e.kind()
            )),
            Ok(_) => Err(format!("{action} is not a capability but was accepted")),
        };
    }
    if action == TaskAction::Cancel {
        let id = h.create(ScriptedTask::succeeding(100)).await;
        h.clock().advance(secs(1));
        expect_ok(
            "cancel of a running task",
            p.act(&id, TaskAction::Cancel).await,
        )?;
        h.clock().advance(secs(1));
        let s = expect_ok("status after cancel", p.status(&id).await)?;
        if !s.state().is_unsuccessful() {
            return Err(format!(
                "after cancel the task is {} ({})",
                s.state(),
                s.vendor_state()
            ));
        }
        return Ok(());
    }
    match h.prepare_action(&action).await {
        Some((id, concrete)) if concrete.name() == action.name() => {
            expect_ok(&format!("{concrete}"), p.act(&id, concrete.clone()).await).map(|_| ())
        }
        Some((_, other)) => Err(format!("the harness prepared {other} for {action}")),
        None => Err(format!("skip: the harness prepares no task for {action}")),
    }
}

async fn snapshots_round_trip<H: Harness>(h: &H) -> CheckResult {
    let p = h.provider();
    let id = h
        .create(ScriptedTask::failing(4, "E_SNAP", "snapshot failure"))
        .await;
    for step in [1, 4] {
        h.clock().advance(secs(step));
        let typed = expect_ok("status", p.status(&id).await)?;
        let snap = typed.snapshot(p.name(), &id.to_string());
        let json = serde_json::to_string(&snap)
            .map_err(|e| format!("snapshot does not serialize: {e}"))?;
        let back: TaskSnapshot = serde_json::from_str(&json)
            .map_err(|e| format!("snapshot does not deserialize: {e}: {json}"))?;
        if back != snap {
            return Err(format!("snapshot changed through JSON: {json}"));
        }
        let erased = expect_ok("erased status", p.snapshot(&id.to_string()).await)?;
        if erased.state != snap.state || erased.id != snap.id {
            return Err("DynTaskProvider::status disagrees with TaskProvider::status".into());
        }
    }
    Ok(())
}

fn poller<H: Harness>(h: &H) -> Poller<H::Provider> {
    Poller::new(
        h.provider(),
        PollPolicy::fixed(secs(1)).with_error_budget(BUDGET),
    )
    .with_clock(Arc::new(h.clock()))
}

async fn poller_within_budget<H: Harness>(h: &H) -> CheckResult {
    let id = h
        .create(ScriptedTask::failing(5, "E_FAULT", "ends failed"))
        .await;
    h.inject_transient_faults(h.attempts_per_status() * BUDGET)
        .await;
    let outcome = poller(h).wait(&id).await;
    h.clear_faults().await;
    let outcome = expect_ok("wait with faults inside the budget", outcome)?;
    if outcome.state() != TaskState::Failed {
        return Err(format!(
            "wait ended {} instead of the scripted failed",
            outcome.state()
        ));
    }
    Ok(())
}

async fn poller_past_budget<H: Harness>(h: &H) -> CheckResult {
    let id = h.create(ScriptedTask::succeeding(60)).await;
    h.inject_transient_faults(h.attempts_per_status() * (BUDGET + 1))
        .await;
    let outcome = poller(h).wait(&id).await;
    h.clear_faults().await;
    match outcome {
        Err(e) if e.is_retryable() => Ok(()),
        Err(e) => Err(format!(
            "gave up with a permanent {} error instead of the transient one: {e}",
            e.kind()
        )),
        Ok(o) => Err(format!(
            "faults past the budget were absorbed; wait ended {}",
            o.state()
        )),
    }
}
