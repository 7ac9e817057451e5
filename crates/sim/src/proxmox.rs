//! `proxmox`: the Proxmox VE task API (`/api2/json`), several nodes.
//!
//! Written from PVE's API documentation, independently of the adapter:
//! UPIDs in PVE's format, `{"data": ...}` envelopes, errors with the message
//! in the HTTP reason phrase (`400 Parameter verification failed.` with an
//! `errors` object), API-token auth and ticket auth (`POST /access/ticket`,
//! `PVEAuthCookie`, `CSRFPreventionToken` checked on writes, tickets that
//! expire), task status, paged logs ending in `TASK OK` / `TASK WARNINGS: N`
//! / `TASK ERROR: ...`, node task lists with every documented filter, task
//! stop, and `/cluster/tasks`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::engine::{EngineError, SimState, TaskSpec, TaskView};
use crate::server::{SimContext, Vendor};

/// How long a login ticket lasts on a real PVE.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// The Proxmox VE simulator's configuration.
#[derive(Debug, Clone)]
pub struct Proxmox {
    nodes: Vec<String>,
    tokens: Vec<(String, String)>,
    users: Vec<(String, String)>,
    ticket_lifetime: Duration,
    state: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    tickets: Mutex<HashMap<String, Ticket>>,
    next_node: AtomicUsize,
}

#[derive(Debug, Clone)]
struct Ticket {
    csrf: String,
    issued: Instant,
}

impl Proxmox {
    /// A cluster of `nodes`, with no credentials yet.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(nodes: I) -> Self {
        Proxmox {
            nodes: nodes.into_iter().map(Into::into).collect(),
            tokens: Vec::new(),
            users: Vec::new(),
            ticket_lifetime: TICKET_LIFETIME,
            state: Arc::default(),
        }
    }
    /// Accepts the API token `token_id` (`USER@REALM!TOKENID`) with `secret`.
    pub fn api_token(mut self, token_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.tokens.push((token_id.into(), secret.into()));
        self
    }
    /// Accepts a user and password at `POST /access/ticket`.
    pub fn user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((username.into(), password.into()));
        self
    }
    /// Sets how long tickets last (default two hours).
    pub fn ticket_lifetime(mut self, d: Duration) -> Self {
        self.ticket_lifetime = d;
        self
    }
    /// The nodes.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

/// A PVE error: message in the reason phrase, `{"data": null}` body.
fn pve_error(status: StatusCode, message: &str, errors: Option<Value>) -> Response {
    let mut body = json!({ "data": null });
    if let Some(errors) = errors {
        body["errors"] = errors;
    }
    let mut resp = (status, Json(body)).into_response();
    let reason = message.replace(['\r', '\n'], " ");
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
        resp.extensions_mut().insert(phrase);
    }
    resp
}

fn param_error(param: &str, message: &str) -> Response {
    pve_error(
        StatusCode::BAD_REQUEST,
        "Parameter verification failed.",
        Some(json!({ param: message })),
    )
}

