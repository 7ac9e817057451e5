//! OcpProvider over real HTTP against the OCP simulator.

use std::sync::Arc;
use std::time::Duration;
use tasktrack_ocp::ConfigureHttp;

use futures::TryStreamExt;
use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{
    Error, LogRange, ManualClock, PollPolicy, Poller, RemediationPolicy, Secret, TaskAction,
    TaskFilter, TaskProvider, TaskState, TaskStatus,
};
use tasktrack_ocp::{
    BasicTaskInstance, Envelope, OcpClient, OcpProvider, OcpTaskStatus, Operation, Paged,
    SubtaskStatus, TaskQuery, TaskType, TenantMode, WrappedTaskInstance,
};
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, TaskSpec};
use tasktrack_testkit::sim::{scripted, SimHarness};

const USER: &str = "admin";
const PASSWORD: &str = "ocp-password-value";

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

async fn start(clock: &ManualClock) -> (Ocp, SimHandle) {
    let ocp = Ocp::new(USER, PASSWORD).with_clock(SimClock::manual(clock.clone()));
    let sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    (ocp, sim)
}

fn provider(sim: &SimHandle) -> OcpProvider {
    let client = OcpClient::builder(sim.base_url(), USER, &Secret::new(PASSWORD))
        .with_retry(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
        })
        .build()
        .unwrap();
    OcpProvider::new(client)
}

#[test]
fn documented_shapes_decode_with_every_field() {
    let detail = r#"{
      "data": {
        "id": 1000, "name": "Create cluster", "taskDefinitionId": 7,
        "cluster": {"id": 100, "name": "meta", "obClusterId": 1, "type": "PRIMARY"},
        "tenant": {"id": 100, "name": "SYS", "obClusterId": 1001, "mode": "ORACLE"},
        "creator": {"id": 1, "name": "admin"},
        "status": "RUNNING", "type": "SYS_ONECE", "operation": "EXECUTE", "executor": "10.0.0.1",
        "prohibitRollback": false,
        "subtasks": [
          {"id": 10002, "name": "Install", "seriesId": 2, "description": "d", "timeout": 3600, "status": "PENDING",
           "operation": "EXECUTE", "executor": "10.0.0.1", "runTime": 0, "nodeType": "JAVA_TASK", "paralleIdx": -1,
           "upstreams": [10001], "downstream": [], "prohibitRollback": false,
           "createTime": "2024-05-01T10:00:00.000+08:00", "startTime": null, "finishTime": null},
          {"id": 10001, "name": "Prepare host", "seriesId": 1, "status": "SUCCESSFUL", "operation": "EXECUTE",
           "runTime": 1, "paralleIdx": -1, "upstreams": [], "downstream": [10002],
           "startTime": "2024-05-01T10:00:00.000+08:00", "finishTime": "2024-05-01T10:00:05.500+08:00"}
        ],
        "createTime": "2024-05-01T10:00:00.000+08:00", "startTime": "2024-05-01T10:00:00.000+08:00", "finishTime": null
      },
      "successful": true, "timestamp": "2024-05-01T10:00:06.000+08:00", "duration": 12, "status": 200,
      "traceId": "0a1b2c3d4e5f6071", "server": "ocp-1"
    }"#;
    let env: Envelope<WrappedTaskInstance> = serde_json::from_str(detail).unwrap();
    assert_eq!(env.trace_id.as_deref(), Some("0a1b2c3d4e5f6071"));
    assert_eq!(
        (env.duration, env.status, env.successful),
        (Some(12), Some(200), Some(true))
    );
    let t = env.data.unwrap();
    assert_eq!(t.task_type, Some(TaskType::SysOnce));
    assert_eq!(t.tenant.as_ref().unwrap().mode, Some(TenantMode::Oracle));
    let ordered: Vec<u64> = t.ordered_subtasks().iter().map(|s| s.id).collect();
    assert_eq!(
        ordered,
        [10001, 10002],
        "ordered by seriesId, not response order"
    );
    assert_eq!(t.subtasks[0].parallel_idx, Some(-1));
    assert_eq!(t.subtasks[0].upstreams, [10001]);
    let steps = t.steps();
    assert_eq!(steps[0].downstream, ["10002"]);
    assert_eq!(
        steps[0].finished_at.unwrap().to_rfc3339(),
        "2024-05-01T02:00:05.500+00:00"
    );
    assert_eq!(t.progress().unwrap().percent, Some(50.0));

    let list = r#"{"data": {"contents": [{"id": 1, "name": "x", "status": "WAITING_APPROVAL",
        "subtasks": [{"id": 2, "status": "PAUSED", "operation": "REDO"}], "brandNew": 1}],
        "page": {"totalElements": 1, "totalPages": 1, "number": 1, "size": 10}}, "successful": true}"#;
    let env: Envelope<Paged<BasicTaskInstance>> = serde_json::from_str(list).unwrap();
    let b = &env.data.unwrap().contents[0];
    assert_eq!(b.status, OcpTaskStatus::Unknown("WAITING_APPROVAL".into()));
    assert_eq!(
        b.subtasks[0].status,
        SubtaskStatus::Unknown("PAUSED".into())
    );
    assert_eq!(
        b.subtasks[0].operation,
        Some(Operation::Unknown("REDO".into()))
    );
    assert!(b.extra.contains_key("brandNew"));
    let w = WrappedTaskInstance::from(b.clone());
    assert_eq!(w.state(), TaskState::Unknown);
    assert_eq!(
        "SYS_ONCE"
            .parse::<String>()
            .map(|s| TaskType::from(s.as_str()))
            .unwrap(),
        TaskType::SysOnce
    );
}

