//! The store benchmark: the file store and Redis under the tracker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::throughput::{providers, spec, start_sim_process, SimProcess};
use futures::StreamExt;
use tasktrack_core::{PollPolicy, Tracker};

pub(crate) async fn redis_commands(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) async fn create_mix(
    sims: &SimProcess,
    n: usize,
    scale: f64,
) -> Result<Vec<(String, String)>, String> {
    let backends = ["proxmox", "kps", "dcs", "ocp"];
    let created = futures::stream::iter((0..n).map(|i| (backends[i % 4], i)))
        .map(|(b, i)| async move {
            let (spec, _) = spec(b, i, scale);
            sims.create(b, spec).await.map(|id| (b.to_owned(), id))
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    created.into_iter().collect()
}

/// One in-memory tracker, then three replicas on Redis (one killed midway),
/// over the same kind of workload.
pub(crate) async fn store_bench(n: usize, scale: f64) -> Result<(), String> {
    use tasktrack_core::TrackStore;
    let sims = start_sim_process()?;
    let redis = tasktrack_redis::testing::RedisServer::start(
        tasktrack_redis::testing::free_port().map_err(|e| e.to_string())?,
        None,
    )
    .map_err(|e| e.to_string())?;
    let providers = providers(&sims.urls);
    let interval = Duration::from_millis((2000.0 * scale) as u64);
    let policy = PollPolicy::fixed(interval)
        .with_deadline(None)
        .with_error_budget(50);

    // Memory: one tracker, no store.
    let work = create_mix(&sims, n, scale).await?;
    let mut builder = Tracker::builder()
        .with_policy(policy.clone())
        .with_batch_size(5000);
    for (name, p) in &providers {
        builder = builder.with_provider(*name, p.clone());
    }
    let (tracker, mut events) = builder.build();
    let cpu = cpu_time::ProcessTime::now();
    for (b, id) in &work {
        tracker.track(b, id).map_err(|e| e.to_string())?;
    }
    let mut done = 0;
    while done < n {
        match events.next().await {
            Some(e) if e.is_final() => done += 1,
            Some(_) => {}
            None => break,
        }
    }
    let memory_cpu = cpu.elapsed().as_secs_f64();
    let memory_updates = tracker.stats().status_updates;
    tracker.stop().await;

    // Redis: three replicas share the set; one dies a third of the way in.
    let work = create_mix(&sims, n, scale).await?;
    let client = redis::Client::open(redis.url()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let ttl = Duration::from_secs(2);
    let mut replicas = Vec::new();
    let mut streams = Vec::new();
    for owner in ["r1", "r2", "r3"] {
        let store = tasktrack_redis::RedisStore::connect(&redis.url())
            .await
            .map_err(|e| e.to_string())?;
        let mut builder = Tracker::builder()
            .with_policy(policy.clone())
            .with_batch_size(5000)
            .with_store(Arc::new(store))
            .with_owner(owner)
            .with_lease_ttl(ttl);
        for (name, p) in &providers {
            builder = builder.with_provider(*name, p.clone());
        }
        let (t, e) = builder.build();
        replicas.push(t);
        streams.push(e.boxed());
    }
    let writer = tasktrack_redis::RedisStore::connect(&redis.url())
        .await
        .map_err(|e| e.to_string())?;
    for (b, id) in &work {
        writer
            .put(&tasktrack_core::TrackedEntry::new(b.clone(), id.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
    let commands_before = redis_commands(&mut conn).await;
    let cpu = cpu_time::ProcessTime::now();
    let mut merged = futures::stream::select_all(streams);
    let mut finals = 0usize;
    let mut killed: Option<(Instant, Vec<u32>)> = None;
    let mut takeover: Option<Duration> = None;
    let mut last_check = Instant::now();
    loop {
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), merged.next()).await {
            finals += usize::from(e.is_final());
        }
        if killed.is_none() && finals >= n / 3 {
            let mut held = Vec::new();
            for shard in 0..64u32 {
                let h: Option<String> = redis::cmd("GET")
                    .arg(format!("tasktrack:lease:{shard}"))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(None);
                if h.as_deref() == Some("r2") {
                    held.push(shard);
                }
            }
            replicas[1].kill();
            killed = Some((Instant::now(), held));
        }
        if let (Some((at, held)), None) = (&killed, takeover) {
            if last_check.elapsed() > Duration::from_millis(50) {
                last_check = Instant::now();
                let mut all_moved = true;
                for shard in held {
                    let h: Option<String> = redis::cmd("GET")
                        .arg(format!("tasktrack:lease:{shard}"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or(None);
                    all_moved &= h.is_some_and(|h| h != "r2");
                }
                if all_moved {
                    takeover = Some(at.elapsed());
                }
            }
        }
        let logged = redis::cmd("XLEN")
            .arg("tasktrack:events")
            .query_async::<u64>(&mut conn)
            .await
            .unwrap_or(0);
        if killed.is_some() && takeover.is_some() && finals + 5 >= n && logged > 0 {
            // The log is the record: count its finals once the fleet is quiet.
            let store = tasktrack_redis::RedisStore::connect(&redis.url())
                .await
                .map_err(|e| e.to_string())?;
            let mut cursor = "0".to_owned();
            let mut logged_finals = 0;
            loop {
                let page = store.read(&cursor, 5000).await.map_err(|e| e.to_string())?;
                let Some((last, _)) = page.last() else { break };
                cursor = last.clone();
                logged_finals += page.iter().filter(|(_, e)| e.is_final()).count();
            }
            if logged_finals >= n {
                break;
            }
        }
    }
    let redis_cpu = cpu.elapsed().as_secs_f64();
    let commands = redis_commands(&mut conn).await - commands_before;
    let redis_updates: u64 = replicas.iter().map(|t| t.stats().status_updates).sum();
    for (i, t) in replicas.iter().enumerate() {
        if i != 1 {
            t.stop().await;
        }
    }
    println!("\ntasktrack-bench store ({n} mixed tasks, durations {:.2}-{:.1} s, poll every {:.2} s, lease TTL {} s)\n", scale, 60.0 * scale, 2.0 * scale, ttl.as_secs());
    println!("| tracker | status updates | tracker CPU | CPU / update | Redis commands | commands / update | takeover after a replica dies |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| 1 replica, memory | {memory_updates} | {memory_cpu:.2} s | {:.1} µs | - | - | - |",
        memory_cpu * 1e6 / memory_updates.max(1) as f64
    );
    println!(
        "| 3 replicas, Redis | {redis_updates} | {redis_cpu:.2} s | {:.1} µs | {commands} | {:.2} | {:.2} s |",
        redis_cpu * 1e6 / redis_updates.max(1) as f64,
        commands as f64 / redis_updates.max(1) as f64,
        takeover.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    println!("(CPU is this process: the trackers and their HTTP clients; the simulators run in another process.)");
    Ok(())
}
