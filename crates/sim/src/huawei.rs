//! What the Huawei Cloud simulators (KPS, DCS) share: `X-Auth-Token` or
//! AK/SK signature checks (re-implemented here from Huawei's published
//! algorithm, independently of the adapter's signer), temporary keys'
//! `X-Security-Token`, the 15-minute clock skew limit, the error body, an
//! `X-Request-Id` on every answer, and IAM's token route beside them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum::Router;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::context::SimContext;
use crate::iam::IamAccounts;

/// Credentials a Huawei Cloud simulator accepts.
#[derive(Debug, Clone, Default)]
pub struct HuaweiAuth {
    /// The project id in every path.
    pub project_id: String,
    /// Accepted IAM tokens.
    pub tokens: Vec<String>,
    /// Accepted AK/SK pairs.
    pub keys: Vec<(String, String)>,
    /// Temporary access keys and the security token each must come with.
    pub security_tokens: Vec<(String, String)>,
    /// IAM users, and the tokens IAM issued them.
    pub iam: IamAccounts,
}

impl HuaweiAuth {
    /// For `project_id`, with no credentials yet.
    pub fn new(project_id: impl Into<String>) -> Self {
        HuaweiAuth {
            project_id: project_id.into(),
            ..Default::default()
        }
    }
    /// Accepts an IAM token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }
    /// Accepts an AK/SK pair.
    pub fn with_aksk(mut self, ak: impl Into<String>, sk: impl Into<String>) -> Self {
        self.keys.push((ak.into(), sk.into()));
        self
    }
    /// Accepts a temporary AK/SK pair, only with `security_token` in a
    /// signed `X-Security-Token` header.
    pub fn with_temporary_aksk(
        mut self,
        ak: impl Into<String>,
        sk: impl Into<String>,
        security_token: impl Into<String>,
    ) -> Self {
        let ak = ak.into();
        self.security_tokens
            .push((ak.clone(), security_token.into()));
        self.keys.push((ak, sk.into()));
        self
    }
    /// Lets IAM sign `user` of account `domain` in with `password`
    /// (`POST /v3/auth/tokens`); the tokens it issues are accepted.
    pub fn with_iam_user(
        mut self,
        domain: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.iam
            .users
            .push((domain.into(), user.into(), password.into()));
        self
    }
    /// How long IAM's tokens last (default 24 h).
    pub fn with_token_lifetime(mut self, d: std::time::Duration) -> Self {
        self.iam.lifetime = d;
        self
    }
}

static ERROR_IDS: AtomicU64 = AtomicU64::new(0);

fn request_id(n: u64) -> String {
    format!("{:032x}", 0x5eed_0000_0000_0000_u128 * 31 + u128::from(n))
}

