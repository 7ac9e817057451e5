//! The demo's forty-odd tasks across the four backends, and what it does
//! about the ones that fail.

use std::collections::HashMap;
use std::time::Duration;

use tasktrack_sim::ocp::{OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::{SimOutcome, StepSpec, TaskSpec};

use super::backends::{Sims, INSTANCES};

/// What the demo does to which OCP task when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Remedy {
    Retry,
    SkipFailedStep,
}

pub(super) struct Workload {
    pub(super) tasks: Vec<(&'static str, String)>,
    pub(super) remedies: HashMap<String, Remedy>,
}

/// About forty tasks across the four backends, ending within ~28 s at scale 1.
pub(super) fn create_tasks(sims: &Sims, scale: f64) -> Workload {
    let d = |secs: f64| Duration::from_secs_f64((secs * scale).max(0.05));
    let mut tasks = Vec::new();
    let mut pve =
        |kind: &str, node: &str, id: &str, secs: f64, outcome: SimOutcome, log: &[&str]| {
            let spec = TaskSpec::new(kind, d(secs))
                .with_attr("node", node)
                .with_attr("id", id)
                .with_outcome(outcome)
                .with_log(log.iter().copied());
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
            .with_attr("operation", op)
            .with_attr("server_name", server)
            .with_attr("keypair_name", format!("kp-{server}"));
        if let Some((code, msg)) = fail {
            spec = spec.with_failure(code, msg);
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
        let mut spec =
            TaskSpec::new(name, Duration::ZERO).with_attr("instance_id", INSTANCES[instance]);
        for step in steps {
            spec = spec.with_step(step);
        }
        let task = sims.dcs.create_task(spec);
        tasks.push(("dcs", format!("{}/{task}", INSTANCES[instance])));
    };
    let step = |name: &str, secs: f64, subs: &[&str]| {
        StepSpec::new(name, d(secs)).with_substeps(subs.iter().copied())
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
                .with_failure("DCS.4933", "not enough capacity in the availability zone"),
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
                sub("Install zone1", 5.0, &[0]).with_parallel_idx(0),
                sub("Install zone2", 6.0, &[0]).with_parallel_idx(1),
                sub("Install zone3", 4.0, &[0]).with_parallel_idx(2),
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
                    .with_fail_runs(1)
                    .with_log(["observer exited with code 1"]),
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
                    .with_fail_runs(u32::MAX)
                    .with_log(["parameter ob_query_timeout rejected"]),
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
                sub("Clean data", 4.0, &[0]).with_fail_runs(u32::MAX),
            ],
        )
        .with_prohibit_rollback(),
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
