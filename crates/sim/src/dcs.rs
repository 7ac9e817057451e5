//! `dcs`: Huawei Cloud DCS background tasks (`/v2/{project_id}/instances/…`),
//! shaped as Huawei's own SDKs model them (huaweicloud-sdk-python-v3
//! `huaweicloudsdkdcs/v2/model`: `ShowBackgroundTaskProgressResponse`,
//! `StepDetail`, `SubStepDetail`, `ListBackgroundTaskResponse`,
//! `SingleBackgroundTask`, `DeleteBackgroundTaskResponse`,
//! `ListCenterTaskResponse`, `ListCenterTasksResp`; the Go SDK declares the
//! same fields and types) and as terraform-provider-huaweicloud relies on
//! them (a missing task is `400` with `error_code` `DCS.4133`; list pages
//! are walked until an empty one, with `begin_time`).
//!
//! Multi-step tasks whose `progress`, `remain_time` and step / sub-step
//! statuses (`WAITING`, `EXECUTING`, `FINISH`, `FAILED`) advance with the
//! clock; the background task list with `offset` / `limit` / `start_time`
//! (or `begin_time`) / `end_time`, `task_count` a string as both SDKs
//! declare it; the project-wide task centre (`/v2/{project_id}/tasks`);
//! deletes of a task's record. Step times alternate between the documented
//! `2020-06-17T07:38:42.503Z` form and the example's `2022-09-01 11:52:24`,
//! and finished steps may carry an `error_code`, as the example shows, so
//! clients meet both. `X-Auth-Token` or AK/SK signatures; Huawei error
//! bodies with `error_ext_msg`; `X-Request-Id`.
//!
//! Task attributes read at creation: `instance_id` (default: the first
//! instance), `name` (default: the kind, e.g. `ChangeInstanceSpec`),
//! `user_name`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{SimContext, Vendor};
use crate::engine::{SimState, StepView, TaskSpec, TaskView};
use crate::huawei::{error_body, gated, project_mismatch, HuaweiAuth};

/// The DCS simulator.
#[derive(Debug, Clone)]
pub struct Dcs {
    auth: Arc<HuaweiAuth>,
    instances: Vec<String>,
}

impl Dcs {
    /// A DCS with these cache instances, accepting `auth`.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(auth: HuaweiAuth, instances: I) -> Self {
        Dcs {
            auth: Arc::new(auth),
            instances: instances.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    auth: Arc<HuaweiAuth>,
    instances: Arc<Vec<String>>,
}

fn status(s: SimState) -> &'static str {
    match s {
        SimState::Pending => "WAITING",
        SimState::Running => "EXECUTING",
        SimState::Succeeded => "FINISH",
        SimState::Failed | SimState::Cancelled => "FAILED",
    }
}

