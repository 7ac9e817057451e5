//! [`HttpConfig`]: the `http` table every HTTP backend's configuration
//! takes, read from a config file and checked into [`ClientOptions`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ClientOptions, RedirectPolicy};
use crate::{Error, Result};

/// A backend's HTTP settings as a config file writes them:
///
/// ```toml
/// [backends.pve.http]
/// timeout = "30s"               # per request, 1 s to 10 min
/// max_body_bytes = 33554432     # largest answer read, 1 KiB to 1 GiB
/// redirects = "never"           # or "same-origin" (reads only)
/// ca_cert = "/etc/pve/pve-root-ca.pem"
/// insecure = false              # accept any certificate (dangerous)
/// proxy = "http://proxy:3128"
/// max_requests = 10000          # over the client's life
/// max_requests_per_second = 20  # a budget, shared by every replica on one store
/// burst = 5                     # requests at once after a quiet spell (default 1)
/// max_concurrency = 8           # in flight at once, across every replica on one store
/// rate_bucket = "pve-cluster-a" # backends naming one bucket share one budget
/// ```
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Per-request timeout, e.g. `"30s"`.
    pub timeout: Option<String>,
    /// The largest answer body read.
    pub max_body_bytes: Option<u64>,
    /// `"never"` (the default) or `"same-origin"`.
    pub redirects: Option<String>,
    /// A root CA to trust, a PEM file.
    pub ca_cert: Option<PathBuf>,
    /// **Dangerous**: accept any certificate.
    #[serde(default)]
    pub insecure: bool,
    /// Trust exactly the certificate with this SHA-256 fingerprint
    /// (`AA:BB:…`, as Proxmox shows it), instead of any CA.
    pub fingerprint: Option<String>,
    /// A proxy for every request.
    pub proxy: Option<String>,
    /// A request budget: at most this many requests a second on average,
    /// across every replica sharing a store (the front end gives the store
    /// with [`share_budget`](Self::share_budget)).
    pub max_requests_per_second: Option<f64>,
    /// Requests that may go at once after a quiet spell (default 1).
    pub burst: Option<u32>,
    /// Requests in flight at once, across every replica sharing a store
    /// (else in this process).
    pub max_concurrency: Option<usize>,
    /// The budget's name (default: the backend's): backends that reach one
    /// server or account under one name share one budget.
    pub rate_bucket: Option<String>,
    /// The store the budget is shared through (not read from a file).
    #[serde(skip)]
    pub shared_budget: Option<std::sync::Arc<dyn crate::TrackStore>>,
    /// Requests sent at most over the client's life.
    pub max_requests: Option<u64>,
}

impl std::fmt::Debug for HttpConfig {
    // A proxy URL may carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("redirects", &self.redirects)
            .field("ca_cert", &self.ca_cert)
            .field("fingerprint", &self.fingerprint)
            .field("insecure", &self.insecure)
            .field("proxy", &self.proxy.as_ref().map(|_| "***"))
            .field("max_requests", &self.max_requests)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .field("burst", &self.burst)
            .field("max_concurrency", &self.max_concurrency)
            .field("rate_bucket", &self.rate_bucket)
            .field("shared_budget", &self.shared_budget.is_some())
            .finish()
    }
}

const MIN_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
const MIN_BODY: u64 = 1024;
const MAX_BODY: u64 = 1 << 30;

impl HttpConfig {
    /// Shares the request budget (if one is set) with every replica using
    /// `store`.
    pub fn share_budget(&mut self, store: std::sync::Arc<dyn crate::TrackStore>) {
        self.shared_budget = Some(store);
    }

    /// Lowers `max_requests` to `max` (a smaller value already set stays).
    pub fn limit_requests(&mut self, max: u64) {
        self.max_requests = Some(self.max_requests.map_or(max, |m| m.min(max)));
    }

