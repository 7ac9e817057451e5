//! Golden answers in the shapes Proxmox VE's own code writes (each fixture
//! cites its source), replayed byte for byte and decoded by the adapter's
//! whole HTTP path.

use tasktrack_core::http::RetryPolicy;
use tasktrack_core::{Error, LogRange, TaskProvider, TaskState, TaskStatus};
use tasktrack_proxmox::ConfigureHttp;
use tasktrack_proxmox::{
    ListedState, NodeTaskQuery, ProxmoxClient, ProxmoxCredentials, ProxmoxProvider, TaskSource,
    Upid,
};
use tasktrack_sim::replay::ReplayServer;

const RUNNING: &str = "UPID:pve1:001001F1:00A21BA8:674D9928:vzdump:100:root@pam:";
const TOKEN_TASK: &str = "UPID:pve1:001003E4:00A21BA9:674D992D:qmigrate:101:root@pam!ci:";

async fn serve(names: &[&str]) -> (ReplayServer, ProxmoxProvider) {
    let server = ReplayServer::start_cited(env!("CARGO_MANIFEST_DIR"), names)
        .await
        .unwrap();
    let client = ProxmoxClient::builder(
        server.base_url(),
        ProxmoxCredentials::api_token("root@pam!ci", "fixture-secret"),
    )
    .with_retry(RetryPolicy::none())
    .build()
    .unwrap();
    (server, ProxmoxProvider::new(client))
}

fn upid(s: &str) -> Upid {
    s.parse().unwrap()
}

#[tokio::test]
async fn running_list_entries_are_running_and_archived_ones_ended() {
    let (server, p) = serve(&["node_tasks_all.http"]).await;
    let q = NodeTaskQuery {
        source: Some(TaskSource::All),
        ..NodeTaskQuery::default()
    };
    let page = p.client().node_tasks("pve1", &q).await.unwrap();
    assert_eq!(page.total, Some(4));
    let states: Vec<TaskState> = page.entries.iter().map(|e| e.to_status().state()).collect();
    assert_eq!(
        states,
        [
            TaskState::Running,
            TaskState::Running,
            TaskState::Succeeded,
            TaskState::Failed
        ]
    );
    assert_eq!(page.entries[0].listed_state(), ListedState::Running);
    assert!(
        page.entries[0].to_status().failure().is_none(),
        "RUNNING is no failure"
    );
    assert_eq!(page.entries[1].tokenid.as_deref(), Some("ci"));
    assert_eq!(
        page.entries[3].to_status().failure().unwrap().message,
        "command 'qemu-img convert' failed: exit code 1"
    );
    let asked = &server.requests()[0];
    assert!(asked.target.contains("source=all"), "{}", asked.target);
    assert_eq!(
        asked.header("authorization"),
        Some("PVEAPIToken=root@pam!ci=fixture-secret")
    );

    // The batch path reads the same list: running stays running.
    let (_server, p) = serve(&["node_tasks_all.http"]).await;
    let answers = p.status_many(&[upid(RUNNING), upid(TOKEN_TASK)]).await;
    for a in answers {
        assert_eq!(a.unwrap().state(), TaskState::Running);
    }
}

#[tokio::test]
async fn an_empty_list_has_no_total() {
    let (_server, p) = serve(&["node_tasks_empty.http"]).await;
    let page = p
        .client()
        .node_tasks("pve1", &NodeTaskQuery::default())
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    assert_eq!(page.total, None);
}

#[tokio::test]
async fn statuses_decode_running_warnings_and_stops() {
    let (_s, p) = serve(&["status_running.http"]).await;
    assert_eq!(
        p.status(&upid(RUNNING)).await.unwrap().state(),
        TaskState::Running
    );
    let (_s, p) = serve(&["status_warnings.http"]).await;
    let s = p.status(&upid(RUNNING)).await.unwrap();
    assert_eq!((s.state(), s.warnings()), (TaskState::Succeeded, Some(2)));
    let (_s, p) = serve(&["status_stopped_by_request.http"]).await;
    let s = p.status(&upid(TOKEN_TASK)).await.unwrap();
    assert_eq!(s.state(), TaskState::Failed);
    assert_eq!(s.failure().unwrap().message, "received interrupt");
    assert_eq!(s.extra.get("tokenid").and_then(|v| v.as_str()), Some("ci"));
}

