//! What the CLI's integration tests share: a config naming the Proxmox
//! simulator, `tasktrack` and worker commands, worker processes that cannot
//! outlive a failed test, a loopback HTTP receiver, Proxmox tasks in a
//! tracked set, and JSON / text GETs.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `DIR/tasktrack.toml`: the Proxmox simulator at `pve` as backend `pve`
/// (token `root@pam!w=s`), then `more` (notification sinks, say).
pub fn pve_config(dir: &Path, pve: &str, more: &str) -> PathBuf {
    let path = dir.join("tasktrack.toml");
    let backend =
        format!("[backends.pve]\nkind = \"proxmox\"\nurl = \"{pve}\"\ntoken = \"root@pam!w=s\"\n");
    std::fs::write(&path, backend + more).unwrap();
    path
}

/// `tasktrack --config CONFIG`, for a test to add its command to.
pub fn tasktrack(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tasktrack"));
    c.arg("--config").arg(config);
    c
}

/// `tasktrack worker` on `store` with 1 s leases, for a test to add to.
pub fn worker(config: &Path, store: &str) -> Command {
    let mut c = tasktrack(config);
    c.args(["worker", "--store", store, "--lease-ttl", "1s"]);
    c
}

/// A command's output, once it is known to have succeeded.
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A [`worker`] that exits once its tasks are done (`extra` added), run to
/// its end.
pub fn worker_until_idle(config: &Path, store: &str, extra: &[&str]) -> std::process::Output {
    succeeded(
        worker(config, store)
            .arg("--exit-when-idle")
            .args(extra)
            .output()
            .unwrap(),
    )
}

/// A worker process that is killed if the test ends early (a failed
/// assertion must not leave workers polling behind it).
pub struct Worker(Option<Child>);

impl Worker {
    /// `tasktrack worker` on `store` as replica `owner`, with 1 s leases.
    pub fn spawn(config: &Path, store: &str, owner: &str, env: &[(&str, &str)]) -> Worker {
        let mut cmd = worker(config, store);
        cmd.args(["--owner", owner]).stdout(Stdio::null());
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

/// `n` new vzdump tasks of `pve` (guest ids from 100, 0.3–3.3 s long),
/// every `fail_every`-th failing with `disk full`.
pub fn pve_backups(pve: &tasktrack_sim::SimHandle, n: usize, fail_every: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let spec = tasktrack_sim::TaskSpec::new(
                "vzdump",
                std::time::Duration::from_millis(300 + (i as u64 * 37) % 3000),
            )
            .with_attr("id", (100 + i).to_string());
            pve.create_task(if i % fail_every == 0 {
                spec.with_failure("E", "disk full")
            } else {
                spec
            })
        })
        .collect()
}

/// `ids` of backend `pve`, put in the tracked set of the Redis at `url`.
pub async fn track_in_redis(url: &str, ids: &[String]) {
    use tasktrack_core::TrackStore;
    let store = tasktrack_redis::RedisStore::connect(url).await.unwrap();
    for id in ids {
        store
            .put(&tasktrack_core::TrackedEntry::new("pve", id.clone()))
            .await
            .unwrap();
    }
}

/// `GET url`, its body as JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
) -> T {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// `GET url`, its body as text.
pub async fn get_text(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}
