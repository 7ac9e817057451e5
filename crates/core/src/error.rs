//! The one error type of tasktrack, layered so callers can tell *where* a
//! problem happened: on the wire, in the vendor's answer, in the decoding of
//! that answer, or in the remote task itself.

use std::fmt;
use std::time::Duration;

use crate::model::Failure;

/// A `Result` whose error is tasktrack's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while tracking a task.
///
/// Every variant names the provider (and the task, where there is one) so a
/// message read in a log stands on its own. No variant ever carries a secret:
/// credentials are redacted before an error is built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request never got an HTTP answer: DNS, connect, TLS, a dropped
    /// connection or a per-request timeout.
    #[error("{provider}: transport error on {operation}: {message}")]
    Transport {
        /// Provider name, e.g. `proxmox`.
        provider: String,
        /// What was being done, e.g. `GET /nodes/pve1/tasks`.
        operation: String,
        /// The underlying cause, secret-free.
        message: String,
        /// True when the request timed out rather than failed.
        timed_out: bool,
    },
    /// The server answered with an HTTP error status that is not an
    /// authentication or not-found problem.
    #[error("{0}")]
    Http(Box<HttpError>),
    /// The call succeeded but the remote task did not.
    #[error("{provider}: task {id} {}: {failure}{}", state_word(.cancelled), tail_hint(.log_tail))]
    TaskFailed {
        /// Provider name.
        provider: String,
        /// Task id in its string form.
        id: String,
        /// Code and message of the failure.
        failure: Failure,
        /// True when the task was cancelled rather than failed.
        cancelled: bool,
        /// The last lines of the task's log, when the provider has logs.
        log_tail: Box<[String]>,
    },
    /// The body did not match the expected model.
    #[error("{provider}: could not decode {what} at `{path}`: {message}")]
    Decode {
        /// Provider name.
        provider: String,
        /// What was being decoded, e.g. `task status`.
        what: String,
        /// JSON path of the mismatch (`.` for the root).
        path: String,
        /// What was wrong there.
        message: String,
        /// True when the body was cut short or was not JSON at all (a proxy's
        /// HTML page, a dropped stream): trying again may succeed. A body
        /// that is JSON but does not match the model is permanent.
        garbled: bool,
    },
    /// The poll deadline or attempt limit ran out before the task ended.
    #[error("{provider}: gave up waiting for task {id} after {} and {polls} poll{}{}", human_duration(*.elapsed), plural(*.polls), last_hint(.last_error))]
    Timeout {
        /// Provider name.
        provider: String,
        /// Task id in its string form.
        id: String,
        /// Time spent waiting.
        elapsed: Duration,
        /// Number of status polls made.
        polls: u64,
        /// Why the last poll failed, when it did (the backend was down, a
        /// request was still running at the deadline): a timeout is then
        /// not mistaken for a slow task.
        last_error: Option<String>,
    },
    /// The task (or another named object) does not exist.
    #[error("{provider}: {what} not found")]
    NotFound {
        /// Provider name.
        provider: String,
        /// What was missing, e.g. `task UPID:...`.
        what: String,
    },
    /// The provider does not support this operation; see its
    /// [`Capabilities`](crate::Capabilities).
    #[error("{provider}: {operation} is not supported by this provider")]
    Unsupported {
        /// Provider name.
        provider: String,
        /// The unsupported operation, e.g. `logs` or `action rollback`.
        operation: String,
    },
    /// The caller gave something unusable: a malformed id, an action that the
    /// task's state forbids, an out-of-range parameter.
    #[error("{provider}: {message}")]
    InvalidInput {
        /// Provider name (or `tasktrack` when no provider is involved).
        provider: String,
        /// What is wrong and, where possible, what is expected instead.
        message: String,
    },
    /// The server rejected the credentials (401) or the permission (403).
    #[error("{provider}: authentication failed ({status}): {message}; check the credentials")]
    Auth {
        /// Provider name.
        provider: String,
        /// 401 or 403.
        status: u16,
        /// The server's explanation, secret-free.
        message: String,
    },
    /// A safety limit stopped the operation: an answer larger than the
    /// body limit, more pages or requests than allowed, a redirect that
    /// would carry credentials elsewhere. Trying again gives the same.
    #[error("{provider}: {what}")]
    Limit {
        /// Provider name.
        provider: String,
        /// Which limit, and what to do about it.
        what: String,
    },
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn last_hint(last: &Option<String>) -> String {
    match last {
        Some(e) => format!("; the last poll failed: {e}"),
        None => String::new(),
    }
}

