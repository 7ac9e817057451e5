//! Starting and stopping a simulator, and what its routes share.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::AuthState;
use crate::clock::SimClock;
use crate::context::{SimContext, Vendor};
use crate::engine::{TaskEngine, TaskSpec};
use crate::fault_layer;
use crate::faults::{FaultRule, Faults, RequestLog};
use crate::store::TaskStore;

/// Builds and starts a simulator.
pub struct SimBuilder {
    vendor: Arc<dyn Vendor>,
    clock: Option<SimClock>,
    addr: SocketAddr,
    tls: bool,
}

impl SimBuilder {
    /// A simulator of `vendor` on `127.0.0.1:0`, on real time.
    pub fn new(vendor: impl Vendor) -> Self {
        SimBuilder {
            vendor: Arc::new(vendor),
            clock: None,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: false,
        }
    }

    /// Serves HTTPS with a fresh self-signed certificate for `localhost` and
    /// `127.0.0.1`, as a real Proxmox VE node does out of the box. The
    /// certificate is [`SimHandle::certificate_pem`].
    pub fn with_tls(mut self, yes: bool) -> Self {
        self.tls = yes;
        self
    }

    /// Uses `clock` (e.g. [`SimClock::manual`]). A vendor that keeps its
    /// own tasks was given its clock when it was made (e.g.
    /// [`Ocp::with_clock`](crate::ocp::Ocp::with_clock)); setting another one
    /// here makes [`start`](Self::start) fail.
    pub fn with_clock(mut self, clock: SimClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Listens on `addr` instead of a free loopback port.
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Binds and serves in the background.
    pub async fn start(self) -> std::io::Result<SimHandle> {
        let own_store = self.vendor.task_store();
        let clock = match (&own_store, self.clock) {
            (Some(store), Some(clock)) if !store.clock().same_as(&clock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the {} simulator keeps its own tasks on the clock it was made with; \
                         give the clock to the vendor, not to SimBuilder::with_clock",
                        self.vendor.name()
                    ),
                ));
            }
            (Some(store), _) => store.clock().clone(),
            (None, clock) => clock.unwrap_or_else(SimClock::real),
        };
        let engine = TaskEngine::new(clock.clone());
        let tasks: Arc<dyn TaskStore> = match own_store {
            Some(store) => store,
            None => Arc::new(engine.clone()),
        };
        let ctx = SimContext {
            engine,
            faults: Faults::default(),
            requests: RequestLog::default(),
            auth: AuthState::new(clock),
            tasks,
            vendor: self.vendor.clone(),
        };
        let app = self
            .vendor
            .router(ctx.clone())
            .route_layer(axum::middleware::from_fn_with_state(
                ctx.clone(),
                fault_layer::layer,
            ))
            .merge(control_routes(ctx.clone()));
        let (addr, stopper, task, certificate_pem) = if self.tls {
            serve_tls(self.addr, app).await?
        } else {
            serve_plain(self.addr, app).await?
        };
        tracing::debug!(vendor = self.vendor.name(), %addr, "simulator listening");
        Ok(SimHandle {
            addr,
            ctx,
            shutdown: Some(stopper),
            task: Some(task),
            certificate_pem,
        })
    }
}

/// How a running server is asked to stop.
enum Stopper {
    Plain(oneshot::Sender<()>),
    Tls(axum_server::Handle<SocketAddr>),
}

impl Stopper {
    fn stop(self) {
        match self {
            Stopper::Plain(tx) => {
                let _ = tx.send(());
            }
            Stopper::Tls(handle) => handle.graceful_shutdown(Some(Duration::from_secs(1))),
        }
    }
}

type Served = (SocketAddr, Stopper, JoinHandle<()>, Option<String>);

async fn serve_plain(addr: SocketAddr, app: Router) -> std::io::Result<Served> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "simulator stopped with an error");
        }
    });
    Ok((addr, Stopper::Plain(tx), task, None))
}

