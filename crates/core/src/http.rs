//! The HTTP client layer every vendor adapter shares: base URL, an
//! [`Authenticate`] hook, timeouts, retry of idempotent requests only (with
//! backoff, jitter and `Retry-After`), vendor error bodies, JSON decoding
//! that names the failing path, tracing spans, and TLS options for
//! self-signed servers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
pub use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::error::{truncate, Error, HttpError, Result};

/// RFC 3986 unreserved characters stay; everything else is escaped.
pub const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment (colons, `!`, `/`… all escaped), so ids
/// such as UPIDs can go into a path safely.
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, RFC3986).to_string()
}

/// Adds credentials to a request: a header, a cookie, or a signature.
#[async_trait]
pub trait Authenticate: fmt::Debug + Send + Sync {
    /// Called on every attempt just before sending.
    async fn authenticate(&self, request: &mut reqwest::Request) -> Result<()>;

    /// Called once after a 401. Return `true` when the credential was
    /// renewed (e.g. a new login ticket) and the request should be sent
    /// again. The default cannot renew anything.
    async fn refresh(&self, client: &HttpClient) -> Result<bool> {
        let _ = client;
        Ok(false)
    }
}

/// What a vendor's error body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorError {
    /// Vendor error code.
    pub code: Option<String>,
    /// Vendor error message.
    pub message: Option<String>,
    /// Request / trace id, from the body or a header.
    pub request_id: Option<String>,
}

/// An HTTP error answer, as the vendor hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct ErrorAnswer<'a> {
    /// Status code.
    pub status: u16,
    /// The status line's reason phrase when it is not the standard one
    /// (Proxmox VE puts its error message there).
    pub reason: Option<&'a str>,
    /// Response headers.
    pub headers: &'a HeaderMap,
    /// Response body.
    pub body: &'a [u8],
}

/// Reads a vendor's error answer into a [`VendorError`].
pub trait ErrorBodyParser: fmt::Debug + Send + Sync {
    /// Parses what it can; unknown shapes give an empty [`VendorError`].
    fn parse(&self, answer: &ErrorAnswer<'_>) -> VendorError;
}

/// The default parser: the `X-Request-Id` / `X-Trace-Id` headers and a
/// non-standard reason phrase as the message.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeaderRequestId;

impl ErrorBodyParser for HeaderRequestId {
    fn parse(&self, answer: &ErrorAnswer<'_>) -> VendorError {
        VendorError {
            request_id: request_id_header(answer.headers),
            message: answer.reason.map(str::to_owned),
            ..VendorError::default()
        }
    }
}

/// The request id from the usual headers.
pub fn request_id_header(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "x-trace-id", "x-openstack-request-id"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok().map(str::to_owned))
}

/// Retry of idempotent requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 3.
    pub max_retries: u32,
    /// First backoff delay, doubled per retry. Default 200 ms.
    pub base_delay: Duration,
    /// Ceiling of a backoff delay, and the most a `Retry-After` may ask:
    /// a server asking for longer gets its error returned instead of an
    /// early retry. Default 10 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// "Full jitter" backoff for retry number `retry` (from 1), given a
    /// uniform `unit` in `0.0..1.0`: a random delay up to
    /// `base_delay * 2^(retry-1)`, capped, never below half of it.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let ceiling = exp.min(self.max_delay);
        ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// A request body.
#[derive(Clone)]
enum Body {
    Json(Vec<u8>),
    Form(String),
}

/// One request to send through an [`HttpClient`].
#[derive(Clone)]
pub struct HttpRequest {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Body>,
    idempotent: bool,
    skip_auth: bool,
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
    pub fn query(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }
    /// Adds a query parameter when `value` is `Some`.
    pub fn query_opt(self, name: impl Into<String>, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.query(name, v),
            None => self,
        }
    }
    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    /// A JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input("tasktrack", format!("request body: {e}")))?;
        self.body = Some(Body::Json(bytes));
        Ok(self)
    }
    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode_segment(k), encode_segment(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.body = Some(Body::Form(encoded));
        self
    }
    /// Overrides whether the request may be retried.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
    /// Sends without the client's [`Authenticate`] hook (e.g. a login).
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

/// Decodes JSON, naming the JSON path where the body stopped matching.
pub fn decode_json<T: DeserializeOwned>(provider: &str, what: &str, body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let garbled = inner.is_syntax() || inner.is_eof();
        let message = if garbled {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            format!("{inner} (body starts {excerpt:?})")
        } else {
            inner.to_string()
        };
        Error::Decode {
            provider: provider.to_owned(),
            what: what.to_owned(),
            path,
            message,
            garbled,
        }
    })
}

/// Builds an [`HttpClient`].
pub struct HttpClientBuilder {
    provider: String,
    base_url: String,
    auth: Option<Arc<dyn Authenticate>>,
    error_parser: Arc<dyn ErrorBodyParser>,
    retry: RetryPolicy,
    timeout: Duration,
    connect_timeout: Duration,
    root_pems: Vec<Vec<u8>>,
    accept_invalid_certs: bool,
    default_headers: HeaderMap,
}

