//! The routes of ocp-express's `TaskController`
//! (`task/task-service/.../web/TaskController.java`), served under both
//! `/api/v1/tasks/instances` (ocp-express) and `/api/v2/tasks/instances`
//! (OCP, the seed document, obdiag), with Spring's answers around them.

use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::dag::{Refusal, SimTask};
use super::login;
use super::render;
use super::App;

/// The `{id}` of a task route, admitted: the credentials checked, then the
/// id read as a Long (what every single-task route checks first).
pub(crate) struct AdmittedTask(u64);

impl FromRequestParts<App> for AdmittedTask {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let Path(id) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        app.admit(&parts.headers, &id)
            .map(AdmittedTask)
            .map_err(|r| *r)
    }
}

/// `ErrorCodes.TASK_NOT_EXISTS`: thrown without arguments, so the message
/// keeps its `{0}`.
const NOT_EXISTS: (i64, &str) = (20000, "The {0} task does not exist.");

impl App {
    fn trace(&self) -> u64 {
        self.ocp.tasks.next_trace()
    }

    /// A `SuccessResponse` (`Some(data)`) or a `NoDataResponse` (`None`).
    pub(crate) fn ok(&self, data: Option<Value>) -> Response {
        let mut body = render::envelope(self.ctx.clock(), 200, self.trace());
        if let Some(d) = data {
            body.insert("data".into(), d);
        }
        (StatusCode::OK, Json(Value::Object(body))).into_response()
    }

    /// An `ErrorResponse`.
    pub(crate) fn fail(
        &self,
        status: StatusCode,
        code: i64,
        message: &str,
        debug: Option<&str>,
    ) -> Response {
        let mut body = render::envelope(self.ctx.clock(), status.as_u16(), self.trace());
        body.insert("error".into(), render::api_error(code, message, debug));
        (status, Json(Value::Object(body))).into_response()
    }

    fn not_exists(&self) -> Response {
        self.fail(StatusCode::NOT_FOUND, NOT_EXISTS.0, NOT_EXISTS.1, None)
    }

    fn refused(&self, why: Refusal) -> Response {
        match why {
            Refusal::StateInvalid { id, state } => self.fail(
                StatusCode::BAD_REQUEST,
                20003,
                &format!("This operation is not supported for the {id} task in the {state} state."),
                None,
            ),
            Refusal::ProhibitRollback => self.fail(
                StatusCode::BAD_REQUEST,
                20004,
                "Task {0} can not rollback.",
                None,
            ),
        }
    }

    /// Spring Security: a session cookie, else HTTP Basic when it is
    /// enabled (`handleAuthFailed` for bad credentials,
    /// `CustomAuthenticationEntryPoint` without any).
    pub(crate) fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        let cookie = headers.get("cookie").and_then(|v| v.to_str().ok());
        if let Some(id) = cookie.and_then(login::session_cookie) {
            if self.ocp.sessions.is_open(id) && self.ctx.auth.valid() {
                return None;
            }
        }
        let header = headers.get("authorization").and_then(|v| v.to_str().ok());
        let basic = header
            .filter(|_| self.ocp.basic_auth)
            .and_then(|v| v.strip_prefix("Basic "));
        let Some(basic) = basic else {
            return Some(self.fail(
                StatusCode::UNAUTHORIZED,
                0,
                "The current user has not logged on or a logon error has occurred. Please log on and try again.",
                Some("Full authentication is required to access this resource"),
            ));
        };
        let given = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let expected = format!("{}:{}", self.ocp.user, self.ocp.password);
        match given {
            Some(g) if g == expected && self.ctx.auth.valid() => None,
            _ => Some(self.fail(
                StatusCode::UNAUTHORIZED,
                0,
                "Bad credentials",
                Some("Bad credentials"),
            )),
        }
    }

    /// `MethodArgumentTypeMismatchException` for a path id that is no Long.
    /// Credentials, then the task id: what every task route checks first.
    fn admit(&self, headers: &HeaderMap, id: &str) -> Result<u64, Box<Response>> {
        if let Some(r) = self.rejection(headers) {
            return Err(Box::new(r));
        }
        self.long("taskInstanceId", id)
    }

    /// Credentials, the task id (checked, never used: ocp-express finds a
    /// subtask by its own id), then the subtask id.
    fn admit_subtask(
        &self,
        headers: &HeaderMap,
        id: &str,
        sid: &str,
    ) -> Result<u64, Box<Response>> {
        self.admit(headers, id)?;
        self.long("subtaskInstanceId", sid)
    }

    fn long(&self, name: &str, value: &str) -> Result<u64, Box<Response>> {
        value.parse().map_err(|_| {
            Box::new(self.fail(
                StatusCode::BAD_REQUEST,
                0,
                &format!("The parameter '{name}' of value '{value}' could not be converted to type 'Long'"),
                None,
            ))
        })
    }
}

