//! The demo's four simulators and the providers over them, built from a
//! config the way a `--config` file is.

use std::sync::Arc;

use tasktrack_core::DynTaskProvider;
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::ocp::Ocp;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimHandle};

use crate::config::Config;
use crate::error::CliError;

pub(super) const PVE_TOKEN_ID: &str = "root@pam!demo";

pub(super) const PVE_SECRET: &str = "demo-pve-secret";

pub(super) const PROJECT: &str = "a4d31cb6-3d72-4fdc-8ec9-6e3a41e47f71";

pub(super) const AK: &str = "DEMOACCESSKEY";

pub(super) const SK: &str = "demo-secret-key";

pub(super) const INSTANCES: [&str; 2] = [
    "5560df16-cebf-4473-95c4-d1b573c16e79",
    "7a1c2e44-0b5d-4e1f-9f0a-6c3b8d2e1f00",
];

pub(super) const OCP_USER: &str = "admin";

pub(super) const OCP_PASSWORD: &str = "demo-ocp-password";

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

pub(super) struct Sims {
    pub(super) proxmox: SimHandle,
    pub(super) kps: SimHandle,
    pub(super) dcs: SimHandle,
    pub(super) ocp: SimHandle,
    pub(super) ocp_tasks: Ocp,
}

pub(super) async fn start_sims() -> Result<Sims, CliError> {
    let io = |e: std::io::Error| {
        CliError::usage(
            format!("cannot start a simulator: {e}"),
            "is the loopback interface up?",
        )
    };
    let huawei = || HuaweiAuth::new(PROJECT).with_aksk(AK, SK);
    let ocp_tasks = Ocp::new(OCP_USER, OCP_PASSWORD);
    Ok(Sims {
        proxmox: SimBuilder::new(
            Proxmox::new(["pve1", "pve2", "pve3"]).with_api_token(PVE_TOKEN_ID, PVE_SECRET),
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
pub(super) type Named = (&'static str, Arc<dyn DynTaskProvider>);

/// The demo's providers, built from a config the way `--config` files are.
pub(super) fn providers(sims: &Sims) -> Result<Vec<Named>, CliError> {
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
