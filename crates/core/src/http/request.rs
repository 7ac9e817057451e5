//! One request and its answer: paths built from safe segments, bodies,
//! idempotence (which decides retries and redirects).

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde::Serialize;

use crate::error::{Error, Result};

/// RFC 3986 unreserved characters stay; everything else is escaped.
pub const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment (colons, `!`, `/`… all escaped), so ids
/// such as UPIDs can go into a path safely.
///
/// `.` and `..` stay as they are (they are unreserved), and URL parsing
/// treats them (even as `%2E%2E`) as dot segments: ids must be validated
/// before they reach a path (see [`path_segment`]); [`HttpClient`](super::HttpClient) also
/// refuses to send a request whose path a dot segment would change.
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, RFC3986).to_string()
}

/// [`encode_segment`] for a segment that comes from outside (a task id):
/// an empty segment, `.` or `..` is refused, since it would name another
/// route than the one intended.
pub fn path_segment(provider: &str, what: &str, segment: &str) -> Result<String> {
    if segment.is_empty() || segment == "." || segment == ".." {
        return Err(Error::invalid_input(
            provider,
            format!("{what} {segment:?} cannot be part of a request path"),
        ));
    }
    Ok(encode_segment(segment))
}

/// A request body.
#[derive(Clone)]
pub(crate) enum Body {
    Json(Vec<u8>),
    Form(String),
}

/// One request to send through an [`HttpClient`](super::HttpClient).
#[derive(Clone)]
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Option<Body>,
    pub(crate) idempotent: bool,
    pub(crate) skip_auth: bool,
}

impl fmt::Debug for HttpRequest {
    // Bodies and headers may carry credentials (a login form): never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl HttpRequest {
    /// A request of `method` to `path` (appended to the base URL; encode
    /// dynamic segments with [`encode_segment`]). GET and HEAD are
    /// idempotent and retried; everything else is sent once.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = method == Method::GET || method == Method::HEAD;
        HttpRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            idempotent,
            skip_auth: false,
        }
    }
    /// A GET.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }
    /// A POST.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }
    /// A DELETE (not retried: deletes here are control actions).
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }
    /// Adds a query parameter (repeat for repeated names).
    pub fn with_query(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }
    /// Adds a query parameter when `value` is `Some`.
    pub fn with_query_opt(self, name: impl Into<String>, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.with_query(name, v),
            None => self,
        }
    }
    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    /// A JSON body.
    pub fn with_json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input("tasktrack", format!("request body: {e}")))?;
        self.body = Some(Body::Json(bytes));
        Ok(self)
    }
    /// A form body (`application/x-www-form-urlencoded`).
    pub fn with_form(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode_segment(k), encode_segment(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.body = Some(Body::Form(encoded));
        self
    }
    /// Overrides whether the request may be retried.
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
    /// Sends without the client's [`Authenticate`](super::Authenticate) hook (e.g. a login).
    pub fn without_auth(mut self) -> Self {
        self.skip_auth = true;
        self
    }
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }
    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// An answer with a success status.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_fully_escaped() {
        assert_eq!(
            encode_segment("UPID:pve1:0000:root@pam!tok:"),
            "UPID%3Apve1%3A0000%3Aroot%40pam%21tok%3A"
        );
        assert_eq!(encode_segment("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn outside_segments_refuse_dot_names() {
        assert_eq!(path_segment("p", "task id", "a.b").unwrap(), "a.b");
        for bad in ["", ".", ".."] {
            assert!(path_segment("p", "task id", bad).is_err(), "{bad:?}");
        }
    }
}
