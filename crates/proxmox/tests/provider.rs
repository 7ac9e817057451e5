//! ProxmoxProvider over real HTTP against the Proxmox simulator.

use std::sync::Arc;
use std::time::Duration;
use tasktrack_proxmox::ConfigureHttp;

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{
    Error, LogRange, ManualClock, PollPolicy, Poller, TaskAction, TaskProvider, TaskState,
    TaskStatus,
};
use tasktrack_proxmox::{
    decode_log, NodeTaskQuery, ProxmoxClient, ProxmoxCredentials, ProxmoxProvider, TaskSource, Upid,
};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{Fault, SimBuilder, SimClock, SimHandle, SimOutcome, TaskSpec};
use tasktrack_testkit::sim::{scripted, SimHarness};

const TOKEN_ID: &str = "root@pam!ci";
const TOKEN_SECRET: &str = "6f1c0b1e-1111-2222-3333-token-secret";
const PASSWORD: &str = "pve-password-value";
const STATUS_ROUTE: &str = "GET /api2/json/nodes/{node}/tasks/{upid}/status";
const LIST_ROUTE: &str = "GET /api2/json/nodes/{node}/tasks";

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    }
}

async fn start(clock: &ManualClock) -> SimHandle {
    SimBuilder::new(
        Proxmox::new(["pve1", "pve2", "pve3"])
            .with_api_token(TOKEN_ID, TOKEN_SECRET)
            .with_user("root@pam", PASSWORD),
    )
    .with_clock(SimClock::manual(clock.clone()))
    .start()
    .await
    .unwrap()
}

fn provider(sim: &SimHandle, creds: ProxmoxCredentials) -> ProxmoxProvider {
    let client = ProxmoxClient::builder(sim.base_url(), creds)
        .with_retry(quick_retry())
        .build()
        .unwrap();
    ProxmoxProvider::new(client)
}

fn token() -> ProxmoxCredentials {
    ProxmoxCredentials::api_token(TOKEN_ID, TOKEN_SECRET)
}

fn task(sim: &SimHandle, spec: TaskSpec) -> Upid {
    sim.create_task(spec).parse().unwrap()
}

/// The conformance run's harness: vzdump tasks, faults on the status route.
fn harness(
    clock: ManualClock,
    sim: SimHandle,
    provider: Arc<ProxmoxProvider>,
) -> SimHarness<ProxmoxProvider> {
    let unknown = "UPID:pve1:00000001:00000001:00000001:vzdump:999:root@pam:"
        .parse()
        .unwrap();
    SimHarness::new(clock, sim, provider, STATUS_ROUTE, unknown, |sim, t| {
        let spec = TaskSpec::new("vzdump", t.duration).with_attr("id", "100");
        task(sim, scripted(spec, t.expected))
    })
    .with_attempts_per_status(quick_retry().max_retries + 1)
    // PVE reports an exit status text, no code.
    .without_failure_codes()
}

#[tokio::test]
async fn the_proxmox_provider_conforms() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let provider = Arc::new(provider(&sim, token()));
    let report = tasktrack_testkit::run(&harness(clock, sim, provider)).await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test]