#[tokio::test]
async fn a_401_without_a_body_says_why_once() {
    for (name, why) in [
        ("unauthorized.http", "Authentication failed!"),
        ("no_ticket.http", "No ticket"),
    ] {
        let (_s, p) = serve(&[name]).await;
        let err = p.status(&upid(RUNNING)).await.unwrap_err();
        match &err {
            Error::Auth {
                status: 401,
                message,
                ..
            } => assert_eq!(message, why),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(err.to_string().matches(why).count(), 1, "{err}");
    }
}

#[tokio::test]
async fn parameter_refusals_become_typed_errors_with_or_without_message() {
    for name in ["no_such_task.http", "no_such_task_pre_5_2.http"] {
        let (_s, p) = serve(&[name]).await;
        let err = p.status(&upid(RUNNING)).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{name}: {err:?}");
        let err = p
            .act(&upid(RUNNING), tasktrack_core::TaskAction::Cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{name}: {err:?}");
    }
    let (_s, p) = serve(&["unparsable_upid.http"]).await;
    let err = p.status(&upid(RUNNING)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let (_s, p) = serve(&["unknown_node.http"]).await;
    let err = p
        .client()
        .node_tasks("pve9", &NodeTaskQuery::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("hostname lookup 'pve9' failed"), "{text}");
    assert_eq!(
        text.matches("hostname lookup").count(),
        1,
        "said once: {text}"
    );
    let (_s, p) = serve(&["server_error_text.http"]).await;
    let err = p.client().cluster_tasks().await.unwrap_err();
    assert!(err.to_string().ends_with("no such uri"), "{err}");
}

#[tokio::test]
async fn logs_resolve_pve_placeholders() {
    let (server, p) = serve(&["log_page.http"]).await;
    let page = p
        .logs(&upid(RUNNING), LogRange::Range { start: 1, limit: 2 })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|l| l.n).collect::<Vec<_>>(), [2, 3]);
    assert!(server.requests()[0]
        .target
        .ends_with("/log?start=1&limit=2"));

    // A UPID the node has no log for: one "unable to open file" line, then
    // /status confirms the task is unknown.
    let (server, p) = serve(&["log_missing_file.http", "no_such_task.http"]).await;
    let err = p.logs(&upid(RUNNING), LogRange::All).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let asked = server.requests();
    assert!(
        asked[0].target.contains("/log?start=0&limit=0"),
        "{}",
        asked[0].target
    );
    assert!(asked[1].target.ends_with("/status"), "{}", asked[1].target);

    // An empty log is empty, not PVE's "no content" line.
    let (_s, p) = serve(&["log_no_content.http"]).await;
    assert!(p
        .logs(&upid(RUNNING), LogRange::All)
        .await
        .unwrap()
        .is_empty());
    let (_s, p) = serve(&["log_no_content.http"]).await;
    assert!(p
        .logs(&upid(RUNNING), LogRange::Tail(5))
        .await
        .unwrap()
        .is_empty());

    // A zero-line range is answered locally: limit=0 would mean "all".
    let (server, p) = serve(&["log_page.http"]).await;
    assert!(p
        .logs(&upid(RUNNING), LogRange::Range { start: 0, limit: 0 })
        .await
        .unwrap()
        .is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn stop_and_cluster_list() {
    let (server, p) = serve(&["stop_done.http"]).await;
    p.act(&upid(RUNNING), tasktrack_core::TaskAction::Cancel)
        .await
        .unwrap();
    assert_eq!(server.requests()[0].method, "DELETE");
    let (_s, p) = serve(&["cluster_tasks.http"]).await;
    let entries = p.client().cluster_tasks().await.unwrap();
    assert_eq!(entries[0].to_status().state(), TaskState::Running);
    assert_eq!(entries[1].to_status().state(), TaskState::Succeeded);
    assert_eq!(entries[1].pid, None);
}
