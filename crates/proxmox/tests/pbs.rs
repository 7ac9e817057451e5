//! The Proxmox provider against the Proxmox Backup Server simulator, over
//! real HTTP: PBS's token form, UPIDs with the task counter, its log
//! numbering, its task list, and the conformance kit.

use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{
    Error, LogRange, ManualClock, PollPolicy, Poller, TaskAction, TaskProvider, TaskState,
    TaskStatus,
};
use tasktrack_proxmox::{
    ConfigureHttp, NodeTaskQuery, ProxmoxClient, ProxmoxCredentials, ProxmoxProduct,
    ProxmoxProvider, TaskSource, Upid,
};
use tasktrack_sim::pbs::Pbs;
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, TaskSpec};
use tasktrack_testkit::sim::{scripted, SimHarness};

const TOKEN_ID: &str = "backup@pbs!ci";
const TOKEN_SECRET: &str = "0b5c7c8e-aaaa-bbbb-cccc-pbs-secret";
const PASSWORD: &str = "pbs-password-value";
const STATUS_ROUTE: &str = "GET /api2/json/nodes/{node}/tasks/{upid}/status";
const LIST_ROUTE: &str = "GET /api2/json/nodes/{node}/tasks";

async fn start(clock: &ManualClock) -> SimHandle {
    SimBuilder::new(
        Pbs::new("pbs1")
            .with_api_token(TOKEN_ID, TOKEN_SECRET)
            .with_user("backup@pbs", PASSWORD),
    )
    .with_clock(SimClock::manual(clock.clone()))
    .start()
    .await
    .unwrap()
}

fn client(sim: &SimHandle, creds: ProxmoxCredentials) -> ProxmoxClient {
    ProxmoxClient::pbs_builder(sim.base_url(), creds)
        .with_retry(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        })
        .build()
        .unwrap()
}

fn provider(sim: &SimHandle) -> ProxmoxProvider {
    ProxmoxProvider::new(client(
        sim,
        ProxmoxCredentials::parse_pbs_token(&format!("{TOKEN_ID}:{TOKEN_SECRET}")).unwrap(),
    ))
}

fn task(sim: &SimHandle, spec: TaskSpec) -> Upid {
    sim.create_task(spec).parse().unwrap()
}

fn backup(secs: u64) -> TaskSpec {
    TaskSpec::new("backup", Duration::from_secs(secs)).with_attr("id", "store1:vm/100")
}

#[tokio::test]
async fn the_pbs_provider_conforms() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let provider = Arc::new(provider(&sim));
    let unknown: Upid = "UPID:pbs1:00000001:00000001:000000FF:00000001:backup:x:root@pam:"
        .parse()
        .unwrap();
    let harness = SimHarness::new(clock, sim, provider, STATUS_ROUTE, unknown, |sim, t| {
        let spec = TaskSpec::new("backup", t.duration).with_attr("id", "store1");
        task(sim, scripted(spec, t.expected))
    })
    .with_attempts_per_status(3)
    .without_failure_codes();
    let report = tasktrack_testkit::run(&harness).await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test]
async fn a_pbs_upid_is_waited_for_with_the_pbs_token_and_its_failure_log_kept() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    assert_eq!(p.name(), "pbs");
    let ok = task(&sim, backup(4));
    let bad = task(
        &sim,
        backup(2)
            .with_log(["starting backup", "ERROR: chunk store full"])
            .with_failure("E", "backup failed: no space left on device"),
    );
    assert_eq!(
        ok.task_counter(),
        Some(1),
        "the PBS form carries the task counter"
    );
    let poller = Poller::new(p, PollPolicy::fixed(Duration::from_secs(1)));
    let wait = tokio::spawn({
        let (poller, ok, bad) = (poller.clone(), ok.clone(), bad.clone());
        async move { (poller.wait(&ok).await, poller.wait(&bad).await) }
    });
    while !wait.is_finished() {
        clock.advance(Duration::from_millis(500));
        tokio::task::yield_now().await;
    }
    let (ok, bad) = wait.await.unwrap();
    assert_eq!(ok.unwrap().state(), TaskState::Succeeded);
    match bad.unwrap().into_result() {
        Err(Error::TaskFailed {
            failure, log_tail, ..
        }) => {
            assert_eq!(failure.message, "backup failed: no space left on device");
            assert!(
                log_tail.iter().any(|l| l.contains("chunk store full")),
                "{log_tail:?}"
            );
            assert_eq!(
                log_tail.last().map(String::as_str),
                Some("TASK ERROR: backup failed: no space left on device")
            );
        }
        other => panic!("expected the failure, got {other:?}"),
    }
}

