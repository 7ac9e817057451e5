//! Golden answers in the shapes ocp-express's code writes, and the seed
//! document's (each fixture cites its source), replayed byte for byte
//! through the adapter.

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{Error, Secret, TaskAction, TaskFilter, TaskProvider, TaskState, TaskStatus};
use tasktrack_ocp::ConfigureHttp;
use tasktrack_ocp::{OcpClient, OcpProvider, Operation, SubtaskStatus};
use tasktrack_sim::replay::ReplayServer;

async fn serve(names: &[&str]) -> (ReplayServer, OcpProvider) {
    let server = ReplayServer::start_cited(env!("CARGO_MANIFEST_DIR"), names)
        .await
        .unwrap();
    let client = OcpClient::builder(server.base_url(), "admin", &Secret::new("fixture-password"))
        .with_retry(RetryPolicy::none())
        .build()
        .unwrap();
    (server, OcpProvider::new(client))
}

#[tokio::test]
async fn the_code_shape_decodes_dag_tenant_and_trimmed_times() {
    let (server, p) = serve(&["detail_running.http"]).await;
    let t = p.status(&1001).await.unwrap();
    assert_eq!(t.state(), TaskState::Running);
    let ordered: Vec<u64> = t.ordered_subtasks().iter().map(|s| s.id).collect();
    assert_eq!(
        ordered,
        [10001, 10002, 10003, 10004],
        "by seriesId, not response order"
    );
    let steps = t.steps();
    assert_eq!(
        steps[0].downstream,
        ["10002", "10003"],
        "downstreams decode"
    );
    assert_eq!(
        t.subtask(10003).unwrap().parallel_idx,
        Some(1),
        "parallelIdx decodes"
    );
    assert!(
        t.subtask(10004).unwrap().finish_time.is_none(),
        "omitted nulls are None"
    );
    assert_eq!(
        t.subtask(10002)
            .unwrap()
            .finish_time
            .map(|f| f.timestamp_micros() % 1_000_000),
        Some(120_001),
        "a six-digit fraction"
    );
    assert_eq!(t.tenant_name(), Some("sys"));
    assert_eq!(t.title().as_deref(), Some("Upgrade cluster (sys)"));
    assert!(server.requests()[0]
        .target
        .ends_with("/api/v2/tasks/instances/1001"));
}

#[tokio::test]
async fn the_seed_shape_still_decodes() {
    let (_s, p) = serve(&["detail_seed_shape.http"]).await;
    let t = p.status(&1000).await.unwrap();
    assert_eq!(t.state(), TaskState::Failed);
    assert_eq!(
        t.subtask(10001).unwrap().downstream,
        [10002],
        "downstream decodes"
    );
    assert_eq!(
        t.subtask(10001).unwrap().parallel_idx,
        Some(-1),
        "paralleIdx decodes"
    );
    assert_eq!(t.title().as_deref(), Some("Prepare host (meta)"));
    assert_eq!(
        t.failure().unwrap().message,
        "failed subtask(s): #10002 Install"
    );
}

#[tokio::test]
async fn a_list_page_decodes() {
    let (server, p) = serve(&["list_page.http"]).await;
    let page = p.list(&TaskFilter::new().with_limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.total, Some(3));
    assert_eq!(page.next_cursor.as_deref(), Some("2"));
    assert_eq!(page.items[0].1.state(), TaskState::Failed);
    assert!(
        server.requests()[0].target.contains("page=1&size=2"),
        "{}",
        server.requests()[0].target
    );
}

#[tokio::test]
async fn a_rollback_answered_without_data_is_accepted() {
    // The action first reads the task (a failed one), then sends the rollback.
    let (server, p) = serve(&["detail_seed_shape.http", "rollback_no_data.http"]).await;
    let receipt = p.act(&1000, TaskAction::Rollback).await.unwrap();
    assert_eq!(receipt.message.as_deref(), Some("rollback accepted"));
    let asked = server.requests();
    assert_eq!(asked.len(), 2, "the rollback was sent once");
    assert_eq!(asked[1].method, "POST");
    assert!(asked[1].target.ends_with("/1000/rollback"));
    let (_s, p) = serve(&["rollback_no_data.http"]).await;
    assert!(p.client().rollback(1000).await.unwrap().is_none());
}

#[tokio::test]
async fn integer_error_codes_and_placeholders_are_kept() {
    let (_s, p) = serve(&["state_invalid.http"]).await;
    match p.client().retry(1001).await.unwrap_err() {
        Error::Http(h) => {
            assert_eq!((h.status, h.vendor_code.as_deref()), (400, Some("20003")));
            assert_eq!(h.request_id.as_deref(), Some("a1b2c3d4e5f6071b"));
        }
        other => panic!("{other:?}"),
    }
    let (_s, p) = serve(&["not_found.http"]).await;
    assert!(matches!(p.status(&4242).await, Err(Error::NotFound { .. })));
    let (_s, p) = serve(&["prohibit_rollback.http"]).await;
    match p.client().rollback(1001).await.unwrap_err() {
        Error::Http(h) => assert_eq!(h.vendor_code.as_deref(), Some("20004")),
        other => panic!("{other:?}"),
    }
    let (_s, p) = serve(&["bad_credentials.http"]).await;
    let err = p.status(&1001).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    let text = err.to_string();
    assert_eq!(
        text.matches("Bad credentials").count(),
        1,
        "said once: {text}"
    );
}

#[tokio::test]
async fn logs_and_large_ids() {
    let (_s, p) = serve(&["subtask_log.http"]).await;
    let log = p.client().subtask_log(1001, 10004).await.unwrap();
    assert!(log.ends_with("operation:EXECUTE, state: FAILED"), "{log}");
    let (_s, p) = serve(&["large_ids.http"]).await;
    let t = p.status(&9_007_199_254_740_993).await.unwrap();
    assert_eq!(t.id, 9_007_199_254_740_993);
    assert_eq!(t.subtasks[0].id, 9_007_199_254_740_995);
    assert_eq!(t.subtasks[0].status, SubtaskStatus::Successful);
    assert_eq!(t.operation, Some(Operation::Execute));
}
