//! Two replicas behind a 600 ms round trip to a real `redis-server` keep a
//! stable split of the shards: leases renew in one round trip per period,
//! well inside the default 15 s TTL.

use std::sync::Arc;
use std::time::Duration;

use tasktrack_core::{MemoryProvider, Tracker};
use tasktrack_redis::testing::{free_port, DelayProxy, RedisServer};
use tasktrack_redis::{RedisOptions, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_600ms_redis_keeps_a_stable_split_with_the_default_ttl() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let port: u16 = redis
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/0")
        .parse()
        .unwrap();
    let proxy = DelayProxy::start(port, Duration::from_millis(300))
        .await
        .unwrap();
    let replica = |owner: &'static str| {
        let url = proxy.url();
        async move {
            let store = RedisStore::connect_with(
                &url,
                RedisOptions {
                    prefix: "slow".into(),
                    ..RedisOptions::default()
                },
            )
            .await
            .unwrap();
            // The default lease TTL (15 s): what `tasktrack worker` uses.
            Tracker::builder()
                .with_provider("memory", Arc::new(MemoryProvider::new("memory")))
                .with_store(Arc::new(store))
                .with_owner(owner)
                .build()
        }
    };
    let (a, _ea) = replica("a").await;
    let (b, _eb) = replica("b").await;
    // Lease holders read straight from Redis, not through the slow link.
    let direct = RedisStore::connect_with(
        &redis.url(),
        RedisOptions {
            prefix: "slow".into(),
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();

    // Settle: both hold 32 shards (the start-up split moves shards once).
    // A split that never settles is the failure this test is about, so the
    // wait is bounded by samples and reports what it saw.
    let mut settled = false;
    let mut seen = (0, 0);
    for _ in 0..480 {
        let h = direct.lease_holders().await.unwrap();
        let of = |o: &str| h.values().filter(|v| *v == o).count();
        seen = (of("a"), of("b"));
        if seen == (32, 32) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        settled,
        "the split never settled: a holds {}, b holds {}",
        seen.0, seen.1
    );
    let mut last = direct.lease_holders().await.unwrap();
    let (mut changes, mut unheld_samples, mut samples) = (0, 0, 0);
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = direct.lease_holders().await.unwrap();
        samples += 1;
        if now.len() < 64 {
            unheld_samples += 1;
        }
        for shard in 0..64 {
            if let (Some(before), Some(after)) = (last.get(&shard), now.get(&shard)) {
                if before != after {
                    changes += 1;
                }
            }
        }
        for (shard, h) in now {
            last.insert(shard, h);
        }
    }
    println!("{changes} owner changes, {unheld_samples}/{samples} samples with a shard unheld");
    assert!(changes <= 2, "{changes} owner changes in 60 s");
    assert_eq!(unheld_samples, 0, "a lease lapsed");
    // A clean stop gives every lease up, in one round trip per replica.
    a.stop().await;
    b.stop().await;
    let after = direct.lease_holders().await.unwrap();
    assert!(
        after.is_empty(),
        "leases left after a stop: {}",
        after.len()
    );
}
