//! `tasktrack demo`: four simulated backends, about forty tasks, one tracker,
//! a live unified table and a summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tasktrack_core::{DynTaskProvider, PollPolicy, TaskAction, TaskEvent, TaskState, Tracker};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimHandle, SimOutcome, StepSpec, TaskSpec};

use crate::config::Config;
use crate::error::CliError;
use crate::table::LiveTable;

const PVE_TOKEN_ID: &str = "root@pam!demo";
const PVE_SECRET: &str = "demo-pve-secret";
const PROJECT: &str = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";
const AK: &str = "DEMOACCESSKEY";
const SK: &str = "demo-secret-key";
const INSTANCES: [&str; 2] = [
    "5560df16-cebf-4473-95c4-d1b573c16e79",
    "7a1c2e44-0b5d-4e1f-9f0a-6c3b8d2e1f00",
];
const OCP_USER: &str = "admin";
const OCP_PASSWORD: &str = "demo-ocp-password";

/// A config pointing at simulators started with `tasktrack sim <vendor>`.
pub fn example_config() -> String {
    format!(
        r#"# tasktrack.toml for the simulators; start them in other terminals:
#   tasktrack sim proxmox --port 18006 --sample-tasks
#   tasktrack sim kps --port 18007 --sample-tasks
#   tasktrack sim dcs --port 18008 --sample-tasks
#   tasktrack sim ocp --port 18009 --sample-tasks
# then e.g. `tasktrack --config tasktrack.toml watch`.
# Any value written "${{NAME}}" is read from the environment variable NAME,
# which is how real secrets belong here, e.g. token = "${{PVE_TOKEN}}".

[backends.pve]
kind = "proxmox"
url = "http://127.0.0.1:18006"
token = "root@pam!sim=sim-secret"

[backends.kps]
kind = "kps"
endpoint = "http://127.0.0.1:18007"
project_id = "{PROJECT}"
ak = "SIMACCESSKEY"
sk = "sim-secret-key"

[backends.dcs]
kind = "dcs"
endpoint = "http://127.0.0.1:18008"
project_id = "{PROJECT}"
ak = "SIMACCESSKEY"
sk = "sim-secret-key"
instances = ["5560df16-cebf-4473-95c4-d1b573c16e79"]

[backends.ocp]
kind = "ocp"
url = "http://127.0.0.1:18009"
user = "admin"
password = "sim-password"
"#
    )
}

/// The demo's options.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// One JSON event per line on stdout instead of the table.
    pub json: bool,
    /// Multiplies every task duration (1.0: about 30 s in all).
    pub time_scale: f64,
    /// Also serve the web dashboard here, and keep serving after the run.
    pub web: Option<std::net::SocketAddr>,
}

struct Sims {
    proxmox: SimHandle,
    kps: SimHandle,
    dcs: SimHandle,
    ocp: SimHandle,
    ocp_tasks: Ocp,
}

async fn start_sims() -> Result<Sims, CliError> {
    let io = |e: std::io::Error| {
        CliError::usage(
            format!("cannot start a simulator: {e}"),
            "is the loopback interface up?",
        )
    };
    let huawei = || HuaweiAuth::new(PROJECT).aksk(AK, SK);
    let ocp_tasks = Ocp::new(OCP_USER, OCP_PASSWORD);
    Ok(Sims {
        proxmox: SimBuilder::new(
            Proxmox::new(["pve1", "pve2", "pve3"]).api_token(PVE_TOKEN_ID, PVE_SECRET),
        )
        .start()
        .await
        .map_err(io)?,
        kps: SimBuilder::new(Kps::new(huawei()))
            .start()
            .await
            .map_err(io)?,
        dcs: SimBuilder::new(Dcs::new(huawei(), INSTANCES))
            .start()
            .await
            .map_err(io)?,
        ocp: SimBuilder::new(ocp_tasks.clone())
            .start()
            .await
            .map_err(io)?,
        ocp_tasks,
    })
}