async fn three_hundred_upids_over_three_nodes_cost_three_list_requests() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, token());
    let mut ids = Vec::new();
    for i in 0..300u64 {
        let spec = TaskSpec::new("vzdump", Duration::from_secs(5 + i % 50))
            .with_attr("id", (100 + i).to_string());
        let spec = if i % 7 == 0 {
            spec.with_failure("E", "backup failed")
        } else {
            spec
        };
        ids.push(task(&sim, spec));
        if i % 30 == 0 {
            clock.advance(Duration::from_secs(1));
        }
    }
    clock.advance(Duration::from_secs(20));
    sim.requests().reset();
    let answers = p.status_many(&ids).await;
    let lists = sim.requests().count(LIST_ROUTE);
    let singles = sim.requests().count(STATUS_ROUTE);
    println!("300 UPIDs over 3 nodes: {lists} list requests, {singles} status fallbacks");
    assert_eq!(lists, 3);
    assert_eq!(singles, 0, "every UPID was in its node's list");
    for (id, answer) in ids.iter().zip(&answers) {
        let batched = answer.as_ref().unwrap();
        let single = p.status(id).await.unwrap();
        assert_eq!(batched.state(), single.state(), "{id}");
        assert_eq!(batched.vendor_state(), single.vendor_state(), "{id}");
    }
    assert!(answers
        .iter()
        .any(|a| a.as_ref().unwrap().state() == TaskState::Running));
    assert!(answers
        .iter()
        .any(|a| a.as_ref().unwrap().state() == TaskState::Failed));

    // UPIDs the list does not hold (an unknown one) fall back to /status.
    sim.requests().reset();
    let unknown: Upid = "UPID:pve2:00000001:00000001:00000001:vzdump:1:root@pam:"
        .parse()
        .unwrap();
    let mixed = vec![ids[0].clone(), unknown, ids[1].clone()];
    let answers = p.status_many(&mixed).await;
    assert!(matches!(answers[1], Err(Error::NotFound { .. })));
    assert!(answers[0].is_ok() && answers[2].is_ok());
    assert_eq!(
        sim.requests().count(STATUS_ROUTE),
        1,
        "one fallback for the missing UPID"
    );
    assert!(sim.requests().count(LIST_ROUTE) <= 2);

    // The same UPID twice in one batch: both get the same answer.
    let twice = vec![ids[7].clone(), ids[7].clone()];
    let answers = p.status_many(&twice).await;
    let (a, b) = (answers[0].as_ref().unwrap(), answers[1].as_ref().unwrap());
    assert_eq!((a.state(), a.vendor_state()), (b.state(), b.vendor_state()));
    assert_eq!(a.state(), TaskState::Failed, "i = 7 was scripted to fail");
}

#[tokio::test]
async fn logs_page_and_tail_and_failures_carry_them() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, token());
    let lines: Vec<String> = (1..=120).map(|i| format!("INFO: line {i}")).collect();
    let upid = task(
        &sim,
        TaskSpec::new("vzdump", Duration::from_secs(10))
            .with_log(lines)
            .with_failure("E", "job errors"),
    );
    clock.advance(Duration::from_secs(11));
    let tail = p.logs(&upid, LogRange::Tail(3)).await.unwrap();
    let text: Vec<_> = tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        text,
        ["INFO: line 119", "INFO: line 120", "TASK ERROR: job errors"]
    );
    assert_eq!(tail[2].n, 121);
    let all = p.logs(&upid, LogRange::All).await.unwrap();
    assert_eq!(all.len(), 121);
    let page = p.client().task_log(&upid, 50, 10).await.unwrap();
    assert_eq!(page.lines.first().map(|l| l.n), Some(51));
    assert_eq!(page.total, Some(121));
    assert!(decode_log(&page.lines).starts_with("INFO: line 51\nINFO: line 52"));

    let poller = Poller::new(
        p.clone(),
        PollPolicy::fixed(Duration::from_secs(1)).with_log_tail_lines(2),
    )
    .with_clock(Arc::new(clock.clone()));
    match poller.wait(&upid).await.unwrap().into_result().unwrap_err() {
        Error::TaskFailed {
            failure,
            log_tail,
            id,
            ..
        } => {
            assert_eq!(failure.message, "job errors");
            assert_eq!(&*log_tail, ["INFO: line 120", "TASK ERROR: job errors"]);
            assert_eq!(id, upid.to_string());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn warnings_succeed_and_stay_visible() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, token());
    let upid = task(
        &sim,
        TaskSpec::new("vzdump", Duration::from_secs(2))
            .with_outcome(SimOutcome::Warnings { count: 2 }),
    );
    clock.advance(Duration::from_secs(3));
    let s = p.status(&upid).await.unwrap();
    assert_eq!(s.state(), TaskState::Succeeded);
    let snap = s.snapshot("proxmox", upid.as_str());
    assert_eq!(snap.warnings, Some(2));
    assert_eq!(snap.vendor_state, "stopped: WARNINGS: 2");
    let tail = p.logs(&upid, LogRange::Tail(1)).await.unwrap();
    assert_eq!(tail[0].text, "TASK WARNINGS: 2");
}

