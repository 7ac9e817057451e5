//! The soak: 10,000 tasks with faults sprinkled in, RSS at start and end.

use std::time::{Duration, Instant};

use crate::throughput::{providers, rss, spec, start_sim_process};
use futures::StreamExt;
use tasktrack_core::{PollPolicy, Tracker};
use tasktrack_sim::{Fault, FaultRule};

pub(crate) async fn soak(minutes: u64) -> Result<(), String> {
    let sims = start_sim_process()?;
    let tasks_n = 10_000usize;
    let backends = ["proxmox", "kps", "dcs", "ocp"];
    let span = minutes as f64 * 60.0;
    let mut tasks = Vec::new();
    for i in 0..tasks_n {
        let backend = backends[i % 4];
        let scale = span / 61.0; // spreads 1-60 (x scale) over the soak
        let (spec, _) = spec(backend, i, scale);
        tasks.push((backend, sims.create(backend, spec).await?));
    }
    let providers = providers(&sims.urls);
    let mut builder = Tracker::builder()
        .with_policy(
            PollPolicy::default()
                .with_deadline(None)
                .with_error_budget(50),
        )
        .with_batch_size(5000);
    for (name, p) in &providers {
        builder = builder.with_provider(*name, p.clone());
    }
    let (tracker, mut events) = builder.build();
    for (b, id) in &tasks {
        tracker.track(b, id).map_err(|e| e.to_string())?;
    }
    let start_rss = rss();
    println!(
        "soak: {tasks_n} tasks over {minutes} min; start RSS {:.1} MiB",
        start_rss as f64 / 1048576.0
    );
    let started = Instant::now();
    let mut finals = 0usize;
    let mut ended: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let mut next_fault = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(60);
    let faults = [
        Fault::status(503),
        Fault::DropConnection,
        Fault::Truncated,
        Fault::too_many_requests(1),
        Fault::Html { status: 502 },
    ];
    let mut k = 0;
    while finals < tasks_n && started.elapsed() < Duration::from_secs(minutes * 60 + 120) {
        // Faults come at a fixed rate, so near the end the few tasks left
        // would take every one of them; the grace period after the window
        // is fault-free so the survivors can drain.
        let in_window = started.elapsed() < Duration::from_secs(minutes * 60);
        if in_window && Instant::now() >= next_fault {
            let rule = FaultRule {
                route: "*".into(),
                fault: faults[k % faults.len()].clone(),
                times: Some(5),
            };
            sims.fault(backends[k % 4], &rule).await;
            k += 1;
            next_fault = Instant::now() + Duration::from_secs(3);
        }
        if Instant::now() >= next_report {
            println!(
                "  {:>4.0} min: {finals} ended, RSS {:.1} MiB",
                started.elapsed().as_secs_f64() / 60.0,
                rss() as f64 / 1048576.0
            );
            next_report += Duration::from_secs(60);
        }
        match tokio::time::timeout(Duration::from_secs(1), events.next()).await {
            Ok(Some(ev)) if ev.is_final() => {
                finals += 1;
                ended.insert((ev.provider.clone(), ev.id.clone()));
            }
            Ok(None) => break,
            _ => {}
        }
    }
    let stats = tracker.stats();
    let still = usize::try_from(stats.tracked).unwrap_or(usize::MAX);
    for (b, id) in tasks
        .iter()
        .filter(|(b, id)| !ended.contains(&((*b).to_owned(), id.clone())))
    {
        let now = match providers.iter().find(|(n, _)| n == b) {
            Some((_, p)) => match p.snapshot(id).await {
                Ok(s) => format!("{:?} (vendor state {})", s.state, s.vendor_state),
                Err(e) => format!("error: {e}"),
            },
            None => "no provider".into(),
        };
        println!("  not ended: {b} {id}; backend now says {now}");
    }
    println!(
        "  tracker still tracks {} task(s); {} status updates",
        stats.tracked, stats.status_updates
    );
    println!(
        "soak: {finals} of {tasks_n} tasks ended ({} lost); RSS start {:.1} MiB, end {:.1} MiB",
        tasks_n - finals - still.min(tasks_n - finals),
        start_rss as f64 / 1048576.0,
        rss() as f64 / 1048576.0
    );
    if finals == tasks_n {
        Ok(())
    } else if finals + still == tasks_n {
        Err(format!(
            "{still} task(s) still tracked after the drain period"
        ))
    } else {
        Err("tasks were lost".into())
    }
}
