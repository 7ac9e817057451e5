//! Shared tracked sets through the CLI: a worker killed with SIGKILL resumes
//! from the file store; two workers share one Redis.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tasktrack_core::{FileStore, TaskEvent, TrackStore, TrackedEntry};
use tasktrack_redis::testing::{free_port, RedisServer};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimHandle};

use common::tasktrack;

/// A Proxmox simulator with these nodes (token `root@pam!w=s`) and a
/// config naming it as backend `pve`, in a fresh directory.
async fn pve_and_config(nodes: &[&str]) -> (SimHandle, tempfile::TempDir, std::path::PathBuf) {
    let pve =
        SimBuilder::new(Proxmox::new(nodes.iter().copied()).with_api_token("root@pam!w", "s"))
            .start()
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::pve_config(dir.path(), &pve.base_url(), "");
    (pve, dir, cfg)
}

fn finals_of(events: &[TaskEvent]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for e in events.iter().filter(|e| e.is_final()) {
        *out.entry(e.id.clone()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_resumes_from_the_file_store() {
    let (pve, dir, cfg) = pve_and_config(&["pve1", "pve2"]).await;
    let db = dir.path().join("t.db");
    let url = format!("file:{}", db.display());
    let ids = common::pve_backups(&pve, 500, 5);
    // A few through the command, the rest straight into the store.
    for id in &ids[..3] {
        let mut track = tasktrack(&cfg);
        track.args(["track", "pve", id, "--store", &url]);
        common::succeeded(track.output().unwrap());
    }
    {
        let store = FileStore::open(&db).unwrap();
        for id in &ids[3..] {
            store
                .put(&TrackedEntry::new("pve", id.clone()))
                .await
                .unwrap();
        }
    }
    let mut first = tasktrack(&cfg)
        .args(["worker", "--store", &url, "--json", "--lease-ttl", "1s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < 100 {
        let line = lines.next().expect("worker output").unwrap();
        let event: TaskEvent = serde_json::from_str(&line).unwrap();
        seen += usize::from(event.is_final());
    }
    first.kill().unwrap(); // SIGKILL, mid-run
    first.wait().unwrap();
    common::worker_until_idle(&cfg, &url, &["--json"]);
    let store = FileStore::open(&db).unwrap();
    let log: Vec<TaskEvent> = store
        .read("0", usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let finals = finals_of(&log);
    assert_eq!(finals.len(), 500, "every task finished");
    assert!(
        finals.values().all(|n| *n == 1),
        "exactly once, across the kill"
    );
    drop(store);
    let out = tasktrack(&cfg)
        .args(["events", "--store", &url, "--json"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(printed, log.len(), "events prints the whole log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_redis() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let (pve, _dir, cfg) = pve_and_config(&["pve1", "pve2"]).await;
    common::track_in_redis(&redis.url(), &common::pve_backups(&pve, 200, 5)).await;
    let spawn = |owner: &str| {
        tasktrack(&cfg)
            .args([
                "worker",
                "--store",
                &redis.url(),
                "--json",
                "--lease-ttl",
                "1s",
                "--exit-when-idle",
                "--owner",
                owner,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("w1"), spawn("w2"));
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut per_worker = Vec::new();
    let mut all = Vec::new();
    for out in &outputs {
        assert!(out.status.success());
        let events: Vec<TaskEvent> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        per_worker.push(finals_of(&events).len());
        all.extend(events);
    }
    println!("finals per worker: {per_worker:?}");
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both workers tracked part of the set: {per_worker:?}"
    );
    let finals = finals_of(&all);
    assert_eq!(finals.len(), 200, "every end printed by one worker");
    assert!(finals.values().all(|n| *n == 1));
    let store = tasktrack_redis::RedisStore::connect(&redis.url())
        .await
        .unwrap();
    let logged: Vec<TaskEvent> = store
        .read("0", 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let logged = finals_of(&logged);
    assert_eq!(logged.len(), 200, "and logged in the stream");
    assert!(logged.values().all(|n| *n == 1));
}

async fn lease_holders(url: &str) -> std::collections::BTreeMap<u32, String> {
    tasktrack_redis::testing::lease_holders(url, "tasktrack")
        .await
        .unwrap()
}

/// SIGTERM is a clean shutdown: the worker exits 0 having given its leases
/// up, so the other takes them on its next renewal, not after a TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_a_workers_leases_for_the_next_one() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let (_pve, _dir, cfg) = pve_and_config(&["pve1"]).await;
    let spawn = |owner: &str| {
        tasktrack(&cfg)
            .args([
                "worker",
                "--store",
                &redis.url(),
                "--lease-ttl",
                "6s",
                "--owner",
                owner,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = spawn("w1");
    let mut b = spawn("w2");
    // Until both hold a share (a renewal period is a third of the TTL); the
    // loop is bounded by samples and says what it saw.
    let mut split = (0, 0);
    for _ in 0..400 {
        let h = lease_holders(&redis.url()).await;
        split = (
            h.values().filter(|o| *o == "w1").count(),
            h.values().filter(|o| *o == "w2").count(),
        );
        if split.0 > 0 && split.1 > 0 && split.0 + split.1 == 64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(split.0 > 0 && split.1 > 0, "no split: {split:?}");
    let killed = Command::new("kill")
        .args(["-TERM", &a.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = a.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    let after = lease_holders(&redis.url()).await;
    assert!(
        after.values().all(|o| o != "w1"),
        "w1 gave every lease up before exiting: {after:?}"
    );
    // w2 takes them on its next lease round.
    let mut all = false;
    for _ in 0..400 {
        let h = lease_holders(&redis.url()).await;
        if h.len() == 64 && h.values().all(|o| o == "w2") {
            all = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(all, "w2 holds every shard");
    let _ = b.kill();
    let _ = b.wait();
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A worker's /metrics, /healthz and /readyz, with values that move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_metrics_health_and_readiness() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let (pve, _dir, cfg) = pve_and_config(&["pve1"]).await;
    let ids = common::pve_backups(&pve, 20, 5);
    common::track_in_redis(&redis.url(), &ids).await;
    let mut worker = tasktrack(&cfg)
        .args([
            "worker",
            "--store",
            &redis.url(),
            "--lease-ttl",
            "3s",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(worker.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no metrics line");
        if let Some(u) = line.trim().strip_prefix("metrics: ") {
            break u.trim_end_matches("/metrics").to_owned();
        }
    };
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{url}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    // Until every task has ended (the counters move; the loop is bounded).
    let mut text = String::new();
    for _ in 0..400 {
        text = get("/metrics").await.unwrap().text().await.unwrap();
        if metric(&text, "tasktrack_task_duration_seconds_count") >= 20.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(&text, "tasktrack_task_duration_seconds_count") >= 20.0,
        "{text}"
    );
    assert!(
        metric(&text, "tasktrack_poll_requests_total") >= 20.0,
        "{text}"
    );
    assert!(metric(&text, "tasktrack_task_transitions_total") >= 20.0);
    assert_eq!(metric(&text, "tasktrack_lease_shards"), 64.0, "{text}");
    assert!(text.contains("# HELP tasktrack_tasks_tracked"));
    for id in &ids {
        assert!(!text.contains(id.as_str()), "a task id became a label");
    }
    // The store goes away: not ready, still healthy.
    drop(redis);
    let mut unready = false;
    for _ in 0..100 {
        if get("/readyz").await.unwrap().status() == 503 {
            unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unready, "readiness follows the store");
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let _ = worker.kill();
    let _ = worker.wait();
}
