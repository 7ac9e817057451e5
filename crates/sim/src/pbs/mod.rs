//! `pbs`: the task API of a Proxmox Backup Server (`/api2/json`, port
//! 8007), rebuilt from proxmox-backup's own code:
//!
//! * `src/api2/node/tasks.rs`: `get_task_status` (`running` while the
//!   worker lives, else `stopped` with `exitstatus` from the log's last
//!   line, `unknown` when that cannot be read, for a UPID it never ran
//!   too), `read_task_log` (`start` is the first line *number* wanted:
//!   lines with `count < start` are skipped; `limit` default 50, `0` reads
//!   to the end; `total` is every line), `stop_task`, `list_tasks` (active
//!   tasks first, then archived ones newest first; `running`, `errors`,
//!   `since` (stops at the first archived task that ended before it),
//!   `until`, `typefilter` / `userfilter` as substrings, `statusfilter`;
//!   `total` = `start` + the page, plus one while pages are full);
//! * `pbs-api-types` `TaskListItem` (`node` is `localhost`, `worker_type`,
//!   `worker_id`, the full auth id in `user`; no `status` / `endtime` while
//!   running) and the UPID with its task counter
//!   (`UPID:node:PID:PSTART:TASKNO:STARTTIME:type:id:auth_id:`);
//! * `src/auth.rs` (`PBSAuthCookie`, `PBSAPIToken`, `:` between token id
//!   and secret; pbs-client sends `PBSAPIToken ID:SECRET`, the docs write
//!   `=`, both are taken).
//!
//! The node in a path is never read by these handlers: one server, any
//! node name. Parameters a handler's schema lacks are refused with 400, as
//! the schema verification does.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::context::{SimContext, Vendor};
use crate::engine::{EngineError, TaskSpec, TaskView};
use crate::proxmox::auth::{Accounts, Product};
use crate::proxmox::call::{Call, TaskCall};
use crate::proxmox::reply;
use disk::{escape_unit, exit_status, log_file, parse_upid, Upid};

mod disk;

/// How long a login ticket lasts (two hours, as on PVE).
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// The Proxmox Backup Server simulator's configuration.
#[derive(Debug, Clone)]
pub struct Pbs {
    hostname: String,
    accounts: Accounts,
}

impl Pbs {
    /// A server whose UPIDs name `hostname`, with no credentials yet.
    pub fn new(hostname: impl Into<String>) -> Self {
        let mut accounts = Accounts::new(TICKET_LIFETIME);
        accounts.product = Product::Pbs;
        Pbs {
            hostname: hostname.into(),
            accounts,
        }
    }
    /// Accepts the API token `token_id` (`USER@REALM!TOKENID`) with `secret`.
    pub fn with_api_token(
        mut self,
        token_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.accounts.tokens.push((token_id.into(), secret.into()));
        self
    }
    /// Accepts a user and password at `POST /access/ticket`.
    pub fn with_user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.accounts.users.push((username.into(), password.into()));
        self
    }
    /// Sets how long tickets last (default two hours).
    pub fn with_ticket_lifetime(mut self, d: Duration) -> Self {
        self.accounts.ticket_lifetime = d;
        self
    }
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    cfg: Pbs,
}

/// A request's query parameters, one list of values each.
type Params = BTreeMap<String, Vec<String>>;

/// `parameter verification failed` for a parameter the schema lacks, or
/// the parameters one value each (`statusfilter` may repeat).
fn verify(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, Box<Response>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(Box::new(bad_request(&format!(
                "parameter verification failed - '{k}': schema does not allow additional properties."
            ))));
        }
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

fn one<'a>(p: &'a BTreeMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(|v| v.first()).map(String::as_str)
}

fn int(p: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<i64>, Box<Response>> {
    one(p, key)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                Box::new(bad_request(&format!(
                    "parameter verification failed - '{key}': value '{v}' is not an integer"
                )))
            })
        })
        .transpose()
}

fn flag(p: &BTreeMap<String, Vec<String>>, key: &str) -> bool {
    one(p, key).is_some_and(|v| matches!(v, "1" | "true" | "yes" | "on"))
}

/// An error as proxmox-rest-server's JSON formatter answers it: the
/// message as the whole body, under a JSON content type all the same
/// (pbs-client reads the body as the error text).
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json;charset=UTF-8",
        )],
        message.to_owned(),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

impl App {
    fn upid(&self, text: &str) -> Result<Upid, Box<Response>> {
        parse_upid(text)
            .ok_or_else(|| Box::new(bad_request(&format!("unable to parse UPID '{text}'"))))
    }

    /// The credentials: `None` when they are accepted.
    fn rejection(&self, call: &Call) -> Option<Response> {
        self.cfg
            .accounts
            .rejection(&self.ctx, &call.method, &call.headers)
    }