#[tokio::test]
async fn pbs_log_lines_are_numbered_from_one_and_start_is_a_line_number() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    let id = task(&sim, backup(0).with_log(["one", "two", "three", "four"]));
    clock.advance(Duration::from_secs(1));
    let texts = |lines: Vec<tasktrack_core::LogLine>| {
        lines.into_iter().map(|l| (l.n, l.text)).collect::<Vec<_>>()
    };
    let all = texts(p.logs(&id, LogRange::All).await.unwrap());
    assert_eq!(all.len(), 5, "four lines and TASK OK: {all:?}");
    assert_eq!(all[0], (1, "one".to_owned()));
    // Skipping one line asks PBS for start=2; PVE's arithmetic (start=1)
    // would repeat line 1.
    let range = texts(
        p.logs(&id, LogRange::Range { start: 1, limit: 2 })
            .await
            .unwrap(),
    );
    assert_eq!(range, vec![(2, "two".to_owned()), (3, "three".to_owned())]);
    let tail = texts(p.logs(&id, LogRange::Tail(2)).await.unwrap());
    assert_eq!(
        tail,
        vec![(4, "four".to_owned()), (5, "TASK OK".to_owned())]
    );
}

#[tokio::test]
async fn running_and_finished_pbs_tasks_come_from_one_list_request() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let p = provider(&sim);
    let done = task(&sim, backup(1));
    let failed = task(&sim, backup(1).with_failure("E", "verify failed"));
    let running = task(&sim, backup(600));
    clock.advance(Duration::from_secs(5));
    sim.requests().reset();
    let ids = vec![done, running, failed];
    let answers = p.status_many(&ids).await;
    assert_eq!(sim.requests().count(LIST_ROUTE), 1);
    assert_eq!(
        sim.requests().count(STATUS_ROUTE),
        0,
        "every UPID was in the list"
    );
    let states: Vec<TaskState> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().state())
        .collect();
    assert_eq!(
        states,
        vec![TaskState::Succeeded, TaskState::Running, TaskState::Failed]
    );
    assert_eq!(
        answers[2].as_ref().unwrap().vendor_state(),
        "stopped: verify failed"
    );
    // And each agrees with its own /status.
    for (id, answer) in ids.iter().zip(&answers) {
        let single = p.status(id).await.unwrap();
        assert_eq!(single.state(), answer.as_ref().unwrap().state(), "{id}");
    }
}

