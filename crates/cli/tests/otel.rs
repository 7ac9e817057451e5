//! The `otel` feature: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, a command's
//! HTTP client spans reach an OTLP/HTTP collector (here a loopback
//! receiver) carrying OpenTelemetry's semantic-convention attribute names,
//! flushed before the process exits, with no credential among them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, TaskSpec};

const SECRET: &str = "pve-otel-secret-value";

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn traces(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
    let kind = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    got.lock().unwrap().push((kind, body.to_vec()));
    ""
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_spans_reach_the_collector_with_semantic_names() {
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let pve = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token("root@pam!otel", SECRET))
        .start()
        .await
        .unwrap();
    let id = pve.create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tasktrack.toml");
    std::fs::write(
        &config,
        format!(
            "[backends.pve]\nkind = \"proxmox\"\nurl = \"{}\"\ntoken = \"root@pam!otel={SECRET}\"\n",
            pve.base_url()
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&config)
        .args(["status", "pve", &id, "--json"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "export is silent: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The process flushed before it exited: the export is already here.
    let got = got.lock().unwrap().clone();
    assert!(!got.is_empty(), "no OTLP export reached the collector");
    assert!(
        got.iter().all(|(kind, _)| kind == "application/x-protobuf"),
        "{got:?}"
    );
    let body: Vec<u8> = got.into_iter().flat_map(|(_, b)| b).collect();
    for name in [
        "http.request.method",
        "server.address",
        "server.port",
        "url.path",
        "http.response.status_code",
        "tasktrack.backend",
        "tasktrack",
    ] {
        assert!(contains(&body, name), "the export carries {name}");
    }
    assert!(contains(&body, "GET"), "spans are named by the method");
    assert!(!contains(&body, SECRET), "a credential was exported");
}
