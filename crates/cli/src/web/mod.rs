//! `tasktrack serve` / `demo --web`: one embedded page and the JSON API it
//! uses, live over Server-Sent Events.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/` | the page |
//! | GET | `/api/tasks?backend=&state=` | every tracked task's latest snapshot |
//! | GET | `/api/tasks/{backend}/{id}` | one task, read from its backend now |
//! | GET | `/api/tasks/{backend}/{id}/logs?tail=N` | its log tail |
//! | GET | `/metrics`, `/healthz`, `/readyz` | Prometheus metrics; the process answers; the store answers |
//! | GET | `/api/backends` | each backend's listing health: `ok`, `checked_at`, `error` |
//! | GET | `/api/events` | SSE: `task` events; `Last-Event-ID` resumes (400 when it is not an id of this server) |
//! | POST | `/api/tasks/{backend}/{id}/actions/{action}` | retry, rollback, cancel (with `--allow-actions` and a bearer token) |
//! | POST | `/api/tasks/{backend}/{id}/steps/{step}/actions/{action}` | retry-step, skip-step, cancel-step (likewise) |
//!
//! Ids with `/` (DCS) are percent-encoded in paths. Errors are JSON
//! `{"error": "..."}`; no backend credential ever reaches the page or the API.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tasktrack_core::{
    DynTaskProvider, LogRange, Secret, TaskAction, TaskEvent, TaskSnapshot, TrackStore,
};

use crate::error::CliError;

mod feed;
mod guard;
mod listener;
pub mod ops;
pub mod relist;

pub use listener::DEFAULT_MAX_CONNECTIONS;

const PAGE: &str = include_str!("index.html");

/// What the dashboard shows and who may act.
pub struct Dashboard {
    providers: BTreeMap<String, Arc<dyn DynTaskProvider>>,
    tasks: RwLock<BTreeMap<(String, String), TaskSnapshot>>,
    health: RwLock<BTreeMap<String, BackendHealth>>,
    feed: feed::Feed,
    actions: Option<Secret>,
    access: RwLock<guard::Access>,
}

/// How a backend's last listing went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendHealth {
    /// Whether the last listing answered in time.
    pub ok: bool,
    /// When it was tried.
    pub checked_at: chrono::DateTime<chrono::Utc>,
    /// Why it failed (one line), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A dashboard shared by the server and whoever feeds it events.
pub type SharedDashboard = Arc<Dashboard>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

impl Dashboard {
    /// A dashboard over `providers`; actions allowed with `token` when `allow_actions`.
    pub fn new(
        providers: Vec<(String, Arc<dyn DynTaskProvider>)>,
        store: Option<Arc<dyn TrackStore>>,
        allow_actions: bool,
        token: Option<Secret>,
    ) -> SharedDashboard {
        Arc::new(Dashboard {
            providers: providers.into_iter().collect(),
            tasks: RwLock::default(),
            health: RwLock::default(),
            feed: feed::Feed::new(store),
            access: RwLock::new(guard::Access::new(token.clone())),
            actions: if allow_actions { token } else { None },
        })
    }

    /// Who may read, from where: the token is needed for every request on
    /// a non-loopback address; the `Host` header must name this server.
    pub fn guard(&self, bound: SocketAddr, public_url: Option<&url::Url>) {
        self.access
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .bind(bound, public_url);
    }

    /// Records how a backend's listing went.
    pub fn set_health(&self, backend: &str, result: Result<(), String>) {
        let health = BackendHealth {
            ok: result.is_ok(),
            checked_at: chrono::Utc::now(),
            error: result.err(),
        };
        self.health
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(backend.to_owned(), health);
    }

