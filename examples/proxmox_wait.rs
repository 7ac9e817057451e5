//! Wait for Proxmox VE tasks: `cargo run --example proxmox_wait`.
//!
//! By default it starts a simulated three-node cluster, starts a backup that
//! succeeds and a migration that fails, and waits for both, printing each
//! state change and, for the failure, the log tail.
//!
//! Against a real server, set:
//!   PVE_URL=https://host:8006  PVE_TOKEN=USER@REALM!TOKENID=SECRET  PVE_UPID=UPID:...
//! and for PVE's self-signed certificate either PVE_CA_CERT=/path/pve-root-ca.pem
//! or (dangerous) PVE_INSECURE=1. The exit code is 1 when the task failed.

use std::process::ExitCode;
use std::time::Duration;
use tasktrack::http::ConfigureHttp;

use futures::StreamExt;
use tasktrack::proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider, Upid};
use tasktrack::{Error, PollPolicy, Poller, TaskStatus};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, TaskSpec};

async fn wait_for(poller: &Poller<ProxmoxProvider>, upid: &Upid) -> Result<bool, Error> {
    println!("waiting for {upid}");
    let mut changes = std::pin::pin!(poller.watch(upid));
    while let Some(status) = changes.next().await {
        let status = status?;
        println!("  {:<9} {}", status.state(), status.vendor_state());
    }
    match poller.wait(upid).await?.into_result() {
        Ok(_) => Ok(true),
        Err(Error::TaskFailed {
            failure, log_tail, ..
        }) => {
            println!("  failed: {failure}");
            for line in log_tail.iter() {
                println!("  | {line}");
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn real_server(url: String, token: String, upid: String) -> Result<bool, Error> {
    let mut client = ProxmoxClient::builder(url, ProxmoxCredentials::parse_token(&token)?);
    if let Ok(path) = std::env::var("PVE_CA_CERT") {
        let pem = std::fs::read(&path).map_err(|e| {
            Error::invalid_input("proxmox", format!("cannot read PVE_CA_CERT {path}: {e}"))
        })?;
        client = client.with_root_certificate_pem(&pem);
    }
    if std::env::var("PVE_INSECURE").is_ok_and(|v| v == "1") {
        eprintln!("warning: PVE_INSECURE=1 accepts any certificate");
        client = client.with_danger_accept_invalid_certs(true);
    }
    let poller = Poller::new(ProxmoxProvider::new(client.build()?), PollPolicy::default());
    wait_for(&poller, &upid.parse()?).await
}

async fn simulated() -> Result<bool, Error> {
    let sim = SimBuilder::new(
        Proxmox::new(["pve1", "pve2", "pve3"]).with_api_token("root@pam!demo", "demo-secret"),
    )
    .start()
    .await
    .map_err(|e| Error::invalid_input("simulator", e.to_string()))?;
    println!("simulated Proxmox VE at {}", sim.base_url());
    let backup = sim.create_task(
        TaskSpec::new("vzdump", Duration::from_secs(3))
            .with_attr("id", "100")
            .with_log([
                "INFO: starting new backup job: vzdump 100",
                "INFO: archive file size: 1.2GB",
                "INFO: Finished Backup of VM 100",
            ]),
    );
    let migrate = sim.create_task(
        TaskSpec::new("qmigrate", Duration::from_secs(2))
            .with_attr("id", "101")
            .with_log([
                "2026-11-26 10:00:01 starting migration of VM 101 to node 'pve3'",
                "2026-11-26 10:00:02 ERROR: storage 'local-lvm' is full",
            ])
            .with_failure("E", "migration aborted"),
    );
    let client = ProxmoxClient::builder(
        sim.base_url(),
        ProxmoxCredentials::api_token("root@pam!demo", "demo-secret"),
    )
    .build()?;
    let poller = Poller::new(
        ProxmoxProvider::new(client),
        PollPolicy::fixed(Duration::from_millis(500)).with_log_tail_lines(5),
    );
    let ok_backup = wait_for(&poller, &backup.parse()?).await?;
    let ok_migrate = wait_for(&poller, &migrate.parse()?).await?;
    Ok(ok_backup && !ok_migrate)
}

#[tokio::main]
async fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let result = match (env("PVE_URL"), env("PVE_TOKEN"), env("PVE_UPID")) {
        (Some(url), Some(token), Some(upid)) => real_server(url, token, upid).await,
        (None, None, None) => simulated().await,
        _ => {
            eprintln!(
                "error: set all of PVE_URL, PVE_TOKEN and PVE_UPID, or none to use the simulator"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