fn data(value: Value) -> Response {
    Json(json!({ "data": value })).into_response()
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    cfg: Proxmox,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let digit = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (digit(bytes[i + 1]), digit(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl App {
    /// The answer refusing the request's credentials, or `None`.
    fn rejection(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let unauthorized = |why: &str| Some(pve_error(StatusCode::UNAUTHORIZED, why, None));
        if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
            let Some(rest) = auth.strip_prefix("PVEAPIToken=") else {
                return unauthorized("authentication failure");
            };
            // USER@REALM!TOKENID=SECRET, and PVE also takes ':' before the secret.
            let (id, secret) = rest
                .split_once('=')
                .or_else(|| rest.rsplit_once(':'))
                .unwrap_or((rest, ""));
            let known = self.cfg.tokens.iter().any(|(i, s)| i == id && s == secret);
            if !known || !self.ctx.auth.valid() {
                return unauthorized("authentication failure");
            }
            return None;
        }
        let cookie = headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("PVEAuthCookie="))
            .map(percent_decode);
        let Some(ticket) = cookie else {
            return unauthorized("No ticket");
        };
        let found = self
            .cfg
            .state
            .tickets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ticket)
            .cloned();
        let Some(t) = found else {
            return unauthorized("invalid PVE ticket");
        };
        if self.ctx.clock().now() >= t.issued + self.cfg.ticket_lifetime || !self.ctx.auth.valid() {
            return unauthorized("invalid PVE ticket");
        }
        if *method != Method::GET && *method != Method::HEAD {
            let csrf = headers
                .get("csrfpreventiontoken")
                .and_then(|v| v.to_str().ok());
            if csrf != Some(t.csrf.as_str()) {
                return unauthorized("Permission denied - invalid csrf token");
            }
        }
        None
    }

    /// The task `upid` on `node`, or PVE's error for it.
    fn task(&self, node: &str, upid: &str) -> Result<TaskView, Box<Response>> {
        let fields: Vec<&str> = upid.split(':').collect();
        let well_formed = fields.len() >= 9
            && fields[0] == "UPID"
            && fields[2..5]
                .iter()
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_hexdigit()));
        if !well_formed {
            return Err(Box::new(param_error("upid", "unable to parse worker upid")));
        }
        if fields[1] != node {
            return Err(Box::new(param_error("upid", "no such task")));
        }
        self.ctx
            .engine
            .view(upid)
            .ok_or_else(|| Box::new(param_error("upid", "no such task")))
    }
}

fn attr<'a>(v: &'a TaskView, key: &str) -> &'a str {
    v.attrs.get(key).map_or("", String::as_str)
}

fn num(v: &TaskView, key: &str) -> u64 {
    attr(v, key).parse().unwrap_or_default()
}

fn exitstatus(v: &TaskView) -> Option<String> {
    match v.state {
        SimState::Succeeded if v.warnings > 0 => Some(format!("WARNINGS: {}", v.warnings)),
        SimState::Succeeded => Some("OK".into()),
        SimState::Cancelled => Some("interrupted by signal".into()),
        SimState::Failed => Some(
            v.failure
                .as_ref()
                .map_or("unexpected status".into(), |f| f.message.clone()),
        ),
        SimState::Pending | SimState::Running => None,
    }
}

fn base_fields(v: &TaskView) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("upid".into(), json!(v.id));
    m.insert("node".into(), json!(attr(v, "node")));
    m.insert("pid".into(), json!(num(v, "pid")));
    m.insert("pstart".into(), json!(num(v, "pstart")));
    m.insert("starttime".into(), json!(num(v, "starttime")));
    m.insert("type".into(), json!(attr(v, "type")));
    m.insert("id".into(), json!(attr(v, "id")));
    m.insert("user".into(), json!(attr(v, "user")));
    m
}

fn status_json(v: &TaskView) -> Value {
    let mut m = base_fields(v);
    match exitstatus(v) {
        Some(e) => {
            m.insert("status".into(), json!("stopped"));
            m.insert("exitstatus".into(), json!(e));
        }
        None => {
            m.insert("status".into(), json!("running"));
        }
    }
    Value::Object(m)
}

fn list_entry(v: &TaskView) -> Value {
    let mut m = base_fields(v);
    if let Some(e) = exitstatus(v) {
        m.insert("status".into(), json!(e));
        m.insert(
            "endtime".into(),
            json!(v.finished_at.map_or(0, |t| t.timestamp())),
        );
    }
    Value::Object(m)
}