fn time(t: Option<DateTime<Utc>>, example_style: bool) -> Value {
    match t {
        None => json!(""),
        Some(t) if example_style => json!(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
    }
}

fn step_id(task: &str, i: usize, j: Option<usize>) -> String {
    let tail = &task[task.len().saturating_sub(8)..];
    match j {
        None => format!("9d1d1da8-650e-406f-{i:04x}-{tail:0>12}"),
        Some(j) => format!("4692b05b-fa55-4f7d-{i:02x}{j:02x}-{tail:0>12}"),
    }
}

fn step_json(task: &TaskView, s: &StepView, example_style: bool) -> Value {
    let subs: Vec<Value> = s
        .substeps
        .iter()
        .map(|d| {
            json!({
                "sub_step_id": step_id(&task.id, s.index, Some(d.index)),
                "sub_step_name": d.name,
                "sub_step_status": status(d.state),
                "begin_time": time(d.started_at, example_style),
                "end_time": time(d.finished_at, example_style),
                "detail": d.failure.as_ref().map_or(String::new(), |f| f.message.clone()),
                "error_code": d.failure.as_ref().and_then(|f| f.code.clone()),
            })
        })
        .collect();
    // Finished steps carry a code too on real DCS (see the document's
    // example): only the status says whether a step failed.
    let code = match (&s.failure, s.state) {
        (Some(f), _) => f.code.clone(),
        (None, SimState::Succeeded) => Some("DCS.4064".to_owned()),
        _ => None,
    };
    json!({
        "step_id": step_id(&task.id, s.index, None),
        "step_name": s.name,
        "step_status": status(s.state),
        "begin_time": time(s.started_at, example_style),
        "end_time": time(s.finished_at, example_style),
        "error_code": code,
        "sub_step_details": subs,
    })
}

/// A missing task (or instance): `400` with `DCS.4133`, which
/// terraform-provider-huaweicloud turns into "deleted"
/// (`ConvertExpected400ErrInto404Err(err, "error_code", "DCS.4133")`).
fn not_found(what: &str) -> Response {
    error_body(
        StatusCode::BAD_REQUEST,
        "DCS.4133",
        &format!("{what} does not exist"),
        true,
    )
}

impl App {
    fn check(&self, project: &str, instance: &str) -> Option<Response> {
        if let Some(r) = project_mismatch(&self.auth, project, "DCS", true) {
            return Some(r);
        }
        (!self.instances.iter().any(|i| i == instance))
            .then(|| not_found(&format!("instance {instance}")))
    }
}

async fn progress(
    State(app): State<App>,
    Path((project, instance, task)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = app.check(&project, &instance) {
        return r;
    }
    let Some(v) = app
        .ctx
        .engine
        .view(&task)
        .filter(|v| v.attrs.get("instance_id") == Some(&instance))
    else {
        return not_found(&format!("task {task}"));
    };
    let example_style =
        v.id.ends_with(|c: char| c.to_digit(16).is_some_and(|d| d % 2 == 1));
    let steps: Vec<Value> = v
        .steps
        .iter()
        .map(|s| step_json(&v, s, example_style))
        .collect();
    Json(json!({
        "progress": v.percent.floor() as i64,
        "remain_time": v.remaining.map_or(0, |r| r.as_secs()),
        "step_details": steps,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    start_time: Option<String>,
    end_time: Option<String>,
    begin_time: Option<String>,
}

fn compact_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
        .ok()
        .map(|n| n.and_utc())
}

async fn list(
    State(app): State<App>,
    Path((project, instance)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = app.check(&project, &instance) {
        return r;
    }
    // The document's request example says begin_time where its table says start_time.
    let start = q.start_time.as_deref().or(q.begin_time.as_deref());
    let bound = |s: Option<&str>, name: &str| match s {
        None => Ok(None),
        Some(s) => compact_time(s)
            .map(Some)
            .ok_or(format!("invalid {name}: expected yyyyMMddHHmmss")),
    };
    let (from, to) = match (
        bound(start, "start_time"),
        bound(q.end_time.as_deref(), "end_time"),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(msg), _) | (_, Err(msg)) => {
            return error_body(StatusCode::BAD_REQUEST, "DCS.4800", &msg, true)
        }
    };
    let of_instance = |v: &TaskView| v.attrs.get("instance_id") == Some(&instance);
    let window = (q.offset.unwrap_or(0), q.limit.unwrap_or(10));
    background_page(&app, of_instance, (from, to), window)
}

/// One page of background tasks: those `admit` keeps, created within
/// `from..=to`, `offset` skipped, `limit` at most; `task_count` is them all.
fn background_page(
    app: &App,
    admit: impl Fn(&TaskView) -> bool,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    (offset, limit): (usize, usize),
) -> Response {
    let tasks: Vec<Value> = app
        .ctx
        .engine
        .list()
        .into_iter()
        .filter(|v| admit(v))
        .filter(|v| from.is_none_or(|f| v.created_at >= f) && to.is_none_or(|t| v.created_at <= t))
        .map(|v| background_entry(&v))
        .collect();
    let count = tasks.len();
    let page: Vec<Value> = tasks.into_iter().skip(offset).take(limit).collect();
    Json(json!({ "task_count": count.to_string(), "tasks": page })).into_response()
}

/// A `SingleBackgroundTask` / `ListCenterTasksResp`.
fn background_entry(v: &TaskView) -> Value {
    let state = match v.state {
        SimState::Succeeded => "SUCCESS",
        SimState::Failed | SimState::Cancelled => "FAILED",
        SimState::Pending => "WAITING",
        SimState::Running => "EXECUTING",
    };
    let mut entry = json!({
        "id": v.id,
        "name": v.attrs.get("name").cloned().unwrap_or_else(|| v.kind.clone()),
        "details": {"old_capacity": "0.125", "new_capacity": "0.25", "enable_public_ip": false},
        "user_name": v.attrs.get("user_name").cloned().unwrap_or_else(|| "sim_user".into()),
        "user_id": "9bf43e1f8a4d4d6a8b2c71f3e1f0d9a1",
        "params": "",
        "status": state,
        "created_at": time(Some(v.created_at), false),
        "updated_at": time(v.finished_at.or(v.started_at).or(Some(v.created_at)), false),
        "enable_show": !v.steps.is_empty(),
        "job_id": format!("ff8080819{}", &v.id[v.id.len().saturating_sub(15)..]),
    });
    if let Some(code) = v.failure.as_ref().and_then(|f| f.code.clone()) {
        entry["error_code"] = json!(code);
    }
    entry
}

/// `DELETE /v2/{project_id}/instances/{instance_id}/tasks/{task_id}`: the
/// task's record goes (`DeleteBackgroundTaskResponse` has a `message`).
async fn delete(
    State(app): State<App>,
    Path((project, instance, task)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = app.check(&project, &instance) {
        return r;
    }
    match app.ctx.engine.view(&task) {
        Some(v) if v.attrs.get("instance_id") == Some(&instance) => {
            app.ctx.engine.remove(&task);
            Json(json!({ "message": format!("background task {task} deleted") })).into_response()
        }
        _ => not_found(&format!("task {task}")),
    }
}

#[derive(Deserialize)]
struct CenterQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    start_time: Option<String>,
    end_time: Option<String>,
}

/// `GET /v2/{project_id}/tasks`: every instance's tasks (`ListCenterTask`;
/// `limit` 1..=1000, default 10).
async fn center(
    State(app): State<App>,
    Path(project): Path<String>,
    Query(q): Query<CenterQuery>,
) -> Response {
    if let Some(r) = project_mismatch(&app.auth, &project, "DCS", true) {
        return r;
    }
    let limit = q.limit.unwrap_or(10);
    if !(1..=1000).contains(&limit) {
        return error_body(
            StatusCode::BAD_REQUEST,
            "DCS.4800",
            "invalid limit: expected 1 to 1000",
            true,
        );
    }
    let bound = |s: &Option<String>| s.as_deref().and_then(compact_time);
    let (from, to) = (bound(&q.start_time), bound(&q.end_time));
    background_page(&app, |_| true, (from, to), (q.offset.unwrap_or(0), limit))
}

/// `DELETE /v2/{project_id}/tasks/{task_id}` (`DeleteCenterTask`).
async fn delete_center(
    State(app): State<App>,
    Path((project, task)): Path<(String, String)>,
) -> Response {
    if let Some(r) = project_mismatch(&app.auth, &project, "DCS", true) {
        return r;
    }
    if app.ctx.engine.remove(&task) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&format!("task {task}"))
    }
}

impl Vendor for Dcs {
    fn name(&self) -> &'static str {
        "dcs"
    }

    fn router(&self, ctx: SimContext) -> Router {
        let gate_ctx = ctx.clone();
        let routes = Router::new()
            .route("/v2/{project_id}/instances/{instance_id}/tasks", get(list))
            .route(
                "/v2/{project_id}/instances/{instance_id}/tasks/{task_id}/progress",
                get(progress),
            )
            .route(
                "/v2/{project_id}/instances/{instance_id}/tasks/{task_id}",
                axum::routing::delete(delete),
            )
            .route("/v2/{project_id}/tasks", get(center))
            .route(
                "/v2/{project_id}/tasks/{task_id}",
                axum::routing::delete(delete_center),
            )
            .with_state(App {
                ctx,
                auth: self.auth.clone(),
                instances: Arc::new(self.instances.clone()),
            });
        gated(routes, gate_ctx, self.auth.clone())
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        error_body(status, "DCS.5000", message, true)
    }

    /// Ids look like DCS task ids (32 hex digits).
    fn create_task(&self, ctx: &SimContext, mut spec: TaskSpec) -> String {
        let n = ctx.engine.next_number();
        let id = format!("8abf6e1e72c12e7c0172c15b{n:08x}");
        if !spec.attrs.contains_key("instance_id") {
            let first = self.instances.first().cloned().unwrap_or_default();
            spec.attrs.insert("instance_id".into(), first);
        }
        ctx.engine.create_with_id(id.clone(), spec);
        id
    }
}
