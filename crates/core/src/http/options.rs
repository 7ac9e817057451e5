//! What every vendor client can be told: timeouts, retries, TLS, proxy,
//! redirects and safety limits ([`ClientOptions`]).

use std::fmt;
use std::time::Duration;

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
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }
}

/// Whether redirects are followed. Credentials are attached to every
/// request, and a redirect to another host would hand them over, so the
/// default is [`RedirectPolicy::None`]: a 3xx is an [`Error::Limit`](crate::Error::Limit) naming
/// where it pointed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectPolicy {
    /// Never follow (the default).
    #[default]
    None,
    /// Follow redirects to the same scheme, host and port as the base URL,
    /// at most 5 in a row, for idempotent requests only: a control action is
    /// never re-sent anywhere.
    SameOrigin,
}

/// The largest answer body read by default: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// The options every vendor client's builder takes, so a timeout, a root
/// CA or a proxy is set the same way for Proxmox, Huawei Cloud and OCP.
///
/// ```
/// use std::time::Duration;
/// use tasktrack_core::http::{ClientOptions, ConfigureHttp, RedirectPolicy};
///
/// let options = ClientOptions::default()
///     .with_timeout(Duration::from_secs(10))
///     .with_redirects(RedirectPolicy::SameOrigin)
///     .with_max_body_bytes(8 << 20);
/// assert_eq!(options.timeout, Duration::from_secs(10));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Whole-request timeout. Default 30 s.
    pub timeout: Duration,
    /// Connect timeout. Default 10 s.
    pub connect_timeout: Duration,
    /// Retry of idempotent requests.
    pub retry: RetryPolicy,
    /// Extra root CAs, in PEM (e.g. Proxmox's `pve-root-ca.pem`).
    pub root_certificates: Vec<Vec<u8>>,
    /// **Dangerous**: accept any TLS certificate, so anyone on the path can
    /// read the credentials. Default false.
    pub danger_accept_invalid_certs: bool,
    /// Trust exactly the server certificate with this SHA-256 fingerprint
    /// (and no other, whoever signed it): pinning a self-signed Proxmox
    /// certificate. Replaces the root store; default none.
    pub certificate_fingerprint: Option<super::CertificateFingerprint>,
    /// The `User-Agent` (default `tasktrack/VERSION`).
    pub user_agent: Option<String>,
    /// A proxy for every request (`http://`, `https://` or `socks5://`).
    pub proxy: Option<String>,
    /// Whether redirects are followed (default never).
    pub redirects: RedirectPolicy,
    /// The largest answer body read (default 32 MiB).
    pub max_body_bytes: usize,
    /// At most this many requests over the client's life (default none).
    pub max_requests: Option<u64>,
    /// A ready `reqwest::Client` to send with, instead of one built from the
    /// TLS, proxy and timeout options above. It must not follow redirects
    /// itself (`reqwest::redirect::Policy::none()`): tasktrack decides.
    pub client: Option<reqwest::Client>,
    /// A request budget every attempt (retries included) is admitted by
    /// (default none).
    pub request_gate: Option<super::RequestGate>,
    /// A bound on this client's requests in flight at once, in this
    /// process or shared by a fleet (default no bound).
    pub concurrency: Option<super::ConcurrencyGate>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            root_certificates: Vec::new(),
            danger_accept_invalid_certs: false,
            certificate_fingerprint: None,
            user_agent: None,
            proxy: None,
            redirects: RedirectPolicy::None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_requests: None,
            client: None,
            request_gate: None,
            concurrency: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    // A proxy URL may carry credentials: only whether one is set is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("root_certificates", &self.root_certificates.len())
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field("certificate_fingerprint", &self.certificate_fingerprint)
            .field("user_agent", &self.user_agent)
            .field("proxy", &self.proxy.as_ref().map(|_| "***"))
            .field("redirects", &self.redirects)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_requests", &self.max_requests)
            .field("client", &self.client.is_some())
            .field("request_gate", &self.request_gate)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// The `with_*` setters of every HTTP client builder, written once over the
/// [`ClientOptions`] it holds: [`ClientOptions`] itself,
/// [`HttpClientBuilder`](super::HttpClientBuilder) and each adapter's client
/// builder implement [`client_options_mut`](Self::client_options_mut) and
/// get the rest.
///
/// ```
/// use std::time::Duration;
/// use tasktrack_core::http::{ClientOptions, ConfigureHttp};
///
/// let options = ClientOptions::default()
///     .with_timeout(Duration::from_secs(5))
///     .with_user_agent("ops-dashboard/1.0");
/// assert_eq!(options.timeout, Duration::from_secs(5));
/// ```
pub trait ConfigureHttp: Sized {
    /// The options being built.
    fn client_options_mut(&mut self) -> &mut ClientOptions;

