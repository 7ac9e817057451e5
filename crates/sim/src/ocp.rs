//! `ocp`: OceanBase OCP task instances (`/api/v2/tasks/instances`).
//!
//! Tasks are DAGs of subtasks that run when their upstreams have succeeded
//! (parallel branches, marked by `paralleIdx`, run side by side), fail where
//! scripted, and answer the documented actions: retry (failed subtasks run
//! again, `runTime` grows, operation RETRY), rollback (executed subtasks are
//! undone in reverse order, operation ROLLBACK; refused when prohibited),
//! skip (a failed subtask becomes SUCCESSFUL, operation SKIP, downstream
//! continues), cancel (a running subtask goes CANCELING, then FAILED). The
//! state is computed lazily from the clock at each request, at the exact
//! times events happen, so a test advancing a manual clock sees the same
//! history as one polling in real time.
//!
//! Answers use OCP's envelope (`data`, `successful`, `timestamp`,
//! `duration`, `status`, `traceId`, `server`; `error {code, message}` on
//! failure); subtasks come in no particular order (clients must sort by
//! `seriesId`); HTTP Basic auth.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{FixedOffset, Offset, SecondsFormat};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::clock::SimClock;
use crate::engine::{SimOutcome, TaskSpec};
use crate::server::{SimContext, Vendor};

/// One scripted subtask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcpSubtaskSpec {
    /// Name.
    pub name: String,
    /// Run time of one run (rollback takes half).
    #[serde(with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// Indices (in the task's list) of the subtasks it waits for.
    #[serde(default)]
    pub upstreams: Vec<usize>,
    /// Parallel index (`-1`: not parallel).
    #[serde(default = "minus_one")]
    pub parallel_idx: i64,
    /// The first this-many runs fail.
    #[serde(default)]
    pub fail_runs: u32,
    /// Log lines of each run.
    #[serde(default)]
    pub log: Vec<String>,
    /// Whether it may not be rolled back.
    #[serde(default)]
    pub prohibit_rollback: bool,
}

fn minus_one() -> i64 {
    -1
}

impl OcpSubtaskSpec {
    /// A subtask that succeeds after `duration`, after `upstreams`.
    pub fn new(name: impl Into<String>, duration: Duration, upstreams: &[usize]) -> Self {
        OcpSubtaskSpec {
            name: name.into(),
            duration,
            upstreams: upstreams.to_vec(),
            parallel_idx: -1,
            fail_runs: 0,
            log: Vec::new(),
            prohibit_rollback: false,
        }
    }
    /// Its first `runs` runs fail (`u32::MAX`: always).
    pub fn failing(mut self, runs: u32) -> Self {
        self.fail_runs = runs;
        self
    }
    /// Marks it as branch `idx` of a parallel group.
    pub fn parallel(mut self, idx: i64) -> Self {
        self.parallel_idx = idx;
        self
    }
    /// Log lines.
    pub fn log<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.log = lines.into_iter().map(Into::into).collect();
        self
    }
}

/// A scripted task instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcpTaskSpec {
    /// Name, e.g. `Create cluster`.
    pub name: String,
    /// `MANUAL`, `SYS_ONECE`, …
    #[serde(default = "manual")]
    pub task_type: String,
    /// Cluster id and name.
    #[serde(default)]
    pub cluster: Option<(u64, String)>,
    /// Tenant id and name.
    #[serde(default)]
    pub tenant: Option<(u64, String)>,
    /// Host id.
    #[serde(default)]
    pub host_id: Option<u64>,
    /// Whether rollback is prohibited.
    #[serde(default)]
    pub prohibit_rollback: bool,
    /// Subtasks; their order is their `seriesId`.
    pub subtasks: Vec<OcpSubtaskSpec>,
}

fn manual() -> String {
    "MANUAL".into()
}

impl OcpTaskSpec {
    /// A manual task on cluster `(1, "obcluster")`.
    pub fn new(name: impl Into<String>, subtasks: Vec<OcpSubtaskSpec>) -> Self {
        OcpTaskSpec {
            name: name.into(),
            task_type: manual(),
            cluster: Some((1, "obcluster".into())),
            tenant: None,
            host_id: None,
            prohibit_rollback: false,
            subtasks,
        }
    }
    /// Prohibits rollback.
    pub fn prohibit_rollback(mut self) -> Self {
        self.prohibit_rollback = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Pending,
    Running,
    Canceling,
    Failed,
    Successful,
}

impl Sub {
    fn as_str(self) -> &'static str {
        match self {
            Sub::Pending => "PENDING",
            Sub::Running => "RUNNING",
            Sub::Canceling => "CANCELING",
            Sub::Failed => "FAILED",
            Sub::Successful => "SUCCESSFUL",
        }
    }
}

