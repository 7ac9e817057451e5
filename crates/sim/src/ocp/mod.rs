//! `ocp`: OceanBase OCP task instances, rebuilt from ocp-express's own code
//! (`TaskController`, `TaskService`, `TaskInstanceManagerImpl`,
//! `SubtaskInstanceManagerImpl`, the task engine's workers, the response
//! and error classes, `JacksonFactory`) and served where both ocp-express
//! (`/api/v1/tasks/instances`) and OCP (`/api/v2/tasks/instances`, the
//! seed document and obdiag's `ocp_task.py`) have it:
//!
//! * tasks are DAGs of subtasks (`PENDING` → `READY` → `RUNNING` →
//!   `SUCCESSFUL` / `FAILED`) that run when their upstreams succeeded,
//!   parallel branches side by side, failing where scripted (module `dag`);
//! * retry runs the failed subtasks again (`RETRY`, `runTime` + 1) and
//!   answers the task; rollback undoes every subtask that ran, downstream
//!   first, each ending `PENDING` again, the task then `SUCCESSFUL` with
//!   operation `ROLLBACK`, and answers **no data**; skip runs a failed
//!   subtask as a no-op (`SKIP`); cancel turns a running subtask
//!   `CANCELING`, then `FAILED` with operation `CANCEL`; refusals are `400`
//!   with `ApiError.code` 20003 or 20004 (an integer), a missing task `404`
//!   with 20000;
//! * JSON as Jackson writes it there (module `render`): nulls left out,
//!   `parallelIdx`, `downstreams`, `tenantInfo`, ISO times with `+08:00`.
//!
//! HTTP Basic auth, as OCP's public clients send it, and (with
//! [`Ocp::with_session_login`]) the login form and session cookie of
//! module `login`.

mod dag;
mod handlers;
pub mod login;
mod render;
mod spec;
mod store;
mod time;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::clock::SimClock;
use crate::context::{SimContext, Vendor};
use crate::engine::{SimOutcome, TaskSpec};
use crate::store::TaskStore;
pub use spec::{OcpSubtaskSpec, OcpTaskSpec};
use store::OcpTasks;

/// The OCP simulator. Clones share one set of tasks, so a test can keep one
/// to script DAG tasks with [`Ocp::create`].
#[derive(Debug, Clone)]
pub struct Ocp {
    user: String,
    password: String,
    tasks: Arc<OcpTasks>,
    basic_auth: bool,
    session_login: bool,
    sessions: login::Sessions,
}

impl Ocp {
    /// Accepts HTTP Basic `user` / `password`; tasks move in real time.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Ocp {
            user: user.into(),
            password: password.into(),
            tasks: Arc::new(OcpTasks::new(SimClock::real())),
            basic_auth: true,
            session_login: false,
            sessions: login::Sessions::default(),
        }
    }

    /// Serves the login form (`GET /api/v1/loginKey`, `POST /api/v1/login`)
    /// and accepts its `JSESSIONID` cookie.
    pub fn with_session_login(mut self) -> Self {
        self.session_login = true;
        self
    }

    /// Refuses HTTP Basic, as `ocp.iam.auth.basic.enabled = false` does.
    pub fn without_basic_auth(mut self) -> Self {
        self.basic_auth = false;
        self
    }

    /// The open sessions (a test ends them with [`login::Sessions::expire_all`]).
    pub fn sessions(&self) -> &login::Sessions {
        &self.sessions
    }

    /// Moves its tasks on `clock` (e.g. [`SimClock::manual`]) instead. Call
    /// it where the simulator is made, before cloning it or creating tasks:
    /// it starts a new, empty set of tasks.
    pub fn with_clock(mut self, clock: SimClock) -> Self {
        self.tasks = Arc::new(OcpTasks::new(clock));
        self
    }

    /// Creates a DAG task; its id.
    pub fn create(&self, spec: OcpTaskSpec) -> u64 {
        self.tasks.create(spec)
    }

    /// Subtask ids of a task, in `seriesId` order.
    pub fn subtask_ids(&self, task: u64) -> Vec<u64> {
        self.tasks.subtask_ids(task)
    }

    /// Forgets a task (404 from then on).
    pub fn remove(&self, task: u64) -> bool {
        self.tasks.remove_task(task)
    }
}

#[derive(Clone)]
struct App {
    ctx: SimContext,
    ocp: Ocp,
}

impl Vendor for Ocp {
    fn name(&self) -> &'static str {
        "ocp"
    }

    fn router(&self, ctx: SimContext) -> Router {
        let app = App {
            ctx,
            ocp: self.clone(),
        };
        let mut router = Router::new();
        for base in ["/api/v1/tasks/instances", "/api/v2/tasks/instances"] {
            router = router
                .route(base, get(handlers::list))
                .route(&format!("{base}/{{id}}"), get(handlers::detail))
                .route(&format!("{base}/{{id}}/retry"), post(handlers::retry))
                .route(&format!("{base}/{{id}}/rollback"), post(handlers::rollback))
                .route(
                    &format!("{base}/{{id}}/subtasks/{{sid}}/{{action}}"),
                    post(handlers::subtask_action),
                )
                .route(
                    &format!("{base}/{{id}}/subtasks/{{sid}}/log"),
                    get(handlers::sub_log),
                );
        }
        if self.session_login {
            router = router
                .route("/api/v1/loginKey", get(handlers::login_key))
                .route("/api/v1/login", post(handlers::login));
        }
        router.with_state(app)
    }

    fn task_store(&self) -> Option<Arc<dyn TaskStore>> {
        Some(self.tasks.clone())
    }

    fn error_response(&self, status: StatusCode, message: &str) -> Response {
        let mut body =
            render::envelope(self.tasks.clock(), status.as_u16(), self.tasks.next_trace());
        body.insert("error".into(), render::api_error(10010, message, None));
        (status, Json(serde_json::Value::Object(body))).into_response()
    }

    /// A linear task: each step (or the whole task) becomes a subtask
    /// waiting for the previous one. A failing step's subtask fails every
    /// run, or its first `fail_runs` runs when that attribute is set, and
    /// its name carries the failure message, since OCP reports failed
    /// subtasks by name.
    fn create_task(&self, _ctx: &SimContext, spec: TaskSpec) -> String {
        let fail_runs = spec
            .attrs
            .get("fail_runs")
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX);
        let failure = |o: &SimOutcome| match o {
            SimOutcome::Failure { message, .. } => Some(message.clone()),
            _ => None,
        };
        let steps: Vec<(String, std::time::Duration, Option<String>)> = if spec.steps.is_empty() {
            vec![(spec.kind.clone(), spec.duration, failure(&spec.outcome))]
        } else {
            spec.steps
                .iter()
                .map(|s| (s.name.clone(), s.duration, failure(&s.outcome)))
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
                            .with_fail_runs(fail_runs)
                            .with_log([format!("ERROR: {message}")])
                    }
                    None => OcpSubtaskSpec::new(name, duration, &ups).with_log(spec.log.clone()),
                }
            })
            .collect();
        self.create(OcpTaskSpec::new(spec.kind.clone(), subtasks))
            .to_string()
    }
}
