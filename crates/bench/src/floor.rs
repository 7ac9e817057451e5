//! The floor: what one status request costs a client that does nothing but
//! the request. A bare hyper client (no retry, no auth hook, no tracing, no
//! URL re-parse), keep-alive, the same number of requests in flight as the
//! Tracker's window, against the OCP simulator's task status endpoint,
//! decoding only the two fields a change detector needs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::throughput::{OCP_PASSWORD, OCP_USER};

/// Requests the floor makes in all.
pub(crate) const REQUESTS: usize = 20_000;
/// Requests in flight: about what the Tracker has in flight at 10,000
/// mixed tasks (32 per provider without batch status, three of them), and
/// what earlier floors used, so floors compare across days.
pub(crate) const IN_FLIGHT: usize = 64;

#[derive(Deserialize)]
struct Envelope {
    data: Instance,
}

#[derive(Deserialize)]
struct Instance {
    id: i64,
    status: String,
}

/// Asks the OCP simulator at `base` for the status of `ids`, round robin,
/// [`REQUESTS`] times with [`IN_FLIGHT`] in flight; the requests answered
/// and decoded, or the first failure.
pub(crate) async fn run(base: &str, ids: &[String]) -> Result<u64, String> {
    if ids.is_empty() {
        return Err("the floor needs tasks".into());
    }
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uris: Arc<Vec<hyper::Uri>> = Arc::new(
        ids.iter()
            .map(|id| {
                format!("{base}/api/v2/tasks/instances/{id}")
                    .parse()
                    .map_err(|e| format!("bad URL for task {id}: {e}"))
            })
            .collect::<Result<_, String>>()?,
    );
    let authorization = Arc::new(basic_authorization());
    drive(REQUESTS, move |n| {
        let (client, uris) = (client.clone(), uris.clone());
        let authorization = authorization.clone();
        async move {
            let request = hyper::Request::get(uris[n % uris.len()].clone())
                .header("authorization", authorization.as_str())
                .body(Empty::new())
                .map_err(|e| e.to_string())?;
            let answer = client.request(request).await.map_err(|e| e.to_string())?;
            if !answer.status().is_success() {
                return Err(format!("status {}", answer.status()));
            }
            let body = answer
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            two_fields(&body)
        }
    })
    .await
}

/// The OCP account's Basic authorization header value.
pub(crate) fn basic_authorization() -> String {
    format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{OCP_USER}:{OCP_PASSWORD}"))
    )
}

/// Decodes what a change detector would compare, and nothing else.
pub(crate) fn two_fields(body: &[u8]) -> Result<(), String> {
    let decoded: Envelope = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    std::hint::black_box((decoded.data.id, decoded.data.status));
    Ok(())
}

/// Runs `op(0..requests)` with [`IN_FLIGHT`] running at once; how many
/// succeeded, or the first failure.
pub(crate) async fn drive<F, Fut>(requests: usize, op: F) -> Result<u64, String>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        return Ok::<u64, String>(done);
                    }
                    op(n).await?;
                    done += 1;
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.map_err(|e| e.to_string())??;
    }
    Ok(total)
}
