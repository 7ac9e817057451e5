//! Golden answers in the shapes Huawei's own SDK models declare (each
//! fixture cites its source), replayed byte for byte through the adapter.

use futures::TryStreamExt;
use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{Error, TaskAction, TaskFilter, TaskProvider, TaskState, TaskStatus};
use tasktrack_huaweicloud::{Credentials, ServiceConfig};
use tasktrack_kps::{KpsClient, KpsOperation, KpsPhase, KpsProvider};
use tasktrack_sim::replay::ReplayServer;

async fn serve(names: &[&str]) -> (ReplayServer, KpsProvider) {
    let server = ReplayServer::start_cited(env!("CARGO_MANIFEST_DIR"), names)
        .await
        .unwrap();
    let mut config = ServiceConfig::new(
        "kps",
        server.base_url(),
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        Credentials::aksk("FIXTUREAK", "fixture-sk"),
    );
    config.options.retry = RetryPolicy::none();
    (server, KpsProvider::new(KpsClient::new(&config).unwrap()))
}

#[tokio::test]
async fn task_lists_decode_with_integer_totals_and_text_times() {
    let (server, p) = serve(&["failed_tasks.http"]).await;
    let failed: Vec<_> = p.client().failed_tasks(1000).try_collect().await.unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0].task_time.map(|t| t.timestamp()),
        Some(1_733_138_728)
    );
    assert_eq!(failed[1].task_error_code, None);
    assert_eq!(
        failed[1].operate_type.as_ref().and_then(|o| o.operation()),
        Some(KpsOperation::Bind)
    );
    let asked = &server.requests()[0];
    assert!(
        asked
            .target
            .starts_with("/v3/0f1e2d3c4b5a69788796a5b4c3d2e1f0/failed-tasks?limit=1000&offset=0"),
        "{}",
        asked.target
    );
    assert!(asked
        .header("authorization")
        .unwrap()
        .starts_with("SDK-HMAC-SHA256 Access=FIXTUREAK"));

    let (_s, p) = serve(&["running_tasks.http"]).await;
    let page = p
        .list(&TaskFilter::new().with_states([TaskState::Running]))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].1.state(), TaskState::Running);
}

#[tokio::test]
async fn the_single_task_query_knows_bind() {
    let (_s, p) = serve(&["keypair_task_bind.http"]).await;
    let s = p
        .status(&"aee8d2fe-5484-4753-0000-000000000004".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(s.state.phase(), Some(KpsPhase::Success));
    assert_eq!(s.state(), TaskState::Succeeded);
    assert_eq!(s.kind().as_deref(), Some("BIND"));
}

#[tokio::test]
async fn errors_in_every_sdk_shape_keep_code_and_request_id() {
    let (_s, p) = serve(&["unauthorized_apigw.http"]).await;
    let err = p.status(&"x".parse().unwrap()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    assert!(
        text.contains("verify aksk signature fail")
            && text.contains("5eed0000000000000000000000000002"),
        "{text}"
    );
    let (_s, p) = serve(&["error_camel_case.http"]).await;
    match p.status(&"x".parse().unwrap()).await.unwrap_err() {
        Error::Http(h) => {
            assert_eq!(h.vendor_code.as_deref(), Some("KPS.0500"));
            assert_eq!(
                h.vendor_message.as_deref(),
                Some("Internal error, retry later")
            );
            assert_eq!(
                h.request_id.as_deref(),
                Some("5eed0000000000000000000000000003")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_delete_answered_204_is_accepted_once() {
    let (server, p) = serve(&["deleted.http"]).await;
    p.act(
        &"aee8d2fe-5484-4753-0000-000000000001".parse().unwrap(),
        TaskAction::Delete,
    )
    .await
    .unwrap();
    let asked = server.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].method, "DELETE");
}
