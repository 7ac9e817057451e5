//! A request budget shared by a fleet: three workers on one redis-server
//! poll 150 running OCP tasks that would cost ~100 requests a second, and
//! together stay under the backend's `max_requests_per_second`.

mod common;

use common::Worker;

use std::process::Command;
use std::time::{Duration, Instant};

use tasktrack_core::{TrackStore, TrackedEntry};
use tasktrack_redis::testing::{free_port, RedisServer};
use tasktrack_redis::RedisStore;
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::SimBuilder;

const BUDGET: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_together_stay_under_the_shared_budget() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let ocp = Ocp::new("admin", "pw");
    let sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    for i in 0..150 {
        let id = ocp.create(OcpTaskSpec::new(
            format!("Backup {i}"),
            vec![OcpSubtaskSpec::new("Copy", Duration::from_secs(3600), &[])],
        ));
        store
            .put(&TrackedEntry::new("ocp", id.to_string()))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tasktrack.toml");
    std::fs::write(
        &cfg,
        format!(
            "[backends.ocp]\nkind = \"ocp\"\nurl = \"{}\"\nuser = \"admin\"\npassword = \"pw\"\n\
             [backends.ocp.http]\nmax_requests_per_second = {BUDGET}\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let workers: Vec<Worker> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|o| Worker::spawn(&cfg, &redis.url(), o, &[]))
        .collect();

    // Measured once all three poll (each holds leases), over 6 s.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holders: Vec<Option<String>> = redis::cmd("MGET")
            .arg(
                (0..64)
                    .map(|s| format!("tasktrack:lease:{s}"))
                    .collect::<Vec<_>>(),
            )
            .query_async(&mut conn)
            .await
            .unwrap();
        let held_by = |o: &str| holders.iter().any(|h| h.as_deref() == Some(o));
        if ["w1", "w2", "w3"].iter().all(|o| held_by(o)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the three workers never split the shards"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (t0, n0) = (Instant::now(), sim.requests().total());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (t1, n1) = (Instant::now(), sim.requests().total());
    let rate = (n1 - n0) as f64 / (t1 - t0).as_secs_f64();
    println!(
        "{} requests in {:?}: {rate:.1}/s against a budget of {BUDGET}/s",
        n1 - n0,
        t1 - t0
    );
    assert!(
        rate <= BUDGET * 1.1,
        "{rate:.1} requests/s is over the shared budget"
    );
    // Not vacuous: the fleet uses its budget (150 tasks want far more).
    assert!(
        rate >= BUDGET * 0.5,
        "{rate:.1} requests/s: the budget was not used"
    );
    for w in &workers {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
    }
    for w in workers {
        assert_eq!(w.wait().code(), Some(0));
    }
}
