//! Standalone mode: one simulator in the foreground, as the
//! `tasktrack-sim` binary and `tasktrack sim` run it.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::dcs::Dcs;
use crate::generic::Generic;
use crate::huawei::HuaweiAuth;
use crate::kps::Kps;
use crate::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use crate::pbs::Pbs;
use crate::proxmox::Proxmox;
use crate::{SimBuilder, SimHandle, SimOutcome, StepSpec, TaskSpec};
use clap::ValueEnum;

/// What `--help` says of the control API and the output, for every command
/// that runs a standalone simulator.
pub const CONTROL_API_HELP: &str = "\
Besides the vendor's own API, every simulator serves an unauthenticated
control API for loopback use:
  GET  /_sim/requests              request counts per route
  GET|POST|DELETE /_sim/faults     list / add / clear fault rules, e.g.
       {\"route\":\"*\",\"fault\":{\"kind\":\"status\",\"status\":503},\"times\":2}
  GET|POST /_sim/tasks             list / create scripted tasks, e.g.
       {\"kind\":\"backup\",\"duration_ms\":5000}
  POST /_sim/clock/advance?ms=N    (only with --manual-clock)

The first line printed is `<vendor> simulator listening on <url>`; with
--sample-tasks each sample task's id follows as `task <id>`.";

/// Options of a standalone simulator (see [`CONTROL_API_HELP`]).
#[derive(clap::Args, Debug, Clone)]
pub struct SimOptions {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Serve HTTPS with a self-signed certificate (Proxmox VE's default).
    #[arg(long)]
    pub tls: bool,
    /// generic: the bearer token accepted.
    #[arg(long, default_value = "sim-token", env = "TASKTRACK_SIM_TOKEN")]
    pub token: String,
    /// proxmox: node names, comma-separated.
    #[arg(long, default_value = "pve1,pve2,pve3", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// proxmox: the API token id accepted (USER@REALM!TOKENID).
    #[arg(long, default_value = "root@pam!sim")]
    pub token_id: String,
    /// proxmox: the API token secret accepted.
    #[arg(long, default_value = "sim-secret", env = "TASKTRACK_SIM_TOKEN_SECRET")]
    pub token_secret: String,
    /// proxmox: the user accepted at /access/ticket.
    #[arg(long, default_value = "root@pam")]
    pub user: String,
    /// proxmox: that user's password.
    #[arg(long, default_value = "sim-password", env = "TASKTRACK_SIM_PASSWORD")]
    pub password: String,
    /// kps, dcs: the project id in every path.
    #[arg(long, default_value = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71")]
    pub project_id: String,
    /// kps, dcs: the access key accepted for AK/SK signatures.
    #[arg(long, default_value = "SIMACCESSKEY")]
    pub ak: String,
    /// kps, dcs: the secret key of that access key.
    #[arg(long, default_value = "sim-secret-key", env = "TASKTRACK_SIM_SK")]
    pub sk: String,
    /// kps, dcs: an IAM token accepted in X-Auth-Token.
    #[arg(long, default_value = "sim-iam-token", env = "TASKTRACK_SIM_IAM_TOKEN")]
    pub iam_token: String,
    /// dcs: cache instance ids, comma-separated.
    #[arg(
        long,
        default_value = "5560df16-cebf-4473-95c4-d1b573c16e79",
        value_delimiter = ','
    )]
    pub instances: Vec<String>,
    /// ocp: the HTTP Basic user accepted.
    #[arg(long, default_value = "admin")]
    pub ocp_user: String,
    /// ocp: that user's password.
    #[arg(
        long,
        default_value = "sim-password",
        env = "TASKTRACK_SIM_OCP_PASSWORD"
    )]
    pub ocp_password: String,
    /// Start a few sample tasks.
    #[arg(long)]
    pub sample_tasks: bool,
    /// Time moves only through POST /_sim/clock/advance.
    #[arg(long)]
    pub manual_clock: bool,
}

/// The vendors a standalone simulator can speak.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorName {
    /// A small JSON task API (`/api/tasks/{id}`), bearer token auth.
    Generic,
    /// Proxmox VE (`/api2/json`): API token or ticket auth.
    Proxmox,
    /// Proxmox Backup Server (`/api2/json`, UPIDs with a task counter): API
    /// token (`PBSAPIToken`) or ticket auth, with `--token-id`,
    /// `--token-secret`, `--user`, `--password` and the first of `--nodes`
    /// as its hostname.
    Pbs,
    /// Huawei Cloud KPS key-pair tasks (`/v3/{project_id}`): token or AK/SK.
    Kps,
    /// Huawei Cloud DCS background tasks (`/v2/{project_id}`): token or AK/SK.
    Dcs,
    /// OceanBase OCP task instances (`/api/v2/tasks/instances`): HTTP Basic.
    Ocp,
}