/// How long a cancelled subtask stays CANCELING.
const CANCEL_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct SimSub {
    id: u64,
    spec: OcpSubtaskSpec,
    upstreams: Vec<u64>,
    downstream: Vec<u64>,
    status: Sub,
    operation: &'static str,
    run_time: u32,
    created: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
    not_before: Instant,
    cancel_at: Option<Instant>,
    rolled_back: bool,
    log: Vec<String>,
}

#[derive(Debug, Clone)]
struct SimTask {
    id: u64,
    spec: OcpTaskSpec,
    created: Instant,
    operation: &'static str,
    subs: Vec<SimSub>,
    /// When a rollback started.
    rollback_from: Option<Instant>,
}

impl SimTask {
    fn sub_index(&self, id: u64) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    fn halted(&self) -> bool {
        self.subs.iter().any(|s| s.status == Sub::Failed) || self.rollback_from.is_some()
    }

    /// Applies every event that happened up to `now`, at its own time.
    fn advance(&mut self, now: Instant) {
        loop {
            let mut changed = false;
            for i in 0..self.subs.len() {
                let sub = &self.subs[i];
                match sub.status {
                    Sub::Canceling => {
                        let at = sub.cancel_at.unwrap_or(now) + CANCEL_DELAY;
                        if at <= now {
                            let s = &mut self.subs[i];
                            s.status = Sub::Failed;
                            s.finished = Some(at);
                            s.log.push(format!("subtask {} cancelled", s.spec.name));
                            changed = true;
                        }
                    }
                    Sub::Running if !sub.rolled_back && self.rollback_from.is_none() => {
                        let at = sub.started.unwrap_or(now) + sub.spec.duration;
                        if at <= now {
                            let s = &mut self.subs[i];
                            let fails = s.run_time <= s.spec.fail_runs;
                            s.status = if fails { Sub::Failed } else { Sub::Successful };
                            s.finished = Some(at);
                            let lines = s.spec.log.clone();
                            s.log.extend(lines);
                            s.log.push(if fails {
                                format!(
                                    "ERROR: subtask {} failed on run {}",
                                    s.spec.name, s.run_time
                                )
                            } else {
                                format!("subtask {} finished", s.spec.name)
                            });
                            changed = true;
                        }
                    }
                    Sub::Pending if !self.halted() => {
                        let ups: Option<Vec<Instant>> = sub
                            .upstreams
                            .iter()
                            .map(|u| {
                                let up = self.subs.iter().find(|s| s.id == *u)?;
                                (up.status == Sub::Successful)
                                    .then_some(up.finished.unwrap_or(up.created))
                            })
                            .collect();
                        if let Some(ups) = ups {
                            let at = ups.into_iter().fold(sub.not_before, Instant::max);
                            if at <= now {
                                let s = &mut self.subs[i];
                                s.status = Sub::Running;
                                s.started = Some(at);
                                s.finished = None;
                                s.run_time += 1;
                                s.log.push(format!(
                                    "start running subtask {} (run {})",
                                    s.spec.name, s.run_time
                                ));
                                changed = true;
                            }
                        }
                    }
                    _ => {}
                }
            }
            changed |= self.advance_rollback(now);
            if !changed {
                return;
            }
        }
    }

    /// Rolls executed subtasks back one by one, highest `seriesId` first.
    fn advance_rollback(&mut self, now: Instant) -> bool {
        let Some(mut at) = self.rollback_from else {
            return false;
        };
        let mut changed = false;
        let mut order: Vec<usize> = (0..self.subs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(i));
        for i in order {
            let s = &self.subs[i];
            if s.run_time == 0 && !s.rolled_back {
                continue;
            }
            if s.rolled_back {
                at = at.max(s.finished.unwrap_or(at));
                continue;
            }
            let end = at + s.spec.duration / 2;
            if end > now {
                if s.status != Sub::Running || s.operation != "ROLLBACK" {
                    let s = &mut self.subs[i];
                    s.status = Sub::Running;
                    s.operation = "ROLLBACK";
                    s.started = Some(at);
                    s.log.push(format!("rolling back subtask {}", s.spec.name));
                    changed = true;
                }
                return changed;
            }
            let s = &mut self.subs[i];
            s.status = Sub::Successful;
            s.operation = "ROLLBACK";
            s.rolled_back = true;
            s.started = Some(at);
            s.finished = Some(end);
            s.log.push(format!("subtask {} rolled back", s.spec.name));
            at = end;
            changed = true;
        }
        changed
    }

