//! Authentication as pveproxy does it: pve-http-server's
//! `handle_api2_request` picks the credential (the `PVEAuthCookie` cookie,
//! else `PVEAuthCookie=` in `Authorization`, else `PVEAPIToken=` there,
//! each value URI-unescaped by `extract_auth_value`), and pve-manager's
//! `PVE/HTTPServer.pm` `auth_handler` checks it: `No ticket` without one,
//! `Authentication failed!` for a bad token or ticket, the CSRF token on
//! every non-GET made with a ticket (never with a token). Any failure is a
//! 401 whose reason phrase is the message and whose body is empty.
//!
//! Proxmox Backup Server checks the same way under its own names
//! (proxmox-backup `src/auth.rs`: `PBSAuthCookie`, `PBSAPIToken`, tickets
//! `PBS:…`), with `:` between token id and secret ([`Product`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tokio::time::Instant;

use super::reply;
use crate::context::SimContext;

/// A ticket handed out by `POST /access/ticket`.
#[derive(Debug, Clone)]
struct Ticket {
    csrf: String,
    issued: Instant,
}

/// Whose names the credentials go by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Product {
    /// Proxmox VE: `PVEAuthCookie`, `PVEAPIToken=ID=SECRET`.
    #[default]
    Pve,
    /// Proxmox Backup Server: `PBSAuthCookie`, `PBSAPIToken=ID:SECRET`.
    Pbs,
}

impl Product {
    fn cookie(self) -> &'static str {
        match self {
            Product::Pve => "PVEAuthCookie",
            Product::Pbs => "PBSAuthCookie",
        }
    }
    fn token_key(self) -> &'static str {
        match self {
            Product::Pve => "PVEAPIToken",
            Product::Pbs => "PBSAPIToken",
        }
    }
    fn ticket_prefix(self) -> &'static str {
        match self {
            Product::Pve => "PVE",
            Product::Pbs => "PBS",
        }
    }
    /// `USER@REALM!TOKENID=SECRET` (the secret after the last `=`), or
    /// `USER@REALM!TOKENID:SECRET` (token names hold no `:`).
    fn split_token(self, token: &str) -> Option<(&str, &str)> {
        match self {
            Product::Pve => token.rsplit_once('='),
            Product::Pbs => token.split_once(':'),
        }
    }
}

/// The credentials a simulated cluster accepts, and the tickets it issued.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accounts {
    pub product: Product,
    /// `(USER@REALM!TOKENID, secret)`.
    pub tokens: Vec<(String, String)>,
    /// `(user@realm, password)`.
    pub users: Vec<(String, String)>,
    pub ticket_lifetime: Duration,
    tickets: Arc<Mutex<HashMap<String, Ticket>>>,
}

/// `extract_auth_value`: `(?:^|\s)KEY(?:=| )([^;]*)`, URI-unescaped.
fn auth_value(header: &str, key: &str) -> Option<String> {
    let mut rest = header;
    while let Some(at) = rest.find(key) {
        let before_ok = at == 0 || rest[..at].ends_with(char::is_whitespace);
        let after = &rest[at + key.len()..];
        if before_ok && (after.starts_with('=') || after.starts_with(' ')) {
            let value = after[1..].split(';').next().unwrap_or_default();
            let decoded = percent_decode_str(value).decode_utf8_lossy().into_owned();
            return (!decoded.is_empty()).then_some(decoded);
        }
        rest = &rest[at + key.len()..];
    }
    None
}

impl Accounts {
    pub(crate) fn new(ticket_lifetime: Duration) -> Self {
        Accounts {
            ticket_lifetime,
            ..Accounts::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ticket>> {
        self.tickets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The 401 refusing this request, or `None` when it may go on.
    pub(crate) fn rejection(
        &self,
        ctx: &SimContext,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response> {
        let header = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (cookie, authorization) = (header("cookie"), header("authorization"));
        let p = self.product;
        let ticket =
            auth_value(&cookie, p.cookie()).or_else(|| auth_value(&authorization, p.cookie()));
        let failed = || Some(reply::unauthorized("Authentication failed!"));
        if ticket.is_none() {
            let Some(token) = auth_value(&authorization, p.token_key()) else {
                return Some(reply::unauthorized("No ticket"));
            };
            let Some((id, secret)) = p.split_token(&token) else {
                return failed();
            };
            let known = self.tokens.iter().any(|(i, s)| i == id && s == secret);
            return (!known || !ctx.auth.valid())
                .then(|| reply::unauthorized("Authentication failed!"));
        }
        let ticket = ticket.unwrap_or_default();
        let Some(t) = self.lock().get(&ticket).cloned() else {
            return failed();
        };
        if ctx.clock().now() >= t.issued + self.ticket_lifetime || !ctx.auth.valid() {
            return failed();
        }
        if *method != Method::GET {
            let csrf = headers
                .get("csrfpreventiontoken")
                .and_then(|v| v.to_str().ok());
            if csrf != Some(t.csrf.as_str()) {
                return Some(reply::unauthorized(
                    "Permission denied - invalid csrf token",
                ));
            }
        }
        None
    }

    /// `POST /access/ticket`: a ticket and its CSRF token, or
    /// `401 authentication failure`.
    pub(crate) fn login(&self, ctx: &SimContext, username: &str, password: &str) -> Response {
        // A valid ticket of the same user is accepted as the password: that
        // is how clients renew one (proxmoxer's `_get_new_tokens`).
        let prefix = self.product.ticket_prefix();
        let renewal = password.starts_with(&format!("{prefix}:{username}:"))
            && self
                .lock()
                .get(password)
                .is_some_and(|t| ctx.clock().now() < t.issued + self.ticket_lifetime);
        let ok = renewal
            || self
                .users
                .iter()
                .any(|(u, p)| u == username && p == password);
        if !ok || !ctx.auth.valid() {
            return reply::exception(StatusCode::UNAUTHORIZED, "authentication failure\n", None);
        }
        let n = ctx.engine.next_number();
        let now = ctx.clock().now_utc().timestamp();
        let ticket = format!("{prefix}:{username}:{now:08X}::sim{n:016x}/signature+AAAA==");
        let csrf = format!("{now:08X}:sim-csrf-{n:x}");
        self.lock().insert(
            ticket.clone(),
            Ticket {
                csrf: csrf.clone(),
                issued: ctx.clock().now(),
            },
        );
        reply::data(serde_json::json!({
            "username": username,
            "ticket": ticket,
            "CSRFPreventionToken": csrf,
            "cap": {},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::auth_value;

    #[test]
    fn auth_values_are_found_and_unescaped() {
        assert_eq!(
            auth_value(
                "lang=en; PVEAuthCookie=PVE%3Aroot%40pam%3A1",
                "PVEAuthCookie"
            )
            .as_deref(),
            Some("PVE:root@pam:1")
        );
        assert_eq!(
            auth_value("PVEAPIToken=root@pam!ci=s3cr3t", "PVEAPIToken").as_deref(),
            Some("root@pam!ci=s3cr3t")
        );
        assert_eq!(
            auth_value("PVEAPIToken root@pam!ci=x", "PVEAPIToken").as_deref(),
            Some("root@pam!ci=x")
        );
        assert_eq!(auth_value("XPVEAPIToken=a", "PVEAPIToken"), None);
        assert_eq!(auth_value("Basic abc", "PVEAPIToken"), None);
    }
}