fn samples(vendor: VendorName, sim: &SimHandle) -> Vec<String> {
    let s = Duration::from_secs;
    match vendor {
        VendorName::Kps => {
            return vec![
                sim.create_task(
                    TaskSpec::new("reset", s(1))
                        .with_attr("keypair_name", "KeyPair-xt")
                        .with_failure("KPS.0105", "Update public key error"),
                ),
                sim.create_task(TaskSpec::new("replace", s(600)).with_attr("operation", "REPLACE")),
                sim.create_task(TaskSpec::new("unbind", s(5)).with_attr("operation", "UNBIND")),
            ];
        }
        VendorName::Dcs => {
            return vec![
                sim.create_task(
                    TaskSpec::new("ChangeInstanceSpec", s(0))
                        .with_step(
                            StepSpec::new("precheck", s(4))
                                .with_substeps(["resource check", "instance check"]),
                        )
                        .with_step(
                            StepSpec::new("migrate data", s(8))
                                .with_substeps(["allocate", "copy slots"]),
                        ),
                ),
                sim.create_task(
                    TaskSpec::new("AddReplica", s(0))
                        .with_step(StepSpec::new("precheck", s(2)))
                        .with_step(
                            StepSpec::new("create replica", s(3))
                                .with_substeps(["allocate"])
                                .with_failure("DCS.4933", "not enough capacity"),
                        ),
                ),
            ];
        }
        VendorName::Pbs => {
            return vec![
                sim.create_task(
                    TaskSpec::new("backup", s(20))
                        .with_attr("id", "store1:vm/100")
                        .with_log(["starting backup to datastore 'store1'", "upload done"]),
                ),
                sim.create_task(
                    TaskSpec::new("verify", s(10))
                        .with_attr("id", "store1")
                        .with_failure("E", "verification failed: 1 corrupt chunk"),
                ),
                sim.create_task(
                    TaskSpec::new("garbage_collection", s(30)).with_attr("id", "store1"),
                ),
            ];
        }
        _ => {}
    }
    vec![
        sim.create_task(
            TaskSpec::new("vzdump", s(20))
                .with_attr("id", "100")
                .with_log(["INFO: starting new backup job", "INFO: backup finished"]),
        ),
        sim.create_task(
            TaskSpec::new("qmigrate", s(30))
                .with_attr("id", "101")
                .with_failure("E_NOSPC", "migration aborted: no space left on target"),
        ),
        sim.create_task(
            TaskSpec::new("vzcreate", s(5))
                .with_attr("id", "123")
                .with_outcome(SimOutcome::Warnings { count: 1 }),
        ),
        sim.create_task(
            TaskSpec::new("scale-out", s(0))
                .with_step(StepSpec::new("prepare", s(10)))
                .with_step(StepSpec::new("resize", s(20)).with_substeps(["allocate", "copy"])),
        ),
    ]
}

fn ocp_samples(ocp: &Ocp) -> Vec<String> {
    let s = Duration::from_secs;
    let upgrade = OcpTaskSpec::new(
        "Upgrade cluster",
        vec![
            OcpSubtaskSpec::new("Prepare host", s(3), &[]),
            OcpSubtaskSpec::new("Install on zone1", s(5), &[0]).with_parallel_idx(0),
            OcpSubtaskSpec::new("Install on zone2", s(6), &[0]).with_parallel_idx(1),
            OcpSubtaskSpec::new("Start observer", s(3), &[1, 2])
                .with_fail_runs(1)
                .with_log(["observer exited with code 1"]),
            OcpSubtaskSpec::new("Check cluster", s(2), &[3]),
        ],
    );
    let backup = OcpTaskSpec::new(
        "Backup tenant",
        vec![OcpSubtaskSpec::new("Backup data", s(20), &[])],
    );
    vec![
        ocp.create(upgrade).to_string(),
        ocp.create(backup).to_string(),
    ]
}

fn huawei_auth(args: &SimOptions) -> HuaweiAuth {
    HuaweiAuth::new(args.project_id.clone())
        .with_aksk(args.ak.clone(), args.sk.clone())
        .with_token(args.iam_token.clone())
}

/// Serves `vendor` with `args` until Ctrl-C; exit code 2 when it cannot listen.
pub async fn serve(vendor: VendorName, args: SimOptions) -> ExitCode {
    let clock = if args.manual_clock {
        crate::SimClock::manual(tasktrack_core::ManualClock::new())
    } else {
        crate::SimClock::real()
    };
    let ocp = Ocp::new(args.ocp_user.clone(), args.ocp_password.clone()).with_clock(clock.clone());
    let builder = match vendor {
        VendorName::Generic => SimBuilder::new(Generic::new(args.token.clone())),
        VendorName::Ocp => SimBuilder::new(ocp.clone()),
        VendorName::Kps => SimBuilder::new(Kps::new(huawei_auth(&args))),
        VendorName::Dcs => SimBuilder::new(Dcs::new(huawei_auth(&args), args.instances.clone())),
        VendorName::Proxmox => SimBuilder::new(
            Proxmox::new(args.nodes.clone())
                .with_api_token(args.token_id.clone(), args.token_secret.clone())
                .with_user(args.user.clone(), args.password.clone()),
        ),
        VendorName::Pbs => SimBuilder::new(
            Pbs::new(args.nodes.first().cloned().unwrap_or_else(|| "pbs".into()))
                .with_api_token(args.token_id.clone(), args.token_secret.clone())
                .with_user(args.user.clone(), args.password.clone()),
        ),
    }
    .with_addr(SocketAddr::new(args.host, args.port))
    .with_tls(args.tls)
    .with_clock(clock);
    let sim = match builder.start().await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.host, args.port);
            return ExitCode::from(2);
        }
    };
    let ids = match (args.sample_tasks, vendor) {
        (false, _) => Vec::new(),
        (true, VendorName::Ocp) => ocp_samples(&ocp),
        (true, other) => samples(other, &sim),
    };
    // A closed stdout (the reader went away) must not kill the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{vendor:?} simulator listening on {}", sim.base_url());
    for id in ids {
        let _ = writeln!(out, "task {id}");
    }
    let _ = writeln!(out, "press Ctrl-C to stop");
    let _ = out.flush();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
