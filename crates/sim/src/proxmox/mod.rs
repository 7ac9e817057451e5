//! `proxmox`: the Proxmox VE task API (`/api2/json`) of a cluster of nodes,
//! rebuilt from the vendor's own code rather than its documentation:
//!
//! * pve-manager `PVE/API2/Tasks.pm`: `node_tasks` (the filters, the
//!   `start` / `limit` / `total` counting, active tasks first marked
//!   `RUNNING` with `saved: "0"`, then archived ones newest first),
//!   `read_task_status`, `read_task_log`, `stop_task`, `upid_index`;
//!   `PVE/API2/Cluster.pm` `tasks`;
//! * pve-common `PVE/UPID.pm` (UPID pattern, exit status from the log's
//!   last line), `PVE/Tools.pm` `dump_logfile` (`limit=0` reads to the end,
//!   `no content`, `unable to open file`), `PVE/RESTEnvironment.pm`
//!   (`received interrupt` on stop, archiving by the reaper),
//!   `PVE/JSONSchema.pm` (parameter verification);
//! * pve-http-server `AnyEvent.pm` / `Formatter/Standard.pm` (reason
//!   phrases, empty 401 bodies, `message` in error bodies, `total` only when
//!   non-zero, `Connection: close` after errors) and pve-manager
//!   `PVE/HTTPServer.pm` (token and ticket checks, CSRF on writes).
//!
//! `docs/fidelity.md` lists every behaviour with its source and where the
//! seed documents say otherwise.

pub(crate) mod auth;
pub(crate) mod call;
mod params;
pub(crate) mod reply;
pub(crate) mod tasks;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{SimContext, Vendor};
use crate::engine::{EngineError, TaskSpec};
use auth::Accounts;
use call::{Call, TaskCall};
use tasks::NodeTask;

/// How long a login ticket lasts on a real PVE.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// The Proxmox VE simulator's configuration.
#[derive(Debug, Clone)]
pub struct Proxmox {
    nodes: Vec<String>,
    accounts: Accounts,
    archive_lag: Duration,
    unauthorized_delay: Duration,
    next_node: Arc<AtomicUsize>,
}

impl Proxmox {
    /// A cluster of `nodes`, with no credentials yet.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(nodes: I) -> Self {
        Proxmox {
            nodes: nodes.into_iter().map(Into::into).collect(),
            accounts: Accounts::new(TICKET_LIFETIME),
            archive_lag: Duration::ZERO,
            unauthorized_delay: Duration::ZERO,
            next_node: Arc::default(),
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
    /// How long after its worker ends a task stays in the active list
    /// (reported `RUNNING`, no end time) before it is archived. Default 0,
    /// as when pvedaemon reaps its worker; up to pvestatd's 10 s when the
    /// worker's parent died.
    pub fn with_archive_lag(mut self, d: Duration) -> Self {
        self.archive_lag = d;
        self
    }
    /// Delays every 401 answer, as pveproxy does by 3 s (default 0 here so
    /// tests stay fast).
    pub fn with_unauthorized_delay(mut self, d: Duration) -> Self {
        self.unauthorized_delay = d;
        self
    }
    /// The nodes.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    cfg: Proxmox,
}

impl App {
    async fn rejection(&self, call: &Call) -> Option<Response> {
        let refused = self
            .cfg
            .accounts
            .rejection(&self.ctx, &call.method, &call.headers)?;
        if !self.cfg.unauthorized_delay.is_zero() {
            tokio::time::sleep(self.cfg.unauthorized_delay).await;
        }
        Some(refused)
    }

