//! The safety limits of an [`HttpClient`]: the body size checked while it
//! streams in, the redirects it may follow.

use reqwest::header::HeaderMap;

use super::client::HttpClient;
use super::options::RedirectPolicy;
use super::request::HttpRequest;
use crate::error::{Error, Result};

/// Redirects followed in a row at most.
const MAX_REDIRECTS: u32 = 5;

impl HttpClient {
    /// Reads an answer's body, refusing one larger than the limit while it
    /// streams in (a declared `Content-Length` is checked first).
    pub(crate) async fn read_body(
        &self,
        req: &HttpRequest,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>> {
        let limit = self.max_body_bytes;
        let too_large = || {
            Error::limit(
                &self.provider,
                format!(
                    "the answer to {} is larger than the {} limit (raise max_body_bytes if it is expected)",
                    self.operation(req),
                    human_bytes(limit)
                ),
            )
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(
            resp.content_length()
                .map_or(0, |n| (n as usize).min(64 * 1024)),
        );
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(req, e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Where a 3xx points, when it may be followed; otherwise the error
    /// that says where it pointed.
    pub(crate) fn redirect_target(
        &self,
        req: &HttpRequest,
        current: &url::Url,
        status: u16,
        headers: &HeaderMap,
        hops: u32,
    ) -> Result<url::Url> {
        let target = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| current.join(l).ok());
        let Some(target) = target else {
            return Err(Error::limit(
                &self.provider,
                format!(
                    "{} answered {status} without a usable Location",
                    self.operation(req)
                ),
            ));
        };
        let shown = match (target.host_str(), target.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", target.scheme()),
            _ => target.scheme().to_owned(),
        };
        let same_origin = target.origin() == self.origin;
        let why = match self.redirects {
            RedirectPolicy::None => Some(format!(
                "redirects are not followed (they would carry credentials); point the backend's URL at {shown}"
            )),
            RedirectPolicy::SameOrigin if !same_origin => Some(format!(
                "it leads to another origin, {shown}, which would receive the credentials"
            )),
            RedirectPolicy::SameOrigin if !req.idempotent => Some(
                "a control action is never sent twice, nor anywhere else".to_owned(),
            ),
            RedirectPolicy::SameOrigin if hops >= MAX_REDIRECTS => {
                Some(format!("more than {MAX_REDIRECTS} redirects in a row"))
            }
            RedirectPolicy::SameOrigin => None,
        };
        match why {
            None => Ok(target),
            Some(why) => Err(Error::limit(
                &self.provider,
                format!(
                    "{} was redirected ({status}) to {shown}; not followed: {why}",
                    self.operation(req)
                ),
            )),
        }
    }
}

/// `32 MiB`, `512 KiB`, `100 B`.
fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}