    /// Records a snapshot (e.g. from a listing) without an event.
    pub fn show(&self, snapshot: &TaskSnapshot) {
        self.tasks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (snapshot.provider.clone(), snapshot.id.clone()),
                snapshot.clone(),
            );
    }

    /// Records an event and pushes it to every live page.
    pub fn publish(&self, event: &TaskEvent) {
        if let Some(s) = event.snapshot() {
            self.show(s);
        }
        self.feed.publish(event);
    }

    fn unknown_backend(&self, backend: &str) -> Response {
        let known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        error(
            StatusCode::NOT_FOUND,
            format!("unknown backend {backend:?}; known: {}", known.join(", ")),
        )
    }
}

#[derive(Deserialize)]
struct TaskQuery {
    backend: Option<String>,
    state: Option<String>,
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn tasks(State(d): State<SharedDashboard>, Query(q): Query<TaskQuery>) -> Response {
    let all = d.tasks.read().unwrap_or_else(|p| p.into_inner());
    let list: Vec<&TaskSnapshot> = all
        .values()
        .filter(|s| q.backend.as_deref().is_none_or(|b| s.provider == b))
        .filter(|s| q.state.as_deref().is_none_or(|st| s.state.as_str() == st))
        .collect();
    Json(list).into_response()
}

fn api_error(e: tasktrack_core::Error) -> Response {
    let status = match &e {
        tasktrack_core::Error::NotFound { .. } => StatusCode::NOT_FOUND,
        tasktrack_core::Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        tasktrack_core::Error::Unsupported { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, e.to_string().lines().next().unwrap_or_default())
}

async fn task(
    State(d): State<SharedDashboard>,
    Path((backend, id)): Path<(String, String)>,
) -> Response {
    let Some(provider) = d.providers.get(&backend) else {
        return d.unknown_backend(&backend);
    };
    match provider.snapshot(&id).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    tail: Option<usize>,
}

async fn logs(
    State(d): State<SharedDashboard>,
    Path((backend, id)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(provider) = d.providers.get(&backend) else {
        return d.unknown_backend(&backend);
    };
    if !provider.provider_capabilities().logs {
        return Json(Vec::<tasktrack_core::LogLine>::new()).into_response();
    }
    match provider
        .log_lines(&id, LogRange::Tail(q.tail.unwrap_or(50).min(1000)))
        .await
    {
        Ok(lines) => Json(lines).into_response(),
        Err(e) => api_error(e),
    }
}

async fn events(State(d): State<SharedDashboard>, headers: HeaderMap) -> Response {
    let last_id = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.trim().to_owned()),
        Some(Err(_)) => return bad_event_id(),
    };
    let Ok(items) = d.feed.subscribe(last_id.as_deref()).await else {
        return bad_event_id();
    };
    let frames = futures::StreamExt::map(items, |item| -> Result<Event, Infallible> {
        let data = serde_json::to_string(&item.event).unwrap_or_default();
        Ok(Event::default()
            .event("task")
            .id(item.id)
            .data(data)
            .retry(Duration::from_secs(1)))
    });
    Sse::new(frames)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}

fn bad_event_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Last-Event-ID is not an event id of this server; reconnect without it",
    )
}

/// What the page needs to know of the server: whether actions are on.
async fn info(State(d): State<SharedDashboard>) -> Response {
    Json(serde_json::json!({ "actions": d.actions.is_some() })).into_response()
}

async fn backends(State(d): State<SharedDashboard>) -> Response {
    let health = d.health.read().unwrap_or_else(|p| p.into_inner()).clone();
    Json(health).into_response()
}

/// The answer refusing an action request, or `None` when it may proceed.
fn action_rejection(d: &Dashboard, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &d.actions else {
        return Some(error(
            StatusCode::NOT_FOUND,
            "actions are disabled; start the server with --allow-actions",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = given.is_some_and(|g| same_token(g, token));
    (!valid).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required for actions",
        )
    })
}