/// `GET …/instances`: `keyword` (name, case-insensitive) or OCP's `name`,
/// `status` (repeated or comma-separated), OCP's `type`, `clusterName`,
/// `clusterId`, `tenantName`, `tenantId`, `hostId`; `page` from 1, `size`
/// capped at 2000 (Spring's default `max-page-size`; ocp-express asks for
/// `Integer.MAX_VALUE` by default), `sort` (`id,desc` by default).
pub(crate) async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
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
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_uppercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let num = |k: &str| one(k).and_then(|v| v.parse::<u64>().ok());
    let page = num("page").unwrap_or(1).max(1);
    let size = num("size").unwrap_or(2000).clamp(1, 2000);
    let keyword = one("keyword")
        .or_else(|| one("name"))
        .map(|k| k.to_uppercase());
    let mut tasks = app.ocp.tasks.snapshot();
    tasks.retain(|t| {
        let cluster = t.spec.cluster.as_ref();
        let tenant = t.spec.tenant.as_ref();
        keyword
            .as_ref()
            .is_none_or(|k| t.spec.name.to_uppercase().contains(k))
            && (statuses.is_empty() || statuses.iter().any(|s| s == t.status.as_str()))
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
        .map(|t| render::task_json(app.ctx.clock(), t, false))
        .collect();
    app.ok(Some(json!({
        "contents": contents,
        "page": {"totalElements": total, "totalPages": total.div_ceil(size), "number": page, "size": size},
    })))
}

pub(crate) async fn detail(State(app): State<App>, AdmittedTask(id): AdmittedTask) -> Response {
    match app
        .ocp
        .tasks
        .with_task(id, |t, _| render::task_json(app.ctx.clock(), t, true))
    {
        Some(v) => app.ok(Some(v)),
        None => app.not_exists(),
    }
}

/// A task action: `Ok(Some(data))` for `SuccessResponse`, `Ok(None)` for
/// `NoDataResponse`.
type Answer = Option<Result<Option<Value>, Refusal>>;

fn answer(app: &App, outcome: Answer) -> Response {
    match outcome {
        None => app.not_exists(),
        Some(Err(why)) => app.refused(why),
        Some(Ok(data)) => app.ok(data),
    }
}

/// `POST …/{id}/retry`: answers the `WrappedTaskInstance`.
pub(crate) async fn retry(State(app): State<App>, AdmittedTask(id): AdmittedTask) -> Response {
    let clock = app.ctx.clock();
    let outcome = app.ocp.tasks.with_task(id, |t, now| {
        t.retry(now)
            .map(|()| Some(render::task_json(clock, t, true)))
    });
    answer(&app, outcome)
}

/// `POST …/{id}/rollback`: a `NoDataResponse`.
pub(crate) async fn rollback(State(app): State<App>, AdmittedTask(id): AdmittedTask) -> Response {
    let outcome = app
        .ocp
        .tasks
        .with_task(id, |t, now| t.rollback(now).map(|()| None));
    answer(&app, outcome)
}

/// `POST …/{id}/subtasks/{sid}/{cancel|retry|skip}`: the subtask is found
/// by its own id (ocp-express never checks it belongs to the task in the
/// path); retry answers the `SubtaskInstance`, the others no data.
pub(crate) async fn subtask_action(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, sid, action)): Path<(String, String, String)>,
) -> Response {
    let sid = match app.admit_subtask(&headers, &id, &sid) {
        Ok(sid) => sid,
        Err(r) => return *r,
    };
    if !matches!(action.as_str(), "cancel" | "retry" | "skip") {
        return app.fail(StatusCode::NOT_FOUND, 0, "No handler found", None);
    }
    let clock = app.ctx.clock();
    let outcome = app.ocp.tasks.with_subtask(sid, |t: &mut SimTask, i, now| {
        let done = match action.as_str() {
            "cancel" => t.cancel_sub(i, now),
            "retry" => t.retry_sub(i, now),
            _ => t.skip_sub(i, now),
        };
        done.map(|()| (action == "retry").then(|| render::sub_json(clock, t, &t.subs[i], true)))
    });
    answer(&app, outcome)
}

/// `GET …/{id}/subtasks/{sid}/log`: the subtask's log lines joined by
/// `\n`; a subtask that does not exist has an empty log (no check).
pub(crate) async fn sub_log(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let sid = match app.admit_subtask(&headers, &id, &sid) {
        Ok(sid) => sid,
        Err(r) => return *r,
    };
    let log = app
        .ocp
        .tasks
        .with_subtask(sid, |t, i, _| t.subs[i].log.join("\n"))
        .unwrap_or_default();
    app.ok(Some(json!({ "log": log })))
}

/// `GET /api/v1/loginKey` (`IamController.getLoginKey`), open to all.
pub(crate) async fn login_key(State(app): State<App>) -> Response {
    app.ok(Some(json!({"publicKey": login::public_key_base64()})))
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /api/v1/login`: Spring's form login with the RSA-encrypted
/// password; a session cookie on success.
pub(crate) async fn login(
    State(app): State<App>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let password = login::decrypt(&form.password);
    let ok = form.username == app.ocp.user
        && password.as_deref() == Some(app.ocp.password.as_str())
        && app.ctx.auth.valid();
    if !ok {
        return app.fail(
            StatusCode::UNAUTHORIZED,
            10004,
            "Bad credentials, remaining login attempts: 4",
            None,
        );
    }
    let id = app.ocp.sessions.open(app.trace());
    let mut resp = app.ok(Some(json!({"location": "/", "needChangePassword": false})));
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("JSESSIONID={id}; Path=/; HttpOnly"))
    {
        resp.headers_mut().insert(axum::http::header::SET_COOKIE, v);
    }
    resp
}
