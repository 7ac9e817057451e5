//! OCP's JSON, as ocp-express writes it:
//!
//! * `core/.../response`: every answer is `successful`, `timestamp`,
//!   `duration`, `status`, `traceId`, `server` plus `data`
//!   (`SuccessResponse`), nothing else for `NoDataResponse` (a null `data`
//!   is left out), `error` for `ErrorResponse`; pages are `{contents, page:
//!   {totalElements, totalPages, number, size}}` with `number` from 1
//!   (`PaginatedResponse`);
//! * `common/.../JacksonFactory`: null fields are omitted (`NON_ABSENT`),
//!   properties sorted alphabetically, longs beyond 2^53 sent as strings;
//!   times are `OffsetDateTime` in ISO form with the server's offset and as
//!   many fraction digits as needed (the front end parses RFC 3339:
//!   `frontend/src/util/datetime.ts`);
//! * `task/.../model`: `WrappedTaskInstance`, `BasicTaskInstance`,
//!   `SubtaskInstance` (`parallelIdx`, `downstreams`),
//!   `BasicSubtaskInstance`, `BasicTenantInfo` (`tenantInfo`),
//!   `BasicCreatorInfo` (only `name`);
//! * `core/.../error/ApiError`: `code` is an `int` (0 when unset, never
//!   left out), `message`, `debugMessage` when there is one.

use serde_json::{json, Map, Value};

use super::dag::{SimSub, SimTask};
use crate::clock::SimClock;

use super::time::iso;

/// Adds `key: value` unless the value is absent (`NON_ABSENT`).
fn put(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        m.insert(key.to_owned(), v);
    }
}

/// A `SubtaskInstance` (`detail`) or a `BasicSubtaskInstance`.
pub(crate) fn sub_json(clock: &SimClock, t: &SimTask, s: &SimSub, detail: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    m.insert("name".into(), json!(s.spec.name));
    // SubtaskInstance.fromEntity copies the name into the description.
    m.insert("description".into(), json!(s.spec.name));
    m.insert("status".into(), json!(s.state.as_str()));
    m.insert("operation".into(), json!(s.op.as_str()));
    if detail {
        let _ = t;
        m.insert("seriesId".into(), json!(s.series));
        m.insert("timeout".into(), json!(3600));
        m.insert("executor".into(), json!("10.0.0.1:8180"));
        m.insert("runTime".into(), json!(s.run_time));
        m.insert("nodeType".into(), json!("JAVA_TASK"));
        m.insert("parallelIdx".into(), json!(s.spec.parallel_idx));
        m.insert("upstreams".into(), json!(s.upstreams));
        m.insert("downstreams".into(), json!(s.downstreams));
        m.insert("prohibitRollback".into(), json!(s.spec.prohibit_rollback));
        m.insert("createTime".into(), json!(iso(clock, s.created)));
        put(&mut m, "startTime", s.started.map(|i| json!(iso(clock, i))));
        put(
            &mut m,
            "finishTime",
            s.finished.map(|i| json!(iso(clock, i))),
        );
    }
    Value::Object(m)
}

/// A `WrappedTaskInstance` (`detail`) or a `BasicTaskInstance`.
pub(crate) fn task_json(clock: &SimClock, t: &SimTask, detail: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("name".into(), json!(t.spec.name));
    m.insert("creator".into(), json!({"name": "admin"}));
    put(
        &mut m,
        "tenantInfo",
        t.spec
            .tenant
            .as_ref()
            .map(|(id, name)| json!({"obTenantId": id, "name": name})),
    );
    m.insert("status".into(), json!(t.status.as_str()));
    m.insert("startTime".into(), json!(iso(clock, t.created)));
    put(
        &mut m,
        "finishTime",
        t.finished.map(|i| json!(iso(clock, i))),
    );
    // A Set: the order of subtasks means nothing (clients sort by seriesId).
    let subs: Vec<Value> = t
        .subs
        .iter()
        .rev()
        .map(|s| sub_json(clock, t, s, detail))
        .collect();
    m.insert("subtasks".into(), Value::Array(subs));
    if detail {
        m.insert("taskDefinitionId".into(), json!(7));
        m.insert("type".into(), json!(t.spec.task_type));
        m.insert("operation".into(), json!(t.op.as_str()));
        m.insert("executor".into(), json!("10.0.0.1:8180"));
        m.insert("prohibitRollback".into(), json!(t.prohibits_rollback()));
        m.insert("createTime".into(), json!(iso(clock, t.created)));
    }
    Value::Object(m)
}

/// The envelope fields every answer has (`BaseResponse`, set by
/// `RequestTracingAspect`).
pub(crate) fn envelope(clock: &SimClock, status: u16, trace: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("successful".into(), json!((200..300).contains(&status)));
    m.insert("timestamp".into(), json!(iso(clock, clock.now())));
    m.insert("duration".into(), json!(3 + trace % 20));
    m.insert("status".into(), json!(status));
    m.insert(
        "traceId".into(),
        json!(format!("{:016x}", 0x0c9_0000_0000 + trace)),
    );
    m.insert("server".into(), json!("10.0.0.1"));
    m
}

/// An `ApiError`.
pub(crate) fn api_error(code: i64, message: &str, debug: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), json!(code));
    m.insert("message".into(), json!(message));
    put(&mut m, "debugMessage", debug.map(|d| json!(d)));
    Value::Object(m)
}