/// The conformance run's harness: one-subtask tasks, faults on the detail
/// route, DAG tasks prepared for the subtask actions.
fn harness(
    clock: ManualClock,
    ocp: Ocp,
    sim: SimHandle,
    provider: Arc<OcpProvider>,
) -> SimHarness<OcpProvider> {
    let route = "GET /api/v2/tasks/instances/{id}";
    SimHarness::new(clock, sim, provider, route, 999_999, |sim, t| {
        let spec = scripted(TaskSpec::new("Run suite", t.duration), t.expected);
        sim.create_task(spec).parse().unwrap()
    })
    .with_attempts_per_status(3)
    .without_failure_codes()
    .with_prepared_actions(move |_, clock, action| {
        let failing = OcpSubtaskSpec::new("fails once", s(1), &[0]).with_fail_runs(1);
        let running = OcpSubtaskSpec::new("long", s(1000), &[0]);
        let sub = if matches!(action, TaskAction::CancelStep(_)) {
            running
        } else {
            failing
        };
        let id = ocp.create(OcpTaskSpec::new(
            "Prepared",
            vec![OcpSubtaskSpec::new("first", s(1), &[]), sub],
        ));
        clock.advance(s(3));
        let step = ocp.subtask_ids(id)[1].to_string();
        let concrete = match action {
            TaskAction::RetryStep(_) => TaskAction::RetryStep(step),
            TaskAction::SkipStep(_) => TaskAction::SkipStep(step),
            TaskAction::CancelStep(_) => TaskAction::CancelStep(step),
            other => other.clone(),
        };
        Some((id, concrete))
    })
}

#[tokio::test]
async fn the_ocp_provider_conforms() {
    let clock = ManualClock::new();
    let (ocp, sim) = start(&clock).await;
    let provider = Arc::new(provider(&sim));
    let report = tasktrack_testkit::run(&harness(clock, ocp, sim, provider)).await;
    println!("{report}");
    report.assert_passed();
    let skipped = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, tasktrack_testkit::CheckOutcome::Skipped(_)))
        .count();
    assert_eq!(skipped, 0, "every action of OCP is exercised:\n{report}");
}

fn dag() -> OcpTaskSpec {
    // 0 -> (1 || 2) -> 3 (fails twice) -> 4
    OcpTaskSpec::new(
        "Upgrade cluster",
        vec![
            OcpSubtaskSpec::new("Prepare host", s(2), &[]).with_log(["checking host 10.0.0.1"]),
            OcpSubtaskSpec::new("Install on zone1", s(3), &[0]).with_parallel_idx(0),
            OcpSubtaskSpec::new("Install on zone2", s(4), &[0]).with_parallel_idx(1),
            OcpSubtaskSpec::new("Start observer", s(2), &[1, 2])
                .with_fail_runs(2)
                .with_log(["observer exited with code 1"]),
            OcpSubtaskSpec::new("Check cluster", s(1), &[3]),
        ],
    )
}