async fn serve_tls(addr: SocketAddr, app: Router) -> std::io::Result<Served> {
    let io_error = |e: rcgen::Error| std::io::Error::other(format!("self-signed certificate: {e}"));
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(io_error)?;
    let cert_pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![certified.cert.der().clone()], key)
        })
        .map_err(|e| std::io::Error::other(format!("TLS configuration: {e}")))?;
    // HTTP/1.1 only, like pveproxy: vendors put messages in the reason
    // phrase, which HTTP/2 does not have.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let server = axum_server::tls_rustls::from_tcp_rustls(listener, config)?.handle(handle.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::warn!(error = %e, "simulator stopped with an error");
        }
    });
    Ok((addr, Stopper::Tls(handle), task, Some(cert_pem)))
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    ctx: SimContext,
    shutdown: Option<Stopper>,
    task: Option<JoinHandle<()>>,
    certificate_pem: Option<String>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("vendor", &self.ctx.vendor.name())
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, or `https://…` with TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.certificate_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
    /// The self-signed certificate (PEM) of a TLS simulator, to trust as a
    /// root CA.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }
    /// The SHA-256 fingerprint of a TLS simulator's certificate, as
    /// Proxmox prints one (`AA:BB:…`), to pin instead of trusting it.
    pub fn certificate_fingerprint(&self) -> Option<String> {
        use base64::Engine;
        use sha2::Digest;
        let body: String = self
            .certificate_pem
            .as_deref()?
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        let digest = sha2::Sha256::digest(der);
        Some(
            digest
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The shared context (engine, faults, counts, auth).
    pub fn context(&self) -> &SimContext {
        &self.ctx
    }
    /// The scripted-task engine (empty for a vendor that keeps its own
    /// tasks; see [`tasks`](Self::tasks)).
    pub fn engine(&self) -> &TaskEngine {
        &self.ctx.engine
    }
    /// Every task this simulator serves, whoever keeps them.
    pub fn tasks(&self) -> &dyn TaskStore {
        self.ctx.tasks.as_ref()
    }
    /// Fault rules.
    pub fn faults(&self) -> &Faults {
        &self.ctx.faults
    }
    /// Request counts.
    pub fn requests(&self) -> &RequestLog {
        &self.ctx.requests
    }
    /// Credential expiry.
    pub fn auth(&self) -> &AuthState {
        &self.ctx.auth
    }
    /// The clock.
    pub fn clock(&self) -> &SimClock {
        self.ctx.clock()
    }
    /// Creates a scripted task with a vendor-format id.
    pub fn create_task(&self, spec: TaskSpec) -> String {
        self.ctx.create_task(spec)
    }
    /// Stops accepting, finishes the requests in flight, and waits.
    pub async fn shutdown(mut self) {
        if let Some(stopper) = self.shutdown.take() {
            stopper.stop();
        }
        if let Some(task) = self.task.take() {
            // Keep-alive connections idle in a client pool would hold a
            // graceful shutdown open; past a short grace period, stop hard.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stopper) = self.shutdown.take() {
            stopper.stop();
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[derive(Deserialize)]
struct AdvanceQuery {
    ms: u64,
}

/// `/_sim/*`: the control API over HTTP, for the standalone mode. It is not
/// counted, not faulted and not authenticated (loopback tool only).
fn control_routes(ctx: SimContext) -> Router {
    Router::new()
        .route(
            "/_sim/requests",
            get(|State(c): State<SimContext>| async move { Json(c.requests.counts()) }),
        )
        .route(
            "/_sim/faults",
            get(|State(c): State<SimContext>| async move { Json(c.faults.rules()) })
                .post(
                    |State(c): State<SimContext>, Json(rule): Json<FaultRule>| async move {
                        c.faults.add(rule);
                        StatusCode::NO_CONTENT
                    },
                )
                .delete(|State(c): State<SimContext>| async move {
                    c.faults.clear();
                    StatusCode::NO_CONTENT
                }),
        )
        .route(
            "/_sim/tasks",
            get(|State(c): State<SimContext>| async move { Json(c.tasks.list()) }).post(
                |State(c): State<SimContext>, Json(spec): Json<TaskSpec>| async move {
                    let id = c.create_task(spec);
                    (StatusCode::CREATED, Json(serde_json::json!({ "id": id })))
                },
            ),
        )
        .route(
            "/_sim/clock/advance",
            post(
                |State(c): State<SimContext>, Query(q): Query<AdvanceQuery>| async move {
                    if c.clock().advance(Duration::from_millis(q.ms)) {
                        StatusCode::NO_CONTENT.into_response()
                    } else {
                        (StatusCode::CONFLICT, "this simulator runs on real time").into_response()
                    }
                },
            ),
        )
        .with_state(ctx)
}