/// Constant time: how long a comparison takes tells nothing of the token.
fn same_token(given: &str, token: &Secret) -> bool {
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

fn parse_action(name: &str, step: Option<String>) -> Option<TaskAction> {
    Some(match (name, step) {
        ("retry", None) => TaskAction::Retry,
        ("rollback", None) => TaskAction::Rollback,
        ("cancel", None) => TaskAction::Cancel,
        ("retry-step", Some(s)) => TaskAction::RetryStep(s),
        ("skip-step", Some(s)) => TaskAction::SkipStep(s),
        ("cancel-step", Some(s)) => TaskAction::CancelStep(s),
        _ => return None,
    })
}

async fn act(
    d: &Dashboard,
    headers: &HeaderMap,
    backend: &str,
    id: &str,
    action: Option<TaskAction>,
) -> Response {
    if let Some(r) = action_rejection(d, headers) {
        return r;
    }
    let Some(provider) = d.providers.get(backend) else {
        return d.unknown_backend(backend);
    };
    let Some(action) = action else {
        return error(StatusCode::BAD_REQUEST, "unknown action; use retry, rollback, cancel, or retry-step / skip-step / cancel-step on a step");
    };
    if !provider.provider_capabilities().supports(&action) {
        return error(
            StatusCode::CONFLICT,
            format!("backend {backend} cannot {}", action.name()),
        );
    }
    match provider.perform(id, action.clone()).await {
        Ok(receipt) => Json(json!({ "action": action.to_string(), "message": receipt.message }))
            .into_response(),
        Err(e) => api_error(e),
    }
}

async fn task_action(
    State(d): State<SharedDashboard>,
    headers: HeaderMap,
    Path((backend, id, action)): Path<(String, String, String)>,
) -> Response {
    act(&d, &headers, &backend, &id, parse_action(&action, None)).await
}

async fn step_action(
    State(d): State<SharedDashboard>,
    headers: HeaderMap,
    Path((backend, id, step, action)): Path<(String, String, String, String)>,
) -> Response {
    act(
        &d,
        &headers,
        &backend,
        &id,
        parse_action(&action, Some(step)),
    )
    .await
}

/// The router.
pub fn router(d: SharedDashboard) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/tasks", get(tasks))
        .route("/api/tasks/{backend}/{id}", get(task))
        .route("/api/tasks/{backend}/{id}/logs", get(logs))
        .route("/api/backends", get(backends))
        .route("/api/info", get(info))
        .merge(ops::router(d.feed.store()))
        .route("/api/events", get(events))
        .route(
            "/api/tasks/{backend}/{id}/actions/{action}",
            post(task_action),
        )
        .route(
            "/api/tasks/{backend}/{id}/steps/{step}/actions/{action}",
            post(step_action),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page or API route") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed (actions are POST only)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            d.clone(),
            guard::check,
        ))
        .with_state(d)
}

/// Refuses a non-loopback address without a token.
pub fn check_listen(addr: SocketAddr, token: Option<&Secret>) -> Result<(), CliError> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(CliError::usage(
            format!("refusing to listen on {addr} without a token"),
            "set --token or TASKTRACK_TOKEN, or listen on 127.0.0.1",
        ));
    }
    Ok(())
}

/// Binds and serves in the background, holding at most `max_connections`
/// at once (fewer when the descriptor limit cannot fit them); the bound
/// address.
pub async fn start(
    d: SharedDashboard,
    addr: SocketAddr,
    max_connections: usize,
    public_url: Option<&url::Url>,
) -> Result<SocketAddr, CliError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        CliError::usage(
            format!("cannot listen on {addr}: {e}"),
            "pick another --listen address",
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::usage(e.to_string(), "try again"))?;
    d.guard(bound, public_url);
    let max = listener::connections_that_fit(max_connections);
    if max < max_connections {
        tracing::warn!(
            max,
            asked = max_connections,
            "the file-descriptor limit fits fewer connections than asked"
        );
    }
    if d.feed.is_store() {
        tokio::spawn(feed::Feed::tail(
            Arc::downgrade(&d),
            |d: &Dashboard| &d.feed,
            |d: &Dashboard, event: &TaskEvent| {
                if let Some(s) = event.snapshot() {
                    d.show(s);
                }
            },
        ));
    }
    let listener = listener::Limited::new(listener, max);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(d)).await;
    });
    Ok(bound)
}