#[tokio::test]
async fn the_story_retry_fails_again_skip_completes_and_a_rollback() {
    let clock = ManualClock::new();
    let (ocp, sim) = start(&clock).await;
    let p = provider(&sim);
    let id = ocp.create(dag());
    let subs = ocp.subtask_ids(id);
    let third = subs[3].to_string();

    // Parallel branches run side by side.
    clock.advance(s(3));
    let t = p.status(&id).await.unwrap();
    let running: Vec<_> = t
        .steps()
        .into_iter()
        .filter(|s| s.state == TaskState::Running)
        .map(|s| s.name)
        .collect();
    assert_eq!(running, ["Install on zone1", "Install on zone2"]);
    println!("t=3s  {} {:?}", t.vendor_state(), running);
    // Skipping or retrying a running subtask is refused here, unsent.
    let running_step = t
        .steps()
        .into_iter()
        .find(|s| s.state == TaskState::Running)
        .unwrap()
        .id;
    for action in [
        TaskAction::SkipStep(running_step.clone()),
        TaskAction::RetryStep(running_step.clone()),
    ] {
        let err = p.act(&id, action).await.unwrap_err();
        assert!(
            err.to_string().contains("only a FAILED subtask can be"),
            "{err}"
        );
    }
    assert_eq!(
        sim.requests()
            .count("POST /api/v2/tasks/instances/{id}/subtasks/{sid}/{action}"),
        0,
        "no step action reached OCP"
    );

    // At 2 + 4 + 2 = 8 s the third stage fails.
    clock.advance(s(6));
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.state(), TaskState::Failed);
    let failure = t.failure().unwrap();
    assert!(
        failure
            .message
            .contains(&format!("#{} Start observer", subs[3])),
        "{failure}"
    );
    println!("t=9s  failed: {failure}");

    // Its log is read: the run's output, then the engine's state line
    // (SubtaskAccessor.setState).
    let log = p.logs(&id, LogRange::Tail(2)).await.unwrap();
    assert_eq!(
        log[0].text,
        format!(
            "[{} Start observer] ERROR: Start observer failed on run 1",
            subs[3]
        )
    );
    assert_eq!(
        log[1].text,
        format!(
            "[{0} Start observer] Set state for subtask: {0}, operation:EXECUTE, state: FAILED",
            subs[3]
        )
    );

    // Local refusals, before any action request.
    let actions_before = sim
        .requests()
        .count("POST /api/v2/tasks/instances/{id}/subtasks/{sid}/{action}");
    let err = p
        .act(&id, TaskAction::SkipStep(subs[4].to_string()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("only a FAILED subtask can be skipped"),
        "{err}"
    );
    let err = p
        .act(&id, TaskAction::CancelStep(third.clone()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("only a RUNNING subtask can be cancelled"),
        "{err}"
    );
    assert!(matches!(
        p.act(&id, TaskAction::SkipStep("abc".into())).await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        sim.requests()
            .count("POST /api/v2/tasks/instances/{id}/subtasks/{sid}/{action}"),
        actions_before
    );

    // Retried, and it fails again.
    p.act(&id, TaskAction::RetryStep(third.clone()))
        .await
        .unwrap();
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.state(), TaskState::Running);
    assert_eq!(
        t.subtask(subs[3]).unwrap().operation,
        Some(Operation::Retry)
    );
    clock.advance(s(3));
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.state(), TaskState::Failed);
    // Only a task retry counts a run (TaskInstanceManagerImpl.retryTask);
    // SubtaskInstanceManagerImpl.retrySubtask leaves runTime alone.
    assert_eq!(t.subtask(subs[3]).unwrap().run_time, Some(1));

    // Skipped: the downstream continues and the task completes.
    p.act(&id, TaskAction::SkipStep(third.clone()))
        .await
        .unwrap();
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.subtask(subs[3]).unwrap().operation, Some(Operation::Skip));
    assert_eq!(
        t.subtask(subs[3]).unwrap().status,
        SubtaskStatus::Successful
    );
    clock.advance(s(2));
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.state(), TaskState::Succeeded);
    assert_eq!(t.progress().unwrap().percent, Some(100.0));
    assert_eq!(
        sim.requests()
            .count("POST /api/v2/tasks/instances/{id}/subtasks/{sid}/{action}"),
        actions_before + 2,
        "one retry-step and one skip-step were sent, each once"
    );

    // A failed task's retry counts a run.
    let other = ocp.create(OcpTaskSpec::new(
        "Add tenant",
        vec![
            OcpSubtaskSpec::new("Create unit", s(2), &[]),
            OcpSubtaskSpec::new("Create resource pool", s(2), &[0]),
            OcpSubtaskSpec::new("Create tenant", s(2), &[1]).with_fail_runs(1),
        ],
    ));
    clock.advance(s(7));
    assert_eq!(p.status(&other).await.unwrap().state(), TaskState::Failed);
    let err = p.act(&other, TaskAction::Retry).await;
    assert!(err.is_ok(), "a failed task can be retried: {err:?}");
    let retried = p.status(&other).await.unwrap();
    let last = retried.ordered_subtasks()[2].clone();
    assert_eq!(
        (last.run_time, last.operation),
        (Some(2), Some(Operation::Retry))
    );
    clock.advance(s(3));
    assert_eq!(
        p.status(&other).await.unwrap().state(),
        TaskState::Succeeded,
        "second run succeeds"
    );
    let err = p.act(&other, TaskAction::Rollback).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("only a FAILED task can be rolled back"),
        "{err}"
    );

    let doomed = ocp.create(OcpTaskSpec::new(
        "Add tenant",
        vec![
            OcpSubtaskSpec::new("Create unit", s(2), &[]),
            OcpSubtaskSpec::new("Create tenant", s(2), &[0]).with_fail_runs(u32::MAX),
        ],
    ));
    clock.advance(s(5));
    // ocp-express answers a rollback with no data; it is still accepted.
    let receipt = p.act(&doomed, TaskAction::Rollback).await.unwrap();
    assert_eq!(receipt.message.as_deref(), Some("rollback accepted"));
    let t = p.status(&doomed).await.unwrap();
    assert_eq!(t.vendor_state(), "RUNNING (ROLLBACK)");
    assert_eq!(
        t.steps()[1].vendor_state,
        "RUNNING (ROLLBACK)",
        "the last subtask is undone first"
    );
    assert_eq!(t.steps()[0].vendor_state, "SUCCESSFUL (ROLLBACK)");
    clock.advance(s(3));
    let t = p.status(&doomed).await.unwrap();
    assert_eq!(t.vendor_state(), "SUCCESSFUL (ROLLBACK)");
    // Every subtask undone is PENDING again; the task's work was undone.
    assert!(t
        .subtasks
        .iter()
        .all(|s| s.status == SubtaskStatus::Pending));
    assert_eq!(t.state(), TaskState::Cancelled);
    assert_eq!(t.failure().unwrap().message, "rolled back");
    assert_eq!(t.snapshot("ocp", "x").attributes["operation"], "ROLLBACK");
    let log = p.logs(&doomed, LogRange::All).await.unwrap();
    assert!(
        log.iter()
            .any(|l| l.text.ends_with("operation:ROLLBACK, state: PENDING")),
        "{log:?}"
    );
    // A task being rolled back cannot be retried (retryTask refuses it).
    let err = p.act(&doomed, TaskAction::Retry).await.unwrap_err();
    assert!(err.to_string().contains("only a FAILED task"), "{err}");

    let protected = ocp.create(
        OcpTaskSpec::new(
            "Delete cluster",
            vec![OcpSubtaskSpec::new("drop", s(1), &[]).with_fail_runs(1)],
        )
        .with_prohibit_rollback(),
    );
    clock.advance(s(2));
    let err = p.act(&protected, TaskAction::Rollback).await.unwrap_err();
    assert!(err.to_string().contains("prohibits rollback"), "{err}");
    assert!(matches!(
        p.act(&protected, TaskAction::Cancel).await,
        Err(Error::Unsupported { .. })
    ));
}

