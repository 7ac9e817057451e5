//! DCS over real HTTP against the DCS simulator.

use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{
    Error, ManualClock, PollPolicy, Poller, TaskAction, TaskFilter, TaskProvider, TaskState,
    TaskStatus,
};
use tasktrack_dcs::{
    BackgroundTaskList, DcsClient, DcsProvider, DcsStepStatus, DcsTask, DcsTaskId, DcsTaskProgress,
};
use tasktrack_huaweicloud::{Credentials, ServiceConfig};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, StepSpec, TaskSpec};
use tasktrack_testkit::sim::SimHarness;
use tasktrack_testkit::Expected;

const PROJECT: &str = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
const INSTANCE: &str = "5560df16-cebf-4473-95c4-d1b573c16e79";
const AK: &str = "SIMAKEXAMPLE0002";
const SK: &str = "dcs-secret-key-value";

const EXAMPLE: &str = r#"{ "progress" : 30, "remain_time" : 100, "step_details" : [ { "step_id" : "9d1d1da8-650e-406f-81e4-b3c11515869f", "step_name" : "前置检查", "step_status" : "FINISH", "begin_time" : "2022-09-01 11:52:24", "end_time" : "2022-09-01 11:52:29", "error_code" : "DCS.4064", "sub_step_details" : [ { "sub_step_id" : "4692b05b-fa55-4f7d-9be6-527bde25b424", "sub_step_name" : "资源检查", "sub_step_status" : "FINISH", "begin_time" : "2022-09-01 11:52:24", "end_time" : "2022-09-01 11:52:26", "detail" : "", "error_code" : "DCS.4065" }, { "sub_step_id" : "4692b05b-fa55-4f7d-9be6-527bde25b425", "sub_step_name" : "实例状态检查", "sub_step_status" : "FINISH", "begin_time" : "2022-09-01 11:52:26", "end_time" : "2022-09-01 11:52:29", "detail" : "", "error_code" : "DCS.4064" } ] }, { "step_id" : "9d1d1da8-650e-406f-3fad-c4a22515869f", "step_name" : "数据迁移", "step_status" : "EXECUTING", "begin_time" : "2022-09-01 11:52:30", "end_time" : "2022-09-01 11:54:30", "error_code" : "DCS.4065", "sub_step_details" : [ { "sub_step_id" : "cb58a8ea-b8e2-4626-b3fa-57ab1a830724", "sub_step_name" : "申请资源", "sub_step_status" : "FINISH", "begin_time" : "2022-09-01 11:52:30", "end_time" : "2022-09-01 11:53:30", "detail" : "{node_id:9996c3376318417281fb5e611f3fb1a0,slot_range:[0 5460],full_migration:迁移中,inc_migration:迁移中}", "error_code" : "DCS.4065" }, { "sub_step_id" : "f9df7fd2-b31f-4ec3-bbb1-3dc740326342", "sub_step_name" : "申请资源", "sub_step_status" : "FINISH", "begin_time" : "2022-09-01 11:53:30", "end_time" : "2022-09-01 11:54:30", "detail" : "{node_id:5b70f440ccc94789b34a5c98c2ba05ea,slot_range:[5461 10921],full_migration:待开始,inc_migration:待开始}", "error_code" : "DCS.4066" } ] } ] }"#;

