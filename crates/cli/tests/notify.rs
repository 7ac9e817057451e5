//! Notifications through a fleet: three workers on one redis-server, two
//! webhook sinks on a real HTTP receiver that answers 500 for a while, the
//! worker delivering for a sink killed with SIGKILL during that outage.
//! Every terminal event reaches each sink exactly once, signed.

mod common;

use common::Worker;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tasktrack_core::{TrackStore, TrackedEntry};
use tasktrack_redis::testing::{free_port, RedisServer};
use tasktrack_redis::RedisStore;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, TaskSpec};

const SECRET: &str = "hook-signing-key";
const TASKS: usize = 60;

#[derive(Default)]
struct Receiver {
    outage: AtomicBool,
    refused: AtomicU64,
    bad_signatures: AtomicU64,
    /// Accepted deliveries per (sink, task id).
    accepted: Mutex<HashMap<(String, String), usize>>,
}

impl Receiver {
    fn accepted_by(&self, sink: &str) -> HashMap<String, usize> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|((s, _), _)| s == sink)
            .map(|((_, id), n)| (id.clone(), *n))
            .collect()
    }
}

async fn hook(
    State(rx): State<Arc<Receiver>>,
    Path(sink): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if rx.outage.load(Ordering::SeqCst) {
        rx.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if sink == "a" {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let given = headers
            .get("x-tasktrack-signature")
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            rx.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return StatusCode::UNAUTHORIZED;
        }
    }
    let note: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(note["sink"], sink);
    let id = note["id"].as_str().unwrap().to_owned();
    *rx.accepted.lock().unwrap().entry((sink, id)).or_default() += 1;
    StatusCode::NO_CONTENT
}

async fn role_holder(conn: &mut redis::aio::MultiplexedConnection, sink: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("tasktrack:role:notify:{sink}"))
        .query_async(conn)
        .await
        .unwrap()
}

/// Polls `check` every 100 ms until it holds; a run that never gets there
/// fails with `what` after `limit` instead of hanging CI.
async fn until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_terminal_event_reaches_each_sink_once_through_a_kill_and_an_outage() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let pve = SimBuilder::new(Proxmox::new(["pve1", "pve2"]).with_api_token("root@pam!w", "s"))
        .start()
        .await
        .unwrap();
    let receiver = Arc::new(Receiver::default());
    receiver.outage.store(true, Ordering::SeqCst);
    let app = Router::new()
        .route("/{sink}", post(hook))
        .with_state(receiver.clone());
    let hooks = common::serve(app).await;

    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        r#"
[[notify]]
name = "a"
kind = "webhook"
url = "{hooks}/a"
secret = "${{HOOK_SECRET}}"
on = ["failed", "succeeded"]
max_backoff = "100ms"

