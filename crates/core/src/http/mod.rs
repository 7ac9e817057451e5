//! The HTTP client layer every vendor adapter shares: base URL, an
//! [`Authenticate`] hook, [`ClientOptions`] (timeouts, retry of idempotent
//! requests only with backoff, jitter and `Retry-After`, TLS, proxy,
//! redirects, safety limits), vendor error bodies, JSON decoding that names
//! the failing path, and tracing spans.

mod answer;
mod auth;
mod budget;
mod client;
mod config;
mod gate;
mod limits;
mod options;
mod pinning;
mod request;
mod slots;

pub use answer::{
    decode_json, request_id_header, retry_after, ErrorAnswer, ErrorBodyParser, HeaderRequestId,
    VendorError,
};
pub use auth::{credential_header, Authenticate};
pub use client::{HttpClient, HttpClientBuilder};
pub use config::HttpConfig;
pub use gate::RequestGate;
pub use options::{
    ClientOptions, ConfigureHttp, RedirectPolicy, RetryPolicy, DEFAULT_MAX_BODY_BYTES,
};
pub use pinning::{CertificateFingerprint, FingerprintError};
pub use request::{encode_segment, path_segment, HttpRequest, HttpResponse, RFC3986};
pub use reqwest::Method;
pub use slots::{ConcurrencyGate, Slot};