fn log_lines(v: &TaskView) -> Vec<String> {
    let mut lines = v.log.clone();
    match v.state {
        SimState::Succeeded if v.warnings > 0 => {
            lines.push(format!("TASK WARNINGS: {}", v.warnings))
        }
        SimState::Succeeded => lines.push("TASK OK".into()),
        SimState::Failed | SimState::Cancelled => {
            lines.push(format!("TASK ERROR: {}", exitstatus(v).unwrap_or_default()))
        }
        _ => {}
    }
    if lines.is_empty() {
        lines.push("no content".into());
    }
    lines
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(State(app): State<App>, Form(form): Form<LoginForm>) -> Response {
    let ok = app
        .cfg
        .users
        .iter()
        .any(|(u, p)| *u == form.username && *p == form.password);
    if !ok || !app.ctx.auth.valid() {
        return pve_error(StatusCode::UNAUTHORIZED, "authentication failure", None);
    }
    let n = app.ctx.engine.next_number();
    let now = app.ctx.clock().now_utc().timestamp();
    let ticket = format!(
        "PVE:{}:{now:08X}::sim{n:016x}/signature+AAAA==",
        form.username
    );
    let csrf = format!("{now:08X}:sim-csrf-{n:x}");
    app.cfg
        .state
        .tickets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            ticket.clone(),
            Ticket {
                csrf: csrf.clone(),
                issued: app.ctx.clock().now(),
            },
        );
    data(json!({
        "username": form.username,
        "ticket": ticket,
        "CSRFPreventionToken": csrf,
        "cap": {},
    }))
}

async fn nodes(State(app): State<App>, method: Method, headers: HeaderMap) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    data(json!(app
        .cfg
        .nodes
        .iter()
        .map(|n| json!({"node": n, "status": "online", "type": "node"}))
        .collect::<Vec<_>>()))
}

async fn status(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    Path((node, upid)): Path<(String, String)>,
) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    match app.task(&node, &upid) {
        Ok(v) => data(status_json(&v)),
        Err(r) => *r,
    }
}

async fn task_index(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    Path((node, upid)): Path<(String, String)>,
) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    match app.task(&node, &upid) {
        Ok(_) => data(json!([{"name": "log"}, {"name": "status"}])),
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    start: usize,
    #[serde(default)]
    limit: Option<usize>,
}

async fn log(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    Path((node, upid)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    let v = match app.task(&node, &upid) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let lines = log_lines(&v);
    let total = lines.len();
    let page = crate::engine::numbered_lines(lines, q.start, q.limit.unwrap_or(50));
    Json(json!({"data": page, "total": total})).into_response()
}

async fn stop(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    Path((node, upid)): Path<(String, String)>,
) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    if let Err(r) = app.task(&node, &upid) {
        return *r;
    }
    match app.ctx.engine.cancel(&upid) {
        // Stopping a task that already ended is not an error on PVE.
        Ok(()) | Err(EngineError::Finished) => data(Value::Null),
        Err(EngineError::NotFound) => param_error("upid", "no such task"),
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    start: Option<usize>,
    limit: Option<usize>,
    since: Option<i64>,
    until: Option<i64>,
    statusfilter: Option<String>,
    typefilter: Option<String>,
    userfilter: Option<String>,
    vmid: Option<String>,
    errors: Option<String>,
    source: Option<String>,
}

fn status_class(v: &TaskView) -> &'static str {
    match exitstatus(v).as_deref() {
        None => "running",
        Some("OK") => "ok",
        Some(e) if e.starts_with("WARNINGS") => "warning",
        Some("unexpected status") => "unknown",
        Some(_) => "error",
    }
}

async fn node_tasks(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    Path(node): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    if !app.cfg.nodes.contains(&node) {
        return pve_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"), None);
    }
    let source = q.source.as_deref().unwrap_or("archive");
    if !matches!(source, "archive" | "active" | "all") {
        return param_error(
            "source",
            "value 'x' does not have a value in the enumeration 'archive, active, all'",
        );
    }
    let flag = |v: &Option<String>| matches!(v.as_deref(), Some("1" | "true"));
    let statuses: Option<Vec<&str>> = q
        .statusfilter
        .as_deref()
        .map(|s| s.split(',').map(str::trim).collect());
    let mut tasks: Vec<TaskView> = app
        .ctx
        .engine
        .list()
        .into_iter()
        .filter(|v| attr(v, "node") == node)
        .filter(|v| {
            let running = exitstatus(v).is_none();
            match source {
                "active" => running,
                "archive" => !running,
                _ => true,
            }
        })
        .filter(|v| q.since.is_none_or(|s| num(v, "starttime") as i64 >= s))
        .filter(|v| q.until.is_none_or(|u| (num(v, "starttime") as i64) <= u))
        .filter(|v| q.typefilter.as_deref().is_none_or(|t| attr(v, "type") == t))
        .filter(|v| {
            q.userfilter
                .as_deref()
                .is_none_or(|u| attr(v, "user").contains(u))
        })
        .filter(|v| q.vmid.as_deref().is_none_or(|id| attr(v, "id") == id))
        .filter(|v| !flag(&q.errors) || matches!(status_class(v), "error" | "unknown"))
        .filter(|v| {
            statuses
                .as_ref()
                .is_none_or(|s| s.contains(&status_class(v)))
        })
        .collect();
    tasks.sort_by_key(|v| std::cmp::Reverse(num(v, "starttime")));
    let total = tasks.len();
    let page: Vec<Value> = tasks
        .iter()
        .skip(q.start.unwrap_or(0))
        .take(q.limit.unwrap_or(50))
        .map(list_entry)
        .collect();
    Json(json!({"data": page, "total": total})).into_response()
}

