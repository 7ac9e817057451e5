//! [`HttpClient`]: one vendor's base URL, credentials and error dialect
//! over reqwest, with retries of idempotent requests only, redirects never
//! followed to another origin, bodies bounded while they stream in, and
//! `tracing` spans per request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::answer::{
    decode_json, request_id_header, retry_after, ErrorAnswer, ErrorBodyParser, HeaderRequestId,
};
use super::auth::Authenticate;
use super::budget::Budget;
use super::options::{ClientOptions, ConfigureHttp, RedirectPolicy, RetryPolicy};
use super::request::{Body, HttpRequest, HttpResponse};
use crate::clock::{SharedClock, TokioClock};
use crate::error::{truncate, Error, HttpError, Result};
use crate::policy::{random_jitter, JitterSource};

/// How long a shared concurrency slot outlasts one attempt's timeout before
/// it lapses (its holder died without giving it back).
const SLOT_MARGIN: Duration = Duration::from_secs(5);

/// Builds an [`HttpClient`].
pub struct HttpClientBuilder {
    provider: String,
    base_url: String,
    auth: Option<Arc<dyn Authenticate>>,
    error_parser: Arc<dyn ErrorBodyParser>,
    options: ClientOptions,
    default_headers: HeaderMap,
    clock: SharedClock,
    jitter: JitterSource,
}

impl ConfigureHttp for HttpClientBuilder {
    fn client_options_mut(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl HttpClientBuilder {
    /// Adds credentials.
    pub fn with_auth(mut self, auth: Arc<dyn Authenticate>) -> Self {
        self.auth = Some(auth);
        self
    }
    /// Parses the vendor's error bodies.
    pub fn with_error_parser(mut self, parser: Arc<dyn ErrorBodyParser>) -> Self {
        self.error_parser = parser;
        self
    }
    /// A header sent on every request.
    pub fn with_default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.default_headers.insert(name, value);
        self
    }
    /// The clock retries wait on (tokio's by default).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
    /// The source of uniform `0.0..1.0` numbers for retry jitter.
    pub fn with_jitter_source(mut self, jitter: JitterSource) -> Self {
        self.jitter = jitter;
        self
    }

    fn reqwest_client(&self) -> Result<reqwest::Client> {
        let o = &self.options;
        if let Some(client) = &o.client {
            return Ok(client.clone());
        }
        let agent = o
            .user_agent
            .clone()
            .unwrap_or_else(|| concat!("tasktrack/", env!("CARGO_PKG_VERSION")).to_owned());
        let mut builder = reqwest::Client::builder()
            // Redirects are handled here, per request (see RedirectPolicy).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(o.timeout)
            .connect_timeout(o.connect_timeout)
            .user_agent(agent)
            .default_headers(self.default_headers.clone())
            .danger_accept_invalid_certs(o.danger_accept_invalid_certs);
        if let Some(proxy) = &o.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|_| {
                Error::invalid_input(&self.provider, "the proxy is not a valid URL")
            })?;
            builder = builder.proxy(proxy);
        }
        if let Some(pinned) = o.certificate_fingerprint {
            if o.danger_accept_invalid_certs {
                return Err(Error::invalid_input(
                    &self.provider,
                    "a pinned certificate fingerprint and accepting any certificate contradict each other; keep the fingerprint",
                ));
            }
            let tls = super::pinning::pinned_tls(pinned).map_err(|e| {
                Error::invalid_input(&self.provider, format!("cannot pin the certificate: {e}"))
            })?;
            builder = builder.use_preconfigured_tls(tls);
        }
        for pem in &o.root_certificates {
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
        builder.build().map_err(|e| {
            Error::invalid_input(&self.provider, format!("cannot build HTTP client: {e}"))
        })
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
        let inner = self.reqwest_client()?;
        let o = self.options;
        Ok(HttpClient {
            inner,
            provider: self.provider,
            base: base.as_str().trim_end_matches('/').to_owned(),
            origin: base.origin(),
            auth: self.auth,
            error_parser: self.error_parser,
            retry: o.retry,
            redirects: o.redirects,
            max_body_bytes: o.max_body_bytes,
            budget: o.max_requests.map(|n| Arc::new(Budget::new(n))),
            gate: o
                .request_gate
                .clone()
                .map(|g| g.with_clock(self.clock.clone())),
            in_flight: o
                .concurrency
                .clone()
                .map(|g| g.with_clock(self.clock.clone())),
            slot_ttl: o.timeout.saturating_add(SLOT_MARGIN),
            clock: self.clock,
            jitter: self.jitter,
        })
    }
}