#[tokio::test]
async fn cancel_goes_canceling_then_failed() {
    let clock = ManualClock::new();
    let (ocp, sim) = start(&clock).await;
    let p = provider(&sim);
    let id = ocp.create(OcpTaskSpec::new(
        "Long",
        vec![OcpSubtaskSpec::new("sleep", s(100), &[])],
    ));
    let sid = ocp.subtask_ids(id)[0];
    clock.advance(s(1));
    p.act(&id, TaskAction::CancelStep(sid.to_string()))
        .await
        .unwrap();
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.subtask(sid).unwrap().status, SubtaskStatus::Canceling);
    assert_eq!(t.state(), TaskState::Running);
    clock.advance(s(2));
    let t = p.status(&id).await.unwrap();
    assert_eq!(t.subtask(sid).unwrap().status, SubtaskStatus::Failed);
    assert_eq!(t.state(), TaskState::Failed);
}

#[tokio::test]
async fn remediation_retries_a_failed_task_while_waiting() {
    let clock = ManualClock::new();
    let (ocp, sim) = start(&clock).await;
    let p = provider(&sim);
    let flaky = ocp.create(OcpTaskSpec::new(
        "Start observer",
        vec![OcpSubtaskSpec::new("start", s(2), &[]).with_fail_runs(2)],
    ));
    let poller = Poller::new(p.clone(), PollPolicy::fixed(s(1)))
        .with_clock(Arc::new(clock.clone()))
        .with_remediation(RemediationPolicy::retry_up_to(3).with_only_for(["Start observer"]));
    let outcome = poller.wait(&flaky).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Succeeded);
    assert_eq!(outcome.retries, 2);
    assert_eq!(
        sim.requests()
            .count("POST /api/v2/tasks/instances/{id}/retry"),
        2
    );

    let other = ocp.create(OcpTaskSpec::new(
        "Other task",
        vec![OcpSubtaskSpec::new("x", s(1), &[]).with_fail_runs(1)],
    ));
    let outcome = poller.wait(&other).await.unwrap();
    assert_eq!(
        (outcome.state(), outcome.retries),
        (TaskState::Failed, 0),
        "name does not match"
    );
    let without = Poller::new(p, PollPolicy::fixed(s(1))).with_clock(Arc::new(clock.clone()));
    let again = ocp.create(OcpTaskSpec::new(
        "Start observer",
        vec![OcpSubtaskSpec::new("x", s(1), &[]).with_fail_runs(1)],
    ));
    assert_eq!(
        without.wait(&again).await.unwrap().retries,
        0,
        "off by default"
    );
}

