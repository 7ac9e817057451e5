//! Trackers sharing a store: work split by leases, takeover after a crash,
//! resume after a restart, terminal events exactly once. Paused tokio time:
//! deterministic, no real waiting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tasktrack_core::{
    MemoryProvider, MemoryStore, PollPolicy, ScriptOutcome, TaskEvents, TaskScript, TrackStore,
    Tracker,
};

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn replica(
    owner: &str,
    provider: &Arc<MemoryProvider>,
    store: &Arc<MemoryStore>,
) -> (Tracker, TaskEvents) {
    Tracker::builder()
        .with_provider("memory", provider.clone())
        .with_policy(PollPolicy::fixed(Duration::from_millis(500)).with_deadline(None))
        .with_store(store.clone())
        .with_owner(owner)
        .with_lease_ttl(s(3))
        .build()
}

async fn finals_in_log(store: &MemoryStore) -> HashMap<String, usize> {
    let mut finals = HashMap::new();
    for (_, e) in store.read("0", usize::MAX).await.unwrap() {
        if e.is_final() {
            *finals.entry(e.id).or_default() += 1;
        }
    }
    finals
}

#[tokio::test(start_paused = true)]
async fn three_replicas_share_the_set_and_take_over_a_crashed_one() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let store = Arc::new(MemoryStore::new());
    let ids: Vec<u64> = (0..300)
        .map(|i| {
            let outcome = if i % 5 == 0 {
                ScriptOutcome::failed("E", "boom")
            } else {
                ScriptOutcome::Succeeded
            };
            provider.start(TaskScript::new("job", s(1 + i % 40)).with_outcome(outcome))
        })
        .collect();
    let (a, ea) = replica("a", &provider, &store);
    let (b, eb) = replica("b", &provider, &store);
    let (c, ec) = replica("c", &provider, &store);
    for id in &ids {
        a.track("memory", &id.to_string()).unwrap();
    }
    let mut merged = futures::stream::select_all([
        ea.map(|e| ("a", e)).boxed(),
        eb.map(|e| ("b", e)).boxed(),
        ec.map(|e| ("c", e)).boxed(),
    ]);
    let mut emitted: HashMap<String, usize> = HashMap::new();
    let mut by_replica: HashMap<&str, usize> = HashMap::new();
    let mut killed = false;
    while emitted.len() < ids.len() {
        let (who, event) = merged.next().await.expect("replicas alive");
        *by_replica.entry(who).or_default() += 1;
        if event.is_final() {
            *emitted.entry(event.id.clone()).or_default() += 1;
        }
        if !killed && emitted.len() >= 60 {
            b.kill(); // crashes: its leases are not released
            killed = true;
        }
    }
    assert!(
        emitted.values().all(|n| *n == 1),
        "a terminal event emitted twice"
    );
    let logged = finals_in_log(&store).await;
    assert_eq!(
        logged.len(),
        ids.len(),
        "every task's terminal event is logged"
    );
    assert!(logged.values().all(|n| *n == 1), "exactly once in the log");
    assert!(by_replica.len() == 3, "all three worked: {by_replica:?}");
    for t in [&a, &c] {
        t.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_fleet_resumes_from_the_store() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let store = Arc::new(MemoryStore::new());
    let ids: Vec<u64> = (0..100)
        .map(|i| provider.start(TaskScript::new("job", s(5 + i % 30))))
        .collect();
    let (first, mut events) = replica("a", &provider, &store);
    for id in &ids {
        first.track("memory", &id.to_string()).unwrap();
    }
    let mut done = 0;
    while done < 20 {
        if events.next().await.unwrap().is_final() {
            done += 1;
        }
    }
    first.stop().await;
    drop(events);
    let before = finals_in_log(&store).await.len();
    assert!(before >= 20);
    // A new process: nothing is tracked again by the caller.
    let (second, mut events) = replica("a2", &provider, &store);
    let mut rest = 0;
    while rest < ids.len() - before {
        if events.next().await.unwrap().is_final() {
            rest += 1;
        }
    }
    tokio::time::sleep(s(60)).await;
    assert!(
        futures::FutureExt::now_or_never(events.next()).is_none(),
        "the second life finished exactly the remaining tasks"
    );
    let logged = finals_in_log(&store).await;
    assert_eq!(logged.len(), ids.len());
    assert!(logged.values().all(|n| *n == 1));
    second.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_terminal_event_already_logged_is_not_emitted_again() {
    let provider = Arc::new(MemoryProvider::new("memory"));
    let store = Arc::new(MemoryStore::new());
    let id = provider.start(TaskScript::new("job", s(1)));
    let (t, mut events) = replica("a", &provider, &store);
    t.track("memory", &id.to_string()).unwrap();
    while !events.next().await.unwrap().is_final() {}
    // Tracked again (say, by an operator who did not know it ended).
    t.track("memory", &id.to_string()).unwrap();
    tokio::time::sleep(s(10)).await;
    assert!(
        futures::FutureExt::now_or_never(events.next()).is_none(),
        "no second terminal event"
    );
    assert_eq!(finals_in_log(&store).await[&id.to_string()], 1);
    t.stop().await;
}

#[cfg(feature = "file-store")]
#[tokio::test]
async fn the_file_store_keeps_entries_events_and_exactly_once_finals() {
    use tasktrack_core::{
        FileStore, TaskEvent, TaskEventKind, TaskSnapshot, TaskState, TrackedEntry,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let event = |id: &str, state: TaskState| {
        TaskEvent::new(
            "memory",
            id,
            None,
            TaskEventKind::Changed {
                snapshot: Box::new(TaskSnapshot::new("memory", id, state)),
            },
        )
    };
    {
        let store = FileStore::open(&path).unwrap();
        let entry = TrackedEntry::new("memory", "7");
        store.put(&entry).await.unwrap();
        let shard = tasktrack_core::shard_of("memory", "7", store.shards());
        assert_eq!(store.entries(shard).await.unwrap(), vec![entry]);
        assert_eq!(store.versions(&[shard]).await.unwrap(), vec![1]);
        assert_eq!(
            store
                .append(&event("7", TaskState::Running))
                .await
                .unwrap()
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            store
                .append(&event("7", TaskState::Succeeded))
                .await
                .unwrap()
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            store
                .append(&event("7", TaskState::Succeeded))
                .await
                .unwrap(),
            None,
            "final once"
        );
    }
    // Reopened (as after a crash): everything is there.
    let store = FileStore::open(&path).unwrap();
    let log = store.read("0", 10).await.unwrap();
    assert_eq!(
        log.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(store.read("1", 10).await.unwrap().len(), 1);
    assert_eq!(
        store.append(&event("7", TaskState::Failed)).await.unwrap(),
        None
    );
    assert!(FileStore::open(&path).is_err(), "one process at a time");
}

#[cfg(feature = "file-store")]
fn sample_event(id: &str, state: tasktrack_core::TaskState) -> tasktrack_core::TaskEvent {
    use tasktrack_core::{TaskEvent, TaskEventKind, TaskSnapshot};
    let mut snapshot: TaskSnapshot = serde_json::from_value(serde_json::json!({
        "provider": "memory", "id": id, "state": state, "vendor_state": state.to_string(),
    }))
    .unwrap();
    snapshot.title = Some("x".repeat(200));
    TaskEvent::new(
        "memory",
        id,
        None,
        TaskEventKind::Changed {
            snapshot: Box::new(snapshot),
        },
    )
}

#[cfg(feature = "file-store")]
#[tokio::test]
async fn an_empty_or_corrupted_store_file_is_a_clear_error_never_a_panic() {
    use tasktrack_core::{FileStore, TaskState, TrackedEntry};
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = FileStore::open(&empty).unwrap_err().to_string();
    assert!(
        err.contains("empty.db") && err.contains("empty"),
        "a 0-byte file is not silently a new store: {err}"
    );
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "left as it was"
    );

    let good = dir.path().join("good.db");
    {
        let store = FileStore::open(&good).unwrap();
        for n in 0..60 {
            let id = n.to_string();
            store.put(&TrackedEntry::new("memory", &id)).await.unwrap();
            store
                .append(&sample_event(&id, TaskState::Running))
                .await
                .unwrap();
            store
                .append(&sample_event(&id, TaskState::Succeeded))
                .await
                .unwrap();
        }
    }
    let bytes = std::fs::read(&good).unwrap();
    let (mut refused, mut opened) = (0, 0);
    // Flip a run of bytes at offsets spread over the whole file: headers,
    // b-tree pages and values.
    for k in 0..48 {
        let at = (bytes.len() / 48) * k + k % 7;
        let mut broken = bytes.clone();
        for b in broken.iter_mut().skip(at).take(16) {
            *b ^= 0x5a;
        }
        let path = dir.path().join(format!("broken-{k}.db"));
        std::fs::write(&path, &broken).unwrap();
        match FileStore::open(&path) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("broken-{k}.db")), "{msg}");
                assert!(!msg.contains('\n'), "one line: {msg}");
                refused += 1;
            }
            Ok(store) => {
                opened += 1;
                // Whatever survived the check is read without a panic.
                let _ = store.read("0", 1000).await;
                for shard in 0..store.shards() {
                    let _ = store.entries(shard).await;
                }
                let _ = store.append(&sample_event("new", TaskState::Failed)).await;
            }
        }
    }
    assert!(
        refused > 0,
        "some corruption is detected at open ({opened} opened)"
    );
}