#[test]
fn the_documents_progress_example_decodes() {
    let p: DcsTaskProgress = serde_json::from_str(EXAMPLE).unwrap();
    assert_eq!((p.progress, p.remain_time), (Some(30), Some(100)));
    assert_eq!(p.step_details.len(), 2);
    let first = &p.step_details[0];
    assert_eq!(first.step_name.as_deref(), Some("前置检查"));
    assert_eq!(first.step_status, DcsStepStatus::Finish);
    assert_eq!(
        first.begin_time.unwrap().to_rfc3339(),
        "2022-09-01T11:52:24+00:00"
    );
    assert_eq!(
        first.sub_step_details[1].sub_step_name.as_deref(),
        Some("实例状态检查")
    );
    assert!(p.step_details[1].sub_step_details[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("slot_range:[0 5460]"));
    let task = DcsTask {
        id: DcsTaskId::new(INSTANCE, "8abf6e1e72c12e7c0172c15b508500aa"),
        progress: Some(p),
        background: None,
    };
    assert_eq!(
        task.state(),
        TaskState::Running,
        "error codes on finished steps are not failures"
    );
    let progress = task.progress().unwrap();
    assert_eq!(
        (progress.percent, progress.steps_done, progress.steps_total),
        (Some(30.0), Some(1), Some(2))
    );
    assert_eq!(task.poll_hint(), Some(Duration::from_secs(100)));
    let steps = task.steps();
    assert_eq!(steps[1].steps.len(), 2);
    assert_eq!(steps[0].vendor_state, "FINISH");
}

#[test]
fn lenient_decoding_of_odd_bodies() {
    let p: DcsTaskProgress = serde_json::from_str(
        r#"{"progress":"45","step_details":[{"step_status":"PAUSED","begin_time":"","end_time":"2020-06-17T07:38:42.503Z"},{"step_status":null}]}"#,
    )
    .unwrap();
    assert_eq!(p.progress, Some(45));
    assert_eq!(
        p.step_details[0].step_status,
        DcsStepStatus::Unknown("PAUSED".into())
    );
    assert!(p.step_details[0].begin_time.is_none());
    assert_eq!(
        p.step_details[0]
            .end_time
            .unwrap()
            .timestamp_subsec_millis(),
        503
    );
    let task = DcsTask {
        id: DcsTaskId::new("i", "t"),
        progress: Some(p),
        background: None,
    };
    assert_eq!(
        task.state(),
        TaskState::Unknown,
        "unknown statuses are not guessed"
    );
    // The list example: task_count as a number, capacities as numbers, the
    // misspelt new_cahce_mode, status beside the tasks.
    let list: BackgroundTaskList = serde_json::from_str(
        r#"{"task_count":1,"tasks":[{"id":"a","name":"ChangeInstanceSpec","details":{"old_capacity":0.125,"new_capacity":"0.25","new_cahce_mode":"ha"},"user_name":"u","params":""}],"status":"SUCCESS","created_at":"2020-06-17T07:38:42.503Z"}"#,
    )
    .unwrap();
    let tasks = list.tasks_with_defaults();
    assert_eq!(list.task_count, Some(1));
    let details = tasks[0].details.as_ref().unwrap();
    assert_eq!(details.old_capacity.as_deref(), Some("0.125"));
    assert_eq!(details.new_cache_mode.as_deref(), Some("ha"));
    assert_eq!(tasks[0].status.as_deref(), Some("SUCCESS"));
    for bad in ["", "instance", "/task", "instance/", "a/b/c", "a b/c"] {
        assert!(bad.parse::<DcsTaskId>().is_err(), "{bad:?}");
    }
    let id: DcsTaskId = "inst-1/task-9".parse().unwrap();
    assert_eq!(id.to_string(), "inst-1/task-9");
}

async fn start(clock: &ManualClock) -> SimHandle {
    SimBuilder::new(Dcs::new(
        HuaweiAuth::new(PROJECT).with_aksk(AK, SK),
        [INSTANCE, "other-instance"],
    ))
    .with_clock(SimClock::manual(clock.clone()))
    .start()
    .await
    .unwrap()
}

fn provider(sim: &SimHandle) -> DcsProvider {
    let mut c = ServiceConfig::new("dcs", sim.base_url(), PROJECT, Credentials::aksk(AK, SK));
    c.options.retry = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    };
    DcsProvider::new(DcsClient::new(&c).unwrap()).with_instances([INSTANCE])
}

fn scale_out() -> TaskSpec {
    let s = Duration::from_secs;
    TaskSpec::new("ChangeInstanceSpec", s(0))
        .with_step(StepSpec::new("前置检查", s(10)).with_substeps(["资源检查", "实例状态检查"]))
        .with_step(StepSpec::new("数据迁移", s(20)).with_substeps(["申请资源", "迁移数据"]))
        .with_step(StepSpec::new("后置检查", s(10)))
}