/// The shared HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    pub(crate) inner: reqwest::Client,
    pub(crate) provider: String,
    pub(crate) base: String,
    pub(crate) origin: url::Origin,
    pub(crate) auth: Option<Arc<dyn Authenticate>>,
    pub(crate) error_parser: Arc<dyn ErrorBodyParser>,
    pub(crate) retry: RetryPolicy,
    pub(crate) redirects: RedirectPolicy,
    pub(crate) max_body_bytes: usize,
    pub(crate) budget: Option<Arc<Budget>>,
    pub(crate) gate: Option<super::RequestGate>,
    pub(crate) in_flight: Option<super::ConcurrencyGate>,
    pub(crate) slot_ttl: Duration,
    pub(crate) clock: SharedClock,
    pub(crate) jitter: JitterSource,
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
            options: ClientOptions::default(),
            default_headers: HeaderMap::new(),
            clock: Arc::new(TokioClock),
            jitter: random_jitter(),
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
        // OpenTelemetry's HTTP client conventions: the span is named by the
        // method, the attributes carry their semantic-convention names
        // (`url.path` rather than `url.full`, whose query may carry
        // credentials).
        let span = tracing::debug_span!(
            "http",
            otel.name = %req.method,
            otel.kind = "client",
            "http.request.method" = %req.method,
            "server.address" = self.origin_host(),
            "server.port" = self.origin_port(),
            "url.path" = %req.path,
            "http.response.status_code" = tracing::field::Empty,
            "http.request.resend_count" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            "tasktrack.backend" = %self.provider,
            "tasktrack.request_id" = tracing::field::Empty,
        );
        self.send_inner(req).instrument(span).await
    }

    fn origin_host(&self) -> String {
        match &self.origin {
            url::Origin::Tuple(_, host, _) => host.to_string(),
            url::Origin::Opaque(_) => String::new(),
        }
    }

    fn origin_port(&self) -> u16 {
        match &self.origin {
            url::Origin::Tuple(_, _, port) => *port,
            url::Origin::Opaque(_) => 0,
        }
    }

    pub(crate) fn operation(&self, req: &HttpRequest) -> String {
        format!("{} {}", req.method, req.path)
    }

    /// The URL of `req`. A path that URL parsing would change (a `.` or
    /// `..` segment, even percent-encoded) is refused: it would reach a
    /// route nobody named.
    fn url(&self, req: &HttpRequest) -> Result<url::Url> {
        let url_text = format!("{}{}", self.base, req.path);
        let mut url = url::Url::parse(&url_text).map_err(|e| {
            Error::invalid_input(
                &self.provider,
                format!("bad request path {:?}: {e}", req.path),
            )
        })?;
        let dot_segment = req.path.split('/').any(|seg| {
            let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
            decoded == "." || decoded == ".."
        });
        if dot_segment {
            return Err(Error::invalid_input(
                &self.provider,
                format!(
                    "refusing request path {:?}: a dot segment would send it elsewhere",
                    req.path
                ),
            ));
        }
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        Ok(url)
    }

    fn build(&self, req: &HttpRequest, url: url::Url) -> Result<reqwest::Request> {
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

    pub(crate) fn transport_error(&self, req: &HttpRequest, e: reqwest::Error) -> Error {
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
        let mut url = self.url(&req)?;
        let mut hops = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                span.record("http.request.resend_count", attempt - 1);
            }
            if let Some(budget) = &self.budget {
                if !budget.take() {
                    return Err(Error::limit(
                        &self.provider,
                        format!(
                            "the bound of {} requests was reached before {}",
                            budget.max,
                            self.operation(&req)
                        ),
                    ));
                }
            }
            if let Some(gate) = &self.gate {
                gate.admit().await;
            }
            let mut request = self.build(&req, url.clone())?;
            if let (Some(auth), false) = (&self.auth, req.skip_auth) {
                auth.authenticate(&mut request).await?;
            }
            // A slot covers one attempt: not the credential renewal or the
            // backoff around it, which would hold it idle (or, with one
            // slot, wait on itself).
            let slot = match &self.in_flight {
                Some(gate) => Some(gate.acquire(self.slot_ttl).await),
                None => None,
            };
            let sent = self.inner.execute(request).await;
            let error = match sent {
                Err(e) => {
                    drop(slot);
                    self.transport_error(&req, e)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    span.record("http.response.status_code", status);
                    let headers = resp.headers().clone();
                    if (300..400).contains(&status) && status != 304 {
                        url = self.redirect_target(&req, &url, status, &headers, hops)?;
                        hops += 1;
                        attempt -= 1;
                        continue;
                    }
                    // Tomcat sends no reason phrase at all (`HTTP/1.1 400 `).
                    let reason = resp
                        .extensions()
                        .get::<hyper::ext::ReasonPhrase>()
                        .map(|r| String::from_utf8_lossy(r.as_bytes()).trim().to_owned())
                        .filter(|r| !r.is_empty());
                    if let Some(id) = request_id_header(&headers) {
                        span.record("tasktrack.request_id", id.as_str());
                    }
                    let body = self.read_body(&req, resp).await;
                    drop(slot);
                    match body {
                        Err(e @ Error::Limit { .. }) => return Err(e),
                        Err(e) => e,
                        Ok(body) if (200..300).contains(&status) => {
                            tracing::debug!(status, bytes = body.len(), "http answer");
                            return Ok(HttpResponse {
                                status,
                                headers,
                                body,
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
            if let Some(gate) = &self.gate {
                let throttled = matches!(&error, Error::Http(h) if h.status == 429);
                if throttled || error.retry_after().is_some() {
                    let pause = error.retry_after().unwrap_or(Duration::from_secs(1));
                    gate.throttled(pause.min(Duration::from_secs(300))).await;
                }
            }
            if !req.idempotent || !error.is_retryable() || attempt > self.retry.max_retries {
                span.record("error.type", error.kind());
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
                None => self.retry.backoff(attempt, (self.jitter)()),
            };
            tracing::debug!(error = %error, attempt, ?delay, "retrying idempotent request");
            self.clock.sleep(delay).await;
        }
    }
}