#[tokio::test]
async fn list_filters_paging_and_the_stream() {
    let clock = ManualClock::new();
    let (ocp, sim) = start(&clock).await;
    let p = provider(&sim);
    for i in 0..25 {
        let sub = OcpSubtaskSpec::new("work", s(1 + i % 3), &[]);
        let sub = if i % 5 == 0 {
            sub.with_fail_runs(1)
        } else {
            sub
        };
        ocp.create(OcpTaskSpec::new(
            if i % 2 == 0 {
                "Backup tenant"
            } else {
                "Create cluster"
            },
            vec![sub],
        ));
    }
    clock.advance(s(4)); // every task (1-3 s) has ended
    let client = p.client();
    let q = TaskQuery {
        status: vec![OcpTaskStatus::Failed],
        ..TaskQuery::default()
    };
    assert_eq!(client.list(&q).await.unwrap().page.total_elements, 5);
    let q = TaskQuery {
        status: vec![OcpTaskStatus::Failed, OcpTaskStatus::Running],
        ..TaskQuery::default()
    };
    let running_or_failed = client.list(&q).await.unwrap().page.total_elements;
    assert_eq!(running_or_failed, 5, "nothing runs any more");
    let q = TaskQuery {
        name: Some("Backup".into()),
        size: Some(5),
        page: Some(2),
        sort: Some("id,asc".into()),
        ..TaskQuery::default()
    };
    let page = client.list(&q).await.unwrap();
    assert_eq!(
        (
            page.page.total_elements,
            page.page.total_pages,
            page.contents.len()
        ),
        (13, 3, 5)
    );
    assert_eq!(
        page.contents[0].id, 1010,
        "second page of Backup tasks by id"
    );
    let all: Vec<_> = client
        .list_all(TaskQuery {
            size: Some(7),
            ..TaskQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 25);
    let huge = client
        .list(&TaskQuery {
            size: Some(50_000),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(huge.page.size, 2000, "size capped at 2000");
    let failed = p
        .list(&TaskFilter::new().with_states([TaskState::Failed]))
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 5);
    let _ = sim;
}

#[tokio::test]
async fn errors_keep_the_trace_id_and_never_the_password() {
    let clock = ManualClock::new();
    let (ocp, sim) = start(&clock).await;
    let wrong = OcpProvider::new(
        OcpClient::builder(sim.base_url(), USER, &Secret::new("wrong-password-x"))
            .build()
            .unwrap(),
    );
    let err = wrong.status(&1000).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    // Spring Security's handleAuthFailed: ApiError(e.getMessage(), e).
    assert!(err.to_string().contains("Bad credentials"), "{err}");
    let p = provider(&sim);
    let id = ocp.create(OcpTaskSpec::new(
        "x",
        vec![OcpSubtaskSpec::new("a", s(100), &[])],
    ));
    // A refusal from the server itself (bypassing the local check) keeps traceId.
    let err = p.client().retry(id).await.unwrap_err();
    match &err {
        Error::Http(h) => {
            assert_eq!(h.status, 400);
            // ErrorCodes.TASK_STATE_INVALID, an integer in ApiError.code.
            assert_eq!(h.vendor_code.as_deref(), Some("20003"));
            assert_eq!(
                h.vendor_message.as_deref(),
                Some(
                    format!(
                        "This operation is not supported for the {id} task in the RUNNING state."
                    )
                    .as_str()
                )
            );
            assert!(
                h.request_id.as_deref().is_some_and(|t| t.len() == 16),
                "{h:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.status(&424242).await,
        Err(Error::NotFound { .. })
    ));
    for text in [
        format!("{err:?}"),
        format!("{p:?}"),
        format!("{wrong:?}"),
        err.to_string(),
    ] {
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong-password-x"),
            "{text}"
        );
    }
}