[[notify]]
name = "b"
kind = "webhook"
url = "{hooks}/b"
on = ["failed", "succeeded", "cancelled"]
backends = ["pve"]
max_backoff = "100ms"
"#
    );
    let cfg = common::pve_config(dir.path(), &pve.base_url(), &sinks);

    let ids = common::pve_backups(&pve, TASKS, 4);
    common::track_in_redis(&redis.url(), &ids).await;
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let mut workers: HashMap<String, Worker> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|o| {
            (
                o.to_owned(),
                Worker::spawn(&cfg, &redis.url(), o, &[("HOOK_SECRET", SECRET)]),
            )
        })
        .collect();

    // The outage: sink a's deliverer is retrying a notification nobody
    // acknowledged when it is killed, so nothing is in flight between an
    // acknowledgement and its cursor write.
    until(
        "sink a retried during the outage",
        Duration::from_secs(120),
        async || receiver.refused.load(Ordering::SeqCst) >= 6,
    )
    .await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let victim = role_holder(&mut conn, "a")
        .await
        .expect("a replica delivers for sink a");
    workers.remove(&victim).unwrap().kill(); // SIGKILL
    until(
        "another replica took sink a over",
        Duration::from_secs(60),
        async || {
            role_holder(&mut conn, "a")
                .await
                .is_some_and(|h| h != victim)
        },
    )
    .await;
    receiver.outage.store(false, Ordering::SeqCst);

    // Every terminal event, once each, at both sinks; then both cursors at
    // the end of the log, so no delivery is still to come.
    until(
        "every task's end reached both sinks",
        Duration::from_secs(120),
        async || {
            receiver.accepted_by("a").len() == TASKS && receiver.accepted_by("b").len() == TASKS
        },
    )
    .await;
    until(
        "both sink cursors at the end of the log",
        Duration::from_secs(60),
        async || {
            let last = store.last_cursor().await.unwrap();
            let end = tasktrack_core::cursor_position(&last);
            let mut done = true;
            for sink in ["a", "b"] {
                let at = store.checkpoint(&format!("notify:{sink}")).await.unwrap();
                done &= at.as_deref().and_then(tasktrack_core::cursor_position) >= end;
            }
            done
        },
    )
    .await;
    for sink in ["a", "b"] {
        let got = receiver.accepted_by(sink);
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
        assert!(
            twice.is_empty(),
            "sink {sink} got some more than once: {twice:?}"
        );
        assert!(
            ids.iter().all(|id| got.contains_key(id)),
            "sink {sink} missed a task"
        );
    }
    assert_eq!(
        receiver.bad_signatures.load(Ordering::SeqCst),
        0,
        "every body signed"
    );
    let delivered_by_survivors = role_holder(&mut conn, "a").await;
    println!(
        "refused during the outage: {}; sink a moved from {victim} to {delivered_by_survivors:?}",
        receiver.refused.load(Ordering::SeqCst)
    );
    for (_, w) in workers {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
        let status = w.wait();
        assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    }
    // A clean stop gives the roles up.
    assert_eq!(role_holder(&mut conn, "a").await, None);
    assert_eq!(role_holder(&mut conn, "b").await, None);
}

async fn slack(State(texts): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> StatusCode {
    let note: serde_json::Value = serde_json::from_slice(&body).unwrap();
    texts
        .lock()
        .unwrap()
        .push(note["text"].as_str().unwrap_or_default().to_owned());
    StatusCode::OK
}

/// A worker that exits when idle waits for its sinks to catch up: a
/// command sink gets each event as JSON on stdin, a Slack sink one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_and_slack_sinks_get_every_end_before_an_idle_worker_exits() {
    let pve = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token("root@pam!w", "s"))
        .start()
        .await
        .unwrap();
    let texts = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/services/T0/B0/X", post(slack))
        .with_state(texts.clone());
    let hooks = common::serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("notes.jsonl");
    let sinks = format!(
        r#"
[[notify]]
kind = "command"
program = "sh"
args = ["-c", "cat >> '{out}'; echo >> '{out}'"]
on = ["failed", "succeeded"]

[[notify]]
kind = "slack"
url = "{hooks}/services/T0/B0/X"
on = ["failed"]
"#,
        out = out.display()
    );
    let cfg = common::pve_config(dir.path(), &pve.base_url(), &sinks);
    let db = dir.path().join("t.db");
    let url = format!("file:{}", db.display());
    let ids: Vec<String> = (0..10)
        .map(|i| {
            let spec = TaskSpec::new("vzdump", Duration::from_millis(100 + 50 * i))
                .with_attr("id", (100 + i).to_string());
            pve.create_task(if i % 2 == 0 {
                spec.with_failure("E", "disk\u{1b}[2J full")
            } else {
                spec
            })
        })
        .collect();
    {
        let store = tasktrack_core::FileStore::open(&db).unwrap();
        for id in &ids {
            store
                .put(&TrackedEntry::new("pve", id.clone()))
                .await
                .unwrap();
        }
    }
    common::worker_until_idle(&cfg, &url, &[]);
    let written = std::fs::read_to_string(&out).unwrap();
    let notes: Vec<serde_json::Value> = written
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(notes.len(), 10, "{written}");
    assert_eq!(notes.iter().filter(|n| n["event"] == "failed").count(), 5);
    assert!(notes
        .iter()
        .all(|n| n["sink"] == "command-1" && n["task_event"]["provider"] == "pve"));
    let texts = texts.lock().unwrap().clone();
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert!(
        texts
            .iter()
            .all(|t| t.contains("failed: disk") && !t.chars().any(char::is_control)),
        "{texts:?}"
    );
}
