//! The Redis store's own guarantees, deterministically, on a real
//! `redis-server`: a terminal event logged once however many replicas
//! append it, leases taken and renewed in one round trip, cursors checked.

use std::time::Duration;

use tasktrack_core::{
    Error, TaskEvent, TaskEventKind, TaskSnapshot, TaskState, TrackStore, TrackedEntry,
};
use tasktrack_redis::testing::{free_port, RedisServer};
use tasktrack_redis::RedisStore;

fn event(id: &str, state: TaskState) -> TaskEvent {
    let snapshot: TaskSnapshot = serde_json::from_value(serde_json::json!({
        "provider": "pve", "id": id, "state": state, "vendor_state": state.to_string(),
    }))
    .unwrap();
    TaskEvent::new(
        "pve",
        id,
        None,
        TaskEventKind::Changed {
            snapshot: Box::new(snapshot),
        },
    )
}

async fn store(url: &str) -> RedisStore {
    tasktrack_redis::testing::store_with_prefix(url, "s")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_event_is_logged_once_however_many_replicas_append_it() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let (a, b) = (store(&redis.url()).await, store(&redis.url()).await);
    assert!(a
        .append(&event("1", TaskState::Running))
        .await
        .unwrap()
        .is_some());
    assert!(
        a.append(&event("1", TaskState::Running))
            .await
            .unwrap()
            .is_some(),
        "changes are not deduplicated"
    );
    let first = a.append(&event("1", TaskState::Succeeded)).await.unwrap();
    assert!(first.is_some());
    assert_eq!(
        a.append(&event("1", TaskState::Succeeded)).await.unwrap(),
        None,
        "the same store again"
    );
    assert_eq!(
        b.append(&event("1", TaskState::Failed)).await.unwrap(),
        None,
        "another replica, another final"
    );

    // 50 tasks, each final appended by both stores at the same moment.
    for n in 0..50 {
        let id = format!("race-{n}");
        let (ex, ey) = (
            event(&id, TaskState::Succeeded),
            event(&id, TaskState::Succeeded),
        );
        let (x, y) = tokio::join!(a.append(&ex), b.append(&ey));
        let logged = [x.unwrap(), y.unwrap()]
            .iter()
            .filter(|c| c.is_some())
            .count();
        assert_eq!(logged, 1, "{id}: exactly one of the two appends is logged");
    }
    let log = a.read("0", 10_000).await.unwrap();
    let finals = log.iter().filter(|(_, e)| e.is_final()).count();
    assert_eq!(finals, 51);
    assert_eq!(log.len(), 53);
    assert_eq!(a.last_cursor().await.unwrap(), log.last().unwrap().0);
    assert_eq!(first.as_deref(), Some(log[2].0.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_taken_and_renewed_many_at_once() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let s = store(&redis.url()).await;
    let ttl = Duration::from_secs(30);
    let all: Vec<u32> = (0..8).collect();
    assert_eq!(
        s.acquire_many("a", &all, ttl, 3).await.unwrap(),
        [true; 3],
        "stops at the limit"
    );
    assert_eq!(
        s.acquire_many("b", &all, ttl, 2).await.unwrap(),
        [false, false, false, true, true]
    );
    assert_eq!(
        s.acquire_many("a", &[0, 1, 2, 3], ttl, usize::MAX)
            .await
            .unwrap(),
        [true, true, true, false],
        "renews its own, not b's"
    );
    assert!(s.acquire_many("a", &[], ttl, 5).await.unwrap().is_empty());
    s.release("b", 3).await.unwrap();
    assert!(s.acquire("a", 3, ttl).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_are_checked_and_the_tracked_set_counted() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let s = store(&redis.url()).await;
    assert_eq!(s.last_cursor().await.unwrap(), "0");
    for bad in ["abc", "-5", "1-2-3", "5 ", "0x10"] {
        assert!(
            matches!(s.read(bad, 10).await, Err(Error::InvalidInput { .. })),
            "{bad:?}"
        );
    }
    assert!(s.read("5", 10).await.unwrap().is_empty());
    assert_eq!(s.tracked_count().await.unwrap(), 0);
    for n in 0..100 {
        s.put(&TrackedEntry::new("pve", n.to_string()))
            .await
            .unwrap();
    }
    assert_eq!(s.tracked_count().await.unwrap(), 100);
    s.remove("pve", "7").await.unwrap();
    assert_eq!(s.tracked_count().await.unwrap(), 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_checkpoints_are_fenced_by_their_holder() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let s = store(&redis.url()).await;
    tasktrack_testkit::store::check_roles_and_checkpoints(&s, "notify:ops").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budgets_are_shared_through_redis() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let s = store(&redis.url()).await;
    tasktrack_testkit::store::check_shared_budget(&s, "pve").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_slots_are_shared_through_redis() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let s = store(&redis.url()).await;
    tasktrack_testkit::store::check_shared_slots(&s, "pve").await;
}