/// A provider under the name the demo registers it with.
type Named = (&'static str, Arc<dyn DynTaskProvider>);

/// The demo's providers, built from a config the way `--config` files are.
fn providers(sims: &Sims) -> Result<Vec<Named>, CliError> {
    let instances = INSTANCES
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"
[backends.proxmox]
kind = "proxmox"
url = "{pve}"
token = "{PVE_TOKEN_ID}={PVE_SECRET}"

[backends.kps]
kind = "kps"
endpoint = "{kps}"
project_id = "{PROJECT}"
ak = "{AK}"
sk = "{SK}"

[backends.dcs]
kind = "dcs"
endpoint = "{dcs}"
project_id = "{PROJECT}"
ak = "{AK}"
sk = "{SK}"
instances = [{instances}]

[backends.ocp]
kind = "ocp"
url = "{ocp}"
user = "{OCP_USER}"
password = "{OCP_PASSWORD}"
"#,
        pve = sims.proxmox.base_url(),
        kps = sims.kps.base_url(),
        dcs = sims.dcs.base_url(),
        ocp = sims.ocp.base_url(),
    );
    let config = Config::parse("(the demo's simulators)".into(), &text)?;
    ["proxmox", "kps", "dcs", "ocp"]
        .into_iter()
        .map(|name| Ok((name, config.provider(name)?)))
        .collect()
}

/// What the demo does to which OCP task when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remedy {
    Retry,
    SkipFailedStep,
}

