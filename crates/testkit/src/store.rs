//! What every [`TrackStore`] that shares work between replicas must do with
//! roles and checkpoints (a notification sink's single deliverer and its
//! cursor), checked the same way for each bundled store.

use std::time::Duration;

use tasktrack_core::TrackStore;

/// Panics, naming the broken rule, unless `store` keeps a role to one
/// holder, renews it for that holder, hands it over once released or
/// expired, and saves a checkpoint only for the role's current holder.
/// `role` must be unused in `store`.
pub async fn check_roles_and_checkpoints(store: &dyn TrackStore, role: &str) {
    let long = Duration::from_secs(60);
    assert_eq!(
        store.checkpoint(role).await.unwrap(),
        None,
        "no checkpoint yet"
    );
    assert!(
        store.acquire_role("a", role, long).await.unwrap(),
        "a takes the free role"
    );
    assert!(
        store.acquire_role("a", role, long).await.unwrap(),
        "a renews its own role"
    );
    assert!(
        !store.acquire_role("b", role, long).await.unwrap(),
        "b cannot take a's role"
    );
    assert!(
        store.save_checkpoint("a", role, "7").await.unwrap(),
        "the holder saves"
    );
    assert!(
        !store.save_checkpoint("b", role, "9").await.unwrap(),
        "a non-holder's save is refused"
    );
    assert_eq!(store.checkpoint(role).await.unwrap().as_deref(), Some("7"));
    store.release_role("b", role).await.unwrap();
    assert!(
        !store.acquire_role("b", role, long).await.unwrap(),
        "b's release of a's role does nothing"
    );
    store.release_role("a", role).await.unwrap();
    assert!(
        store
            .acquire_role("b", role, Duration::from_millis(50))
            .await
            .unwrap(),
        "released, b takes it"
    );
    assert!(
        !store.save_checkpoint("a", role, "8").await.unwrap(),
        "a lost the role: its save is refused"
    );
    // An expired role is free again (real time: the bundled stores expire
    // leases on their own clocks).
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !store.acquire_role("c", role, long).await.unwrap() {
        assert!(
            std::time::Instant::now() < until,
            "b's expired role was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !store.save_checkpoint("b", role, "8").await.unwrap(),
        "b's role expired"
    );
    assert!(store.save_checkpoint("c", role, "8").await.unwrap());
    assert_eq!(store.checkpoint(role).await.unwrap().as_deref(), Some("8"));
}

/// Panics unless `store`'s request bucket `bucket` (unused before) lets a
/// burst through, then spaces requests at its rate, and holds them back
/// when told a server throttles.
pub async fn check_shared_budget(store: &dyn TrackStore, bucket: &str) {
    use tasktrack_core::rate::RateLimit;
    let limit = RateLimit {
        per_second: 10.0,
        burst: 2,
    };
    assert!(
        store.take_request(bucket, limit).await.unwrap().is_zero(),
        "the first goes"
    );
    assert!(
        store.take_request(bucket, limit).await.unwrap().is_zero(),
        "the burst goes"
    );
    let wait = store.take_request(bucket, limit).await.unwrap();
    assert!(
        wait > Duration::from_millis(50) && wait <= Duration::from_millis(100),
        "the third waits one interval: {wait:?}"
    );
    store
        .hold_requests(bucket, Duration::from_secs(30))
        .await
        .unwrap();
    let held = store.take_request(bucket, limit).await.unwrap();
    assert!(
        held > Duration::from_secs(29),
        "a throttled bucket waits: {held:?}"
    );
}

/// Panics unless `store`'s concurrency bucket `bucket` (unused before)
/// gives at most `limit` slots at once, renews a held slot, gives a slot
/// back on release, and lets a dead holder's slot lapse by its TTL.
pub async fn check_shared_slots(store: &dyn TrackStore, bucket: &str) {
    let long = Duration::from_secs(60);
    assert!(store.take_slot(bucket, "a", 2, long).await.unwrap());
    assert!(store.take_slot(bucket, "b", 2, long).await.unwrap());
    assert!(
        !store.take_slot(bucket, "c", 2, long).await.unwrap(),
        "a full bucket refuses a third holder"
    );
    assert!(
        store.take_slot(bucket, "a", 2, long).await.unwrap(),
        "a holder renews its own slot"
    );
    store.release_slot(bucket, "a").await.unwrap();
    assert!(
        store.take_slot(bucket, "c", 2, long).await.unwrap(),
        "a released slot is free"
    );
    store.release_slot(bucket, "never-held").await.unwrap();
    assert!(!store.take_slot(bucket, "d", 2, long).await.unwrap());

    let lapsing = format!("{bucket}-lapse");
    assert!(store
        .take_slot(&lapsing, "dead", 1, Duration::from_millis(1))
        .await
        .unwrap());
    // The holder never releases: the slot comes back once its TTL passes.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !store.take_slot(&lapsing, "next", 1, long).await.unwrap() {
        assert!(
            std::time::Instant::now() < until,
            "a dead holder's slot never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