#[tokio::test]
async fn ticket_auth_logs_in_and_renews_once_when_expired() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, ProxmoxCredentials::password("root@pam", PASSWORD));
    let upid = task(
        &sim,
        TaskSpec::new("qmigrate", Duration::from_secs(100_000)).with_attr("id", "101"),
    );
    assert_eq!(p.status(&upid).await.unwrap().state(), TaskState::Running);
    assert_eq!(sim.requests().count("POST /api2/json/access/ticket"), 1);
    // The stop is a write: it needs the CSRF token and is accepted.
    clock.advance(Duration::from_secs(3 * 3600));
    p.act(&upid, TaskAction::Cancel).await.unwrap();
    assert_eq!(
        sim.requests().count("POST /api2/json/access/ticket"),
        2,
        "expired ticket renewed once"
    );
    assert_eq!(
        sim.requests()
            .count("DELETE /api2/json/nodes/{node}/tasks/{upid}"),
        2,
        "refused once, then sent"
    );
    clock.advance(Duration::from_secs(1));
    let s = p.status(&upid).await.unwrap();
    assert_eq!(s.state(), TaskState::Failed);
    // The worker's SIGTERM handler dies "received interrupt" (pve-common
    // PVE/RESTEnvironment.pm fork_worker).
    assert_eq!(s.failure().unwrap().message, "received interrupt");

    let wrong = provider(
        &sim,
        ProxmoxCredentials::password("root@pam", "nope-password"),
    );
    let err = wrong.status(&upid).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    assert!(err.to_string().contains("authentication failure"), "{err}");
    assert_eq!(
        sim.requests().count("POST /api2/json/access/ticket"),
        3,
        "the wrong password was tried once"
    );
}