#[tokio::test]
async fn a_task_is_seen_at_zero_mid_way_and_done() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    let id = DcsTaskId::new(
        INSTANCE,
        sim.create_task(scale_out().with_pending(Duration::from_secs(5))),
    );
    let s = p.status(&id).await.unwrap();
    assert_eq!(s.state(), TaskState::Pending);
    assert_eq!(s.progress().unwrap().percent, Some(0.0));
    assert_eq!(s.poll_hint(), Some(Duration::from_secs(45)));
    clock.advance(Duration::from_secs(20));
    let s = p.status(&id).await.unwrap();
    assert_eq!(s.state(), TaskState::Running);
    let progress = s.progress().unwrap();
    assert_eq!(progress.percent, Some(37.0));
    assert_eq!(
        (progress.steps_done, progress.steps_total),
        (Some(1), Some(3))
    );
    assert_eq!(progress.remaining, Some(Duration::from_secs(25)));
    let steps = s.steps();
    assert_eq!(steps[1].state, TaskState::Running);
    assert_eq!(steps[1].steps[0].state, TaskState::Running);
    assert_eq!(steps[2].state, TaskState::Pending);
    clock.advance(Duration::from_secs(30));
    let s = p.status(&id).await.unwrap();
    assert_eq!(s.state(), TaskState::Succeeded);
    assert_eq!(s.progress().unwrap().percent, Some(100.0));
    assert_eq!(s.poll_hint(), None);
    assert!(s.finished_at().is_some());
}

#[tokio::test]
async fn the_poller_follows_remain_time() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    let id = DcsTaskId::new(INSTANCE, sim.create_task(scale_out()));
    let poller = Poller::new(
        p,
        PollPolicy::default().with_initial_interval(Duration::from_secs(1)),
    )
    .with_clock(Arc::new(clock.clone()))
    .with_jitter_source(Arc::new(|| 0.5));
    let outcome = poller.wait(&id).await.unwrap();
    assert_eq!(outcome.state(), TaskState::Succeeded);
    // t=0: 40 s left, capped at the 30 s maximum; t=30: 10 s left; t=40: done.
    assert_eq!(outcome.polls, 3, "remain_time lets it sleep to the end");
    assert_eq!(clock.elapsed(), Duration::from_secs(40));
}

#[tokio::test]
async fn a_failed_step_fails_the_task_with_its_code() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    let s = Duration::from_secs;
    let spec = TaskSpec::new("ChangeInstanceSpec", s(0))
        .with_step(StepSpec::new("precheck", s(2)))
        .with_step(
            StepSpec::new("resize", s(2))
                .with_substeps(["allocate", "copy"])
                .with_failure("DCS.4933", "not enough capacity"),
        );
    let id = DcsTaskId::new(INSTANCE, sim.create_task(spec));
    clock.advance(s(5));
    let status = p.status(&id).await.unwrap();
    assert_eq!(status.state(), TaskState::Failed);
    let failure = status.failure().unwrap();
    assert_eq!(failure.code.as_deref(), Some("DCS.4933"));
    assert_eq!(
        failure.message,
        "step 'resize' failed at 'copy': not enough capacity"
    );
    let err = p
        .status(&DcsTaskId::new("missing-instance", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn background_tasks_are_listed() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    for i in 0..25 {
        let spec = TaskSpec::new("BindEip", Duration::from_secs(10 + i))
            .with_attr("instance_id", INSTANCE);
        sim.create_task(if i % 5 == 0 {
            spec.with_failure("DCS.1", "bind failed")
        } else {
            spec
        });
    }
    sim.create_task(
        TaskSpec::new("AddReplica", Duration::from_secs(1))
            .with_attr("instance_id", "other-instance"),
    );
    clock.advance(Duration::from_secs(40)); // every task (10-34 s) has ended
    let page = p.list(&TaskFilter::default()).await.unwrap();
    assert_eq!(
        page.items.len(),
        25,
        "every page walked, only the configured instance"
    );
    let failed = p
        .list(&TaskFilter::new().with_states([TaskState::Failed]))
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 5);
    assert!(page
        .items
        .iter()
        .all(|(_, t)| t.kind().as_deref() == Some("BindEip")));
}

