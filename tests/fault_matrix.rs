//! The fault matrix: for every provider and every fault kind, 100 tasks are
//! tracked while the fault is injected. Every task must end in its true
//! terminal state, or, for the tasks a permanent fault hit (a vanished task,
//! expired credentials), in a clear error; none in a wrong state, none lost,
//! and a control action sent during the fault reaches the server at most once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tasktrack::http::ConfigureHttp;

use futures::StreamExt;
use tasktrack::dcs::{DcsClient, DcsProvider};
use tasktrack::http::RetryPolicy;
use tasktrack::huaweicloud::{Credentials, ServiceConfig};
use tasktrack::kps::{KpsClient, KpsProvider};
use tasktrack::ocp::{OcpClient, OcpProvider};
use tasktrack::proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};
use tasktrack::{
    DynTaskProvider, PollPolicy, Secret, TaskAction, TaskEventKind, TaskState, Tracker,
};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::ocp::Ocp;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{Fault, SimBuilder, SimHandle, StepSpec, TaskSpec};

const TASKS: usize = 100;
const INSTANCE: &str = "inst-1";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Proxmox,
    Kps,
    Dcs,
    Ocp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FaultCase {
    S500,
    S502,
    S503,
    TooMany,
    Dropped,
    Slow,
    Truncated,
    Html,
    Vanish,
    Expire,
}

const FAULTS: [FaultCase; 10] = [
    FaultCase::S500,
    FaultCase::S502,
    FaultCase::S503,
    FaultCase::TooMany,
    FaultCase::Dropped,
    FaultCase::Slow,
    FaultCase::Truncated,
    FaultCase::Html,
    FaultCase::Vanish,
    FaultCase::Expire,
];

impl FaultCase {
    fn label(self) -> &'static str {
        match self {
            FaultCase::S500 => "500",
            FaultCase::S502 => "502",
            FaultCase::S503 => "503",
            FaultCase::TooMany => "429+RA",
            FaultCase::Dropped => "dropped",
            FaultCase::Slow => "slow",
            FaultCase::Truncated => "truncated",
            FaultCase::Html => "html",
            FaultCase::Vanish => "vanish",
            FaultCase::Expire => "expired",
        }
    }
}

