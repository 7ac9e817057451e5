//! Regression: the Tracker's batch path against a simulator that answers as
//! pve-manager does (active tasks listed `RUNNING`, ended ones only once
//! archived) never reports a task finished before it ends. Before the
//! simulator followed pve-manager, every running task came back `Failed`
//! with `stopped: RUNNING` on its first poll.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tasktrack_core::{PollPolicy, TaskEventKind, TaskState, Tracker};
use tasktrack_proxmox::{ProxmoxClient, ProxmoxCredentials, ProxmoxProvider};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimOutcome, TaskSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_long_running_tasks_are_never_reported_finished_early() {
    // Real time: every answer is computed at the moment it is asked for, so
    // a terminal answer before the scripted end is a bug, however loaded
    // the machine is. Tasks leave the active list a second after they end,
    // as when pvestatd (not the worker's parent) archives them.
    let sim = SimBuilder::new(
        Proxmox::new(["pve1", "pve2", "pve3"])
            .with_api_token("root@pam!ci", "batch-secret")
            .with_archive_lag(Duration::from_secs(1)),
    )
    .start()
    .await
    .unwrap();
    let client = ProxmoxClient::builder(
        sim.base_url(),
        ProxmoxCredentials::api_token("root@pam!ci", "batch-secret"),
    )
    .build()
    .unwrap();
    let provider = Arc::new(ProxmoxProvider::new(client));
    // Polls every 100-300 ms with the default ±20 % jitter: each task is
    // seen running for many ticks.
    let policy = PollPolicy::default()
        .with_initial_interval(Duration::from_millis(100))
        .with_max_interval(Duration::from_millis(300));
    let (tracker, mut events) = Tracker::builder()
        .with_provider("pve", provider)
        .with_policy(policy)
        .build();
    let mut expected = HashMap::new();
    for i in 0..300u64 {
        let duration = Duration::from_millis(1500 + (i * 37) % 2500);
        let spec = TaskSpec::new("vzdump", duration).with_attr("id", (100 + i).to_string());
        let (spec, state) = match i % 5 {
            0 => (spec.with_failure("E", "job errors"), TaskState::Failed),
            1 => (
                spec.with_outcome(SimOutcome::Warnings { count: 2 }),
                TaskState::Succeeded,
            ),
            _ => (spec, TaskState::Succeeded),
        };
        let upid = sim.create_task(spec);
        tracker.track("pve", &upid).unwrap();
        expected.insert(upid, state);
    }
    let mut first_seen: HashMap<String, TaskState> = HashMap::new();
    let mut finished = 0;
    while finished < expected.len() {
        let ev = events.next().await.expect("the tracker keeps running");
        let TaskEventKind::Changed { snapshot } = &ev.kind else {
            panic!("gave up on {}: {:?}", ev.id, ev.kind);
        };
        first_seen.entry(ev.id.clone()).or_insert(snapshot.state);
        if !snapshot.state.is_terminal() {
            assert!(
                matches!(snapshot.state, TaskState::Running),
                "{}: {:?}",
                ev.id,
                snapshot
            );
            continue;
        }
        finished += 1;
        let now = sim.clock().now_utc();
        let end = sim.engine().planned_end(&ev.id).unwrap();
        assert!(
            now >= end,
            "{} reported {} at {now}, before its end at {end}",
            ev.id,
            snapshot.vendor_state
        );
        assert_eq!(snapshot.state, expected[&ev.id], "{}", ev.id);
        assert!(
            snapshot.vendor_state.starts_with("stopped: ")
                && !snapshot.vendor_state.contains("RUNNING"),
            "{}: {}",
            ev.id,
            snapshot.vendor_state
        );
        assert_eq!(
            snapshot.finished_at.map(|t| t.timestamp()),
            Some(end.timestamp()),
            "{}: the end time is the task's own",
            ev.id
        );
    }
    assert!(
        first_seen.values().all(|s| *s == TaskState::Running),
        "every task was first seen running"
    );
    let lists = sim.requests().count("GET /api2/json/nodes/{node}/tasks");
    let singles = sim
        .requests()
        .count("GET /api2/json/nodes/{node}/tasks/{upid}/status");
    println!("300 tasks: {lists} list requests, {singles} status requests");
    assert!(
        lists >= 30,
        "tasks were polled over many ticks ({lists} lists)"
    );
    tracker.stop().await;
}
