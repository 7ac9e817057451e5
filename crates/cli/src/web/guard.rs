//! Who may use the dashboard: on a non-loopback address every request
//! (page, reads, events, actions) carries the token, as a bearer header or
//! the page's same-site cookie; and the `Host` header must name this server,
//! so a page on another site that rebinds its DNS name to 127.0.0.1 cannot
//! read task data or logs.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tasktrack_core::Secret;

use super::{error, same_token, SharedDashboard};

/// The rules for one bound server.
#[derive(Default)]
pub struct Access {
    token: Option<Secret>,
    /// Reads need the token (a non-loopback bind).
    reads_need_token: bool,
    /// Hosts a request may name; empty: any.
    hosts: Vec<String>,
}

impl Access {
    /// Rules with `token` (if any), before the server is bound.
    pub fn new(token: Option<Secret>) -> Access {
        Access {
            token,
            ..Access::default()
        }
    }

    /// The rules once bound to `bound`, known as `public_url` if given.
    pub fn bind(&mut self, bound: SocketAddr, public_url: Option<&url::Url>) {
        self.reads_need_token = !bound.ip().is_loopback();
        self.hosts = match public_url {
            Some(u) => {
                let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
                match u.port_or_known_default() {
                    Some(port) => vec![format!("{host}:{port}"), host],
                    None => vec![host],
                }
            }
            // On loopback only the loopback names are this server; a
            // public bind without --public-url is reached by names it cannot
            // know, and the token guards it.
            None if bound.ip().is_loopback() => {
                let port = bound.port();
                vec![
                    format!("127.0.0.1:{port}"),
                    format!("localhost:{port}"),
                    format!("[::1]:{port}"),
                ]
            }
            None => Vec::new(),
        };
    }

    fn host_ok(&self, host: Option<&str>) -> bool {
        self.hosts.is_empty()
            || host.is_some_and(|h| self.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)))
    }

    fn token_ok(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("tasktrack_token="))
            .map(|v| {
                url::form_urlencoded::parse(format!("t={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .next();
        bearer.is_some_and(|b| same_token(b, token))
            || cookie.is_some_and(|c| same_token(&c, token))
    }
}

/// The middleware.
pub async fn check(State(d): State<SharedDashboard>, request: Request, next: Next) -> Response {
    {
        let access = d.access.read().unwrap_or_else(|p| p.into_inner());
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        if !access.host_ok(host) {
            return error(
                StatusCode::MISDIRECTED_REQUEST,
                "this server does not answer to that Host; use its own address (or --public-url)",
            );
        }
        // The page itself carries no data (it asks for the token), nor do
        // the probes that orchestrators call without credentials.
        let open = matches!(request.uri().path(), "/" | "/healthz" | "/readyz");
        if access.reads_need_token && !open && !access.token_ok(&request) {
            return error(
                StatusCode::UNAUTHORIZED,
                "a valid token is required: Authorization: Bearer TOKEN",
            );
        }
    }
    next.run(request).await
}
