//! KPS over real HTTP against the KPS simulator.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{
    Error, ManualClock, TaskAction, TaskFilter, TaskProvider, TaskState, TaskStatus,
};
use tasktrack_huaweicloud::{Credentials, ServiceConfig, Signer};
use tasktrack_kps::{
    FailedTask, KpsClient, KpsOperation, KpsPhase, KpsProvider, KpsTaskId, TaskList,
};
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, TaskSpec};
use tasktrack_testkit::sim::{scripted, SimHarness};

const PROJECT: &str = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
const AK: &str = "SIMAKEXAMPLE0001";
const SK: &str = "sim-secret-key-value";
const TOKEN: &str = "MIIsim-iam-token-value";

async fn start(clock: &ManualClock) -> SimHandle {
    SimBuilder::new(Kps::new(
        HuaweiAuth::new(PROJECT).with_aksk(AK, SK).with_token(TOKEN),
    ))
    .with_clock(SimClock::manual(clock.clone()))
    .start()
    .await
    .unwrap()
}

fn config(sim: &SimHandle, creds: Credentials) -> ServiceConfig {
    let mut c = ServiceConfig::new("kps", sim.base_url(), PROJECT, creds);
    c.options.retry = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    };
    c
}

fn client(sim: &SimHandle) -> KpsClient {
    KpsClient::new(&config(sim, Credentials::aksk(AK, SK))).unwrap()
}

#[test]
fn the_documents_example_decodes() {
    let body = r#"{
  "total" : 1,
  "tasks" : [ {
    "task_id" : "aee8d2fe-5484-4753-9177-5a38dc15546c",
    "operate_type" : "RUNNING_RESET",
    "task_time" : "1523342130000",
    "task_error_code" : null,
    "task_error_msg" : "Update public key error",
    "server_name" : "Test",
    "server_id" : "c9aa197b-a6b6-4c33-b3a6-fa0b4ec50006",
    "keypair_name" : "KeyPair-xt"
  } ]
}"#;
    let list: TaskList<FailedTask> = serde_json::from_str(body).unwrap();
    assert_eq!(list.total, Some(1));
    let t = &list.tasks[0];
    assert_eq!(t.task_id, "aee8d2fe-5484-4753-9177-5a38dc15546c");
    let op = t.operate_type.as_ref().unwrap();
    assert_eq!(
        (op.phase(), op.operation()),
        (Some(KpsPhase::Running), Some(KpsOperation::Reset))
    );
    assert_eq!(t.task_time.unwrap().timestamp_millis(), 1_523_342_130_000);
    assert_eq!(t.task_error_code, None);
    assert_eq!(t.task_error_msg.as_deref(), Some("Update public key error"));
    assert_eq!(t.keypair_name.as_deref(), Some("KeyPair-xt"));
    // A number for task_time, unknown enum values and extra fields are kept.
    let t: FailedTask = serde_json::from_str(
        r#"{"task_id":"x","operate_type":"PAUSED_ROTATE","task_time":1523342130000,"new_field":true}"#,
    )
    .unwrap();
    assert_eq!(t.operate_type.as_ref().unwrap().as_str(), "PAUSED_ROTATE");
    assert_eq!(t.operate_type.as_ref().unwrap().phase(), None);
    assert!(t.task_time.is_some() && t.extra.contains_key("new_field"));
}