    fn status(&self) -> &'static str {
        let any = |st: Sub| self.subs.iter().any(|s| s.status == st);
        if self.rollback_from.is_some() {
            return if any(Sub::Running) {
                "RUNNING"
            } else {
                "SUCCESSFUL"
            };
        }
        if any(Sub::Running) || any(Sub::Canceling) {
            "RUNNING"
        } else if any(Sub::Failed) {
            "FAILED"
        } else if self.subs.iter().all(|s| s.status == Sub::Successful) {
            "SUCCESSFUL"
        } else {
            "RUNNING"
        }
    }

    fn finish_time(&self) -> Option<Instant> {
        matches!(self.status(), "FAILED" | "SUCCESSFUL")
            .then(|| self.subs.iter().filter_map(|s| s.finished).max())
            .flatten()
    }
}

/// The OCP simulator. Clones share one set of tasks, so a test can keep one
/// to script DAG tasks with [`Ocp::create`].
#[derive(Debug, Clone)]
pub struct Ocp {
    user: String,
    password: String,
    state: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    clock: OnceLock<SimClock>,
    tasks: Mutex<BTreeMap<u64, SimTask>>,
    next_task: AtomicU64,
    next_sub: AtomicU64,
    next_trace: AtomicU64,
}

impl Ocp {
    /// Accepts HTTP Basic `user` / `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Ocp {
            user: user.into(),
            password: password.into(),
            state: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, SimTask>> {
        self.state.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn clock(&self) -> SimClock {
        self.state
            .clock
            .get()
            .cloned()
            .unwrap_or_else(SimClock::real)
    }

    /// Creates a DAG task; its id. The simulator must have been started.
    pub fn create(&self, spec: OcpTaskSpec) -> u64 {
        let now = self.clock().now();
        let id = 1000 + self.state.next_task.fetch_add(1, Ordering::Relaxed);
        let first = 10_001
            + self
                .state
                .next_sub
                .fetch_add(spec.subtasks.len() as u64, Ordering::Relaxed);
        let ids: Vec<u64> = (0..spec.subtasks.len() as u64).map(|i| first + i).collect();
        let subs = spec
            .subtasks
            .iter()
            .enumerate()
            .map(|(i, s)| SimSub {
                id: ids[i],
                spec: s.clone(),
                upstreams: s
                    .upstreams
                    .iter()
                    .filter_map(|u| ids.get(*u).copied())
                    .collect(),
                downstream: spec
                    .subtasks
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.upstreams.contains(&i))
                    .map(|(j, _)| ids[j])
                    .collect(),
                status: Sub::Pending,
                operation: "EXECUTE",
                run_time: 0,
                created: now,
                started: None,
                finished: None,
                not_before: now,
                cancel_at: None,
                rolled_back: false,
                log: Vec::new(),
            })
            .collect();
        self.lock().insert(
            id,
            SimTask {
                id,
                spec,
                created: now,
                operation: "EXECUTE",
                subs,
                rollback_from: None,
            },
        );
        id
    }

    /// Subtask ids of a task, in `seriesId` order.
    pub fn subtask_ids(&self, task: u64) -> Vec<u64> {
        self.lock()
            .get(&task)
            .map(|t| t.subs.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }

    /// Forgets a task (404 from then on).
    pub fn remove(&self, task: u64) -> bool {
        self.lock().remove(&task).is_some()
    }
}

/// OCP answers in the server's zone; this one is UTC+8.
fn millis_since(clock: &SimClock, at: Instant) -> String {
    let zone = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix());
    clock
        .wall(at)
        .with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    ocp: Ocp,
}

impl App {
    fn envelope(
        &self,
        status: StatusCode,
        data: Option<Value>,
        error: Option<(&str, String)>,
    ) -> Response {
        let trace = self.ocp.state.next_trace.fetch_add(1, Ordering::Relaxed);
        let mut body = json!({
            "successful": error.is_none(),
            "timestamp": millis_since(self.ctx.clock(), self.ctx.clock().now()),
            "duration": 3 + trace % 20,
            "status": status.as_u16(),
            "traceId": format!("{:016x}", 0x0c9_0000_0000 + trace),
            "server": "ocp-sim",
        });
        if let Some(d) = data {
            body["data"] = d;
        }
        if let Some((code, message)) = error {
            body["error"] = json!({ "code": code, "message": message, "target": null });
        }
        (status, Json(body)).into_response()
    }

