//! The middleware that counts every routed request and applies the
//! injected faults, in the vendor's error style.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::context::SimContext;
use crate::faults::Fault;

/// The middleware that counts every routed request and applies faults.
pub(crate) async fn layer(
    State(ctx): State<SimContext>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let pattern = matched.as_ref().map_or("<unmatched>", |m| m.as_str());
    let key = format!("{} {}", req.method(), pattern);
    ctx.requests.hit(&key);
    let Some(fault) = ctx.faults.take(&key) else {
        return next.run(req).await;
    };
    tracing::debug!(route = %key, ?fault, "injecting fault");
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("injected fault");
            let mut resp = ctx.error_response(status, reason);
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        Fault::DropConnection => {
            let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
                Ok(b"{\"data\": {\"status\": \"runn"),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected drop",
                )),
            ];
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Fault::Truncated => {
            let resp = next.run(req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        Fault::Html { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let reason = status.canonical_reason().unwrap_or("Error");
            let page = format!(
                "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                code = status.as_u16()
            );
            (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
        }
    }
}