    /// What `status`, `log` and `stop` check first, in pve-http-server's
    /// order: credentials, the parameters (`schema`), the node, the UPID.
    /// The accepted parameters, or the answer that refuses the request.
    async fn admit_task_call(
        &self,
        task: &TaskCall,
        schema: params::Schema,
    ) -> Result<BTreeMap<String, String>, Box<Response>> {
        if let Some(r) = self.rejection(&task.call).await {
            return Err(Box::new(r));
        }
        let path = [("node", task.node.as_str()), ("upid", task.upid.as_str())];
        let accepted = params::validate(schema, &path, &task.call.pairs())?;
        if let Some(r) = self.unknown_node(&task.node) {
            return Err(Box::new(r));
        }
        if tasks::decode(&task.upid).is_none() {
            return Err(Box::new(unparsable()));
        }
        Ok(accepted)
    }

    /// A node that is not in the cluster: `proxyto` cannot resolve it.
    fn unknown_node(&self, node: &str) -> Option<Response> {
        (!self.cfg.nodes.iter().any(|n| n == node)).then(|| {
            reply::exception(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known\n"),
                None,
            )
        })
    }

    /// Every task whose log file is on `node`, in creation order.
    fn node_tasks(&self, node: &str) -> Vec<NodeTask> {
        let now = self.ctx.clock().now_utc();
        let lag = chrono::Duration::from_std(self.cfg.archive_lag).unwrap_or_default();
        self.ctx
            .engine
            .list()
            .iter()
            .enumerate()
            .filter_map(|(i, v)| NodeTask::from_view(v, i, now, lag))
            .filter(|t| t.fields.node == node)
            .collect()
    }

