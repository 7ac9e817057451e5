//! No token, password, ticket, AK or SK value appears in any log line (at
//! TRACE level, dependencies included), error message or `Debug` output,
//! on any provider's happy or failing paths.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tasktrack::dcs::{DcsClient, DcsProvider};
use tasktrack::huaweicloud::{Credentials, ServiceConfig};
use tasktrack::kps::{KpsClient, KpsProvider};
use tasktrack::ocp::{OcpClient, OcpProvider};
use tasktrack::proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};
use tasktrack::{DynTaskProvider, LogRange, PollPolicy, Poller, Secret, TaskAction, TaskFilter};
use tasktrack_sim::dcs::Dcs;
use tasktrack_sim::huawei::HuaweiAuth;
use tasktrack_sim::kps::Kps;
use tasktrack_sim::ocp::Ocp;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{Fault, SimBuilder, StepSpec, TaskSpec};

const PVE_TOKEN_SECRET: &str = "pvetokensecret-1111";
const PVE_PASSWORD: &str = "pvepassword-2222";
const AK: &str = "AKAUDIT33334444";
const SK: &str = "skaudit-5555-6666";
const IAM_TOKEN: &str = "iamtoken-7777-8888";
const OCP_PASSWORD: &str = "ocppassword-9999";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs every call a user makes, on good and bad paths, and returns all the
/// text they produced (errors, Debug of results and of the providers).
async fn exercise(
    p: Arc<dyn DynTaskProvider>,
    id: &str,
    sim: &tasktrack_sim::SimHandle,
) -> Vec<String> {
    let mut seen = vec![
        format!("{:?}", Arc::as_ptr(&p)),
        p.provider_name().to_owned(),
    ];
    let mut record = |r: String| seen.push(r);
    record(format!("{:?}", p.snapshot(id).await));
    record(format!("{:?}", p.snapshot_many(&[id.to_owned()]).await));
    record(format!(
        "{:?}",
        p.list_snapshots(&TaskFilter::default()).await
    ));
    record(format!("{:?}", p.log_lines(id, LogRange::Tail(5)).await));
    for action in [TaskAction::Cancel, TaskAction::Retry, TaskAction::Delete] {
        record(format!("{:?}", p.perform(id, action).await));
    }
    sim.faults().next(20, "*", Fault::status(500));
    let err = p.snapshot(id).await;
    record(format!("{err:?}"));
    if let Err(e) = err {
        record(e.to_string());
    }
    sim.faults().clear();
    sim.auth().expire_after(Duration::ZERO);
    let err = p.snapshot(id).await;
    record(format!("{err:?}"));
    if let Err(e) = err {
        record(e.to_string());
    }
    sim.auth().restore();
    let poller = Poller::new(
        tasktrack::ErasedProvider(p.clone()),
        PollPolicy::fixed(Duration::from_millis(20)),
    );
    record(format!(
        "{:?}",
        poller
            .wait(&id.to_owned())
            .await
            .map(|o| (o.status, o.log_tail))
    ));
    record(format!("{poller:?}"));
    seen
}

