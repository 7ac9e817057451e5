//! AK/SK request signing as Huawei Cloud's SDKs do it (`SDK-HMAC-SHA256`).

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST};
use percent_encoding::{percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use tasktrack_core::http::RFC3986;
use tasktrack_core::{Error, Result, Secret};

/// The algorithm name in the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The header carrying the signing time.
pub const X_SDK_DATE: &str = "x-sdk-date";
/// `X-Sdk-Date`'s format.
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// The header that replaces the body hash for unsigned payloads.
pub const X_SDK_CONTENT_SHA256: &str = "x-sdk-content-sha256";

/// Which headers a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedHeaders {
    /// Every header on the request whose name has no `_`, like the SDKs
    /// (so at least `host` and `x-sdk-date`).
    All,
    /// Exactly these (lower-case) names.
    Only(Vec<String>),
}

/// Signs requests with an access key and secret key.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tasktrack_huaweicloud::{Signer, SignedHeaders};
///
/// let signer = Signer::new("AccessKey", "SecretKey").with_signed_headers(SignedHeaders::Only(vec!["x-sdk-date".into()]));
/// let mut parts = http::Request::get("https://example.huaweicloud.com/path?limit=1").body(()).unwrap().into_parts().0;
/// signer.sign(&mut parts, b"", Utc.with_ymd_and_hms(2006, 1, 2, 15, 4, 5).unwrap()).unwrap();
/// assert_eq!(
///     parts.headers["authorization"],
///     "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
/// );
/// ```
#[derive(Clone)]
pub struct Signer {
    access_key: String,
    secret_key: Secret,
    signed: SignedHeaders,
}

impl fmt::Debug for Signer {
    // The access key is an identifier, not a secret, but it still names an
    // account: only its first characters are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ak: String = self.access_key.chars().take(4).collect();
        f.debug_struct("Signer")
            .field("access_key", &format_args!("{ak}***"))
            .field("secret_key", &self.secret_key)
            .field("signed", &self.signed)
            .finish()
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The canonical URI: each decoded path segment re-encoded, always ending
/// in `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query: decoded pairs sorted by name then value, re-encoded,
/// joined by `&`; empty without a query.
pub fn canonical_query(query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Everything of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as sent (percent-encoded or not).
    pub path: &'a str,
    /// Query string as sent, without `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The lower-case names to sign, sorted.
    pub signed_headers: &'a [String],
    /// Body bytes.
    pub body: &'a [u8],
}

/// The canonical request the signature is computed over.
pub fn canonical_request(input: &SigningInput<'_>) -> String {
    let mut headers = String::new();
    for name in input.signed_headers {
        let value = input
            .headers
            .get(name.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .unwrap_or_default();
        headers.push_str(&format!("{name}:{value}\n"));
    }
    let payload = match input
        .headers
        .get(X_SDK_CONTENT_SHA256)
        .and_then(|v| v.to_str().ok())
    {
        Some(declared) => declared.to_owned(),
        None => sha256_hex(input.body),
    };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method.to_uppercase(),
        canonical_uri(input.path),
        canonical_query(input.query),
        headers,
        input.signed_headers.join(";"),
        payload
    )
}

/// The hex signature of a canonical request at `date` (`YYYYMMDDTHHMMSSZ`).
pub fn signature(secret_key: &str, date: &str, canonical: &str) -> String {
    let string_to_sign = format!("{ALGORITHM}\n{date}\n{}", sha256_hex(canonical.as_bytes()));
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Signer {
    /// A signer for `access_key` / `secret_key`, signing every header.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<Secret>) -> Self {
        Signer {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            signed: SignedHeaders::All,
        }
    }

    /// Chooses the signed headers.
    pub fn with_signed_headers(mut self, signed: SignedHeaders) -> Self {
        self.signed = signed;
        self
    }

    /// The access key.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Signs a request: sets `X-Sdk-Date` (from `now`), `Host` (from the URI
    /// when missing) and `Authorization`.
    pub fn sign(
        &self,
        parts: &mut http::request::Parts,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().map(str::to_owned);
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        let method = parts.method.as_str().to_owned();
        self.sign_headers(
            &method,
            &path,
            query.as_deref(),
            authority.as_deref(),
            &mut parts.headers,
            body,
            now,
        )
    }

    /// [`sign`](Self::sign) on a `reqwest::Request`.
    pub fn sign_reqwest(&self, request: &mut reqwest::Request, now: DateTime<Utc>) -> Result<()> {
        let url = request.url().clone();
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => Some(format!("{h}:{p}")),
            (Some(h), None) => Some(h.to_owned()),
            _ => None,
        };
        let body = request
            .body()
            .and_then(|b| b.as_bytes())
            .unwrap_or_default()
            .to_vec();
        let method = request.method().as_str().to_owned();
        self.sign_headers(
            &method,
            url.path(),
            url.query(),
            authority.as_deref(),
            request.headers_mut(),
            &body,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_headers(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        authority: Option<&str>,
        headers: &mut HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let date = now.format(DATE_FORMAT).to_string();
        headers.insert(
            HeaderName::from_static(X_SDK_DATE),
            HeaderValue::from_str(&date)
                .map_err(|_| Error::invalid_input("huaweicloud", "bad signing date"))?,
        );
        if let (false, Some(host)) = (headers.contains_key(HOST), authority) {
            let value = HeaderValue::from_str(host)
                .map_err(|_| Error::invalid_input("huaweicloud", format!("bad host {host:?}")))?;
            headers.insert(HOST, value);
        }
        let mut signed: Vec<String> = match &self.signed {
            SignedHeaders::All => headers
                .keys()
                .map(|k| k.as_str().to_owned())
                .filter(|k| !k.contains('_') && k != AUTHORIZATION.as_str())
                .collect(),
            SignedHeaders::Only(names) => names.iter().map(|n| n.to_lowercase()).collect(),
        };
        signed.sort();
        signed.dedup();
        let canonical = canonical_request(&SigningInput {
            method,
            path,
            query,
            headers,
            signed_headers: &signed,
            body,
        });
        let sig = signature(self.secret_key.expose(), &date, &canonical);
        let value = format!(
            "{ALGORITHM} Access={}, SignedHeaders={}, Signature={sig}",
            self.access_key,
            signed.join(";")
        );
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            Error::invalid_input(
                "huaweicloud",
                "access key holds characters not allowed in a header",
            )
        })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
        Ok(())
    }
}