#[tokio::test]
async fn pbs_lists_take_only_the_parameters_pbs_has() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let c = client(&sim, ProxmoxCredentials::api_token(TOKEN_ID, TOKEN_SECRET));
    task(&sim, backup(1));
    task(&sim, backup(600));
    clock.advance(Duration::from_secs(5));
    let active = NodeTaskQuery {
        source: Some(TaskSource::Active),
        ..NodeTaskQuery::default()
    };
    let page = c.node_tasks("pbs1", &active).await.unwrap();
    assert_eq!(
        page.entries.len(),
        1,
        "running=1 lists the running task only"
    );
    assert_eq!(
        page.entries[0].task_type.as_deref(),
        Some("backup"),
        "worker_type is read"
    );
    assert_eq!(
        page.entries[0].id.as_deref(),
        Some("store1:vm/100"),
        "worker_id is read"
    );
    let all = c
        .node_tasks("pbs1", &NodeTaskQuery::default())
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 2);
    let vmid = NodeTaskQuery {
        vmid: Some(100),
        ..NodeTaskQuery::default()
    };
    assert!(matches!(
        c.node_tasks("pbs1", &vmid).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn a_pve_token_header_is_refused_by_pbs_and_a_ticket_login_works() {
    let clock = ManualClock::new();
    let sim = start(&clock).await;
    let id = task(&sim, backup(0));
    clock.advance(Duration::from_secs(1));
    // A Proxmox VE client sends PVEAPIToken=…, which PBS does not read.
    let pve = ProxmoxClient::builder(
        sim.base_url(),
        ProxmoxCredentials::api_token(TOKEN_ID, TOKEN_SECRET),
    )
    .with_product(ProxmoxProduct::VirtualEnvironment)
    .build()
    .unwrap();
    assert!(matches!(
        pve.task_status(&id).await,
        Err(Error::Auth { .. })
    ));
    let ticket = client(&sim, ProxmoxCredentials::password("backup@pbs", PASSWORD));
    assert_eq!(
        ticket.task_status(&id).await.unwrap().state(),
        TaskState::Succeeded
    );
    // A write with the ticket carries its CSRF token.
    let running = task(&sim, backup(600));
    ProxmoxProvider::new(ticket)
        .act(&running, TaskAction::Cancel)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        provider(&sim).status(&running).await.unwrap().state(),
        TaskState::Failed
    );
}

#[test]
fn pbs_tokens_parse_in_their_own_form_and_never_show_the_secret() {
    let ok = ProxmoxCredentials::parse_pbs_token("backup@pbs!ci:s3cr3t-value").unwrap();
    assert_eq!(
        ok,
        ProxmoxCredentials::api_token("backup@pbs!ci", "s3cr3t-value")
    );
    for bad in [
        "backup@pbs!ci=s3cr3t-value",
        "backup@pbs:s3cr3t-value",
        "backuppbs!ci:x",
        "backup@pbs!ci:",
    ] {
        let err = ProxmoxCredentials::parse_pbs_token(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("USER@REALM!TOKENID:SECRET"), "{err}");
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }
}

/// Pinning a self-signed certificate by its SHA-256 fingerprint, as PVE and
/// PBS users do: the pinned certificate is trusted without any CA, another
/// fingerprint is refused naming both, for either product.
#[tokio::test]
async fn a_pinned_certificate_fingerprint_is_trusted_and_no_other() {
    use tasktrack_core::http::CertificateFingerprint;
    let pve = SimBuilder::new(
        tasktrack_sim::proxmox::Proxmox::new(["pve1"]).with_api_token("root@pam!ci", "s"),
    )
    .with_tls(true)
    .start()
    .await
    .unwrap();
    let pbs = SimBuilder::new(Pbs::new("pbs1").with_api_token(TOKEN_ID, TOKEN_SECRET))
        .with_tls(true)
        .start()
        .await
        .unwrap();
    let cases = [
        (
            &pve,
            ProxmoxProduct::VirtualEnvironment,
            ProxmoxCredentials::api_token("root@pam!ci", "s"),
            "vzdump",
        ),
        (
            &pbs,
            ProxmoxProduct::BackupServer,
            ProxmoxCredentials::api_token(TOKEN_ID, TOKEN_SECRET),
            "backup",
        ),
    ];
    for (sim, product, creds, kind) in cases {
        let upid = task(sim, TaskSpec::new(kind, Duration::from_secs(3600)));
        let pinned: CertificateFingerprint =
            sim.certificate_fingerprint().unwrap().parse().unwrap();
        let trusted = ProxmoxClient::builder(sim.base_url(), creds.clone())
            .with_product(product)
            .with_certificate_fingerprint(pinned)
            .build()
            .unwrap();
        assert_eq!(
            trusted.task_status(&upid).await.unwrap().state(),
            TaskState::Running,
            "{product:?}"
        );

        let mut other = *pinned.as_bytes();
        other[0] ^= 0xFF;
        let wrong = CertificateFingerprint::of_der(&other);
        let refused = ProxmoxClient::builder(sim.base_url(), creds)
            .with_product(product)
            .with_certificate_fingerprint(wrong)
            .with_retry(RetryPolicy::none())
            .build()
            .unwrap();
        let err = refused.task_status(&upid).await.unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        assert!(
            err.to_string().contains("not the pinned"),
            "says why: {err}"
        );
        assert_eq!(
            sim.requests().count(STATUS_ROUTE),
            1,
            "the refused client never got through"
        );
    }
}

#[test]
fn a_config_takes_a_fingerprint_and_refuses_a_malformed_one() {
    use tasktrack_core::BackendConfig;
    let config = |fingerprint: &str| -> tasktrack_proxmox::PbsConfig {
        serde_json::from_value(serde_json::json!({
            "url": "https://pbs.example.com:8007",
            "token": format!("{TOKEN_ID}:{TOKEN_SECRET}"),
            "fingerprint": fingerprint,
        }))
        .unwrap()
    };
    assert!(config(&["AB"; 32].join(":")).provider("backup").is_ok());
    let err = config("AB:CD")
        .provider("backup")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("fingerprint") && err.contains("32"), "{err}");
    assert!(!err.contains(TOKEN_SECRET), "{err}");
}