    fn ok(&self, data: Value) -> Response {
        self.envelope(StatusCode::OK, Some(data), None)
    }

    fn fail(&self, status: StatusCode, code: &str, message: String) -> Response {
        self.envelope(status, None, Some((code, message)))
    }

    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        let expected = format!("{}:{}", self.ocp.user, self.ocp.password);
        match given {
            Some(g) if g == expected && self.ctx.auth.valid() => None,
            _ => Some(self.fail(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Authentication failed: bad credentials".into(),
            )),
        }
    }

    /// Runs `f` on task `id` advanced to now.
    fn with_task<T>(&self, id: u64, f: impl FnOnce(&mut SimTask, Instant) -> T) -> Option<T> {
        let now = self.ctx.clock().now();
        let mut tasks = self.ocp.lock();
        let task = tasks.get_mut(&id)?;
        task.advance(now);
        Some(f(task, now))
    }

    fn not_found(&self, id: u64) -> Response {
        self.fail(
            StatusCode::NOT_FOUND,
            "10004",
            format!("Task instance not found, id={id}"),
        )
    }

    fn sub_json(&self, t: &SimTask, s: &SimSub, series: usize, detail: bool) -> Value {
        let clock = self.ctx.clock();
        let mut v = json!({
            "id": s.id,
            "name": s.spec.name,
            "description": format!("{} of {}", s.spec.name, t.spec.name),
            "status": s.status.as_str(),
            "operation": s.operation,
        });
        if detail {
            let extra = json!({
                "seriesId": series + 1,
                "timeout": 3600,
                "executor": "10.0.0.1",
                "runTime": s.run_time,
                "nodeType": "JAVA_TASK",
                "paralleIdx": s.spec.parallel_idx,
                "upstreams": s.upstreams,
                "downstream": s.downstream,
                "prohibitRollback": s.spec.prohibit_rollback,
                "createTime": millis_since(clock, s.created),
                "startTime": s.started.map(|i| millis_since(clock, i)),
                "finishTime": s.finished.map(|i| millis_since(clock, i)),
            });
            if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
                a.extend(b);
            }
        }
        v
    }

    fn task_json(&self, t: &SimTask, detail: bool) -> Value {
        let clock = self.ctx.clock();
        // The response order means nothing: newest subtask first.
        let subs: Vec<Value> = t
            .subs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, s)| self.sub_json(t, s, i, detail))
            .collect();
        let mut v = json!({
            "id": t.id,
            "name": t.spec.name,
            "cluster": t.spec.cluster.as_ref().map(|(id, name)| json!({"id": id, "name": name, "obClusterId": id + 100, "type": "PRIMARY"})),
            "tenant": t.spec.tenant.as_ref().map(|(id, name)| json!({"id": id, "name": name, "obClusterId": id + 1000, "mode": "MYSQL"})),
            "creator": {"id": 1, "name": "admin"},
            "status": t.status(),
            "startTime": millis_since(clock, t.created),
            "finishTime": t.finish_time().map(|i| millis_since(clock, i)),
            "subtasks": subs,
        });
        if detail {
            let extra = json!({
                "taskDefinitionId": 7,
                "type": t.spec.task_type,
                "operation": t.operation,
                "executor": "10.0.0.1",
                "prohibitRollback": t.spec.prohibit_rollback,
                "createTime": millis_since(clock, t.created),
            });
            if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
                a.extend(b);
            }
        }
        v
    }
}