impl HttpClientBuilder {
    /// Adds credentials.
    pub fn auth(mut self, auth: Arc<dyn Authenticate>) -> Self {
        self.auth = Some(auth);
        self
    }
    /// Parses the vendor's error bodies.
    pub fn error_parser(mut self, parser: Arc<dyn ErrorBodyParser>) -> Self {
        self.error_parser = parser;
        self
    }
    /// Retry policy for idempotent requests.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
    /// Whole-request timeout (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Connect timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Trusts one more root CA, in PEM (e.g. Proxmox's `pve-root-ca.pem`).
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.root_pems.push(pem.to_vec());
        self
    }
    /// **Dangerous**: accepts any TLS certificate, so anyone on the path can
    /// read the credentials. Only for a lab server with a self-signed
    /// certificate you cannot add as a root.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }
    /// A header sent on every request.
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.default_headers.insert(name, value);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpClient> {
        let base = url::Url::parse(&self.base_url).map_err(|e| {
            Error::invalid_input(
                &self.provider,
                format!("bad base URL {:?}: {e}", self.base_url),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::invalid_input(
                &self.provider,
                format!("base URL {:?} must be http:// or https://", self.base_url),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("tasktrack/", env!("CARGO_PKG_VERSION")))
            .default_headers(self.default_headers)
            .danger_accept_invalid_certs(self.accept_invalid_certs);
        for pem in &self.root_pems {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::invalid_input(&self.provider, format!("bad root CA certificate: {e}"))
            })?;
            // A file with no certificate in it would otherwise trust nothing
            // extra, silently, and fail later with a confusing TLS error.
            if certs.is_empty() {
                return Err(Error::invalid_input(
                    &self.provider,
                    "root CA file holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let inner = builder.build().map_err(|e| {
            Error::invalid_input(&self.provider, format!("cannot build HTTP client: {e}"))
        })?;
        Ok(HttpClient {
            inner,
            provider: self.provider,
            base: base.as_str().trim_end_matches('/').to_owned(),
            auth: self.auth,
            error_parser: self.error_parser,
            retry: self.retry,
        })
    }
}

/// The shared HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    provider: String,
    base: String,
    auth: Option<Arc<dyn Authenticate>>,
    error_parser: Arc<dyn ErrorBodyParser>,
    retry: RetryPolicy,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Starts building a client for `provider` (used in errors and spans)
    /// at `base_url` (e.g. `https://pve:8006/api2/json`).
    pub fn builder(provider: impl Into<String>, base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            provider: provider.into(),
            base_url: base_url.into(),
            auth: None,
            error_parser: Arc::new(HeaderRequestId),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            root_pems: Vec::new(),
            accept_invalid_certs: false,
            default_headers: HeaderMap::new(),
        }
    }

    /// Provider name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request and decodes a JSON answer into `T`.
    pub async fn send_json<T: DeserializeOwned>(&self, req: HttpRequest, what: &str) -> Result<T> {
        let resp = self.send(req).await?;
        decode_json(&self.provider, what, &resp.body)
    }

    /// Sends a request; a non-2xx answer becomes an error (retried first
    /// when the request is idempotent and the error transient).
    pub async fn send(&self, req: HttpRequest) -> Result<HttpResponse> {
        let span = tracing::debug_span!(
            "http",
            provider = %self.provider,
            method = %req.method,
            path = %req.path,
            status_code = tracing::field::Empty,
            request_id = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.send_inner(req).instrument(span).await
    }

    fn operation(&self, req: &HttpRequest) -> String {
        format!("{} {}", req.method, req.path)
    }

    fn build(&self, req: &HttpRequest) -> Result<reqwest::Request> {
        let url_text = format!("{}{}", self.base, req.path);
        let mut url = url::Url::parse(&url_text).map_err(|e| {
            Error::invalid_input(
                &self.provider,
                format!("bad request path {:?}: {e}", req.path),
            )
        })?;
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        let mut r = reqwest::Request::new(req.method.clone(), url);
        for (k, v) in &req.headers {
            r.headers_mut().append(k.clone(), v.clone());
        }
        match &req.body {
            Some(Body::Json(bytes)) => {
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                *r.body_mut() = Some(bytes.clone().into());
            }
            Some(Body::Form(text)) => {
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                *r.body_mut() = Some(text.clone().into());
            }
            None => {}
        }
        Ok(r)
    }

    fn transport_error(&self, req: &HttpRequest, e: reqwest::Error) -> Error {
        // The URL is dropped from the message: some APIs take credentials
        // in the query string.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Error::Transport {
            provider: self.provider.clone(),
            operation: self.operation(req),
            message,
            timed_out: e.is_timeout(),
        }
    }

    fn status_error(&self, req: &HttpRequest, answer: &ErrorAnswer<'_>) -> Error {
        let (status, headers, body) = (answer.status, answer.headers, answer.body);
        let vendor = self.error_parser.parse(answer);
        let request_id = vendor.request_id.or_else(|| request_id_header(headers));
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        let message = vendor
            .message
            .clone()
            .or_else(|| {
                let line = excerpt.lines().next().unwrap_or_default().trim();
                (!line.is_empty()).then(|| truncate(line, 200).to_owned())
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        match status {
            401 | 403 => Error::Auth {
                provider: self.provider.clone(),
                status,
                message: match &request_id {
                    Some(id) => format!("{message} (request id {id})"),
                    None => message,
                },
            },
            404 => Error::NotFound {
                provider: self.provider.clone(),
                what: format!("{} ({message})", req.path),
            },
            _ => HttpError {
                provider: self.provider.clone(),
                method: req.method.to_string(),
                path: req.path.clone(),
                status,
                vendor_code: vendor.code,
                vendor_message: vendor.message,
                request_id,
                retry_after: retry_after(headers),
                body_excerpt: excerpt,
            }
            .into(),
        }
    }

    async fn send_inner(&self, req: HttpRequest) -> Result<HttpResponse> {
        let span = tracing::Span::current();
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            span.record("attempts", attempt);
            let mut request = self.build(&req)?;
            if let (Some(auth), false) = (&self.auth, req.skip_auth) {
                auth.authenticate(&mut request).await?;
            }
            let error = match self.inner.execute(request).await {
                Err(e) => self.transport_error(&req, e),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    span.record("status_code", status);
                    let headers = resp.headers().clone();
                    // Tomcat sends no reason phrase at all (`HTTP/1.1 400 `).
                    let reason = resp
                        .extensions()
                        .get::<hyper::ext::ReasonPhrase>()
                        .map(|r| String::from_utf8_lossy(r.as_bytes()).trim().to_owned())
                        .filter(|r| !r.is_empty());
                    if let Some(id) = request_id_header(&headers) {
                        span.record("request_id", id.as_str());
                    }
                    match resp.bytes().await {
                        Err(e) => self.transport_error(&req, e),
                        Ok(body) if (200..300).contains(&status) => {
                            tracing::debug!(status, bytes = body.len(), "http answer");
                            return Ok(HttpResponse {
                                status,
                                headers,
                                body: body.to_vec(),
                            });
                        }
                        Ok(body) => {
                            if status == 401 && !refreshed && !req.skip_auth {
                                if let Some(auth) = &self.auth {
                                    refreshed = true;
                                    if auth.refresh(self).await? {
                                        tracing::debug!(
                                            "credentials renewed after 401; sending again"
                                        );
                                        attempt -= 1;
                                        continue;
                                    }
                                }
                            }
                            let answer = ErrorAnswer {
                                status,
                                reason: reason.as_deref(),
                                headers: &headers,
                                body: &body,
                            };
                            self.status_error(&req, &answer)
                        }
                    }
                }
            };
            if !req.idempotent || !error.is_retryable() || attempt > self.retry.max_retries {
                tracing::debug!(error = %error, attempt, "http request failed");
                return Err(error);
            }
            let delay = match error.retry_after() {
                Some(wait) if wait > self.retry.max_delay => {
                    tracing::debug!(
                        ?wait,
                        "server asks to wait longer than the retry cap; giving up"
                    );
                    return Err(error);
                }
                Some(wait) => wait,
                None => self.retry.backoff(attempt, rand::random()),
            };
            tracing::debug!(error = %error, attempt, ?delay, "retrying idempotent request");
            tokio::time::sleep(delay).await;
        }
    }
}