/// The conformance run's harness: two-step spec changes (the scripted
/// failure in the last step), faults on the progress route.
fn harness(
    clock: ManualClock,
    sim: SimHandle,
    provider: Arc<DcsProvider>,
) -> SimHarness<DcsProvider> {
    let route = "GET /v2/{project_id}/instances/{instance_id}/tasks/{task_id}/progress";
    let unknown = DcsTaskId::new(INSTANCE, "ffffffffffffffffffffffffffffffff");
    SimHarness::new(clock, sim, provider, route, unknown, |sim, t| {
        let half = t.duration / 2;
        let last = StepSpec::new("apply", t.duration - half).with_substeps(["resize", "verify"]);
        let last = match t.expected {
            Expected::Succeed => last,
            Expected::Fail { code, message } => last.with_failure(code, message),
        };
        let spec = TaskSpec::new("ChangeInstanceSpec", Duration::ZERO)
            .with_step(StepSpec::new("check", half))
            .with_step(last);
        DcsTaskId::new(INSTANCE, sim.create_task(spec))
    })
    .with_attempts_per_status(3)
    .with_prepared_actions(|sim, clock, action| {
        (*action == TaskAction::Delete).then(|| {
            let spec = TaskSpec::new("ChangeInstanceSpec", Duration::from_secs(1));
            let id = DcsTaskId::new(INSTANCE, sim.create_task(spec));
            clock.advance(Duration::from_secs(2));
            (id, TaskAction::Delete)
        })
    })
}

#[tokio::test]
async fn a_missing_task_is_not_found_and_a_deleted_record_goes() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    let id = DcsTaskId::new(
        INSTANCE,
        sim.create_task(TaskSpec::new("BindEip", Duration::from_secs(1))),
    );
    clock.advance(Duration::from_secs(2));
    p.act(&id, TaskAction::Delete).await.unwrap();
    // DCS answers a missing task with 400 DCS.4133, as terraform expects.
    let err = p.status(&id).await.unwrap_err();
    assert!(
        matches!(err, tasktrack_core::Error::NotFound { .. }),
        "{err:?}"
    );
    let err = p.act(&id, TaskAction::Delete).await.unwrap_err();
    assert!(
        matches!(err, tasktrack_core::Error::NotFound { .. }),
        "{err:?}"
    );
    assert_eq!(
        sim.requests()
            .count("DELETE /v2/{project_id}/instances/{instance_id}/tasks/{task_id}"),
        2,
        "each delete sent once"
    );
}

#[tokio::test]
async fn the_dcs_provider_conforms() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let provider = Arc::new(provider(&sim));
    let report = tasktrack_testkit::run(&harness(clock, sim, provider)).await;
    println!("{report}");
    report.assert_passed();
}

/// With one instance configured, a bare task id names a task of it; with
/// two, the instance must be said.
#[tokio::test]
async fn a_bare_task_id_works_with_one_configured_instance() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let one: Arc<dyn tasktrack_core::DynTaskProvider> = Arc::new(provider(&sim));
    let id = sim.create_task(scale_out().with_attr("instance_id", INSTANCE));
    let bare = id.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        one.canonical_id(&bare).unwrap(),
        format!("{INSTANCE}/{bare}")
    );
    let snapshot = one.snapshot(&bare).await.unwrap();
    assert_eq!(snapshot.id, format!("{INSTANCE}/{bare}"));
    let two: Arc<dyn tasktrack_core::DynTaskProvider> =
        Arc::new(provider(&sim).with_instances([INSTANCE, "other-instance"]));
    let err = two.canonical_id(&bare).unwrap_err();
    assert!(err.to_string().contains("INSTANCE_ID/TASK_ID"), "{err}");
}