#[tokio::test]
async fn errors_keep_pve_messages_and_never_secrets() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let bad_token = provider(
        &sim,
        ProxmoxCredentials::api_token(TOKEN_ID, "wrong-secret-value"),
    );
    let upid = task(&sim, TaskSpec::new("vzdump", Duration::from_secs(10)));
    let err = bad_token.status(&upid).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }));
    let p = provider(&sim, token());
    sim.faults().next(3, STATUS_ROUTE, Fault::status(500));
    let err = p.status(&upid).await.unwrap_err();
    match &err {
        Error::Http(h) => {
            assert_eq!(h.status, 500);
            // PVE's JSON error body carries the message (said once).
            assert_eq!(h.vendor_message.as_deref(), Some("Internal Server Error"));
            assert!(
                h.body_excerpt.starts_with(r#"{"data":null"#),
                "{}",
                h.body_excerpt
            );
            assert!(h.path.starts_with("/nodes/pve"), "{}", h.path);
        }
        other => panic!("{other:?}"),
    }
    let unparsable = "UPID:pve1:0000000G:1:1:x::root@pam:";
    let err = p
        .client()
        .node_tasks("nowhere", &NodeTaskQuery::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("hostname lookup 'nowhere' failed"),
        "{err}"
    );
    assert!(unparsable.parse::<Upid>().is_err());
    for text in [
        format!("{err:?}"),
        format!("{p:?}"),
        format!("{bad_token:?}"),
    ] {
        assert!(
            !text.contains(TOKEN_SECRET) && !text.contains("wrong-secret-value"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn node_task_filters() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, token());
    let node = |n: &str| ("node", n.to_string());
    let t = |kind: &str, secs: u64, attrs: &[(&str, String)], fail: bool| {
        let mut spec = TaskSpec::new(kind, Duration::from_secs(secs));
        for (k, v) in attrs {
            spec = spec.with_attr(*k, v.clone());
        }
        if fail {
            spec = spec.with_failure("E", "boom");
        }
        task(&sim, spec)
    };
    t("vzdump", 1, &[node("pve1"), ("id", "100".into())], false);
    t("vzdump", 1, &[node("pve1"), ("id", "101".into())], true);
    t(
        "qmigrate",
        100,
        &[
            node("pve1"),
            ("id", "100".into()),
            ("user", "bob@pve".into()),
        ],
        false,
    );
    t("vzdump", 1, &[node("pve2")], false);
    clock.advance(Duration::from_secs(2));
    let q = |f: fn(&mut NodeTaskQuery)| {
        let mut q = NodeTaskQuery::default();
        f(&mut q);
        q
    };
    let count = |q: NodeTaskQuery| {
        let p = p.clone();
        async move {
            p.client()
                .node_tasks("pve1", &q)
                .await
                .unwrap()
                .entries
                .len()
        }
    };
    assert_eq!(
        count(NodeTaskQuery::default()).await,
        2,
        "archive by default"
    );
    assert_eq!(count(q(|q| q.source = Some(TaskSource::Active))).await, 1);
    assert_eq!(count(q(|q| q.source = Some(TaskSource::All))).await, 3);
    assert_eq!(
        count(q(|q| {
            q.source = Some(TaskSource::All);
            q.vmid = Some(100)
        }))
        .await,
        2
    );
    assert_eq!(count(q(|q| q.errors = true)).await, 1);
    assert_eq!(
        count(q(|q| q.typefilter = Some("qmigrate".into()))).await,
        0,
        "running: not in archive"
    );
    assert_eq!(
        count(q(|q| {
            q.source = Some(TaskSource::All);
            q.userfilter = Some("bob".into())
        }))
        .await,
        1
    );
    assert_eq!(count(q(|q| q.statusfilter = Some("ok".into()))).await, 1);
    assert_eq!(
        count(q(|q| {
            q.source = Some(TaskSource::All);
            q.limit = Some(1);
            q.start = Some(1)
        }))
        .await,
        1
    );
    let page = p
        .client()
        .node_tasks("pve1", &q(|q| q.source = Some(TaskSource::All)))
        .await
        .unwrap();
    assert_eq!(page.total, Some(3));
    let failed = page
        .entries
        .iter()
        .find(|e| e.id.as_deref() == Some("101"))
        .unwrap();
    assert_eq!(failed.status.as_deref(), Some("boom"));
    assert!(failed.endtime.is_some());
    let cluster = p.client().cluster_tasks().await.unwrap();
    assert_eq!(cluster.len(), 4);
}

#[tokio::test]
async fn wait_task_is_blocking_status() {
    // blocking_status runs on real time, so this simulator does too.
    let sim = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token(TOKEN_ID, TOKEN_SECRET))
        .start()
        .await
        .unwrap();
    let p = provider(&sim, token());
    let quick = task(
        &sim,
        TaskSpec::new("vzcreate", Duration::from_millis(200)).with_attr("id", "123"),
    );
    let s = p
        .wait_task(&quick, Duration::from_secs(30), Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.state(), TaskState::Succeeded);
    let slow = task(&sim, TaskSpec::new("vzcreate", Duration::from_secs(3600)));
    // Real time here: a short timeout gives None, like proxmoxer.
    let none = p
        .wait_task(&slow, Duration::from_millis(150), Duration::from_millis(50))
        .await
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn tls_with_the_cluster_ca_or_the_explicit_danger_option() {
    let sim = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token(TOKEN_ID, TOKEN_SECRET))
        .with_tls(true)
        .start()
        .await
        .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let upid = task(&sim, TaskSpec::new("vzdump", Duration::from_secs(3600)));
    let pem = sim.certificate_pem().unwrap().as_bytes().to_vec();
    let trusted = ProxmoxClient::builder(sim.base_url(), token())
        .with_root_certificate_pem(&pem)
        .build()
        .unwrap();
    assert_eq!(
        trusted.task_status(&upid).await.unwrap().state(),
        TaskState::Running
    );

    let untrusted = ProxmoxClient::builder(sim.base_url(), token())
        .with_retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = untrusted.task_status(&upid).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "says why: {err}"
    );

    let insecure = ProxmoxClient::builder(sim.base_url(), token())
        .with_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert_eq!(
        insecure.task_status(&upid).await.unwrap().state(),
        TaskState::Running
    );
}

/// The golden logs of each task type end at the percent PVE's UI shows.
#[test]
fn each_task_types_golden_log_ends_at_its_percent() {
    for (file, expected) in [
        ("vzdump", 41.0),
        ("qmclone", 79.22),
        ("qmigrate", 63.44),
        ("qmrestore", 27.0),
        ("imgcopy", 88.5),
    ] {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/logs/{file}.log",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(
            tasktrack_proxmox::progress::last_percent(text.lines()),
            Some(expected),
            "{file}"
        );
    }
}