#[tokio::test]
async fn paging_walks_2500_failed_tasks_with_limit_1000() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    for i in 0..2500 {
        sim.create_task(
            TaskSpec::new("reset", Duration::from_secs(1))
                .with_failure(format!("KPS.{i}"), "Update public key error"),
        );
    }
    clock.advance(Duration::from_secs(2));
    let c = client(&sim);
    let all: Vec<FailedTask> = c.failed_tasks(1000).try_collect().await.unwrap();
    assert_eq!(all.len(), 2500);
    let mut ids: Vec<_> = all.iter().map(|t| t.task_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2500, "no task twice");
    assert_eq!(sim.requests().count("GET /v3/{project_id}/failed-tasks"), 3);

    // The list shrinks while it is walked: the walk still ends, without repeats.
    sim.requests().reset();
    let mut stream = std::pin::pin!(c.failed_tasks(1000));
    let mut seen = 0;
    while let Some(t) = stream.try_next().await.unwrap() {
        seen += 1;
        if seen == 1 {
            c.delete_all_failed().await.unwrap();
        }
        assert!(!t.task_id.is_empty());
    }
    assert_eq!(seen, 1000, "first page only; the rest was deleted");
    assert!(sim.requests().count("GET /v3/{project_id}/failed-tasks") <= 2);
}

/// The conformance run's harness: KPS reset tasks, faults on the task route.
fn harness(
    clock: ManualClock,
    sim: SimHandle,
    provider: Arc<KpsProvider>,
) -> SimHarness<KpsProvider> {
    let unknown = "00000000-0000-0000-0000-000000000000".parse().unwrap();
    SimHarness::new(
        clock,
        sim,
        provider,
        "GET /v3/{project_id}/tasks/{task_id}",
        unknown,
        |sim, t| {
            let spec = TaskSpec::new("reset", t.duration).with_attr("operation", "RESET");
            sim.create_task(scripted(spec, t.expected)).parse().unwrap()
        },
    )
    .with_attempts_per_status(3)
    .with_prepared_actions(|sim, clock, action| {
        (*action == TaskAction::Delete).then(|| {
            let id = sim
                .create_task(TaskSpec::new("reset", Duration::ZERO).with_failure("KPS.1", "failed"))
                .parse()
                .unwrap();
            clock.advance(Duration::from_millis(1));
            (id, TaskAction::Delete)
        })
    })
}

#[tokio::test]
async fn the_kps_provider_conforms_with_aksk_and_with_a_token() {
    for creds in [Credentials::aksk(AK, SK), Credentials::token(TOKEN)] {
        let clock = ManualClock::new();
        let sim = start(&clock).await;
        let provider = Arc::new(KpsProvider::new(
            KpsClient::new(&config(&sim, creds)).unwrap(),
        ));
        let report = tasktrack_testkit::run(&harness(clock, sim, provider)).await;
        println!("{report}");
        report.assert_passed();
    }
}

#[tokio::test]
async fn status_falls_back_to_the_lists_and_maps_states() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = KpsProvider::new(client(&sim));
    let ready = sim
        .create_task(
            TaskSpec::new("replace", Duration::from_secs(5))
                .with_pending(Duration::from_secs(5))
                .with_attr("operation", "REPLACE"),
        )
        .parse::<KpsTaskId>()
        .unwrap();
    assert_eq!(p.status(&ready).await.unwrap().state(), TaskState::Pending);
    let failed = sim
        .create_task(
            TaskSpec::new("unbind", Duration::from_secs(1))
                .with_attr("operation", "UNBIND")
                .with_failure("KPS.0042", "unbind error"),
        )
        .parse::<KpsTaskId>()
        .unwrap();
    clock.advance(Duration::from_secs(2));
    let s = p.status(&failed).await.unwrap();
    assert_eq!(s.vendor_state(), "FAILED_UNBIND");
    assert_eq!(s.failure().unwrap().code.as_deref(), Some("KPS.0042"));
    assert_eq!(s.kind().as_deref(), Some("UNBIND"));
    let listed = p
        .list(&TaskFilter::new().with_states([TaskState::Failed]))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    p.act(&failed, TaskAction::Delete).await.unwrap();
    assert!(matches!(
        p.status(&failed).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        p.act(&failed, TaskAction::Delete).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        p.act(&ready, TaskAction::Cancel).await,
        Err(Error::Unsupported { .. })
    ));
}

