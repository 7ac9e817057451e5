//! Tracker replicas sharing a real `redis-server` (Debian's package; the test
//! starts it on a free loopback port and stops it afterwards).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tasktrack_core::{DynTaskProvider, PollPolicy, Secret, TaskEvents, TrackStore, Tracker};
use tasktrack_ocp::{OcpClient, OcpProvider};
use tasktrack_proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};
use tasktrack_redis::testing::{free_port, RedisServer};
use tasktrack_redis::RedisStore;
use tasktrack_sim::ocp::Ocp;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimHandle, TaskSpec};

struct Backends {
    pve: SimHandle,
    ocp_sim: SimHandle,
    providers: Vec<(&'static str, Arc<dyn DynTaskProvider>)>,
}

async fn backends() -> Backends {
    let pve =
        SimBuilder::new(Proxmox::new(["pve1", "pve2", "pve3"]).with_api_token("root@pam!r", "s"))
            .start()
            .await
            .unwrap();
    let ocp = Ocp::new("admin", "pw");
    let ocp_sim = SimBuilder::new(ocp).start().await.unwrap();
    let providers: Vec<(&'static str, Arc<dyn DynTaskProvider>)> = vec![
        (
            "proxmox",
            Arc::new(ProxmoxProvider::new(
                ProxmoxClient::builder(
                    pve.base_url(),
                    ProxmoxCredentials::api_token("root@pam!r", "s"),
                )
                .build()
                .unwrap(),
            )),
        ),
        (
            "ocp",
            Arc::new(OcpProvider::new(
                OcpClient::builder(ocp_sim.base_url(), "admin", &Secret::new("pw"))
                    .build()
                    .unwrap(),
            )),
        ),
    ];
    Backends {
        pve,
        ocp_sim,
        providers,
    }
}

fn tasks(b: &Backends, n: usize, max_ms: u64) -> Vec<(&'static str, String)> {
    (0..n)
        .map(|i| {
            let d = Duration::from_millis(200 + (i as u64 * 53) % max_ms);
            let spec = TaskSpec::new("job", d).with_attr("id", (100 + i).to_string());
            let spec = if i % 6 == 0 {
                spec.with_failure("E", "boom")
            } else {
                spec
            };
            if i % 2 == 0 {
                ("proxmox", b.pve.create_task(spec))
            } else {
                ("ocp", b.ocp_sim.create_task(spec))
            }
        })
        .collect()
}

/// The store every replica of these tests shares (key prefix `t`).
async fn shared_store(url: &str) -> RedisStore {
    tasktrack_redis::testing::store_with_prefix(url, "t")
        .await
        .unwrap()
}

async fn replica(owner: &str, b: &Backends, url: &str, ttl: Duration) -> (Tracker, TaskEvents) {
    let store = shared_store(url).await;
    let mut builder = Tracker::builder()
        .with_policy(
            PollPolicy::fixed(Duration::from_millis(100))
                .with_deadline(None)
                .with_error_budget(1000),
        )
        .with_store(Arc::new(store))
        .with_owner(owner)
        .with_lease_ttl(ttl)
        .with_batch_size(2000);
    for (name, p) in &b.providers {
        builder = builder.with_provider(*name, p.clone());
    }
    builder.build()
}

async fn finals(url: &str) -> HashMap<String, usize> {
    let store = shared_store(url).await;
    let mut out = HashMap::new();
    let mut cursor = "0".to_owned();
    loop {
        let page = store.read(&cursor, 1000).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        cursor = last.clone();
        for (_, e) in page {
            if e.is_final() {
                *out.entry(format!("{}/{}", e.provider, e.id)).or_default() += 1;
            }
        }
    }
    out
}

async fn lease_holders(url: &str) -> std::collections::BTreeMap<u32, String> {
    tasktrack_redis::testing::lease_holders(url, "t")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_dies_every_task_ends_exactly_once() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let b = backends().await;
    let ttl = Duration::from_secs(1);
    let work = tasks(&b, 1000, 4000);
    let (a, ea) = replica("a", &b, &redis.url(), ttl).await;
    let (bb, eb) = replica("b", &b, &redis.url(), ttl).await;
    let (c, ec) = replica("c", &b, &redis.url(), ttl).await;
    for (backend, id) in &work {
        a.track(backend, id).unwrap();
    }
    let mut merged = futures::stream::select_all([ea.boxed(), eb.boxed(), ec.boxed()]);
    let mut emitted: HashMap<String, usize> = HashMap::new();
    let mut takeover = None;
    // The durable log is the record: a replica killed between logging a
    // terminal event and handing it to its local stream takes only the
    // local copy with it; the others stay silent, as the log has it.
    // Progress, not time, decides a stall: the loop fails only after many
    // checks in a row without a new terminal event in the log.
    let (mut progress_before, mut idle_checks) = (0, 0);
    loop {
        // Take what the replicas emitted (a burst at a time).
        for _ in 0..200 {
            match tokio::time::timeout(Duration::from_millis(500), merged.next()).await {
                Ok(Some(ev)) => {
                    if ev.is_final() {
                        *emitted
                            .entry(format!("{}/{}", ev.provider, ev.id))
                            .or_default() += 1;
                    }
                }
                _ => break,
            }
        }
        if takeover.is_none() && emitted.len() >= 200 {
            let held: Vec<u32> = lease_holders(&redis.url())
                .await
                .into_iter()
                .filter(|(_, h)| h == "b")
                .map(|(s, _)| s)
                .collect();
            // Kill b only once it holds leases: a takeover needs something
            // to take over.
            if !held.is_empty() {
                bb.kill();
                takeover = Some((Instant::now(), held));
            }
        }
        let logged = finals(&redis.url()).await.len();
        if takeover.is_some() && logged == work.len() {
            break;
        }
        let progress = logged + emitted.len() + usize::from(takeover.is_some());
        idle_checks = if progress > progress_before {
            0
        } else {
            idle_checks + 1
        };
        progress_before = progress;
        assert!(
            idle_checks < 240,
            "stalled: {logged} of {} logged, {} emitted, b killed: {}",
            work.len(),
            emitted.len(),
            takeover.is_some()
        );
    }
    // The dead replica's shards went to the others.
    let (killed_at, held) = takeover.unwrap();
    assert!(!held.is_empty(), "b held shards before it died");
    let now = lease_holders(&redis.url()).await;
    assert!(
        held.iter().all(|s| now.get(s).is_some_and(|h| h != "b")),
        "b's shards are held by live replicas"
    );
    println!(
        "b held {} shards; all work finished {:?} after it died",
        held.len(),
        killed_at.elapsed()
    );
    assert!(
        emitted.values().all(|n| *n == 1),
        "a terminal event emitted twice"
    );
    let logged = finals(&redis.url()).await;
    assert_eq!(logged.len(), work.len(), "none lost");
    assert!(
        logged.values().all(|n| *n == 1),
        "every terminal event exactly once in the stream"
    );
    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_fleet_resumes_from_redis() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let b = backends().await;
    let ttl = Duration::from_secs(1);
    let work = tasks(&b, 300, 3000);
    let (a, mut ea) = replica("a", &b, &redis.url(), ttl).await;
    let (c, _ec) = replica("c", &b, &redis.url(), ttl).await;
    for (backend, id) in &work {
        a.track(backend, id).unwrap();
    }
    let mut seen = 0;
    while seen < 30 {
        if ea.next().await.unwrap().is_final() {
            seen += 1;
        }
    }
    a.stop().await;
    c.stop().await;
    assert!(
        lease_holders(&redis.url()).await.is_empty(),
        "a clean stop releases every lease"
    );
    let before = finals(&redis.url()).await.len();
    assert!(before < work.len());
    // The fleet comes back; nobody tracks anything again.
    let (a2, ea2) = replica("a2", &b, &redis.url(), ttl).await;
    let (c2, ec2) = replica("c2", &b, &redis.url(), ttl).await;
    let mut merged = futures::stream::select_all([ea2.boxed(), ec2.boxed()]);
    let mut rest = 0;
    while rest < work.len() - before {
        let ev = tokio::time::timeout(Duration::from_secs(60), merged.next())
            .await
            .expect("progress")
            .unwrap();
        if ev.is_final() {
            rest += 1;
        }
    }
    let logged = finals(&redis.url()).await;
    assert_eq!(logged.len(), work.len());
    assert!(logged.values().all(|n| *n == 1));
    a2.stop().await;
    c2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_loses_and_duplicates_nothing() {
    let dir = std::env::temp_dir().join(format!("tasktrack-redis-aof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = RedisServer::start(free_port().unwrap(), Some(dir.clone())).unwrap();
    let b = backends().await;
    let work = tasks(&b, 300, 3000);
    let (a, mut ea) = replica("a", &b, &redis.url(), Duration::from_secs(2)).await;
    for (backend, id) in &work {
        a.track(backend, id).unwrap();
    }
    let mut emitted: HashMap<String, usize> = HashMap::new();
    let mut restarted = false;
    while emitted.len() < work.len() {
        let ev = tokio::time::timeout(Duration::from_secs(60), ea.next())
            .await
            .expect("progress")
            .unwrap();
        if ev.is_final() {
            *emitted
                .entry(format!("{}/{}", ev.provider, ev.id))
                .or_default() += 1;
        }
        if !restarted && emitted.len() >= 60 {
            redis.restart().unwrap(); // connection errors follow: transient
            restarted = true;
        }
    }
    assert!(emitted.values().all(|n| *n == 1));
    let logged = finals(&redis.url()).await;
    assert_eq!(
        logged.len(),
        work.len(),
        "no terminal event lost across the restart"
    );
    assert!(logged.values().all(|n| *n == 1), "none duplicated");
    a.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
