//! What the fleet tests share: worker processes that cannot outlive a
//! failed test, and a loopback HTTP receiver.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A worker process that is killed if the test ends early (a failed
/// assertion must not leave workers polling behind it).
pub struct Worker(Option<Child>);

impl Worker {
    /// `tasktrack worker` on `store` as replica `owner`, with 1 s leases.
    pub fn spawn(config: &Path, store: &str, owner: &str, env: &[(&str, &str)]) -> Worker {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasktrack"));
        cmd.arg("--config")
            .arg(config)
            .args([
                "worker",
                "--store",
                store,
                "--lease-ttl",
                "1s",
                "--owner",
                owner,
            ])
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Worker(Some(cmd.spawn().unwrap()))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Waits for it to exit.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.0.take().unwrap().wait().unwrap()
    }

    /// SIGKILL, and waits for it.
    pub fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Serves `app` on a free loopback port in the background; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
