//! The bundled in-process stores keep roles and checkpoints as a shared
//! store must (Redis runs the same check in its own crate).

use tasktrack_core::{FileStore, MemoryStore, TrackStore};
use tasktrack_testkit::store::{
    check_roles_and_checkpoints, check_shared_budget, check_shared_slots,
};

#[tokio::test]
async fn the_memory_store_keeps_roles_and_checkpoints() {
    check_roles_and_checkpoints(&MemoryStore::new(), "notify:ops").await;
}

#[tokio::test]
async fn the_in_process_stores_keep_request_budgets() {
    check_shared_budget(&MemoryStore::new(), "pve").await;
    let dir = tempfile::tempdir().unwrap();
    check_shared_budget(&FileStore::open(dir.path().join("t.db")).unwrap(), "pve").await;
}

#[tokio::test]
async fn the_in_process_stores_keep_concurrency_slots() {
    check_shared_slots(&MemoryStore::new(), "pve").await;
    let dir = tempfile::tempdir().unwrap();
    check_shared_slots(&FileStore::open(dir.path().join("t.db")).unwrap(), "pve").await;
}

#[tokio::test]
async fn the_file_store_keeps_checkpoints_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let store = FileStore::open(&path).unwrap();
        // One process holds the file: it holds every role.
        assert!(store
            .acquire_role("a", "notify:ops", std::time::Duration::from_secs(1))
            .await
            .unwrap());
        assert!(store
            .save_checkpoint("a", "notify:ops", "41")
            .await
            .unwrap());
    }
    let store = FileStore::open(&path).unwrap();
    assert_eq!(
        store.checkpoint("notify:ops").await.unwrap().as_deref(),
        Some("41")
    );
    assert_eq!(store.checkpoint("notify:other").await.unwrap(), None);
}
