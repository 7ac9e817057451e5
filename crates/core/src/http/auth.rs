//! The credential hook of a vendor client.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::HeaderValue;

use super::HttpClient;
use crate::error::{Error, Result};

/// A header value carrying a credential, marked sensitive so that neither
/// hyper's debug output nor a log shows it. An invalid value is an error
/// naming `what`, never the value.
///
/// ```
/// use tasktrack_core::http::credential_header;
///
/// assert!(credential_header("pve", "API token", "PVEAPIToken=a!b=c").unwrap().is_sensitive());
/// let err = credential_header("pve", "API token", "bad\nvalue").unwrap_err().to_string();
/// assert!(err.contains("API token") && !err.contains("bad"));
/// ```
pub fn credential_header(provider: &str, what: &str, value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_input(
            provider,
            format!("the {what} holds characters not allowed in a header"),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
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
