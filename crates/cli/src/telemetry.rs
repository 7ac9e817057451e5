//! OpenTelemetry export (the `otel` feature): when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set, tasktrack's spans, the HTTP client spans with their
//! semantic-convention attribute names among them, go over OTLP/HTTP
//! (protobuf) to that collector. The other `OTEL_*` variables the OTLP
//! exporter reads (headers, timeout, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`) apply.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::Layer;

/// A collector's answer is a small status message; more is not read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter's transport: the workspace's reqwest (rustls, ring) on the
/// process's tokio runtime, so the feature adds no second TLS stack. The
/// batch processor runs exports on its own thread; each is spawned onto the
/// runtime and awaited from there.
#[derive(Debug)]
struct Transport {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Transport {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let (parts, body) = request.into_parts();
            let mut answer = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = answer.status();
            let mut read = Vec::new();
            while let Some(chunk) = answer.chunk().await? {
                let room = MAX_ANSWER_BYTES.saturating_sub(read.len());
                read.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok::<_, reqwest::Error>(
                Response::builder()
                    .status(status)
                    .body(Bytes::from(read))
                    .unwrap_or_default(),
            )
        };
        match self.runtime.spawn(exchange).await {
            Ok(answer) => answer.map_err(|e| Box::new(e) as HttpError),
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// The OpenTelemetry layer and the provider to flush at exit, when an
/// endpoint is configured.
pub struct Export {
    provider: SdkTracerProvider,
}

fn configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The layer exporting tasktrack's spans (its crates' targets, debug and
/// above, whatever the log filter), or `None` when no endpoint is set. A
/// configuration the exporter refuses is one line on stderr; tasktrack runs
/// on without export.
pub fn layer<S>() -> Option<(impl Layer<S>, Export)>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if !configured() {
        return None;
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(EXPORT_TIMEOUT)
        .build()
        .ok()?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(Transport { client, runtime })
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            crate::output::note!("warning: OpenTelemetry export is off: {e}; check the OTEL_EXPORTER_OTLP_* variables");
            return None;
        }
    };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tasktrack");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("tasktrack");
    let ours = FilterFn::new(|meta| {
        meta.target().starts_with("tasktrack") && *meta.level() <= tracing::Level::DEBUG
    });
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(ours);
    Some((layer, Export { provider }))
}

impl Export {
    /// Sends what is still buffered, bounded by the exporter's timeout.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The SDK's shutdown blocks on the batch thread, which needs this
        // runtime for the export itself.
        let done = tokio::task::spawn_blocking(move || provider.shutdown());
        if let Ok(Err(e)) = done.await {
            tracing::debug!(error = %e, "OpenTelemetry export did not flush");
        }
    }
}
