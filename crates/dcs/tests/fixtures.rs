//! Golden answers in the shapes Huawei's own SDK models declare and
//! terraform-provider-huaweicloud relies on (each fixture cites its source),
//! replayed byte for byte through the adapter.

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{Error, TaskAction, TaskProvider, TaskState, TaskStatus};
use tasktrack_dcs::{BackgroundTaskQuery, DcsClient, DcsProvider, DcsTaskId};
use tasktrack_huaweicloud::{Credentials, ServiceConfig};
use tasktrack_sim::replay::ReplayServer;

const INSTANCE: &str = "5560df16-cebf-4473-95c4-d1b573c16e79";

async fn serve(names: &[&str]) -> (ReplayServer, DcsProvider) {
    let server = ReplayServer::start_cited(env!("CARGO_MANIFEST_DIR"), names)
        .await
        .unwrap();
    let mut config = ServiceConfig::new(
        "dcs",
        server.base_url(),
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        Credentials::token("fixture-iam-token"),
    );
    config.options.retry = RetryPolicy::none();
    (
        server,
        DcsProvider::new(DcsClient::new(&config).unwrap()).with_instances([INSTANCE]),
    )
}

fn id() -> DcsTaskId {
    DcsTaskId::new(INSTANCE, "8abf6e1e72c12e7c0172c15b00000001")
}

#[tokio::test]
async fn progress_decodes_with_both_time_forms_and_codes_on_finished_steps() {
    let (server, p) = serve(&["progress.http"]).await;
    let t = p.status(&id()).await.unwrap();
    assert_eq!(
        t.state(),
        TaskState::Running,
        "an error_code on a FINISH step is no failure"
    );
    let progress = t.progress().unwrap();
    assert_eq!(progress.percent, Some(40.0));
    assert_eq!(progress.remaining.map(|r| r.as_secs()), Some(36));
    let steps = t.steps();
    assert!(steps[0].finished_at.is_some() && steps[1].started_at.is_some());
    assert_eq!(
        server.requests()[0].header("x-auth-token"),
        Some("fixture-iam-token")
    );
}

#[tokio::test]
async fn background_lists_decode_in_the_sdk_and_the_seed_shapes() {
    let (_s, p) = serve(&["background_tasks.http"]).await;
    let list = p
        .client()
        .background_tasks(INSTANCE, &BackgroundTaskQuery::default())
        .await
        .unwrap();
    assert_eq!(
        list.task_count,
        Some(2),
        "task_count is a string in the SDK models"
    );
    assert_eq!(list.tasks[0].enable_show, Some(true));
    let (_s, p) = serve(&["background_tasks_seed_example.http"]).await;
    let list = p
        .client()
        .background_tasks(INSTANCE, &BackgroundTaskQuery::default())
        .await
        .unwrap();
    assert_eq!(list.task_count, Some(1));
    let tasks = list.tasks_with_defaults();
    assert_eq!(tasks[0].status.as_deref(), Some("SUCCESS"));
    assert_eq!(
        tasks[0]
            .details
            .as_ref()
            .and_then(|d| d.new_cache_mode.as_deref()),
        Some("ha")
    );
    let (_s, p) = serve(&["center_tasks.http"]).await;
    let centre = p
        .client()
        .center_tasks(&BackgroundTaskQuery::default())
        .await
        .unwrap();
    assert_eq!(centre.tasks[0].error_code.as_deref(), Some("DCS.4975"));
    assert_eq!(
        centre.tasks[0].job_id.as_deref(),
        Some("ff8080819000000000000000003")
    );
}

#[tokio::test]
async fn a_400_dcs_4133_is_not_found() {
    let (_s, p) = serve(&["task_missing.http"]).await;
    let err = p.status(&id()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let (_s, p) = serve(&["task_missing.http"]).await;
    let err = p.act(&id(), TaskAction::Delete).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_delete_with_a_message_is_accepted() {
    let (server, p) = serve(&["deleted.http"]).await;
    p.act(&id(), TaskAction::Delete).await.unwrap();
    let asked = server.requests();
    assert_eq!((asked.len(), asked[0].method.as_str()), (1, "DELETE"));
    assert!(asked[0].target.ends_with(
        "/instances/5560df16-cebf-4473-95c4-d1b573c16e79/tasks/8abf6e1e72c12e7c0172c15b00000001"
    ));
}