    /// The task's log file on `node`, if that node has it.
    fn file(&self, node: &str, upid: &str) -> Option<NodeTask> {
        let view = self.ctx.engine.view(upid)?;
        let now = self.ctx.clock().now_utc();
        let lag = chrono::Duration::from_std(self.cfg.archive_lag).unwrap_or_default();
        NodeTask::from_view(&view, 0, now, lag).filter(|t| t.fields.node == node)
    }
}

/// `raise_param_exc({upid => "unable to parse worker upid"})`.
fn unparsable() -> Response {
    reply::param_error1("upid", "unable to parse worker upid")
}

/// `raise_param_exc({upid => "no such task"})`.
fn no_such_task() -> Response {
    reply::param_error1("upid", "no such task")
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    realm: Option<String>,
}

async fn login(State(app): State<App>, Form(form): Form<LoginForm>) -> Response {
    let username = match (&form.realm, form.username.contains('@')) {
        (Some(realm), false) => format!("{}@{realm}", form.username),
        _ => form.username.clone(),
    };
    let answer = app.cfg.accounts.login(&app.ctx, &username, &form.password);
    if answer.status() == StatusCode::UNAUTHORIZED && !app.cfg.unauthorized_delay.is_zero() {
        tokio::time::sleep(app.cfg.unauthorized_delay).await;
    }
    answer
}

async fn nodes(State(app): State<App>, call: Call) -> Response {
    if let Some(r) = app.rejection(&call).await {
        return r;
    }
    reply::data(json!(app
        .cfg
        .nodes
        .iter()
        .map(|n| json!({"node": n, "status": "online", "type": "node"}))
        .collect::<Vec<_>>()))
}

async fn status(State(app): State<App>, task: TaskCall) -> Response {
    if let Err(r) = app.admit_task_call(&task, params::NODE_UPID).await {
        return *r;
    }
    match app.file(&task.node, &task.upid) {
        Some(t) => reply::data(t.status_json()),
        None => no_such_task(),
    }
}

/// `upid_index`: the two children, whatever the UPID (no check at all).
async fn task_index(State(app): State<App>, task: TaskCall) -> Response {
    if let Some(r) = app.rejection(&task.call).await {
        return r;
    }
    let path = [("node", task.node.as_str()), ("upid", task.upid.as_str())];
    if let Err(r) = params::validate(params::NODE_UPID, &path, &[]) {
        return *r;
    }
    reply::data(json!([{"name": "log"}, {"name": "status"}]))
}

async fn log(State(app): State<App>, task: TaskCall) -> Response {
    let p = match app.admit_task_call(&task, params::TASK_LOG).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    // No "no such task" check here: a missing file is one log line.
    let file = app.file(&task.node, &task.upid);
    if p.get("download").is_some_and(|d| d == "1") {
        if p.contains_key("start") || p.contains_key("limit") {
            return reply::exception(
                StatusCode::INTERNAL_SERVER_ERROR,
                "'download' cannot be used together with 'start' or 'limit' parameters\n",
                None,
            );
        }
        let Some(t) = file else {
            return reply::exception(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Could not open file - No such file or directory\n",
                None,
            );
        };
        let body: String = t.log.iter().map(|l| format!("{l}\n")).collect();
        return ([(header::CONTENT_TYPE, "text/plain")], body).into_response();
    }
    let start = params::int(&p, "start").unwrap_or(0).max(0) as u64;
    let limit = params::int(&p, "limit").unwrap_or(50).max(0) as u64;
    let (total, lines) = tasks::dump_log(file.as_ref().map(|t| t.log.as_slice()), start, limit);
    reply::data_with_total(json!(lines), total)
}

async fn stop(State(app): State<App>, task: TaskCall) -> Response {
    if let Err(r) = app.admit_task_call(&task, params::NODE_UPID).await {
        return *r;
    }
    if app.file(&task.node, &task.upid).is_none() {
        return no_such_task();
    }
    // check_worker($upid, 1): kill the worker if it runs; a stopped one is
    // no error.
    match app.ctx.engine.cancel(&task.upid) {
        Ok(()) | Err(EngineError::Finished) => reply::data(Value::Null),
        Err(EngineError::NotFound) => no_such_task(),
    }
}

/// The filters of `node_tasks`, as its `$filter_task` closure applies them.
struct ListFilter {
    userfilter: Option<String>,
    typefilter: Option<String>,
    vmid: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    statuses: [bool; 4],
    start: i64,
}

impl ListFilter {
    fn from_params(p: &BTreeMap<String, String>) -> Self {
        let errors = p.get("errors").is_some_and(|e| e == "1");
        // ok, warning, error, unknown.
        let statuses = match (&p.get("statusfilter"), errors) {
            (Some(list), false) => {
                let mut s = [false; 4];
                for v in params::split_list(list) {
                    match v.to_ascii_lowercase().as_str() {
                        "ok" => s[0] = true,
                        "warning" => s[1] = true,
                        "error" => s[2] = true,
                        _ => s[3] = true,
                    }
                }
                s
            }
            (_, true) => [false, true, true, true],
            (None, false) => [true; 4],
        };
        ListFilter {
            userfilter: p.get("userfilter").filter(|u| !u.is_empty()).cloned(),
            typefilter: p.get("typefilter").filter(|t| !t.is_empty()).cloned(),
            vmid: p.get("vmid").cloned(),
            since: params::int(p, "since"),
            until: params::int(p, "until"),
            statuses,
            start: params::int(p, "start").unwrap_or(0),
        }
    }

