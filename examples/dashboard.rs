//! A unified dashboard over mixed vendors, the way a dashboard author writes
//! one with tasktrack: providers of any kind as `Arc<dyn DynTaskProvider>`,
//! one `Tracker`, one stream of events. `cargo run --example dashboard`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tasktrack::dcs::{DcsClient, DcsProvider};
use tasktrack::huaweicloud::{Credentials, ServiceConfig};
use tasktrack::ocp::{OcpClient, OcpProvider};
use tasktrack::proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};
use tasktrack::{DynTaskProvider, PollPolicy, Secret, TaskSnapshot, Tracker};
use tasktrack_sim::{
    dcs::Dcs, huawei::HuaweiAuth, ocp::Ocp, proxmox::Proxmox, SimBuilder, StepSpec, TaskSpec,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ms = Duration::from_millis;
    // Three backends; in production these are your servers, not simulators.
    let pve_sim =
        SimBuilder::new(Proxmox::new(["pve1", "pve2"]).with_api_token("root@pam!dash", "s3cret"))
            .start()
            .await?;
    let dcs_sim = SimBuilder::new(Dcs::new(
        HuaweiAuth::new("p1").with_token("iam-token"),
        ["inst-1"],
    ))
    .start()
    .await?;
    let ocp = Ocp::new("admin", "pw");
    let ocp_sim = SimBuilder::new(ocp.clone()).start().await?;

    let pve: Arc<dyn DynTaskProvider> = Arc::new(ProxmoxProvider::new(
        ProxmoxClient::builder(
            pve_sim.base_url(),
            ProxmoxCredentials::api_token("root@pam!dash", "s3cret"),
        )
        .build()?,
    ));
    let dcs_config = ServiceConfig::new(
        "dcs",
        dcs_sim.base_url(),
        "p1",
        Credentials::token("iam-token"),
    );
    let dcs: Arc<dyn DynTaskProvider> = Arc::new(DcsProvider::new(DcsClient::new(&dcs_config)?));
    let ocp_p: Arc<dyn DynTaskProvider> = Arc::new(OcpProvider::new(
        OcpClient::builder(ocp_sim.base_url(), "admin", &Secret::new("pw")).build()?,
    ));

    let (tracker, mut events) = Tracker::builder()
        .with_provider("pve", pve)
        .with_provider("dcs", dcs)
        .with_provider("ocp", ocp_p)
        .with_policy(PollPolicy::fixed(ms(200)))
        .build();

    // Some work in each backend, tracked by (backend, id string).
    let mut tracked = vec![
        (
            "pve",
            pve_sim.create_task(TaskSpec::new("vzdump", ms(900)).with_attr("id", "100")),
        ),
        (
            "pve",
            pve_sim.create_task(
                TaskSpec::new("qmigrate", ms(700))
                    .with_attr("id", "101")
                    .with_failure("E", "target full"),
            ),
        ),
        (
            "ocp",
            ocp.create(tasktrack_sim::ocp::OcpTaskSpec::new(
                "Add zone",
                vec![
                    tasktrack_sim::ocp::OcpSubtaskSpec::new("Install", ms(500), &[]),
                    tasktrack_sim::ocp::OcpSubtaskSpec::new("Start", ms(400), &[0]),
                ],
            ))
            .to_string(),
        ),
    ];
    let scale_out = TaskSpec::new("scale-out", ms(0))
        .with_step(StepSpec::new("precheck", ms(300)))
        .with_step(StepSpec::new("resize", ms(700)));
    tracked.push(("dcs", format!("inst-1/{}", dcs_sim.create_task(scale_out))));
    for (backend, id) in &tracked {
        tracker.track(backend, id)?;
    }

    // The dashboard: latest snapshot per task, redrawn on every change.
    let mut board: BTreeMap<(String, String), TaskSnapshot> = BTreeMap::new();
    let mut finished = 0;
    while finished < tracked.len() {
        let Some(event) = events.next().await else {
            break;
        };
        finished += usize::from(event.is_final());
        if let Some(snapshot) = event.snapshot() {
            board.insert((event.provider.clone(), event.id.clone()), snapshot.clone());
        }
        println!(
            "--- {} {} -> {:?}",
            event.provider,
            event.id.chars().take(24).collect::<String>(),
            event.state()
        );
        for ((backend, _), s) in &board {
            let percent = s
                .progress
                .as_ref()
                .and_then(|p| p.percent)
                .map(|p| format!("{p:>3.0}%"))
                .unwrap_or_default();
            let why = s.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("");
            println!(
                "  {backend:<4} {:<16} {:<10} {percent:>4} {why}",
                s.kind.as_deref().unwrap_or("-"),
                s.state.as_str()
            );
        }
    }
    Ok(())
}