/// `Retry-After` as seconds or an HTTP date; a date in the past is zero.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
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
    fn backoff_doubles_and_caps_with_jitter_floor() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(300));
        assert_eq!(p.backoff(3, 0.0), Duration::from_millis(150));
        assert_eq!(p.backoff(40, 1.0), Duration::from_millis(300));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(110) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn decode_names_the_json_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            data: Vec<Inner>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            pid: u32,
        }
        let err = decode_json::<Outer>("p", "task list", br#"{"data":[{"pid":1},{"pid":"x"}]}"#)
            .unwrap_err();
        match &err {
            Error::Decode { path, what, .. } => {
                assert_eq!(path, "data[1].pid");
                assert_eq!(what, "task list");
            }
            other => panic!("unexpected {other:?}"),
        }
        let err =
            decode_json::<Outer>("p", "task list", b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(err.to_string().contains("<html>"), "{err}");
        assert!(
            err.is_retryable(),
            "an HTML page is a glitch, not a schema change"
        );
        let err = decode_json::<Outer>("p", "task list", br#"{"data":[{"pid":1"#).unwrap_err();
        assert!(
            matches!(err, Error::Decode { garbled: true, .. }),
            "{err:?}"
        );
        let err = decode_json::<Outer>("p", "task list", br#"{"data":[{"pid":"x"}]}"#).unwrap_err();
        assert!(!err.is_retryable(), "a schema mismatch is permanent");
    }
}