async fn cluster_tasks(State(app): State<App>, method: Method, headers: HeaderMap) -> Response {
    if let Some(r) = app.rejection(&method, &headers) {
        return r;
    }
    let mut tasks = app.ctx.engine.list();
    tasks.sort_by_key(|v| std::cmp::Reverse(num(v, "starttime")));
    data(json!(tasks.iter().map(list_entry).collect::<Vec<_>>()))
}

impl Vendor for Proxmox {
    fn name(&self) -> &'static str {
        "proxmox"
    }

    fn router(&self, ctx: SimContext) -> Router {
        let app = App {
            ctx,
            cfg: self.clone(),
        };
        Router::new()
            .route("/api2/json/access/ticket", post(login))
            .route("/api2/json/nodes", get(nodes))
            .route("/api2/json/nodes/{node}/tasks", get(node_tasks))
            .route(
                "/api2/json/nodes/{node}/tasks/{upid}",
                get(task_index).delete(stop),
            )
            .route("/api2/json/nodes/{node}/tasks/{upid}/status", get(status))
            .route("/api2/json/nodes/{node}/tasks/{upid}/log", get(log))
            .route("/api2/json/cluster/tasks", get(cluster_tasks))
            .with_state(app)
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        pve_error(status, message, None)
    }

    /// Attributes read: `node` (default: round-robin over the nodes),
    /// `type` (default: the kind), `id` (default empty), `user` (default
    /// `root@pam`).
    fn create_task(&self, ctx: &SimContext, mut spec: TaskSpec) -> String {
        let n = ctx.engine.next_number();
        let node = spec.attrs.get("node").cloned().unwrap_or_else(|| {
            let i = self.state.next_node.fetch_add(1, Ordering::Relaxed);
            self.nodes
                .get(i % self.nodes.len().max(1))
                .cloned()
                .unwrap_or_else(|| "pve".into())
        });
        let task_type = spec
            .attrs
            .get("type")
            .cloned()
            .unwrap_or_else(|| spec.kind.clone());
        let id = spec.attrs.get("id").cloned().unwrap_or_default();
        let user = spec
            .attrs
            .get("user")
            .cloned()
            .unwrap_or_else(|| "root@pam".into());
        let pid = 0x0010_0000 + (n as u32).wrapping_mul(0x1F3);
        let pstart = 0x00A2_1BA7 + n;
        let starttime = ctx.clock().now_utc().timestamp();
        let upid =
            format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{id}:{user}:");
        for (k, v) in [
            ("node", node),
            ("type", task_type),
            ("id", id),
            ("user", user),
            ("pid", pid.to_string()),
            ("pstart", pstart.to_string()),
            ("starttime", starttime.to_string()),
        ] {
            spec.attrs.insert(k.into(), v);
        }
        ctx.engine.create_with_id(upid.clone(), spec);
        upid
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn cookies_are_percent_decoded() {
        assert_eq!(percent_decode("PVE%3Aroot%40pam%3A1"), "PVE:root@pam:1");
        assert_eq!(percent_decode("plain%zz%4"), "plain%zz%4");
        assert_eq!(percent_decode("%é%"), "%é%");
    }
}