    /// Whether `task` (whose status, before the list marks it, is
    /// `status`) passes, counting it as `$count` does.
    fn admits(&self, task: &NodeTask, status: Option<&str>, count: &mut i64, limit: i64) -> bool {
        if let Some(u) = &self.userfilter {
            if !task
                .filter_user()
                .to_lowercase()
                .contains(&u.to_lowercase())
            {
                return false;
            }
        }
        let f = &task.fields;
        if self.typefilter.as_ref().is_some_and(|t| *t != f.task_type) {
            return false;
        }
        if self
            .vmid
            .as_ref()
            .is_some_and(|v| f.id.is_empty() || *v != f.id)
        {
            return false;
        }
        if self.since.is_some_and(|s| f.starttime < s)
            || self.until.is_some_and(|u| f.starttime > u)
        {
            return false;
        }
        let idx = match tasks::status_type(status) {
            "ok" => 0,
            "warning" => 1,
            "error" => 2,
            _ => 3,
        };
        if !self.statuses[idx] {
            return false;
        }
        let counted = *count;
        *count += 1;
        counted >= self.start && limit > 0
    }
}

async fn node_tasks(State(app): State<App>, Path(node): Path<String>, call: Call) -> Response {
    if let Some(r) = app.rejection(&call).await {
        return r;
    }
    let path = [("node", node.as_str())];
    let p = match params::validate(params::NODE_TASKS, &path, &call.pairs()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Some(r) = app.unknown_node(&node) {
        return r;
    }
    let source = p.get("source").map_or("archive", String::as_str).to_owned();
    let mut limit = params::int(&p, "limit").unwrap_or(50);
    let filter = ListFilter::from_params(&p);
    let all = app.node_tasks(&node);
    let mut count = 0i64;
    let mut out = Vec::new();
    if source == "active" || source == "all" {
        for t in all.iter().filter(|t| !t.saved) {
            // The active file holds no status for a task not yet archived.
            if filter.admits(t, None, &mut count, limit) {
                out.push(t.active_entry());
                limit -= 1;
            }
        }
    }
    if source != "active" {
        let mut archived: Vec<&NodeTask> = all.iter().filter(|t| t.saved).collect();
        archived.sort_by(|a, b| b.ended.cmp(&a.ended).then(a.order.cmp(&b.order)));
        for t in archived {
            let status = t.exitstatus();
            if filter.admits(t, status.as_deref(), &mut count, limit) {
                out.push(t.archive_entry());
                limit -= 1;
            }
        }
    }
    reply::data_with_total(Value::Array(out), usize::try_from(count).unwrap_or(0))
}

/// `/cluster/tasks`: each node's broadcast list: its running workers and
/// its 25 most recent finished tasks.
async fn cluster_tasks(State(app): State<App>, call: Call) -> Response {
    if let Some(r) = app.rejection(&call).await {
        return r;
    }
    let mut out = Vec::new();
    for node in &app.cfg.nodes {
        let all = app.node_tasks(node);
        out.extend(
            all.iter()
                .filter(|t| !t.saved)
                .map(|t| (t.fields.starttime, t.cluster_entry())),
        );
        let mut finished: Vec<&NodeTask> = all.iter().filter(|t| t.saved).collect();
        finished.sort_by_key(|t| std::cmp::Reverse(t.fields.starttime));
        out.extend(
            finished
                .iter()
                .take(25)
                .map(|t| (t.fields.starttime, t.cluster_entry())),
        );
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    reply::data(Value::Array(out.into_iter().map(|(_, v)| v).collect()))
}

/// Paths no handler serves: `rest_handler`'s 501 under `/api2/json`,
/// `AnyEvent.pm`'s `no such uri` elsewhere.
async fn not_implemented(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    match uri.path().strip_prefix("/api2/json") {
        Some(rel) => reply::exception(
            StatusCode::NOT_IMPLEMENTED,
            &format!("Method '{method} {rel}' not implemented"),
            None,
        ),
        None => reply::server_error(StatusCode::NOT_IMPLEMENTED, "no such uri"),
    }
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
            .fallback(not_implemented)
            .with_state(app)
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        reply::exception(status, &format!("{message}\n"), None)
    }

    /// Attributes read: `node` (default: round-robin over the nodes),
    /// `type` (default: the kind), `id` (default empty), `user` (default
    /// `root@pam`; a token's tasks name it, `root@pam!ci`), `final_line`
    /// (the log's last line; empty for a worker that never wrote one, whose
    /// exit status is then `unexpected status`).
    fn create_task(&self, ctx: &SimContext, mut spec: TaskSpec) -> String {
        let n = ctx.engine.next_number();
        let node = spec.attrs.get("node").cloned().unwrap_or_else(|| {
            let i = self.next_node.fetch_add(1, Ordering::Relaxed);
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
        ] {
            spec.attrs.insert(k.into(), v);
        }
        ctx.engine.create_with_id(upid.clone(), spec);
        upid
    }
}
