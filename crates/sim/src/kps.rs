//! `kps`: Huawei Cloud KPS key-pair tasks (`/v3/{project_id}/…`).
//!
//! Failed and running task lists with `limit` (default 1000) / `offset`
//! paging, the single-task query (`task_status` in the
//! `{READY,RUNNING,SUCCESS,FAILED}_{RESET,REPLACE,UNBIND}` family), deletes
//! of one or all failed-task records; `X-Auth-Token` or AK/SK signatures;
//! Huawei error bodies and `X-Request-Id`.
//!
//! Task attributes read at creation: `operation` (`RESET` default,
//! `REPLACE`, `UNBIND`), `server_name`, `server_id`, `keypair_name`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{SimContext, Vendor};
use crate::engine::{SimState, TaskSpec, TaskView};
use crate::huawei::{error_body, gated, project_mismatch, HuaweiAuth};

/// The KPS simulator.
#[derive(Debug, Clone)]
pub struct Kps {
    auth: Arc<HuaweiAuth>,
}

impl Kps {
    /// A KPS accepting `auth`.
    pub fn new(auth: HuaweiAuth) -> Self {
        Kps {
            auth: Arc::new(auth),
        }
    }
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    auth: Arc<HuaweiAuth>,
}

fn phase(v: &TaskView) -> &'static str {
    match v.state {
        SimState::Pending => "READY",
        SimState::Running => "RUNNING",
        SimState::Succeeded => "SUCCESS",
        SimState::Failed | SimState::Cancelled => "FAILED",
    }
}

fn attr(v: &TaskView, key: &str, default: &str) -> String {
    v.attrs
        .get(key)
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn state(v: &TaskView) -> String {
    format!("{}_{}", phase(v), attr(v, "operation", "RESET"))
}

fn millis(v: &TaskView) -> String {
    v.created_at.timestamp_millis().to_string()
}

fn failed_entry(v: &TaskView) -> Value {
    json!({
        "task_id": v.id,
        "operate_type": state(v),
        "task_time": millis(v),
        "task_error_code": v.failure.as_ref().and_then(|f| f.code.clone()),
        "task_error_msg": v.failure.as_ref().map(|f| f.message.clone()),
        "server_name": attr(v, "server_name", "ecs-sim"),
        "server_id": attr(v, "server_id", "c9aa197b-a6b6-4c33-b3a6-fa0b4ec50006"),
        "keypair_name": attr(v, "keypair_name", "KeyPair-sim"),
    })
}

fn running_entry(v: &TaskView) -> Value {
    json!({
        "task_id": v.id,
        "operate_type": state(v),
        "task_time": millis(v),
        "server_name": attr(v, "server_name", "ecs-sim"),
        "server_id": attr(v, "server_id", "c9aa197b-a6b6-4c33-b3a6-fa0b4ec50006"),
        "keypair_name": attr(v, "keypair_name", "KeyPair-sim"),
    })
}

#[derive(Deserialize)]
struct Page {
    limit: Option<String>,
    offset: Option<String>,
}

fn paged(all: Vec<Value>, q: &Page) -> Response {
    let parse = |v: &Option<String>, name: &str, default: usize| match v.as_deref() {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| format!("invalid parameter {name}: {s}")),
    };
    let (limit, offset) = match (
        parse(&q.limit, "limit", 1000),
        parse(&q.offset, "offset", 0),
    ) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(msg), _) | (_, Err(msg)) => {
            return error_body(StatusCode::BAD_REQUEST, "KPS.0002", &msg, false)
        }
    };
    let total = all.len();
    let tasks: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Json(json!({ "total": total, "tasks": tasks })).into_response()
}

async fn failed(
    State(app): State<App>,
    Path(project): Path<String>,
    Query(q): Query<Page>,
) -> Response {
    list_phase(&app, &project, &q, "FAILED", failed_entry)
}

async fn running(
    State(app): State<App>,
    Path(project): Path<String>,
    Query(q): Query<Page>,
) -> Response {
    list_phase(&app, &project, &q, "RUNNING", running_entry)
}

/// One page of the tasks in `wanted` phase, each shaped by `entry`.
fn list_phase(
    app: &App,
    project: &str,
    q: &Page,
    wanted: &str,
    entry: fn(&TaskView) -> Value,
) -> Response {
    if let Some(r) = project_mismatch(&app.auth, project, "KPS", false) {
        return r;
    }
    let all = app
        .ctx
        .engine
        .list()
        .iter()
        .filter(|v| phase(v) == wanted)
        .map(entry)
        .collect();
    paged(all, q)
}

fn not_found(id: &str) -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        "KPS.0007",
        &format!("The task {id} does not exist"),
        false,
    )
}

async fn task(State(app): State<App>, Path((project, id)): Path<(String, String)>) -> Response {
    if let Some(r) = project_mismatch(&app.auth, &project, "KPS", false) {
        return r;
    }
    match app.ctx.engine.view(&id) {
        Some(v) => Json(json!({
            "task_id": v.id,
            "server_id": attr(&v, "server_id", "c9aa197b-a6b6-4c33-b3a6-fa0b4ec50006"),
            "task_status": state(&v),
        }))
        .into_response(),
        None => not_found(&id),
    }
}

async fn delete_failed(
    State(app): State<App>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = project_mismatch(&app.auth, &project, "KPS", false) {
        return r;
    }
    match app.ctx.engine.view(&id) {
        Some(v) if phase(&v) == "FAILED" => {
            app.ctx.engine.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        Some(_) => error_body(
            StatusCode::BAD_REQUEST,
            "KPS.0009",
            &format!("The task {id} has not failed"),
            false,
        ),
        None => not_found(&id),
    }
}

async fn delete_all_failed(State(app): State<App>, Path(project): Path<String>) -> Response {
    if let Some(r) = project_mismatch(&app.auth, &project, "KPS", false) {
        return r;
    }
    for v in app
        .ctx
        .engine
        .list()
        .iter()
        .filter(|v| phase(v) == "FAILED")
    {
        app.ctx.engine.remove(&v.id);
    }
    StatusCode::NO_CONTENT.into_response()
}

impl Vendor for Kps {
    fn name(&self) -> &'static str {
        "kps"
    }

    fn router(&self, ctx: SimContext) -> Router {
        let gate_ctx = ctx.clone();
        let routes = Router::new()
            .route(
                "/v3/{project_id}/failed-tasks",
                get(failed).delete(delete_all_failed),
            )
            .route(
                "/v3/{project_id}/failed-tasks/{task_id}",
                axum::routing::delete(delete_failed),
            )
            .route("/v3/{project_id}/running-tasks", get(running))
            .route("/v3/{project_id}/tasks/{task_id}", get(task))
            .with_state(App {
                ctx,
                auth: self.auth.clone(),
            });
        gated(routes, gate_ctx, self.auth.clone())
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        error_body(status, "KPS.0500", message, false)
    }

    /// Ids look like KPS task ids (UUIDs).
    fn create_task(&self, ctx: &SimContext, spec: TaskSpec) -> String {
        let n = ctx.engine.next_number();
        let id = format!(
            "aee8d2fe-5484-4753-{:04x}-{:012x}",
            (n >> 48) & 0xffff,
            n & 0xffff_ffff_ffff
        );
        ctx.engine.create_with_id(id.clone(), spec);
        id
    }
}
