//! Tracker cost over 10,000 in-memory tasks: CPU time per status update and
//! resident memory per tracked task.
//!
//! `cargo bench -p tasktrack-core --bench tracker`
//!
//! Runs on tokio's paused clock, so the simulated hour of polling takes
//! seconds and the CPU measured is the tracker's (plus the in-memory
//! provider's), not idle waiting.

use std::sync::Arc;
use std::time::Duration;

use cpu_time::ProcessTime;
use futures::StreamExt;
use tasktrack_core::{MemoryProvider, PollPolicy, ScriptOutcome, TaskScript, Tracker};

const TASKS: u64 = 10_000;

fn rss() -> usize {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let ids: Vec<u64> = (0..TASKS)
        .map(|i| {
            let outcome = if i % 10 == 0 {
                ScriptOutcome::failed("E1", "boom")
            } else {
                ScriptOutcome::Succeeded
            };
            provider.start(
                TaskScript::new("job", Duration::from_secs(1 + i % 60)).with_outcome(outcome),
            )
        })
        .collect();
    let (tracker, mut events) = Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_policy(PollPolicy::default())
        .build();

    let rss_before = rss();
    let cpu_start = ProcessTime::now();
    for id in &ids {
        tracker.track("memory", &id.to_string()).expect("valid id");
    }
    let mut finals = 0;
    let mut rss_peak_tracking = 0;
    while finals < TASKS {
        let event = events.next().await.expect("tracker alive");
        if event.is_final() {
            finals += 1;
        }
        // Sample while every task is tracked and holds its last snapshot.
        if tracker.stats().status_updates >= TASKS && rss_peak_tracking == 0 {
            rss_peak_tracking = rss();
        }
    }
    let cpu = cpu_start.elapsed();
    let stats = tracker.stats();
    let per_update = cpu.as_secs_f64() * 1e6 / stats.status_updates as f64;
    let per_task = rss_peak_tracking.saturating_sub(rss_before) as f64 / TASKS as f64;
    println!("tracker benchmark: {TASKS} in-memory tasks, durations 1-60 s (paused clock), default PollPolicy");
    println!("  status updates:        {}", stats.status_updates);
    println!("  status_many batches:   {}", stats.batches);
    println!("  events:                {}", stats.events);
    println!("  CPU total:             {:.3} s", cpu.as_secs_f64());
    println!("  CPU per status update: {per_update:.2} us   (target < 20 us)");
    println!(
        "  RSS per tracked task:  {:.0} B   (target < 2048 B)",
        per_task
    );
    let ok = per_update < 20.0 && per_task < 2048.0;
    println!(
        "  result:                {}",
        if ok { "targets met" } else { "TARGET MISSED" }
    );
}