    /// The client options these settings give, each value checked; errors
    /// name `backend` and the field.
    pub fn options(&self, backend: &str) -> Result<ClientOptions> {
        let bad =
            |field: &str, why: String| Error::invalid_input(backend, format!("http.{field} {why}"));
        let mut options = ClientOptions::default();
        if let Some(t) = &self.timeout {
            let parsed = humantime::parse_duration(t.trim())
                .map_err(|e| bad("timeout", format!("is not a duration ({e}); e.g. \"30s\"")))?;
            if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&parsed) {
                return Err(bad("timeout", "must be between 1s and 10m".into()));
            }
            options.timeout = parsed;
        }
        if let Some(n) = self.max_body_bytes {
            if !(MIN_BODY..=MAX_BODY).contains(&n) {
                return Err(bad(
                    "max_body_bytes",
                    format!("must be between {MIN_BODY} and {MAX_BODY}"),
                ));
            }
            options.max_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        options.redirects = match self.redirects.as_deref() {
            None | Some("never") => RedirectPolicy::None,
            Some("same-origin") => RedirectPolicy::SameOrigin,
            Some(other) => {
                return Err(bad(
                    "redirects",
                    format!("is {other:?}; use \"never\" or \"same-origin\""),
                ))
            }
        };
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                bad(
                    "ca_cert",
                    format!("cannot be read from {}: {e}", path.display()),
                )
            })?;
            options.root_certificates.push(pem);
        }
        options.danger_accept_invalid_certs = self.insecure;
        if let Some(text) = &self.fingerprint {
            let pinned = text
                .parse::<super::CertificateFingerprint>()
                .map_err(|e| bad("fingerprint", format!("is not valid: {e}")))?;
            if self.insecure {
                return Err(bad(
                    "fingerprint",
                    "and insecure = true contradict each other; keep the fingerprint".into(),
                ));
            }
            options.certificate_fingerprint = Some(pinned);
        }
        options.proxy.clone_from(&self.proxy);
        if let Some(0) = self.max_requests {
            return Err(bad("max_requests", "must be at least 1".into()));
        }
        options.max_requests = self.max_requests;
        let bucket = self
            .rate_bucket
            .clone()
            .unwrap_or_else(|| backend.to_owned());
        let valid = !bucket.is_empty()
            && bucket.len() <= 64
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(bad(
                "rate_bucket",
                "must be 1 to 64 letters, digits, -, _ or .".into(),
            ));
        }
        if let Some(rate) = self.max_requests_per_second {
            if !(rate.is_finite() && (0.01..=100_000.0).contains(&rate)) {
                return Err(bad(
                    "max_requests_per_second",
                    "must be between 0.01 and 100000".into(),
                ));
            }
            let burst = self.burst.unwrap_or(1);
            if !(1..=10_000).contains(&burst) {
                return Err(bad("burst", "must be between 1 and 10000".into()));
            }
            let limit = crate::rate::RateLimit {
                per_second: rate,
                burst,
            };
            options.request_gate = Some(match &self.shared_budget {
                Some(store) => super::RequestGate::shared(bucket.clone(), limit, store.clone()),
                None => super::RequestGate::local(bucket.clone(), limit),
            });
        } else if self.burst.is_some() {
            return Err(bad("burst", "needs max_requests_per_second".into()));
        }
        if let Some(n) = self.max_concurrency {
            if !(1..=10_000).contains(&n) {
                return Err(bad("max_concurrency", "must be between 1 and 10000".into()));
            }
            options.concurrency = Some(match &self.shared_budget {
                Some(store) => super::ConcurrencyGate::shared(n, bucket, store.clone()),
                None => super::ConcurrencyGate::local(n),
            });
        }
        if self.rate_bucket.is_some()
            && self.max_requests_per_second.is_none()
            && self.max_concurrency.is_none()
        {
            return Err(bad(
                "rate_bucket",
                "needs max_requests_per_second or max_concurrency".into(),
            ));
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_named() {
        let ok = HttpConfig {
            timeout: Some("5s".into()),
            max_body_bytes: Some(4096),
            redirects: Some("same-origin".into()),
            ..HttpConfig::default()
        };
        let o = ok.options("b").unwrap();
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(o.max_body_bytes, 4096);
        assert_eq!(o.redirects, RedirectPolicy::SameOrigin);
        for (bad, field) in [
            (
                HttpConfig {
                    timeout: Some("0s".into()),
                    ..HttpConfig::default()
                },
                "http.timeout",
            ),
            (
                HttpConfig {
                    timeout: Some("soon".into()),
                    ..HttpConfig::default()
                },
                "http.timeout",
            ),
            (
                HttpConfig {
                    max_body_bytes: Some(1),
                    ..HttpConfig::default()
                },
                "http.max_body_bytes",
            ),
            (
                HttpConfig {
                    redirects: Some("always".into()),
                    ..HttpConfig::default()
                },
                "http.redirects",
            ),
            (
                HttpConfig {
                    ca_cert: Some("/nonexistent/ca.pem".into()),
                    ..HttpConfig::default()
                },
                "http.ca_cert",
            ),
        ] {
            let e = bad.options("b").unwrap_err();
            assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
