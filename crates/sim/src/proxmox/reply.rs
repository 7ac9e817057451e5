//! How pveproxy answers, from `pve-http-server`
//! (`src/PVE/APIServer/AnyEvent.pm` `response` / `error`,
//! `src/PVE/APIServer/Formatter/Standard.pm` `prepare_response_data`) and
//! pve-manager's `PVE/HTTPServer.pm` `rest_handler`.
//!
//! * success: `{"data": …}`, plus `"total"` only when the handler set a
//!   non-zero total (`if ($success && $res->{total})`);
//! * a handler's exception: the status line carries the message's first line
//!   as its reason phrase, the body is `{"data": null, "message": "…\n"}`
//!   with `"errors": {param: text}` for parameter exceptions (the json
//!   formatter has carried `message` since libpve-http-server 5.2);
//! * an authentication failure: `401` with the reason phrase and **no body**
//!   (`HTTP::Response->new(HTTP_UNAUTHORIZED, $err)`);
//! * every answer ≥ 400 closes the connection (`keep_alive = 0`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// The content type of every JSON answer.
pub(crate) const JSON: &str = "application/json;charset=UTF-8";

fn with_reason(mut resp: Response, message: &str) -> Response {
    // pveproxy keeps only the first line of the message in the status line.
    let first = message.lines().next().unwrap_or_default().trim_end();
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(first.as_bytes().to_vec()) {
        resp.extensions_mut().insert(phrase);
    }
    resp
}

fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, JSON)], bytes).into_response()
}

/// `body` as JSON with `status` (PBS answers whole bodies of its own).
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    json_response(status, body)
}

/// `{"data": value}`.
pub(crate) fn data(value: Value) -> Response {
    json_response(StatusCode::OK, &json!({ "data": value }))
}

/// `{"data": value, "total": n}`, the total left out when it is zero.
pub(crate) fn data_with_total(value: Value, total: usize) -> Response {
    let mut body = json!({ "data": value });
    if total > 0 {
        body["total"] = json!(total);
    }
    json_response(StatusCode::OK, &body)
}

/// A handler's exception (`PVE::Exception` or a plain `die`).
pub(crate) fn exception(
    status: StatusCode,
    message: &str,
    errors: Option<Map<String, Value>>,
) -> Response {
    let mut body = json!({ "data": null, "message": message });
    if let Some(errors) = errors.filter(|e| !e.is_empty()) {
        body["errors"] = Value::Object(errors);
    }
    closing(with_reason(json_response(status, &body), message))
}

/// `raise_param_exc`: `400 Parameter verification failed.` with the errors
/// per parameter.
pub(crate) fn param_error(errors: Map<String, Value>) -> Response {
    exception(
        StatusCode::BAD_REQUEST,
        "Parameter verification failed.\n",
        Some(errors),
    )
}

/// One parameter's error.
pub(crate) fn param_error1(param: &str, message: &str) -> Response {
    let mut errors = Map::new();
    errors.insert(param.to_owned(), json!(message));
    param_error(errors)
}

/// An authentication failure: reason phrase, empty body, no content type.
pub(crate) fn unauthorized(reason: &str) -> Response {
    closing(with_reason(
        StatusCode::UNAUTHORIZED.into_response(),
        reason,
    ))
}

/// `AnyEvent.pm`'s `error()`: the message is both the reason phrase and,
/// since 5.2, the body (no content type).
pub(crate) fn server_error(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, message.to_owned()).into_response();
    resp.headers_mut().remove(header::CONTENT_TYPE);
    closing(with_reason(resp, message))
}