/// A task waited on alone shows the percent its log reports, read a little
/// at a time; a batch of statuses reads no log.
#[tokio::test]
async fn a_running_tasks_percent_comes_from_its_log() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, token());
    let lines = [
        "INFO: starting new backup job: vzdump 100",
        "INFO:  10% (3.2 GiB of 32.0 GiB) in 10s, read: 320 MiB/s",
        "INFO:  50% (16.0 GiB of 32.0 GiB) in 50s, read: 320 MiB/s",
        "INFO:  90% (28.8 GiB of 32.0 GiB) in 90s, read: 320 MiB/s",
        "INFO: backup finished",
    ];
    let upid = task(
        &sim,
        TaskSpec::new("vzdump", Duration::from_secs(100))
            .with_attr("id", "100")
            .with_log(lines),
    );
    let percent = |s: &tasktrack_proxmox::ProxmoxTask| {
        tasktrack_core::TaskStatus::progress(s).and_then(|p| p.percent)
    };
    assert_eq!(
        percent(&p.status(&upid).await.unwrap()),
        None,
        "no percent written yet"
    );
    clock.advance(Duration::from_secs(25));
    assert_eq!(percent(&p.status(&upid).await.unwrap()), Some(10.0));
    clock.advance(Duration::from_secs(20));
    let before = sim
        .requests()
        .count("GET /api2/json/nodes/{node}/tasks/{upid}/log");
    assert_eq!(percent(&p.status(&upid).await.unwrap()), Some(50.0));
    let after = sim
        .requests()
        .count("GET /api2/json/nodes/{node}/tasks/{upid}/log");
    assert_eq!(after - before, 1, "one log request per poll once caught up");
    // Nothing new: the last percent stays.
    assert_eq!(percent(&p.status(&upid).await.unwrap()), Some(50.0));
    let batch = p.status_many(std::slice::from_ref(&upid)).await;
    assert_eq!(
        percent(batch[0].as_ref().unwrap()),
        None,
        "batches read no log"
    );
    clock.advance(Duration::from_secs(100));
    assert_eq!(
        percent(&p.status(&upid).await.unwrap()),
        None,
        "stopped: the status says it all"
    );
}

/// What a task's warnings said comes with its `WARNINGS: N`: the `WARN:`
/// lines of its log, read while it runs and once it ends, alone or in a
/// batch.
#[tokio::test]
async fn warnings_come_with_what_they_said() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim, token());
    let spec = || {
        TaskSpec::new("vzdump", Duration::from_secs(100))
            .with_attr("id", "100")
            .with_log([
                "INFO: starting new backup job: vzdump 100",
                "WARN: storage local is 95% full",
                "INFO: backup finished",
            ])
            .with_outcome(SimOutcome::Warnings { count: 2 })
    };
    let alone = task(&sim, spec());
    let batched = task(&sim, spec());
    clock.advance(Duration::from_secs(70));
    let running = p.status(&alone).await.unwrap();
    assert_eq!(running.state(), TaskState::Running);
    assert_eq!(
        running.warning_messages(),
        ["storage local is 95% full"],
        "read while it runs"
    );
    clock.advance(Duration::from_secs(60));
    // The second warning is one the script counted without writing it: the
    // simulator writes it, as a real worker's count is of lines it wrote.
    let expected = ["storage local is 95% full", "simulated warning 2"];
    let done = p.status(&alone).await.unwrap();
    assert_eq!(
        (done.state(), done.warnings()),
        (TaskState::Succeeded, Some(2))
    );
    assert_eq!(done.warning_messages(), expected);
    let snapshot = done.snapshot("pve", &alone.to_string());
    assert_eq!(snapshot.warning_messages, expected);

    let before = sim
        .requests()
        .count("GET /api2/json/nodes/{node}/tasks/{upid}/log");
    let batch = p.status_many(std::slice::from_ref(&batched)).await;
    let after = sim
        .requests()
        .count("GET /api2/json/nodes/{node}/tasks/{upid}/log");
    let ended = batch[0].as_ref().unwrap();
    assert_eq!(ended.warnings(), Some(2));
    assert_eq!(ended.warning_messages(), expected);
    assert_eq!(after - before, 1, "one log read for the ended task");
}