fn failing_reset(sim: &SimHandle, code: &str) -> KpsTaskId {
    sim.create_task(
        TaskSpec::new("reset", Duration::from_secs(1))
            .with_attr("operation", "RESET")
            .with_failure(code, "Update public key error"),
    )
    .parse()
    .unwrap()
}

#[tokio::test]
async fn lookups_of_failed_tasks_share_reads_of_the_failed_list() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = KpsProvider::new(client(&sim));
    let ids: Vec<KpsTaskId> = (0..300)
        .map(|i| failing_reset(&sim, &format!("KPS.{i}")))
        .collect();
    clock.advance(Duration::from_secs(2));
    sim.requests().reset();
    let failed_list = "GET /v3/{project_id}/failed-tasks";

    // As the tracker asks: all at once.
    let statuses = futures::future::join_all(ids.iter().map(|id| p.status(id))).await;
    for (i, s) in statuses.into_iter().enumerate() {
        let s = s.unwrap();
        assert_eq!(s.state(), TaskState::Failed);
        let code = s.failure().unwrap().code.clone();
        assert_eq!(code.as_deref(), Some(format!("KPS.{i}").as_str()));
    }
    assert_eq!(
        sim.requests().count(failed_list),
        1,
        "one read of the list answers 300 lookups"
    );
    // And one by one, each entry is the one the client reads itself.
    for id in &ids[..10] {
        let kept = p.status(id).await.unwrap();
        let read = p.client().find_failed(id.as_str(), 1000).await.unwrap();
        assert_eq!(kept.error_msg, read.unwrap().task_error_msg);
    }
    assert_eq!(sim.requests().count(failed_list), 11);

    // A task that fails after the read is not missed: its lookup reads again.
    let late = failing_reset(&sim, "KPS.late");
    clock.advance(Duration::from_secs(2));
    let s = p.status(&late).await.unwrap();
    assert_eq!(s.failure().unwrap().code.as_deref(), Some("KPS.late"));
    assert_eq!(sim.requests().count(failed_list), 12);
}