    /// What every task handler checks first: the credentials, the query
    /// against the parameters the handler's schema has (`allowed`; `None`
    /// for a handler that reads no query), then that the path's UPID parses.
    fn admit(
        &self,
        task: &TaskCall,
        allowed: Option<&[&str]>,
    ) -> Result<(Upid, Params), Box<Response>> {
        if let Some(r) = self.rejection(&task.call) {
            return Err(Box::new(r));
        }
        let params = match allowed {
            Some(allowed) => verify(task.call.pairs(), allowed)?,
            None => Params::new(),
        };
        Ok((self.upid(&task.upid)?, params))
    }

    fn base(&self, upid: &Upid, text: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("upid".into(), json!(text));
        m.insert("node".into(), json!(upid.node));
        m.insert("pid".into(), json!(upid.pid));
        m.insert("pstart".into(), json!(upid.pstart));
        m.insert("starttime".into(), json!(upid.starttime));
        m
    }

    fn status_json(&self, text: &str, upid: &Upid) -> Value {
        let mut m = self.base(upid, text);
        m.insert("type".into(), json!(upid.worker_type));
        m.insert("id".into(), json!(upid.worker_id));
        match upid.auth_id.split_once('!') {
            Some((user, token)) => {
                m.insert("user".into(), json!(user));
                m.insert("tokenid".into(), json!(token));
            }
            None => {
                m.insert("user".into(), json!(upid.auth_id));
            }
        }
        match self.ctx.engine.view(text) {
            Some(v) if !v.state.is_finished() => {
                m.insert("status".into(), json!("running"));
            }
            view => {
                let log = view.as_ref().map(log_file).unwrap_or_default();
                m.insert("status".into(), json!("stopped"));
                m.insert("exitstatus".into(), json!(exit_status(&log)));
            }
        }
        Value::Object(m)
    }

    fn list_item(&self, view: &TaskView, upid: &Upid) -> Value {
        let mut m = self.base(upid, &view.id);
        m.insert("node".into(), json!("localhost"));
        m.insert("worker_type".into(), json!(upid.worker_type));
        m.insert(
            "worker_id".into(),
            if upid.worker_id.is_empty() {
                Value::Null
            } else {
                json!(upid.worker_id)
            },
        );
        m.insert("user".into(), json!(upid.auth_id));
        if view.state.is_finished() {
            if let Some(end) = view.finished_at {
                m.insert("endtime".into(), json!(end.timestamp()));
            }
            m.insert("status".into(), json!(exit_status(&log_file(view))));
        }
        Value::Object(m)
    }
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(State(app): State<App>, Form(form): Form<LoginForm>) -> Response {
    app.cfg
        .accounts
        .login(&app.ctx, &form.username, &form.password)
}

async fn status(State(app): State<App>, task: TaskCall) -> Response {
    match app.admit(&task, Some(&[])) {
        Ok((upid, _)) => reply::data(app.status_json(&task.upid, &upid)),
        Err(r) => *r,
    }
}

async fn log(State(app): State<App>, task: TaskCall) -> Response {
    let allowed = ["start", "limit", "download", "test-status"];
    let p = match app.admit(&task, Some(&allowed)) {
        Ok((_, p)) => p,
        Err(r) => return *r,
    };
    let (start, limit) = match (int(&p, "start"), int(&p, "limit")) {
        (Ok(s), Ok(l)) => (s.unwrap_or(0).max(0) as u64, l.unwrap_or(50).max(0) as u64),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let Some(view) = app.ctx.engine.view(&task.upid) else {
        return bad_request("No such file or directory (os error 2)");
    };
    let file = log_file(&view);
    let read_until_end = limit == 0;
    let (mut left, mut count, mut lines) = (limit, 0u64, Vec::new());
    for line in &file {
        count += 1;
        if count < start {
            continue;
        }
        if !read_until_end {
            if left == 0 {
                continue;
            }
            left -= 1;
        }
        lines.push(json!({"n": count, "t": line}));
    }
    let mut body = json!({"data": lines, "total": count, "success": 1});
    if flag(&p, "test-status") {
        body["active"] = json!(!view.state.is_finished());
    }
    reply::json(StatusCode::OK, &body)
}

async fn stop(State(app): State<App>, task: TaskCall) -> Response {
    if let Err(r) = app.admit(&task, None) {
        return *r;
    }
    // abort_worker_nowait: a worker that is not running is no error.
    match app.ctx.engine.cancel(&task.upid) {
        Ok(()) | Err(EngineError::Finished) | Err(EngineError::NotFound) => {
            reply::data(Value::Null)
        }
    }
}

async fn task_index(State(app): State<App>, task: TaskCall) -> Response {
    if let Err(r) = app.admit(&task, None) {
        return *r;
    }
    reply::data(json!([{"subdir": "log"}, {"subdir": "status"}]))
}

const LIST_PARAMS: &[&str] = &[
    "start",
    "limit",
    "store",
    "running",
    "errors",
    "userfilter",
    "since",
    "until",
    "typefilter",
    "statusfilter",
];

/// `{node}` is not read: one server, any node name.
async fn list_tasks(State(app): State<App>, call: Call) -> Response {
    if let Some(r) = app.rejection(&call) {
        return r;
    }
    let p = match verify(call.pairs(), LIST_PARAMS) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let numbers = ["start", "limit", "since", "until"].map(|k| int(&p, k));
    let [start, limit, since, until] = match numbers {
        [Ok(a), Ok(b), Ok(c), Ok(d)] => [a, b, c, d],
        [a, b, c, d] => {
            let bad = [a, b, c, d].into_iter().find_map(Result::err);
            return bad.map_or_else(|| bad_request("bad parameter"), |r| *r);
        }
    };
    let start = start.unwrap_or(0).max(0) as usize;
    let limit = match limit.unwrap_or(50) {
        n if n > 0 => n as usize,
        _ => usize::MAX,
    };
    let (running, errors) = (flag(&p, "running"), flag(&p, "errors"));
    let statuses: Vec<String> = p
        .get("statusfilter")
        .into_iter()
        .flatten()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    // TaskListInfoIterator: the active list, then the archive newest first.
    let views = app.ctx.engine.list();
    let mut active: Vec<&TaskView> = views.iter().filter(|v| !v.state.is_finished()).collect();
    active.reverse();
    let mut archived: Vec<&TaskView> = views.iter().filter(|v| v.state.is_finished()).collect();
    archived.sort_by_key(|v| std::cmp::Reverse(v.finished_at));
    let order = active
        .into_iter()
        .chain(if running { Vec::new() } else { archived });
    let (mut skipped, mut out) = (0usize, Vec::new());
    for view in order {
        let Some(upid) = parse_upid(&view.id) else {
            continue;
        };
        if until.is_some_and(|u| upid.starttime > u) {
            continue;
        }
        if let Some(since) = since {
            let ended = view.finished_at.filter(|_| view.state.is_finished());
            if ended.is_some_and(|e| e.timestamp() < since) {
                break;
            }
            if upid.starttime < since {
                continue;
            }
        }
        if one(&p, "userfilter").is_some_and(|u| !upid.auth_id.contains(u)) {
            continue;
        }
        if one(&p, "typefilter").is_some_and(|t| !upid.worker_type.contains(t)) {
            continue;
        }
        if view.state.is_finished() {
            let status = exit_status(&log_file(view));
            if errors && status == "OK" {
                continue;
            }
            let kind = match status.as_str() {
                "OK" => "ok",
                s if s.starts_with("WARNINGS: ") => "warning",
                "unknown" => "unknown",
                _ => "error",
            };
            if !statuses.is_empty() && !statuses.iter().any(|s| s == kind) {
                continue;
            }
        } else if !statuses.is_empty() {
            continue;
        }
        if skipped < start {
            skipped += 1;
            continue;
        }
        out.push(app.list_item(view, &upid));
        if out.len() >= limit {
            break;
        }
    }
    let mut total = out.len() + start;
    if !out.is_empty() && out.len() >= limit {
        total += 1;
    }
    reply::json(StatusCode::OK, &json!({"data": out, "total": total}))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("Path '{}' not found.", uri.path()),
    )
}

impl Vendor for Pbs {
    fn name(&self) -> &'static str {
        "pbs"
    }