#[tokio::test]
async fn no_secret_anywhere() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let ms = Duration::from_millis;
    let mut texts = Vec::new();

    // Proxmox: token, and ticket + CSRF (the simulator's tickets carry a marker).
    let pve = SimBuilder::new(
        Proxmox::new(["pve1"])
            .with_api_token("root@pam!audit", PVE_TOKEN_SECRET)
            .with_user("root@pam", PVE_PASSWORD),
    )
    .start()
    .await
    .unwrap();
    let upid = pve.create_task(TaskSpec::new("vzdump", ms(100)).with_failure("E", "boom"));
    for creds in [
        ProxmoxCredentials::api_token("root@pam!audit", PVE_TOKEN_SECRET),
        ProxmoxCredentials::password("root@pam", PVE_PASSWORD),
        ProxmoxCredentials::api_token("root@pam!audit", format!("wrong-{PVE_TOKEN_SECRET}")),
        ProxmoxCredentials::password("root@pam", format!("wrong-{PVE_PASSWORD}")),
    ] {
        texts.push(format!("{creds:?}"));
        let client = ProxmoxClient::builder(pve.base_url(), creds)
            .build()
            .unwrap();
        texts.push(format!("{client:?}"));
        texts.extend(exercise(Arc::new(ProxmoxProvider::new(client)), &upid, &pve).await);
    }

    // KPS and DCS: AK/SK and IAM token.
    let auth = || {
        HuaweiAuth::new("proj")
            .with_aksk(AK, SK)
            .with_token(IAM_TOKEN)
    };
    let kps = SimBuilder::new(Kps::new(auth())).start().await.unwrap();
    let dcs = SimBuilder::new(Dcs::new(auth(), ["inst"]))
        .start()
        .await
        .unwrap();
    let kps_id = kps.create_task(TaskSpec::new("reset", ms(100)).with_failure("KPS.1", "x"));
    let dcs_id = format!(
        "inst/{}",
        dcs.create_task(
            TaskSpec::new("scale", Duration::ZERO).with_step(StepSpec::new("a", ms(100)))
        )
    );
    for creds in [
        Credentials::aksk(AK, SK),
        Credentials::token(IAM_TOKEN),
        Credentials::aksk(AK, format!("wrong{SK}")),
    ] {
        texts.push(format!("{creds:?}"));
        let kps_client = KpsClient::new(&ServiceConfig::new(
            "kps",
            kps.base_url(),
            "proj",
            creds.clone(),
        ))
        .unwrap();
        texts.push(format!("{kps_client:?}"));
        texts.extend(exercise(Arc::new(KpsProvider::new(kps_client)), &kps_id, &kps).await);
        let dcs_client =
            DcsClient::new(&ServiceConfig::new("dcs", dcs.base_url(), "proj", creds)).unwrap();
        texts.push(format!("{dcs_client:?}"));
        texts.extend(
            exercise(
                Arc::new(DcsProvider::new(dcs_client).with_instances(["inst"])),
                &dcs_id,
                &dcs,
            )
            .await,
        );
    }

    // OCP: Basic auth.
    let ocp = Ocp::new("admin", OCP_PASSWORD);
    let ocp_sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let ocp_id = ocp_sim.create_task(TaskSpec::new("Add tenant", ms(100)).with_failure("E", "x"));
    for password in [OCP_PASSWORD.to_owned(), format!("wrong-{OCP_PASSWORD}")] {
        let client = OcpClient::builder(ocp_sim.base_url(), "admin", &Secret::new(password))
            .build()
            .unwrap();
        texts.push(format!("{client:?}"));
        texts.extend(exercise(Arc::new(OcpProvider::new(client)), &ocp_id, &ocp_sim).await);
    }

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the capture works"
    );
    // HTTP client spans carry OpenTelemetry's semantic-convention names.
    for attribute in [
        "http.request.method=GET",
        "server.address=",
        "url.path=",
        "http.response.status_code=",
        "otel.kind=\"client\"",
    ] {
        assert!(logs.contains(attribute), "no {attribute} in the HTTP spans");
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{OCP_PASSWORD}"));
    let secrets = [
        PVE_TOKEN_SECRET,
        PVE_PASSWORD,
        "signature+AAAA",
        "sim-csrf-",
        AK,
        SK,
        IAM_TOKEN,
        OCP_PASSWORD,
        &basic,
    ];
    let everything = format!("{logs}\n{}", texts.join("\n"));
    for secret in secrets {
        if let Some(at) = everything.find(secret) {
            let context =
                &everything[at.saturating_sub(200)..(at + secret.len() + 50).min(everything.len())];
            panic!("secret {secret:?} leaked:\n...{context}...");
        }
    }
    println!(
        "audited {} bytes of TRACE logs and {} outputs: no secret",
        logs.len(),
        texts.len()
    );
}