    /// Takes every option at once (replacing those set before).
    fn with_options(mut self, options: ClientOptions) -> Self {
        *self.client_options_mut() = options;
        self
    }
    /// Whole-request timeout (default 30 s).
    fn with_timeout(mut self, d: Duration) -> Self {
        self.client_options_mut().timeout = d;
        self
    }
    /// Connect timeout (default 10 s).
    fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.client_options_mut().connect_timeout = d;
        self
    }
    /// Retry of idempotent requests (control actions are never retried).
    fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.client_options_mut().retry = retry;
        self
    }
    /// Trusts one more root CA, in PEM (e.g. Proxmox's `pve-root-ca.pem`).
    fn with_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.client_options_mut()
            .root_certificates
            .push(pem.to_vec());
        self
    }
    /// **Dangerous**: accepts any TLS certificate, so anyone on the path can
    /// read the credentials. Only for a lab server with a self-signed
    /// certificate you cannot add as a root.
    fn with_danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.client_options_mut().danger_accept_invalid_certs = yes;
        self
    }
    /// Trusts exactly the server certificate with `fingerprint` (its
    /// SHA-256, as Proxmox shows it), instead of any root CA.
    fn with_certificate_fingerprint(mut self, fingerprint: super::CertificateFingerprint) -> Self {
        self.client_options_mut().certificate_fingerprint = Some(fingerprint);
        self
    }
    /// Sets the `User-Agent`.
    fn with_user_agent(mut self, agent: impl Into<String>) -> Self {
        self.client_options_mut().user_agent = Some(agent.into());
        self
    }
    /// Sends every request through this proxy.
    fn with_proxy(mut self, url: impl Into<String>) -> Self {
        self.client_options_mut().proxy = Some(url.into());
        self
    }
    /// Whether redirects are followed (default: never).
    fn with_redirects(mut self, policy: RedirectPolicy) -> Self {
        self.client_options_mut().redirects = policy;
        self
    }
    /// The largest answer body read, checked while it streams in (default
    /// [`DEFAULT_MAX_BODY_BYTES`]); a larger one is an
    /// [`Error::Limit`](crate::Error::Limit).
    fn with_max_body_bytes(mut self, n: usize) -> Self {
        self.client_options_mut().max_body_bytes = n.max(1);
        self
    }
    /// At most this many requests (retries included) over the client's
    /// life, then [`Error::Limit`](crate::Error::Limit): a bound for
    /// one-shot commands against a server that pages forever. Default: no
    /// bound.
    fn with_max_requests(mut self, n: Option<u64>) -> Self {
        self.client_options_mut().max_requests = n;
        self
    }
    /// Admits every attempt through `gate`, a request budget.
    fn with_request_gate(mut self, gate: super::RequestGate) -> Self {
        self.client_options_mut().request_gate = Some(gate);
        self
    }
    /// At most `n` requests in flight at once (at least 1), in this process.
    fn with_max_concurrency(self, n: usize) -> Self {
        self.with_concurrency_gate(super::ConcurrencyGate::local(n))
    }
    /// Sends every attempt through `gate`, a concurrency bound that may be
    /// shared by a fleet ([`ConcurrencyGate::shared`](super::ConcurrencyGate::shared)).
    fn with_concurrency_gate(mut self, gate: super::ConcurrencyGate) -> Self {
        self.client_options_mut().concurrency = Some(gate);
        self
    }
    /// Sends with a ready `reqwest::Client` (see [`ClientOptions::client`]).
    fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client_options_mut().client = Some(client);
        self
    }
}

impl ConfigureHttp for ClientOptions {
    fn client_options_mut(&mut self) -> &mut ClientOptions {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_nan_unit_is_no_panic() {
        let d = RetryPolicy::default().backoff(1, f64::NAN);
        assert_eq!(d, Duration::from_millis(150));
    }

    #[test]
    fn a_proxy_url_is_never_shown() {
        let o = ClientOptions::default().with_proxy("http://user:secret@proxy:3128");
        assert!(!format!("{o:?}").contains("secret"));
    }
}
