//! `generic`: a small JSON task API, the reference vendor of the harness.
//!
//! It shows the shape every vendor module follows and gives custom-provider
//! authors an HTTP backend to practise on.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/tasks/{id}` | a task |
//! | GET | `/api/tasks?state=&offset=&limit=` | `{"total", "items": [task]}` |
//! | GET | `/api/tasks/{id}/log?start=&limit=` | `{"total", "lines": [{"n", "t"}]}` |
//! | POST | `/api/tasks/{id}/cancel` | 202, or 409 when already finished |
//!
//! A task is `{"id", "kind", "state", "percent", "warnings", "error": {"code",
//! "message"} | null, "created_at", "started_at", "finished_at"}` with
//! `state` one of `pending running succeeded failed cancelled`. Every route
//! needs `Authorization: Bearer <token>`; errors are
//! `{"error": {"code", "message"}}`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{SimContext, Vendor};
use crate::engine::{EngineError, SimState, TaskView};

/// The generic vendor, accepting one bearer token.
#[derive(Debug, Clone)]
pub struct Generic {
    token: String,
}

impl Generic {
    /// Accepts `Authorization: Bearer {token}`.
    pub fn new(token: impl Into<String>) -> Self {
        Generic {
            token: token.into(),
        }
    }
}

fn task_json(v: &TaskView) -> Value {
    json!({
        "id": v.id,
        "kind": v.kind,
        "state": v.state,
        "percent": v.percent,
        "warnings": v.warnings,
        "error": v.failure.as_ref().map(|f| json!({"code": f.code, "message": f.message})),
        "created_at": v.created_at,
        "started_at": v.started_at,
        "finished_at": v.finished_at,
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

#[derive(Clone)]
struct AppState {
    ctx: SimContext,
    token: String,
}

impl AppState {
    /// The answer refusing these credentials, or `None` when they are good.
    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            None => Some(error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing bearer token",
            )),
            Some(t) if t != self.token => Some(error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "invalid token",
            )),
            Some(_) if !self.ctx.auth.valid() => Some(error(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "token expired",
            )),
            Some(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    start: usize,
    limit: Option<usize>,
}

async fn status(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = s.rejection(&headers) {
        return r;
    }
    match s.ctx.engine.view(&id) {
        Some(v) => Json(task_json(&v)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("task {id} not found"),
        ),
    }
}

async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = s.rejection(&headers) {
        return r;
    }
    let all: Vec<TaskView> = s
        .ctx
        .engine
        .list()
        .into_iter()
        .filter(|v| {
            q.state
                .as_deref()
                .is_none_or(|st| json!(v.state) == json!(st))
        })
        .collect();
    let items: Vec<Value> = all
        .iter()
        .skip(q.offset)
        .take(q.limit.unwrap_or(100))
        .map(task_json)
        .collect();
    Json(json!({"total": all.len(), "items": items})).into_response()
}

async fn log(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    if let Some(r) = s.rejection(&headers) {
        return r;
    }
    let Some(v) = s.ctx.engine.view(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("task {id} not found"),
        );
    };
    let mut lines = v.log.clone();
    match (&v.state, &v.failure) {
        (SimState::Succeeded, _) => lines.push("TASK OK".into()),
        (SimState::Failed | SimState::Cancelled, Some(f)) => {
            lines.push(format!("TASK ERROR: {}", f.message))
        }
        _ => {}
    }
    let total = lines.len();
    let page = crate::engine::numbered_lines(lines, q.start, q.limit.unwrap_or(50));
    Json(json!({"total": total, "lines": page})).into_response()
}

async fn cancel(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = s.rejection(&headers) {
        return r;
    }
    match s.ctx.engine.cancel(&id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response(),
        Err(EngineError::NotFound) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("task {id} not found"),
        ),
        Err(EngineError::Finished) => {
            error(StatusCode::CONFLICT, "finished", "task already finished")
        }
    }
}

impl Vendor for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn router(&self, ctx: SimContext) -> Router {
        Router::new()
            .route("/api/tasks", get(list))
            .route("/api/tasks/{id}", get(status))
            .route("/api/tasks/{id}/log", get(log))
            .route("/api/tasks/{id}/cancel", post(cancel))
            .with_state(AppState {
                ctx,
                token: self.token.clone(),
            })
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        error(status, "unavailable", message)
    }
}