#[tokio::test]
async fn errors_keep_the_huawei_body_and_request_id() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let wrong_project = KpsClient::new(&ServiceConfig::new(
        "kps",
        sim.base_url(),
        "other-project",
        Credentials::token(TOKEN),
    ))
    .unwrap();
    match wrong_project.list_failed(10, 0).await.unwrap_err() {
        Error::Auth {
            status, message, ..
        } => {
            assert_eq!(status, 403);
            assert!(message.contains("project id does not match"), "{message}");
            assert!(message.contains("request id"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let c = client(&sim);
    let err = c.list_failed(1, 0).await;
    assert!(err.is_ok());
    sim.faults().next(3, "*", tasktrack_sim::Fault::status(500));
    match c.list_failed(1, 0).await.unwrap_err() {
        Error::Http(h) => {
            assert_eq!(h.vendor_code.as_deref(), Some("KPS.0500"));
            assert!(
                h.request_id.as_deref().is_some_and(|r| r.len() == 32),
                "{:?}",
                h.request_id
            );
        }
        other => panic!("{other:?}"),
    }
    let bad = KpsClient::new(&config(&sim, Credentials::aksk(AK, "wrong-sk-value"))).unwrap();
    let err = bad.list_failed(1, 0).await.unwrap_err();
    assert!(
        err.to_string().contains("verify aksk signature fail"),
        "{err}"
    );
    for text in [format!("{err:?}"), format!("{bad:?}"), err.to_string()] {
        assert!(
            !text.contains("wrong-sk-value") && !text.contains(SK),
            "{text}"
        );
    }
}

/// A change made to a request after it was signed.
type Tamper = Box<dyn FnOnce(&mut http::request::Parts, &mut Vec<u8>)>;

/// Sends a request signed by the adapter's signer, after `tamper` changes it.
async fn send_signed(
    sim: &SimHandle,
    tamper: impl FnOnce(&mut http::request::Parts, &mut Vec<u8>),
    when: chrono::DateTime<Utc>,
) -> u16 {
    let url = format!(
        "{}/v3/{PROJECT}/failed-tasks?limit=10&offset=0",
        sim.base_url()
    );
    let mut parts = http::Request::get(url).body(()).unwrap().into_parts().0;
    parts
        .headers
        .insert("x-project-id", PROJECT.parse().unwrap());
    let mut body = Vec::new();
    Signer::new(AK, SK).sign(&mut parts, &body, when).unwrap();
    tamper(&mut parts, &mut body);
    let client = reqwest::Client::new();
    let mut req = client.request(parts.method.clone(), parts.uri.to_string());
    for (k, v) in &parts.headers {
        req = req.header(k, v);
    }
    req.body(body).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_simulator_rejects_any_change_to_a_signed_part() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let now = sim.clock().now_utc();
    assert_eq!(
        send_signed(&sim, |_, _| {}, now).await,
        200,
        "untouched request passes"
    );
    let base = sim.base_url();
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "query",
            Box::new(move |p, _| {
                p.uri = format!("{base}/v3/{PROJECT}/failed-tasks?limit=11&offset=0")
                    .parse()
                    .unwrap()
            }),
        ),
        ("method", Box::new(|p, _| p.method = http::Method::DELETE)),
        (
            "project header",
            Box::new(|p, _| {
                p.headers
                    .insert("x-project-id", "someone-else".parse().unwrap());
            }),
        ),
        ("body", Box::new(|_, b| b.extend_from_slice(b"{}"))),
        (
            "date",
            Box::new(|p, _| {
                p.headers
                    .insert("x-sdk-date", "20300101T000000Z".parse().unwrap());
            }),
        ),
    ];
    for (what, tamper) in cases {
        assert_eq!(
            send_signed(&sim, tamper, now).await,
            401,
            "changed {what} must be rejected"
        );
    }
    let skewed = now - chrono::Duration::minutes(16);
    assert_eq!(
        send_signed(&sim, |_, _| {}, skewed).await,
        401,
        "16 minutes of clock skew"
    );
    let close = now - chrono::Duration::minutes(14);
    assert_eq!(
        send_signed(&sim, |_, _| {}, close).await,
        200,
        "14 minutes is fine"
    );
}

/// Looking one failed task up decodes only the entries' ids, and finds
/// the same entry, every field of it, as walking the whole decoded list.
#[tokio::test]
async fn a_failed_task_is_found_across_pages_as_the_full_list_has_it() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let c = client(&sim);
    let ids: Vec<String> = (0..20)
        .map(|i| {
            sim.create_task(
                TaskSpec::new("reset", Duration::from_secs(1))
                    .with_attr("operation", "RESET")
                    .with_attr("server_name", format!("ecs-{i:02}"))
                    .with_failure(format!("KPS.{i:04}"), format!("failure {i}")),
            )
        })
        .collect();
    clock.advance(Duration::from_secs(2));
    let everything: Vec<FailedTask> = c.failed_tasks(7).try_collect().await.unwrap();
    assert_eq!(everything.len(), 20);
    sim.requests().reset();
    let last = c.find_failed(&ids[19], 7).await.unwrap().expect("found");
    assert_eq!(
        Some(&last),
        everything.iter().find(|t| t.task_id == ids[19])
    );
    assert_eq!(last.task_error_code.as_deref(), Some("KPS.0019"));
    assert_eq!(last.server_name.as_deref(), Some("ecs-19"));
    assert_eq!(
        sim.requests().count("GET /v3/{project_id}/failed-tasks"),
        3,
        "three pages of 7 walked to the last entry"
    );
    let first = c.find_failed(&ids[0], 7).await.unwrap().expect("found");
    assert_eq!(first.task_error_msg.as_deref(), Some("failure 0"));
    assert_eq!(
        c.find_failed("00000000-0000-0000-0000-000000000000", 7)
            .await
            .unwrap(),
        None
    );
}