async fn list(State(app): State<App>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Some(r) = app.rejection(&headers) {
        return r;
    }
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let one = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let statuses: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| n == "status")
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let num = |k: &str| one(k).and_then(|v| v.parse::<u64>().ok());
    let page = num("page").unwrap_or(1).max(1);
    let size = num("size").unwrap_or(10).clamp(1, 2000);
    let now = app.ctx.clock().now();
    let mut tasks: Vec<SimTask> = {
        let mut all = app.ocp.lock();
        all.values_mut().for_each(|t| t.advance(now));
        all.values().cloned().collect()
    };
    tasks.retain(|t| {
        let cluster = t.spec.cluster.as_ref();
        let tenant = t.spec.tenant.as_ref();
        one("name").is_none_or(|n| t.spec.name.contains(&n))
            && (statuses.is_empty() || statuses.iter().any(|s| s == t.status()))
            && one("type").is_none_or(|ty| ty == t.spec.task_type)
            && one("clusterName").is_none_or(|n| cluster.is_some_and(|c| c.1.contains(&n)))
            && num("clusterId").is_none_or(|id| cluster.is_some_and(|c| c.0 == id))
            && one("tenantName").is_none_or(|n| tenant.is_some_and(|c| c.1 == n))
            && num("tenantId").is_none_or(|id| tenant.is_some_and(|c| c.0 == id))
            && num("hostId").is_none_or(|id| t.spec.host_id == Some(id))
    });
    match one("sort").as_deref().unwrap_or("id,desc") {
        "id,asc" => tasks.sort_by_key(|t| t.id),
        "name,asc" => tasks.sort_by(|a, b| a.spec.name.cmp(&b.spec.name)),
        "name,desc" => tasks.sort_by(|a, b| b.spec.name.cmp(&a.spec.name)),
        "startTime,asc" => tasks.sort_by_key(|t| (t.created, t.id)),
        "startTime,desc" => tasks.sort_by_key(|t| std::cmp::Reverse((t.created, t.id))),
        _ => tasks.sort_by_key(|t| std::cmp::Reverse(t.id)),
    }
    let total = tasks.len() as u64;
    let contents: Vec<Value> = tasks
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|t| app.task_json(t, false))
        .collect();
    app.ok(json!({
        "contents": contents,
        "page": {"totalElements": total, "totalPages": total.div_ceil(size), "number": page, "size": size},
    }))
}

async fn detail(State(app): State<App>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if let Some(r) = app.rejection(&headers) {
        return r;
    }
    match app.with_task(id, |t, _| app.task_json(t, true)) {
        Some(v) => app.ok(v),
        None => app.not_found(id),
    }
}

/// Why OCP refused an action.
struct Refusal(String);

/// `None`: no such task.
fn answer(app: &App, id: u64, result: Option<Result<Value, Refusal>>) -> Response {
    match result {
        None => app.not_found(id),
        Some(Err(Refusal(why))) => app.fail(StatusCode::BAD_REQUEST, "60018", why),
        Some(Ok(v)) => app.ok(v),
    }
}

async fn retry(State(app): State<App>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if let Some(r) = app.rejection(&headers) {
        return r;
    }
    let result = app.with_task(id, |t, now| {
        if t.status() != "FAILED" || t.rollback_from.is_some() {
            return Err(Refusal(format!(
                "Task {id} is {}, only a failed task can be retried",
                t.status()
            )));
        }
        t.operation = "RETRY";
        for s in t.subs.iter_mut().filter(|s| s.status == Sub::Failed) {
            s.status = Sub::Pending;
            s.operation = "RETRY";
            s.not_before = now;
        }
        t.advance(now);
        Ok(app.task_json(t, true))
    });
    answer(&app, id, result)
}

async fn rollback(State(app): State<App>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if let Some(r) = app.rejection(&headers) {
        return r;
    }
    let result = app.with_task(id, |t, now| {
        if t.spec.prohibit_rollback
            || t.subs
                .iter()
                .any(|s| s.run_time > 0 && s.spec.prohibit_rollback)
        {
            return Err(Refusal(format!("Task {id} prohibits rollback")));
        }
        if t.status() != "FAILED" {
            return Err(Refusal(format!(
                "Task {id} is {}, only a failed task can be rolled back",
                t.status()
            )));
        }
        t.operation = "ROLLBACK";
        t.rollback_from = Some(now);
        t.advance(now);
        Ok(app.task_json(t, true))
    });
    answer(&app, id, result)
}

