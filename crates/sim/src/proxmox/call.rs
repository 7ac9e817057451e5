//! What the Proxmox family's handlers read of a request, as axum
//! extractors: the credentials' carriers and the raw query ([`Call`]), plus
//! the `{node}` and `{upid}` of a task route ([`TaskCall`]). Both the PVE
//! and the PBS simulator take them, so a handler names what it does, not
//! the five extractors it needs.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

/// The method, headers and query of a request.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) query: Option<String>,
}

impl Call {
    /// The query's `key=value` pairs, decoded, in order (a key may repeat).
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Call {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Call {
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            query: parts.uri.query().map(str::to_owned),
        })
    }
}

/// A call on `/nodes/{node}/tasks/{upid}…`: the path's two parts as sent.
pub(crate) struct TaskCall {
    pub(crate) call: Call,
    pub(crate) node: String,
    pub(crate) upid: String,
}

impl<S: Send + Sync> FromRequestParts<S> for TaskCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((node, upid)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Ok(call) = Call::from_request_parts(parts, state).await;
        Ok(TaskCall { call, node, upid })
    }
}