/// A duration as people write it: `850ms`, `3s`, `1m 12s`, `2h 5m`, `3d 4h`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        s if s < 60 => {
            let tenths = d.subsec_millis() / 100;
            if tenths == 0 || s >= 10 {
                format!("{s}s")
            } else {
                format!("{s}.{tenths}s")
            }
        }
        s if s < 3600 => join_units(s / 60, "m", s % 60, "s"),
        s if s < 86_400 => join_units(s / 3600, "h", s % 3600 / 60, "m"),
        s => join_units(s / 86_400, "d", s % 86_400 / 3600, "h"),
    }
}

fn join_units(a: u64, ua: &str, b: u64, ub: &str) -> String {
    if b == 0 {
        format!("{a}{ua}")
    } else {
        format!("{a}{ua} {b}{ub}")
    }
}

fn state_word(cancelled: &bool) -> &'static str {
    if *cancelled {
        "was cancelled"
    } else {
        "failed"
    }
}

fn tail_hint(tail: &[String]) -> String {
    match tail.last() {
        Some(last) => format!(" (last log line: {last})"),
        None => String::new(),
    }
}

/// Details of an HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpError {
    /// Provider name.
    pub provider: String,
    /// HTTP method.
    pub method: String,
    /// Request path (without query, which may hold secrets on some APIs).
    pub path: String,
    /// HTTP status code.
    pub status: u16,
    /// The vendor's error code, e.g. `KPS.0001`.
    pub vendor_code: Option<String>,
    /// The vendor's error message.
    pub vendor_message: Option<String>,
    /// The request or trace id the server gave, for support tickets.
    pub request_id: Option<String>,
    /// `Retry-After` the server asked for, if any.
    pub retry_after: Option<Duration>,
    /// The start of the body (at most 512 bytes, lossy UTF-8).
    pub body_excerpt: String,
}