async fn sub_action(app: &App, id: u64, sid: u64, action: &str) -> Response {
    let result = app.with_task(id, |t, now| {
        let Some(i) = t.sub_index(sid) else {
            return Err(Refusal(format!(
                "Subtask {sid} does not belong to task {id}"
            )));
        };
        let status = t.subs[i].status;
        let needed = if action == "cancel" {
            Sub::Running
        } else {
            Sub::Failed
        };
        if status != needed || t.rollback_from.is_some() {
            return Err(Refusal(format!(
                "Subtask {sid} is {}, cannot {action} it",
                status.as_str()
            )));
        }
        let s = &mut t.subs[i];
        match action {
            "cancel" => {
                s.status = Sub::Canceling;
                s.operation = "CANCEL";
                s.cancel_at = Some(now);
            }
            "retry" => {
                s.status = Sub::Pending;
                s.operation = "RETRY";
                s.not_before = now;
                t.operation = "RETRY";
            }
            _ => {
                s.status = Sub::Successful;
                s.operation = "SKIP";
                s.finished = Some(now);
                s.log.push(format!("subtask {} skipped", s.spec.name));
            }
        }
        t.advance(now);
        let i = t.sub_index(sid).unwrap_or(0);
        Ok(if action == "retry" {
            app.sub_json(t, &t.subs[i], i, true)
        } else {
            Value::Null
        })
    });
    match result {
        Some(Ok(Value::Null)) => app.envelope(StatusCode::OK, None, None),
        other => answer(app, id, other),
    }
}

/// `POST …/subtasks/{sid}/{cancel|retry|skip}`.
async fn subtask_action(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, sid, action)): Path<(u64, u64, String)>,
) -> Response {
    if let Some(r) = app.rejection(&headers) {
        return r;
    }
    match action.as_str() {
        "cancel" | "retry" | "skip" => sub_action(&app, id, sid, &action).await,
        _ => app.fail(
            StatusCode::NOT_FOUND,
            "10404",
            format!("No such subtask operation: {action}"),
        ),
    }
}

async fn sub_log(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, sid)): Path<(u64, u64)>,
) -> Response {
    if let Some(r) = app.rejection(&headers) {
        return r;
    }
    let result = app.with_task(id, |t, _| {
        t.sub_index(sid)
            .map(|i| json!({ "log": t.subs[i].log.join("\n") }))
            .ok_or_else(|| Refusal(format!("Subtask {sid} does not belong to task {id}")))
    });
    answer(&app, id, result)
}

impl Vendor for Ocp {
    fn name(&self) -> &'static str {
        "ocp"
    }

    fn router(&self, ctx: SimContext) -> Router {
        let _ = self.state.clock.set(ctx.clock().clone());
        let app = App {
            ctx,
            ocp: self.clone(),
        };
        let base = "/api/v2/tasks/instances";
        Router::new()
            .route(base, get(list))
            .route(&format!("{base}/{{id}}"), get(detail))
            .route(&format!("{base}/{{id}}/retry"), post(retry))
            .route(&format!("{base}/{{id}}/rollback"), post(rollback))
            .route(
                &format!("{base}/{{id}}/subtasks/{{sid}}/{{action}}"),
                post(subtask_action),
            )
            .route(&format!("{base}/{{id}}/subtasks/{{sid}}/log"), get(sub_log))
            .with_state(app)
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        let body = json!({
            "successful": false,
            "status": status.as_u16(),
            "traceId": "0000000000000000",
            "server": "ocp-sim",
            "error": {"code": status.as_u16().to_string(), "message": message},
        });
        (status, Json(body)).into_response()
    }

    /// A linear task: each step (or the whole task) becomes a subtask
    /// waiting for the previous one. A failing step's subtask always fails,
    /// and its name carries the failure message, since OCP reports failed
    /// subtasks by name.
    fn create_task(&self, _ctx: &SimContext, spec: TaskSpec) -> String {
        let steps: Vec<(String, Duration, Option<String>)> = if spec.steps.is_empty() {
            let failure = match &spec.outcome {
                SimOutcome::Failure { message, .. } => Some(message.clone()),
                _ => None,
            };
            vec![(spec.kind.clone(), spec.duration, failure)]
        } else {
            spec.steps
                .iter()
                .map(|s| {
                    let failure = match &s.outcome {
                        SimOutcome::Failure { message, .. } => Some(message.clone()),
                        _ => None,
                    };
                    (s.name.clone(), s.duration, failure)
                })
                .collect()
        };
        let subtasks = steps
            .into_iter()
            .enumerate()
            .map(|(i, (name, duration, failure))| {
                let ups: Vec<usize> = if i == 0 { vec![] } else { vec![i - 1] };
                match failure {
                    Some(message) => {
                        OcpSubtaskSpec::new(format!("{name} ({message})"), duration, &ups)
                            .failing(u32::MAX)
                            .log([format!("ERROR: {message}")])
                    }
                    None => OcpSubtaskSpec::new(name, duration, &ups).log(spec.log.clone()),
                }
            })
            .collect();
        self.create(OcpTaskSpec::new(spec.kind.clone(), subtasks))
            .to_string()
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
