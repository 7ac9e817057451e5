//! `iam`: the part of Huawei Cloud IAM that signs users in, served beside
//! the KPS and DCS simulators: `POST /v3/auth/tokens` with the password
//! method answers `201` with the token in `X-Subject-Token` and its
//! `issued_at` / `expires_at` (24 h later by default) in the body, as IAM's
//! KeystoneCreateUserTokenByPassword does (huaweicloudsdkiam
//! `KeystoneCreateUserTokenByPasswordRequestBody`, `TokenResult`). Issued
//! tokens are accepted by the services until they expire on the
//! simulator's clock, or until a test revokes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::context::SimContext;

/// How long IAM's tokens last.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The IAM users a simulated account has, and the tokens it issued.
#[derive(Debug, Clone)]
pub struct IamAccounts {
    /// `(domain, user, password)`.
    pub users: Vec<(String, String, String)>,
    /// How long issued tokens last (default 24 h).
    pub lifetime: Duration,
    issued: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
}

impl Default for IamAccounts {
    fn default() -> Self {
        IamAccounts {
            users: Vec::new(),
            lifetime: TOKEN_LIFETIME,
            issued: Arc::default(),
        }
    }
}

impl IamAccounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `token` was issued here and has not expired at `now`.
    pub(crate) fn accepts(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.lock().get(token).is_some_and(|expires| now < *expires)
    }

    /// Forgets every issued token: the next request with one is refused.
    pub fn revoke_all(&self) {
        self.lock().clear();
    }

    /// Tokens issued so far (revoked ones not counted).
    pub fn issued(&self) -> usize {
        self.lock().len()
    }
}

#[derive(Clone)]
struct Iam {
    ctx: SimContext,
    accounts: IamAccounts,
    project_id: String,
}

/// IAM's own error shape: `{"error": {"code", "message", "title"}}`.
fn iam_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "title": status.canonical_reason().unwrap_or_default(),
    }});
    (status, Json(body)).into_response()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

async fn create_token(State(iam): State<Iam>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return iam_error(StatusCode::BAD_REQUEST, "The request body is invalid.");
    };
    let identity = &body["auth"]["identity"];
    let methods_ok = identity["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "password"));
    let user = &identity["password"]["user"];
    let (Some(domain), Some(name), Some(password)) = (
        text(user, &["domain", "name"]),
        text(user, &["name"]),
        text(user, &["password"]),
    ) else {
        return iam_error(StatusCode::BAD_REQUEST, "The request body is invalid.");
    };
    let known = iam
        .accounts
        .users
        .iter()
        .any(|(d, u, p)| d == domain && u == name && p == password);
    if !methods_ok || !known || !iam.ctx.auth.valid() {
        return iam_error(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.",
        );
    }
    let scope = text(&body, &["auth", "scope", "project", "id"]);
    if scope.is_some_and(|p| p != iam.project_id) {
        return iam_error(
            StatusCode::UNAUTHORIZED,
            "The project is not in this account.",
        );
    }
    let issued_at = iam.ctx.clock().now_utc();
    let expires_at =
        issued_at + chrono::Duration::from_std(iam.accounts.lifetime).unwrap_or_default();
    let n = iam.ctx.engine.next_number();
    let token = format!("MIIsim-iam-token-{n:08x}");
    iam.accounts.lock().insert(token.clone(), expires_at);
    let when = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let answer = json!({"token": {
        "methods": ["password"],
        "issued_at": when(issued_at),
        "expires_at": when(expires_at),
        "project": {"id": iam.project_id, "name": "sim-region"},
        "user": {"name": name, "domain": {"name": domain}},
    }});
    let mut resp = (StatusCode::CREATED, Json(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

/// IAM's token route, for `project_id`'s account.
pub(crate) fn router(ctx: SimContext, accounts: IamAccounts, project_id: String) -> Router {
    Router::new()
        .route("/v3/auth/tokens", post(create_token))
        .with_state(Iam {
            ctx,
            accounts,
            project_id,
        })
}