/// `{"error_code", "error_msg"}` (plus `error_ext_msg: null` when asked),
/// with an `X-Request-Id` as the gateway always sends one, injected faults
/// included.
pub fn error_body(status: StatusCode, code: &str, message: &str, ext: bool) -> Response {
    let mut body = json!({ "error_code": code, "error_msg": message });
    if ext {
        body["error_ext_msg"] = serde_json::Value::Null;
    }
    let mut resp = (status, Json(body)).into_response();
    let id = request_id(ERROR_IDS.fetch_add(1, Ordering::Relaxed) | 1 << 40);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

// Huawei's API gateway answers authentication problems with APIGW codes.
fn unauthorized(message: &str) -> Response {
    error_body(
        StatusCode::UNAUTHORIZED,
        "APIGW.0301",
        &format!("Incorrect IAM authentication information: {message}"),
        false,
    )
}

const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Recomputes an `SDK-HMAC-SHA256` signature the way the gateway does.
/// The parts of a received request a signature covers.
struct Received<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// Recomputes an `SDK-HMAC-SHA256` signature the way the gateway does.
fn expected_signature(sk: &str, date: &str, signed: &[&str], r: &Received<'_>) -> String {
    let Received {
        method,
        path,
        query,
        headers,
        body,
    } = *r;
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut uri: String = decoded.split('/').map(enc).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    let mut pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_headers: String = signed
        .iter()
        .map(|h| {
            let v = headers
                .get(*h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
                .unwrap_or_default();
            format!("{h}:{v}\n")
        })
        .collect();
    let payload = match headers
        .get("x-sdk-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) => p.to_owned(),
        None => hex::encode(Sha256::digest(body)),
    };
    let canonical = format!(
        "{}\n{uri}\n{query}\n{canonical_headers}\n{}\n{payload}",
        method.to_uppercase(),
        signed.join(";")
    );
    let to_sign = format!(
        "SDK-HMAC-SHA256\n{date}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(sk.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Clone)]
pub(crate) struct Gate {
    pub(crate) ctx: SimContext,
    pub(crate) auth: Arc<HuaweiAuth>,
    pub(crate) requests: Arc<AtomicU64>,
}

impl Gate {
    fn check(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Response> {
        if !self.ctx.auth.valid() {
            return Some(unauthorized("the token has expired"));
        }
        if let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
            let known = self.auth.tokens.iter().any(|t| t == token)
                || self.auth.iam.accepts(token, self.ctx.clock().now_utc());
            return (!known).then(|| unauthorized("the token is invalid or has expired"));
        }
        let Some(authz) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Some(unauthorized("no X-Auth-Token and no Authorization header"));
        };
        let Some(rest) = authz.strip_prefix("SDK-HMAC-SHA256 ") else {
            return Some(unauthorized("unsupported signing algorithm"));
        };
        let field = |name: &str| {
            rest.split(',')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(name))
                .map(str::to_owned)
        };
        let (Some(ak), Some(signed), Some(sig)) = (
            field("Access="),
            field("SignedHeaders="),
            field("Signature="),
        ) else {
            return Some(unauthorized("malformed Authorization header"));
        };
        let Some(sk) = self
            .auth
            .keys
            .iter()
            .find(|(k, _)| *k == ak)
            .map(|(_, s)| s.clone())
        else {
            return Some(unauthorized("unknown access key"));
        };
        let Some(date) = headers
            .get("x-sdk-date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return Some(unauthorized("missing X-Sdk-Date"));
        };
        let Ok(when) = NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ") else {
            return Some(unauthorized("malformed X-Sdk-Date"));
        };
        let skew = (self.ctx.clock().now_utc()
            - DateTime::<Utc>::from_naive_utc_and_offset(when, Utc))
        .num_seconds()
        .abs();
        if skew > 15 * 60 {
            return Some(unauthorized(
                "the request time is more than 15 minutes away from the server time",
            ));
        }
        let signed: Vec<&str> = signed.split(';').collect();
        if !signed.contains(&"x-sdk-date") {
            return Some(unauthorized("x-sdk-date must be signed"));
        }
        if let Some((_, wanted)) = self.auth.security_tokens.iter().find(|(k, _)| *k == ak) {
            let sent = headers
                .get("x-security-token")
                .and_then(|v| v.to_str().ok());
            if sent != Some(wanted.as_str()) || !signed.contains(&"x-security-token") {
                return Some(unauthorized(
                    "a temporary access key needs its signed X-Security-Token",
                ));
            }
        }
        let received = Received {
            method,
            path,
            query,
            headers,
            body,
        };
        let expected = expected_signature(&sk, &date, &signed, &received);
        (expected != sig).then(|| unauthorized("verify aksk signature fail"))
    }
}

/// `router` behind [`gate`], with its own request-id counter.
pub(crate) fn gated(router: Router, ctx: SimContext, auth: Arc<HuaweiAuth>) -> Router {
    let iam = crate::iam::router(ctx.clone(), auth.iam.clone(), auth.project_id.clone());
    let state = Gate {
        ctx,
        auth,
        requests: Arc::new(AtomicU64::new(0)),
    };
    router
        .layer(axum::middleware::from_fn_with_state(state, gate))
        .merge(iam)
}

/// The middleware of every Huawei route: auth, then `X-Request-Id` on the answer.
pub(crate) async fn gate(State(g): State<Gate>, req: Request, next: Next) -> Response {
    let n = g.requests.fetch_add(1, Ordering::Relaxed);
    let request_id = request_id(n);
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let rejection = g.check(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &bytes,
    );
    let mut resp = match rejection {
        Some(r) => r,
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Checks the path's project id against the credentials' project.
pub(crate) fn project_mismatch(
    auth: &HuaweiAuth,
    project_id: &str,
    code_prefix: &str,
    ext: bool,
) -> Option<Response> {
    (project_id != auth.project_id).then(|| {
        error_body(
            StatusCode::FORBIDDEN,
            &format!("{code_prefix}.0403"),
            "the project id does not match the credentials",
            ext,
        )
    })
}
