//! The credential hook of a vendor client.

use std::fmt;

use async_trait::async_trait;

use super::HttpClient;
use crate::error::Result;

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