struct Workload {
    tasks: Vec<(&'static str, String)>,
    remedies: HashMap<String, Remedy>,
}

/// About forty tasks across the four backends, ending within ~28 s at scale 1.
fn create_tasks(sims: &Sims, scale: f64) -> Workload {
    let d = |secs: f64| Duration::from_secs_f64((secs * scale).max(0.05));
    let mut tasks = Vec::new();
    let mut pve =
        |kind: &str, node: &str, id: &str, secs: f64, outcome: SimOutcome, log: &[&str]| {
            let spec = TaskSpec::new(kind, d(secs))
                .attr("node", node)
                .attr("id", id)
                .outcome(outcome)
                .log(log.iter().copied());
            tasks.push(("proxmox", sims.proxmox.create_task(spec)));
        };
    let ok = || SimOutcome::Success;
    pve(
        "vzdump",
        "pve1",
        "100",
        6.0,
        ok(),
        &[
            "INFO: starting new backup job: vzdump 100",
            "INFO: Finished Backup of VM 100",
        ],
    );
    pve(
        "vzdump",
        "pve1",
        "101",
        11.0,
        ok(),
        &["INFO: starting new backup job: vzdump 101"],
    );
    pve(
        "vzdump",
        "pve2",
        "102",
        16.0,
        SimOutcome::Warnings { count: 1 },
        &["WARN: guest agent not running"],
    );
    pve(
        "vzdump",
        "pve2",
        "103",
        9.0,
        SimOutcome::failure("E", "job errors"),
        &["ERROR: Backup of VM 103 failed - no space left on device"],
    );
    pve(
        "vzdump",
        "pve3",
        "104",
        21.0,
        ok(),
        &["INFO: starting new backup job: vzdump 104"],
    );
    pve(
        "qmigrate",
        "pve1",
        "110",
        14.0,
        ok(),
        &[
            "starting migration of VM 110 to node 'pve2'",
            "migration finished successfully",
        ],
    );
    pve(
        "qmigrate",
        "pve3",
        "111",
        12.0,
        SimOutcome::failure(
            "E",
            "migration aborted: storage 'local-lvm' is full on target",
        ),
        &["starting migration of VM 111 to node 'pve1'"],
    );
    pve(
        "qmclone",
        "pve2",
        "120",
        8.0,
        ok(),
        &["create full clone of drive scsi0"],
    );
    pve(
        "vzcreate",
        "pve3",
        "200",
        5.0,
        ok(),
        &["extracting archive"],
    );
    pve(
        "vzcreate",
        "pve1",
        "201",
        7.0,
        SimOutcome::Warnings { count: 2 },
        &["extracting archive"],
    );
    pve("qmstart", "pve2", "121", 2.0, ok(), &[]);
    pve("qmshutdown", "pve3", "122", 3.0, ok(), &[]);
    pve(
        "vzdump",
        "pve1",
        "105",
        25.0,
        ok(),
        &["INFO: starting new backup job: vzdump 105"],
    );
    pve(
        "aptupdate",
        "pve2",
        "",
        4.0,
        ok(),
        &["starting apt-get update"],
    );
    pve(
        "imgcopy",
        "pve3",
        "",
        18.0,
        SimOutcome::failure("E", "command 'qemu-img convert' failed: exit code 1"),
        &[],
    );
    pve(
        "vzdump",
        "pve3",
        "106",
        13.0,
        ok(),
        &["INFO: starting new backup job: vzdump 106"],
    );

    let mut kps = |op: &str, server: &str, secs: f64, fail: Option<(&str, &str)>| {
        let mut spec = TaskSpec::new(op.to_lowercase(), d(secs))
            .attr("operation", op)
            .attr("server_name", server)
            .attr("keypair_name", format!("kp-{server}"));
        if let Some((code, msg)) = fail {
            spec = spec.fails(code, msg);
        }
        tasks.push(("kps", sims.kps.create_task(spec)));
    };
    kps("RESET", "web-01", 4.0, None);
    kps("RESET", "web-02", 7.0, None);
    kps(
        "REPLACE",
        "db-01",
        10.0,
        Some(("KPS.0105", "Update public key error")),
    );
    kps("UNBIND", "cache-01", 5.0, None);
    kps("REPLACE", "app-03", 13.0, None);
    kps(
        "RESET",
        "batch-07",
        9.0,
        Some(("KPS.0109", "The server is not running")),
    );
    kps("UNBIND", "legacy-02", 3.0, None);
    kps("RESET", "web-03", 6.0, None);

    let mut dcs = |name: &str, instance: usize, steps: Vec<StepSpec>| {
        let mut spec = TaskSpec::new(name, Duration::ZERO).attr("instance_id", INSTANCES[instance]);
        for step in steps {
            spec = spec.step(step);
        }
        let task = sims.dcs.create_task(spec);
        tasks.push(("dcs", format!("{}/{task}", INSTANCES[instance])));
    };
    let step = |name: &str, secs: f64, subs: &[&str]| {
        StepSpec::new(name, d(secs)).substeps(subs.iter().copied())
    };
    dcs(
        "ChangeInstanceSpec",
        0,
        vec![
            step("precheck", 3.0, &["resource check", "instance check"]),
            step(
                "migrate data",
                12.0,
                &["allocate", "copy slots 0-5460", "copy slots 5461-16383"],
            ),
            step("switch over", 3.0, &[]),
        ],
    );
    dcs(
        "ChangeInstanceSpec",
        1,
        vec![
            step("precheck", 2.0, &["resource check"]),
            step("resize", 6.0, &["allocate", "apply"])
                .failing("DCS.4933", "not enough capacity in the availability zone"),
        ],
    );
    dcs(
        "AddReplica",
        0,
        vec![
            step("create replica", 8.0, &["allocate", "sync"]),
            step("attach", 2.0, &[]),
        ],
    );
    dcs("BindEip", 1, vec![step("bind", 4.0, &[])]);
    dcs(
        "AddWhitelist",
        0,
        vec![step("update whitelist", 3.0, &["render", "apply"])],
    );
    dcs(
        "ChangeInstanceSpec",
        1,
        vec![
            step("precheck", 4.0, &["resource check"]),
            step("migrate data", 16.0, &["allocate", "copy"]),
            step("switch over", 4.0, &[]),
        ],
    );
    dcs(
        "UpdatePort",
        0,
        vec![step("update port", 6.0, &["render", "restart"])],
    );
    dcs(
        "DelReplica",
        1,
        vec![
            step("detach", 3.0, &[]),
            step("delete replica", 5.0, &["release"]),
        ],
    );

    let ocp = &sims.ocp_tasks;
    let sub = |name: &str, secs: f64, ups: &[usize]| OcpSubtaskSpec::new(name, d(secs), ups);
    let mut remedies = HashMap::new();
    let mut add = |spec: OcpTaskSpec, remedy: Option<Remedy>| {
        let id = ocp.create(spec).to_string();
        if let Some(r) = remedy {
            remedies.insert(id.clone(), r);
        }
        tasks.push(("ocp", id));
    };
    add(
        OcpTaskSpec::new(
            "Create cluster",
            vec![
                sub("Prepare hosts", 3.0, &[]),
                sub("Install zone1", 5.0, &[0]).parallel(0),
                sub("Install zone2", 6.0, &[0]).parallel(1),
                sub("Install zone3", 4.0, &[0]).parallel(2),
                sub("Bootstrap", 4.0, &[1, 2, 3]),
                sub("Create sys tenant", 3.0, &[4]),
            ],
        ),
        None,
    );
    add(
        OcpTaskSpec::new(
            "Upgrade cluster",
            vec![
                sub("Check version", 2.0, &[]),
                sub("Upgrade zone1", 4.0, &[0]),
                sub("Start observer", 3.0, &[1])
                    .failing(1)
                    .log(["observer exited with code 1"]),
                sub("Check cluster", 2.0, &[2]),
            ],
        ),
        Some(Remedy::Retry),
    );
    add(
        OcpTaskSpec::new(
            "Add tenant",
            vec![
                sub("Create unit", 2.0, &[]),
                sub("Create resource pool", 3.0, &[0]),
                sub("Apply parameters", 2.0, &[1])
                    .failing(u32::MAX)
                    .log(["parameter ob_query_timeout rejected"]),
                sub("Create tenant", 3.0, &[2]),
            ],
        ),
        Some(Remedy::SkipFailedStep),
    );
    add(
        OcpTaskSpec::new(
            "Backup tenant",
            vec![sub("Backup data", 15.0, &[]), sub("Backup log", 5.0, &[0])],
        ),
        None,
    );
    add(
        OcpTaskSpec::new(
            "Delete cluster",
            vec![
                sub("Stop observers", 3.0, &[]),
                sub("Clean data", 4.0, &[0]).failing(u32::MAX),
            ],
        )
        .prohibit_rollback(),
        None,
    );
    add(
        OcpTaskSpec::new(
            "Add zone",
            vec![
                sub("Check hosts", 2.0, &[]),
                sub("Install observer", 6.0, &[0]),
                sub("Add zone to cluster", 2.0, &[1]),
            ],
        ),
        None,
    );
    add(
        OcpTaskSpec::new(
            "Restart observer",
            vec![sub("Stop", 2.0, &[]), sub("Start", 3.0, &[0])],
        ),
        None,
    );
    add(
        OcpTaskSpec::new("Modify parameter", vec![sub("Set parameter", 1.0, &[])]),
        None,
    );
    Workload { tasks, remedies }
}

#[derive(Serialize)]
struct Summary {
    /// Final state counts per backend.
    states: BTreeMap<String, BTreeMap<String, u64>>,
    /// HTTP requests each simulator received.
    requests: BTreeMap<String, u64>,
    /// Demo actions taken.
    actions: Vec<String>,
    /// Seconds the run took.
    seconds: f64,
}

fn summary_text(s: &Summary) -> String {
    let states = ["succeeded", "failed", "cancelled", "unknown"];
    let mut out = format!(
        "{:<8} {:>9} {:>7} {:>9} {:>8} {:>9}\n",
        "BACKEND", "SUCCEEDED", "FAILED", "CANCELLED", "GAVE UP", "REQUESTS"
    );
    for (backend, counts) in &s.states {
        let c = |k: &str| counts.get(k).copied().unwrap_or(0);
        out.push_str(&format!(
            "{:<8} {:>9} {:>7} {:>9} {:>8} {:>9}\n",
            backend,
            c(states[0]),
            c(states[1]),
            c(states[2]),
            c("gave_up"),
            s.requests.get(backend).copied().unwrap_or(0)
        ));
    }
    for a in &s.actions {
        out.push_str(&format!("demo action: {a}\n"));
    }
    out.push_str(&format!(
        "{} tasks tracked in {:.1} s",
        s.states.values().flat_map(|c| c.values()).sum::<u64>(),
        s.seconds
    ));
    out
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let sims = start_sims().await?;
    let workload = create_tasks(&sims, opts.time_scale);
    let scaled =
        |ms: u64| Duration::from_secs_f64((ms as f64 / 1000.0 * opts.time_scale).max(0.02));
    let policy = PollPolicy::default()
        .with_initial_interval(scaled(500))
        .with_max_interval(scaled(2000))
        .with_hint_floor(scaled(250))
        .with_deadline(None);
    let mut builder = Tracker::builder().policy(policy);
    let providers = providers(&sims)?;
    for (name, p) in &providers {
        builder = builder.provider(*name, p.clone());
    }
    let (tracker, mut events) = builder.build();
    let dashboard = match opts.web {
        Some(addr) => {
            let named = providers
                .iter()
                .map(|(n, p)| ((*n).to_owned(), p.clone()))
                .collect();
            let d = crate::web::Dashboard::new(named, None, false, None);
            let bound =
                crate::web::start(d.clone(), addr, crate::web::DEFAULT_MAX_CONNECTIONS).await?;
            let _ = crate::output::out!("dashboard: http://{bound}/");
            Some(d)
        }
        None => None,
    };
    let mut table = LiveTable::new(!opts.json);
    for (backend, id) in &workload.tasks {
        table.ensure(backend, id);
        tracker.track(backend, id)?;
    }
    let ocp = providers
        .iter()
        .find(|(n, _)| *n == "ocp")
        .map(|(_, p)| p.clone());
    let mut remedied: HashSet<String> = HashSet::new();
    let mut finals: HashMap<(String, String), String> = HashMap::new();
    let mut actions = Vec::new();
    let total = workload.tasks.len();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    while finals.len() < total {
        let event: TaskEvent = tokio::select! {
            e = events.next() => match e {
                Some(e) => e,
                None => break,
            },
            _ = ticker.tick() => {
                table.tick();
                continue;
            }
        };
        if opts.json {
            let _ = crate::output::json(&event);
        }
        table.apply(&event);
        if let Some(d) = &dashboard {
            d.publish(&event);
        }
        let key = (event.provider.clone(), event.id.clone());
        if !event.is_final() {
            continue;
        }
        // The demo's own remediation: one OCP task retried, one skipped.
        let remedy = workload
            .remedies
            .get(&event.id)
            .filter(|_| event.provider == "ocp");
        if let (Some(remedy), Some(TaskState::Failed), Some(ocp)) = (remedy, event.state(), &ocp) {
            if remedied.insert(event.id.clone()) {
                let action = match remedy {
                    Remedy::Retry => TaskAction::Retry,
                    Remedy::SkipFailedStep => {
                        let step = event
                            .snapshot()
                            .and_then(|s| s.steps.iter().find(|st| st.state == TaskState::Failed))
                            .map(|st| st.id.clone())
                            .unwrap_or_default();
                        TaskAction::SkipStep(step)
                    }
                };
                let done = format!("{action} on ocp task {}", event.id);
                match ocp.perform(&event.id, action).await {
                    Ok(_) => {
                        table.note(&format!("demo: {done}"));
                        actions.push(done);
                        tracker.track("ocp", &event.id)?;
                        continue;
                    }
                    Err(e) => table.note(&format!("demo: {done} refused: {e}")),
                }
            }
        }
        let state = match event.state() {
            Some(s) => s.as_str().to_owned(),
            None => "gave_up".to_owned(),
        };
        finals.insert(key, state);
    }
    tracker.shutdown();
    let mut states: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((backend, _), state) in &finals {
        *states
            .entry(backend.clone())
            .or_default()
            .entry(state.clone())
            .or_default() += 1;
    }
    let requests = [
        ("proxmox", &sims.proxmox),
        ("kps", &sims.kps),
        ("dcs", &sims.dcs),
        ("ocp", &sims.ocp),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), s.requests().total()))
    .collect();
    let summary = Summary {
        states,
        requests,
        actions,
        seconds: started.elapsed().as_secs_f64(),
    };
    let final_table = table.finish();
    if opts.json {
        crate::output::note!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        crate::output::out!("{final_table}\n\n{}", summary_text(&summary))?;
    }
    if dashboard.is_some() {
        let _ = crate::output::out!("the demo has ended; the dashboard stays up until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(())
}
