//! `tasktrack wait pbs <UPID>` against the Proxmox Backup Server simulator.

use std::process::Output;
use std::time::Duration;

use tasktrack_sim::pbs::Pbs;
use tasktrack_sim::{SimBuilder, TaskSpec};

const SECRET: &str = "pbs-cli-secret-value";

async fn tasktrack(config: &std::path::Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("TT_TEST_PBS_TOKEN", format!("backup@pbs!cli:{SECRET}"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn wait_follows_a_backup_server_task_to_its_end() {
    let sim = SimBuilder::new(Pbs::new("pbs1").with_api_token("backup@pbs!cli", SECRET))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tasktrack.toml");
    std::fs::write(
        &config,
        format!(
            "[backends.pbs]\nkind = \"pbs\"\nurl = \"{}\"\ntoken = \"${{TT_TEST_PBS_TOKEN}}\"\n",
            sim.base_url()
        ),
    )
    .unwrap();

    let ok = sim.create_task(
        TaskSpec::new("garbage_collection", Duration::from_millis(300)).with_attr("id", "store1"),
    );
    assert!(
        ok.starts_with("UPID:pbs1:") && ok.split(':').count() == 10,
        "{ok}"
    );
    let o = tasktrack(&config, &["wait", "pbs", &ok, "--interval", "100ms"]).await;
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("succeeded (stopped: OK)"), "{out}");

    let bad = sim.create_task(
        TaskSpec::new("verify", Duration::from_millis(200))
            .with_attr("id", "store1")
            .with_log(["verify group vm/100", "chunk 3f2a… is corrupt"])
            .with_failure("E", "verification failed"),
    );
    let o = tasktrack(&config, &["wait", "pbs", &bad, "--interval", "100ms"]).await;
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("failed: verification failed"), "{err}");
    assert!(err.contains("is corrupt"), "the log tail is shown: {err}");
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "secret printed"
    );

    // A Proxmox VE UPID is refused before any request, saying why.
    let o = tasktrack(
        &config,
        &[
            "wait",
            "pbs",
            "UPID:pve1:000AE992:00A21BA7:618C1D55:vzdump:100:root@pam:",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
