//! What an answer means: vendor error bodies, request ids,
//! `Retry-After`, and JSON decoding that names where a body went wrong.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// What a vendor's error body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendorError {
    /// Vendor error code.
    pub code: Option<String>,
    /// Vendor error message.
    pub message: Option<String>,
    /// Request / trace id, from the body or a header.
    pub request_id: Option<String>,
}

impl VendorError {
    /// What a body said: its code and message, either possibly absent.
    pub fn new(code: Option<String>, message: Option<String>) -> Self {
        VendorError {
            code,
            message,
            request_id: None,
        }
    }

    /// The same error with the request or trace id that came with it.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
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

/// Decodes JSON, naming the JSON path where the body stopped matching.
///
/// The hot path is a plain `serde_json` decode; only a body that fails it
/// is decoded a second time with the path-tracking decoder (which costs
/// about a tenth of a status update on every answer) to say where.
pub fn decode_json<T: DeserializeOwned>(provider: &str, what: &str, body: &[u8]) -> Result<T> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
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
    use reqwest::header::HeaderValue;

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