impl HttpError {
    /// A new error with only the required parts; vendor fields empty.
    pub fn new(
        provider: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
        status: u16,
    ) -> Self {
        Self {
            provider: provider.into(),
            method: method.into(),
            path: path.into(),
            status,
            vendor_code: None,
            vendor_message: None,
            request_id: None,
            retry_after: None,
            body_excerpt: String::new(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: HTTP {} on {} {}",
            self.provider, self.status, self.method, self.path
        )?;
        match (&self.vendor_code, &self.vendor_message) {
            (Some(c), Some(m)) => write!(f, ": {c}: {m}")?,
            (Some(c), None) => write!(f, ": {c}")?,
            (None, Some(m)) => write!(f, ": {m}")?,
            (None, None) if !self.body_excerpt.trim().is_empty() => {
                write!(f, ": {}", summarize_body(&self.body_excerpt))?
            }
            (None, None) => {}
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// One line for a body with no vendor error in it. Proxies answer with an
/// HTML page whose first line (`<html>`) says nothing; its `<title>` does.
fn summarize_body(body: &str) -> String {
    let trimmed = body.trim_start();
    let starts_with = |prefix: &str| {
        trimmed
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    if starts_with("<html") || starts_with("<!doctype") {
        let title = body
            .find("<title>")
            .map(|start| &body[start + "<title>".len()..])
            .and_then(|rest| rest.find("</title>").map(|end| rest[..end].trim()))
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!("HTML page \"{}\"", truncate(t, 100)),
            None => "an HTML page instead of the API's answer".to_owned(),
        };
    }
    let line = trimmed.lines().next().unwrap_or_default();
    truncate(line, 120).to_owned()
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Error {
    /// True when trying the same idempotent call again may succeed:
    /// transport problems, 5xx, 408, 429, and garbled bodies (truncated or
    /// not JSON). Everything else (auth, not found, a body of the wrong
    /// shape, invalid input, task failure) is permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Decode { garbled, .. } => *garbled,
            Error::Http(e) => matches!(e.status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Http(e) => e.retry_after,
            _ => None,
        }
    }

    /// The provider this error came from.
    pub fn provider(&self) -> &str {
        match self {
            Error::Transport { provider, .. }
            | Error::TaskFailed { provider, .. }
            | Error::Decode { provider, .. }
            | Error::Timeout { provider, .. }
            | Error::NotFound { provider, .. }
            | Error::Unsupported { provider, .. }
            | Error::InvalidInput { provider, .. }
            | Error::Auth { provider, .. }
            | Error::Limit { provider, .. } => provider,
            Error::Http(e) => &e.provider,
        }
    }

    /// A [`Error::NotFound`] renamed to name what is missing (`what()`, e.g.
    /// `task instance 7`); any other error unchanged. Adapters map their
    /// vendor's "missing" answers to `NotFound` first, then call this.
    pub fn rename_not_found(self, what: impl FnOnce() -> String) -> Self {
        match self {
            Error::NotFound { provider, .. } => Error::not_found(provider, what()),
            other => other,
        }
    }

    /// Shorthand for [`Error::Limit`].
    pub fn limit(provider: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Limit {
            provider: provider.into(),
            what: what.into(),
        }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(provider: impl Into<String>, operation: impl Into<String>) -> Self {
        Error::Unsupported {
            provider: provider.into(),
            operation: operation.into(),
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            provider: provider.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(provider: impl Into<String>, what: impl Into<String>) -> Self {
        Error::NotFound {
            provider: provider.into(),
            what: what.into(),
        }
    }

    /// Shorthand for a [`Error::Decode`] at the root of a body.
    pub fn decode(
        provider: impl Into<String>,
        what: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Decode {
            provider: provider.into(),
            what: what.into(),
            path: path.into(),
            message: message.into(),
            garbled: false,
        }
    }

    /// A short stable name of the variant (`transport`, `http`, …), handy for
    /// metrics labels and test matrices.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Transport { .. } => "transport",
            Error::Http(_) => "http",
            Error::TaskFailed { .. } => "task_failed",
            Error::Decode { .. } => "decode",
            Error::Timeout { .. } => "timeout",
            Error::NotFound { .. } => "not_found",
            Error::Unsupported { .. } => "unsupported",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Auth { .. } => "auth",
            Error::Limit { .. } => "limit",
        }
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        Error::Http(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let http = |s| Error::from(HttpError::new("p", "GET", "/x", s));
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!Error::not_found("p", "task 1").is_retryable());
        assert!(!Error::decode("p", "status", ".a", "bad").is_retryable());
        assert!(Error::Transport {
            provider: "p".into(),
            operation: "GET /".into(),
            message: "reset".into(),
            timed_out: false
        }
        .is_retryable());
    }

    #[test]
    fn messages_name_provider_and_task() {
        let e = Error::TaskFailed {
            provider: "proxmox".into(),
            id: "UPID:n1:1".into(),
            failure: Failure::new("disk full").with_code("E1"),
            cancelled: false,
            log_tail: vec!["TASK ERROR: disk full".into()].into(),
        };
        let s = e.to_string();
        assert!(s.contains("proxmox") && s.contains("UPID:n1:1") && s.contains("E1"));
        assert!(s.contains("last log line: TASK ERROR: disk full"), "{s}");
        let mut h = HttpError::new("kps", "GET", "/v3/p/failed-tasks", 500);
        h.vendor_code = Some("KPS.0001".into());
        h.vendor_message = Some("boom".into());
        h.request_id = Some("req-1".into());
        assert_eq!(
            Error::from(h).to_string(),
            "kps: HTTP 500 on GET /v3/p/failed-tasks: KPS.0001: boom (request id req-1)"
        );
    }

    #[test]
    fn an_html_error_page_is_named_by_its_title() {
        let mut h = HttpError::new("ocp", "GET", "/api/v2/tasks/instances/1", 502);
        h.body_excerpt =
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>".into();
        assert_eq!(
            Error::from(h.clone()).to_string(),
            "ocp: HTTP 502 on GET /api/v2/tasks/instances/1: HTML page \"502 Bad Gateway\""
        );
        h.body_excerpt = "<!DOCTYPE html><body>down</body>".into();
        assert!(Error::from(h.clone())
            .to_string()
            .ends_with(": an HTML page instead of the API's answer"));
        // A multi-byte character early in the page does not hide it.
        h.body_excerpt = "<html>üüüüü<title>Fehler</title>".into();
        assert!(Error::from(h.clone())
            .to_string()
            .ends_with(": HTML page \"Fehler\""));
        h.body_excerpt = "\nupstream timed out\nmore".into();
        assert!(Error::from(h).to_string().ends_with(": upstream timed out"));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let d = Duration::from_millis;
        assert_eq!(human_duration(d(850)), "850ms");
        assert_eq!(human_duration(d(3001)), "3s");
        assert_eq!(human_duration(d(1500)), "1.5s");
        assert_eq!(human_duration(d(72_000)), "1m 12s");
        assert_eq!(human_duration(d(3_600_000)), "1h");
        assert_eq!(human_duration(Duration::from_secs(90_000)), "1d 1h");
        let e = Error::Timeout {
            provider: "p".into(),
            id: "7".into(),
            elapsed: d(3001),
            polls: 1,
            last_error: Some("p: transport error on GET /x: connection refused".into()),
        };
        assert_eq!(
            e.to_string(),
            "p: gave up waiting for task 7 after 3s and 1 poll; the last poll failed: p: transport error on GET /x: connection refused"
        );
    }

    #[test]
    fn result_stays_small() {
        // clippy's result_large_err starts at 128 bytes.
        assert!(
            std::mem::size_of::<Error>() < 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