struct Rig {
    sim: SimHandle,
    ocp: Option<Ocp>,
    provider: Arc<dyn DynTaskProvider>,
    /// (id, true final state)
    tasks: Vec<(String, TaskState)>,
    /// A control action to send during the fault, and its route.
    action: Option<(String, TaskAction, &'static str)>,
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

/// The request timeout: well above what ten loaded simulators on two
/// cores take to answer (250 ms was not, on a slow day), well below the
/// `slow` fault's latency, which must still time requests out.
const TIMEOUT: Duration = Duration::from_secs(1);

async fn rig(kind: Kind) -> Rig {
    let ms = Duration::from_millis;
    let outcome = |i: usize| {
        if i.is_multiple_of(4) {
            TaskState::Failed
        } else {
            TaskState::Succeeded
        }
    };
    let duration = |i: usize| ms(150 + (i as u64 * 37) % 450);
    match kind {
        Kind::Proxmox => {
            let sim = SimBuilder::new(
                Proxmox::new(["pve1", "pve2", "pve3"]).with_api_token("root@pam!m", "s"),
            )
            .start()
            .await
            .unwrap();
            let tasks = (0..TASKS)
                .map(|i| {
                    let spec =
                        TaskSpec::new("vzdump", duration(i)).with_attr("id", (100 + i).to_string());
                    let spec = if outcome(i) == TaskState::Failed {
                        spec.with_failure("E", "job errors")
                    } else {
                        spec
                    };
                    (sim.create_task(spec), outcome(i))
                })
                .collect();
            let victim = sim.create_task(TaskSpec::new("qmigrate", Duration::from_secs(3600)));
            let client = ProxmoxClient::builder(
                sim.base_url(),
                ProxmoxCredentials::api_token("root@pam!m", "s"),
            )
            .with_retry(retry())
            .with_timeout(TIMEOUT)
            .build()
            .unwrap();
            Rig {
                provider: Arc::new(ProxmoxProvider::new(client)),
                sim,
                ocp: None,
                tasks,
                action: Some((
                    victim,
                    TaskAction::Cancel,
                    "DELETE /api2/json/nodes/{node}/tasks/{upid}",
                )),
            }
        }
        Kind::Kps => {
            let sim = SimBuilder::new(Kps::new(HuaweiAuth::new("p").with_aksk("AK", "SK")))
                .start()
                .await
                .unwrap();
            let tasks = (0..TASKS)
                .map(|i| {
                    let spec = TaskSpec::new("reset", duration(i));
                    let spec = if outcome(i) == TaskState::Failed {
                        spec.with_failure("KPS.1", "reset failed")
                    } else {
                        spec
                    };
                    (sim.create_task(spec), outcome(i))
                })
                .collect();
            let victim =
                sim.create_task(TaskSpec::new("reset", Duration::ZERO).with_failure("KPS.2", "x"));
            let mut config =
                ServiceConfig::new("kps", sim.base_url(), "p", Credentials::aksk("AK", "SK"));
            config.options.retry = retry();
            config.options.timeout = TIMEOUT;
            let provider = Arc::new(KpsProvider::new(KpsClient::new(&config).unwrap()));
            Rig {
                provider,
                sim,
                ocp: None,
                tasks,
                action: Some((
                    victim,
                    TaskAction::Delete,
                    "DELETE /v3/{project_id}/failed-tasks/{task_id}",
                )),
            }
        }
        Kind::Dcs => {
            let sim = SimBuilder::new(Dcs::new(
                HuaweiAuth::new("p").with_aksk("AK", "SK"),
                [INSTANCE],
            ))
            .start()
            .await
            .unwrap();
            let tasks = (0..TASKS)
                .map(|i| {
                    let half = duration(i) / 2;
                    let last = StepSpec::new("apply", half).with_substeps(["a", "b"]);
                    let last = if outcome(i) == TaskState::Failed {
                        last.with_failure("DCS.1", "no capacity")
                    } else {
                        last
                    };
                    let spec = TaskSpec::new("ChangeInstanceSpec", Duration::ZERO)
                        .with_step(StepSpec::new("check", half))
                        .with_step(last);
                    (format!("{INSTANCE}/{}", sim.create_task(spec)), outcome(i))
                })
                .collect();
            let mut config =
                ServiceConfig::new("dcs", sim.base_url(), "p", Credentials::aksk("AK", "SK"));
            config.options.retry = retry();
            config.options.timeout = TIMEOUT;
            let provider = Arc::new(DcsProvider::new(DcsClient::new(&config).unwrap()));
            Rig {
                provider,
                sim,
                ocp: None,
                tasks,
                action: None,
            }
        }
        Kind::Ocp => {
            let ocp = Ocp::new("admin", "pw");
            let sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
            let tasks = (0..TASKS)
                .map(|i| {
                    let spec = TaskSpec::new("Add tenant", duration(i));
                    let spec = if outcome(i) == TaskState::Failed {
                        spec.with_failure("E", "tenant failed")
                    } else {
                        spec
                    };
                    (sim.create_task(spec), outcome(i))
                })
                .collect();
            let victim = sim.create_task(
                TaskSpec::new("Delete cluster", Duration::ZERO).with_failure("E", "x"),
            );
            let client = OcpClient::builder(sim.base_url(), "admin", &Secret::new("pw"))
                .with_retry(retry())
                .with_timeout(TIMEOUT)
                .build()
                .unwrap();
            Rig {
                provider: Arc::new(OcpProvider::new(client)),
                sim,
                ocp: Some(ocp),
                tasks,
                action: Some((
                    victim,
                    TaskAction::Retry,
                    "POST /api/v2/tasks/instances/{id}/retry",
                )),
            }
        }
    }
}

/// What one cell of the matrix saw.
#[derive(Debug, Default)]
struct Cell {
    true_state: usize,
    gave_up: HashMap<String, usize>,
    wrong: Vec<String>,
    lost: usize,
    action_requests: Option<u64>,
}

impl Cell {
    fn text(&self) -> String {
        let mut t = format!("{} ok", self.true_state);
        for (kind, n) in &self.gave_up {
            t.push_str(&format!(" {n} {kind}"));
        }
        if !self.wrong.is_empty() || self.lost > 0 {
            t.push_str(&format!(" WRONG {} LOST {}", self.wrong.len(), self.lost));
        }
        t
    }
}

async fn scenario(kind: Kind, fault: FaultCase) -> Cell {
    let rig = rig(kind).await;
    let (tracker, mut events) = Tracker::builder()
        .with_provider("p", rig.provider.clone())
        .with_policy(
            PollPolicy::fixed(Duration::from_millis(50))
                .with_error_budget(60)
                .with_deadline(None),
        )
        .build();
    for (id, _) in &rig.tasks {
        tracker.track("p", id).unwrap();
    }
    // Permanent faults hit these tasks; transient ones hit everyone.
    let mut vanished = Vec::new();
    let faults = rig.sim.faults();
    match fault {
        FaultCase::S500 => faults.next(30, "*", Fault::status(500)),
        FaultCase::S502 => faults.next(30, "*", Fault::status(502)),
        FaultCase::S503 => faults.next(30, "*", Fault::status(503)),
        FaultCase::TooMany => faults.next(10, "*", Fault::too_many_requests(1)),
        FaultCase::Dropped => faults.next(30, "*", Fault::DropConnection),
        FaultCase::Slow => faults.next(12, "*", Fault::latency(TIMEOUT * 3)),
        FaultCase::Truncated => faults.next(30, "*", Fault::Truncated),
        FaultCase::Html => faults.next(30, "*", Fault::Html { status: 502 }),
        FaultCase::Vanish => {
            for (id, _) in rig.tasks.iter().step_by(10) {
                let raw = id.rsplit('/').next().unwrap_or(id);
                match &rig.ocp {
                    Some(ocp) => ocp.remove(raw.parse().unwrap()),
                    None => rig.sim.engine().remove(raw),
                };
                vanished.push(id.clone());
            }
        }
        FaultCase::Expire => rig.sim.auth().expire_after(Duration::from_millis(300)),
    }
    let mut cell = Cell::default();
    if let Some((id, action, route)) = &rig.action {
        let _ = rig.provider.perform(id, action.clone()).await;
        cell.action_requests = Some(rig.sim.requests().count(route));
    }
    let expected: HashMap<&str, TaskState> =
        rig.tasks.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    let mut finals: HashMap<String, TaskEventKind> = HashMap::new();
    let collect = async {
        while finals.len() < TASKS {
            let Some(ev) = events.next().await else { break };
            if ev.is_final() {
                assert!(
                    finals.insert(ev.id.clone(), ev.kind.clone()).is_none(),
                    "{} reported final twice",
                    ev.id
                );
            }
        }
    };
    // A safety net against a hang, not a timing assertion.
    let _ = tokio::time::timeout(Duration::from_secs(120), collect).await;
    cell.lost = TASKS - finals.len();
    for (id, kind) in &finals {
        let truth = expected[id.as_str()];
        match kind {
            TaskEventKind::Changed { snapshot } if snapshot.state == truth => cell.true_state += 1,
            TaskEventKind::Changed { snapshot } => cell
                .wrong
                .push(format!("{id}: {} instead of {truth}", snapshot.state)),
            TaskEventKind::Stalled { .. } => {
                cell.wrong.push(format!("{id}: a stall taken as final"))
            }
            TaskEventKind::GaveUp {
                error_kind,
                message,
            } => {
                let permanent_hit = match fault {
                    FaultCase::Vanish => vanished.contains(id) && error_kind == "not_found",
                    FaultCase::Expire => error_kind == "auth",
                    _ => false,
                };
                if permanent_hit {
                    *cell.gave_up.entry(error_kind.clone()).or_default() += 1;
                } else {
                    cell.wrong
                        .push(format!("{id}: gave up ({error_kind}: {message})"));
                }
            }
        }
    }
    tracker.shutdown();
    cell
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_survives_every_fault() {
    let kinds = [Kind::Proxmox, Kind::Kps, Kind::Dcs, Kind::Ocp];
    let mut matrix = Vec::new();
    for kind in kinds {
        let cells = futures::future::join_all(FAULTS.iter().map(|f| scenario(kind, *f))).await;
        matrix.push((kind, cells));
    }
    let mut out = format!("{:<8}", "");
    for f in FAULTS {
        out.push_str(&format!(" | {:<13}", f.label()));
    }
    for (kind, cells) in &matrix {
        out.push_str(&format!("\n{:<8}", format!("{kind:?}").to_lowercase()));
        for cell in cells {
            out.push_str(&format!(" | {:<13}", cell.text()));
        }
    }
    println!("fault matrix (tasks ending in their true state, or giving up where a permanent fault hit):\n{out}");
    for (kind, cells) in &matrix {
        for (fault, cell) in FAULTS.iter().zip(cells) {
            let at = format!("{kind:?} × {}", fault.label());
            assert!(cell.wrong.is_empty(), "{at}: wrong: {:?}", cell.wrong);
            assert_eq!(cell.lost, 0, "{at}: tasks lost");
            assert!(
                cell.action_requests.is_none_or(|n| n <= 1),
                "{at}: control action sent {:?} times",
                cell.action_requests
            );
            match fault {
                FaultCase::Vanish => assert_eq!(
                    cell.gave_up.get("not_found"),
                    Some(&10),
                    "{at}: {}",
                    cell.text()
                ),
                FaultCase::Expire => assert!(
                    cell.gave_up.get("auth").is_some_and(|n| *n > 0),
                    "{at}: {}",
                    cell.text()
                ),
                _ => assert_eq!(cell.true_state, TASKS, "{at}: {}", cell.text()),
            }
        }
    }
}