    fn router(&self, ctx: SimContext) -> Router {
        let app = App {
            ctx,
            cfg: self.clone(),
        };
        Router::new()
            .route("/api2/json/access/ticket", post(login))
            .route("/api2/json/nodes/{node}/tasks", get(list_tasks))
            .route(
                "/api2/json/nodes/{node}/tasks/{upid}",
                get(task_index).delete(stop),
            )
            .route("/api2/json/nodes/{node}/tasks/{upid}/status", get(status))
            .route("/api2/json/nodes/{node}/tasks/{upid}/log", get(log))
            .fallback(not_found)
            .with_state(app)
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        error(status, message)
    }

    /// Attributes read: `type` (default: the kind), `id` (the worker id,
    /// e.g. a datastore; default empty), `user` (default `root@pam`; a
    /// token's tasks name it, `root@pam!ci`), `final_line` as for Proxmox VE.
    fn create_task(&self, ctx: &SimContext, spec: TaskSpec) -> String {
        let n = ctx.engine.next_number();
        let attr = |k: &str| spec.attrs.get(k).cloned();
        let worker_type = attr("type").unwrap_or_else(|| spec.kind.clone());
        let worker_id = attr("id").unwrap_or_default();
        let auth_id = attr("user").unwrap_or_else(|| "root@pam".into());
        let pid = 0x0000_1000 + (n as u32).wrapping_mul(0x2B);
        let pstart = 0x0001_0000 + n;
        let starttime = ctx.clock().now_utc().timestamp();
        let upid = format!(
            "UPID:{}:{pid:08X}:{pstart:08X}:{n:08X}:{starttime:08X}:{worker_type}:{}:{auth_id}:",
            self.hostname,
            escape_unit(&worker_id)
        );
        ctx.engine.create_with_id(upid.clone(), spec);
        upid
    }
}
