//! The HTTP layer over real loopback HTTP against a small axum server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasktrack_core::http::ConfigureHttp;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tasktrack_core::http::{Authenticate, HttpClient, HttpRequest, RetryPolicy};
use tasktrack_core::{async_trait, Error, Result, Secret};

const SECRET: &str = "s3cr3t-token-value";

#[derive(Default)]
struct Hits {
    flaky: AtomicUsize,
    post: AtomicUsize,
    limited: AtomicUsize,
    auth: AtomicUsize,
    down: AtomicUsize,
}

async fn serve(hits: Arc<Hits>) -> String {
    let app = Router::new()
        .route(
            "/flaky",
            get(|State(h): State<Arc<Hits>>| async move {
                if h.flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
                } else {
                    r#"{"data":{"pid":7}}"#.into_response()
                }
            }),
        )
        .route(
            "/down",
            get(|State(h): State<Arc<Hits>>| async move {
                h.down.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<html><body>Internal Server Error</body></html>",
                )
            }),
        )
        .route(
            "/action",
            post(|State(h): State<Arc<Hits>>| async move {
                h.post.fetch_add(1, Ordering::SeqCst);
                (StatusCode::SERVICE_UNAVAILABLE, "busy")
            }),
        )
        .route(
            "/limited",
            get(|State(h): State<Arc<Hits>>| async move {
                if h.limited.fetch_add(1, Ordering::SeqCst) == 0 {
                    Response::builder()
                        .status(429)
                        .header("Retry-After", "1")
                        .body("slow down".into())
                        .unwrap()
                } else {
                    r#"{"data":{"pid":1}}"#.into_response()
                }
            }),
        )
        .route("/mismatch", get(|| async { r#"{"data":{"pid":"seven"}}"# }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/secure",
            get(
                |State(h): State<Arc<Hits>>, headers: HeaderMap| async move {
                    h.auth.fetch_add(1, Ordering::SeqCst);
                    let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some(&format!("Bearer {SECRET}-2")[..]);
                    if ok {
                        r#"{"data":{"pid":2}}"#.into_response()
                    } else {
                        Response::builder()
                            .status(401)
                            .header("X-Request-Id", "req-9")
                            .body("authentication failure".into())
                            .unwrap()
                    }
                },
            ),
        )
        .with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[derive(serde::Deserialize, Debug)]
struct Envelope {
    data: Pid,
}
#[derive(serde::Deserialize, Debug)]
struct Pid {
    pid: u32,
}

/// A bearer token that is renewed once on 401 (like a login ticket).
#[derive(Debug)]
struct Renewing {
    token: std::sync::Mutex<Secret>,
    refreshes: AtomicUsize,
}

#[async_trait]
impl Authenticate for Renewing {
    async fn authenticate(&self, req: &mut reqwest::Request) -> Result<()> {
        let value = format!("Bearer {}", self.token.lock().unwrap().expose());
        req.headers_mut()
            .insert("authorization", value.parse().unwrap());
        Ok(())
    }
    async fn refresh(&self, _client: &HttpClient) -> Result<bool> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        *self.token.lock().unwrap() = Secret::new(format!("{SECRET}-2"));
        Ok(true)
    }
}

fn client(base: &str) -> HttpClient {
    HttpClient::builder("test", base)
        .with_retry(RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
        })
        .with_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_503_then_200_is_retried() {
    let hits = Arc::new(Hits::default());
    let c = client(&serve(hits.clone()).await);
    let env: Envelope = c
        .send_json(HttpRequest::get("/flaky"), "status")
        .await
        .unwrap();
    assert_eq!(env.data.pid, 7);
    assert_eq!(hits.flaky.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retries_stop_after_the_limit_with_the_vendor_message() {
    let hits = Arc::new(Hits::default());
    let c = client(&serve(hits.clone()).await);
    let err = c.send(HttpRequest::get("/down")).await.unwrap_err();
    assert_eq!(hits.down.load(Ordering::SeqCst), 4, "1 try + 3 retries");
    match &err {
        Error::Http(h) => {
            assert_eq!(h.status, 500);
            assert!(h.body_excerpt.starts_with("<html>"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with("test: HTTP 500 on GET /down"),
        "{err}"
    );
}

#[tokio::test]
async fn retry_after_is_waited_at_least() {
    let hits = Arc::new(Hits::default());
    let c = client(&serve(hits.clone()).await);
    let start = Instant::now();
    let env: Envelope = c
        .send_json(HttpRequest::get("/limited"), "status")
        .await
        .unwrap();
    assert_eq!(env.data.pid, 1);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(hits.limited.load(Ordering::SeqCst), 2);

    // A Retry-After beyond the cap is not shortened: the error comes back.
    let hits = Arc::new(Hits::default());
    let base = serve(hits.clone()).await;
    let capped = HttpClient::builder("test", base)
        .with_retry(RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(500),
        })
        .build()
        .unwrap();
    let err = capped.send(HttpRequest::get("/limited")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(hits.limited.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn post_is_never_retried() {
    let hits = Arc::new(Hits::default());
    let c = client(&serve(hits.clone()).await);
    let err = c.send(HttpRequest::post("/action")).await.unwrap_err();
    assert!(err.is_retryable(), "the error itself is transient: {err}");
    assert_eq!(
        hits.post.load(Ordering::SeqCst),
        1,
        "but a control action is sent once"
    );
}

#[tokio::test]
async fn a_mismatched_body_names_the_json_path() {
    let c = client(&serve(Arc::default()).await);
    let err = c
        .send_json::<Envelope>(HttpRequest::get("/mismatch"), "task status")
        .await
        .unwrap_err();
    match err {
        Error::Decode { path, what, .. } => {
            assert_eq!(path, "data.pid");
            assert_eq!(what, "task status");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_hung_server_is_a_transport_timeout() {
    let base = serve(Arc::default()).await;
    let c = HttpClient::builder("test", base)
        .with_retry(RetryPolicy::none())
        .with_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = c.send(HttpRequest::get("/hang")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn refresh_once_on_401_and_secrets_never_show() {
    let hits = Arc::new(Hits::default());
    let base = serve(hits.clone()).await;
    let auth = Arc::new(Renewing {
        token: std::sync::Mutex::new(Secret::new(SECRET)),
        refreshes: AtomicUsize::new(0),
    });
    let c = HttpClient::builder("test", &base)
        .with_auth(auth.clone())
        .build()
        .unwrap();
    let env: Envelope = c
        .send_json(HttpRequest::get("/secure"), "status")
        .await
        .unwrap();
    assert_eq!(env.data.pid, 2);
    assert_eq!(auth.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(hits.auth.load(Ordering::SeqCst), 2);

    // A credential that stays wrong: one refresh, then a typed auth error.
    #[derive(Debug)]
    struct Wrong(Secret);
    #[async_trait]
    impl Authenticate for Wrong {
        async fn authenticate(&self, req: &mut reqwest::Request) -> Result<()> {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {}", self.0.expose()).parse().unwrap(),
            );
            Ok(())
        }
    }
    let c = HttpClient::builder("test", &base)
        .with_auth(Arc::new(Wrong(Secret::new(SECRET))))
        .build()
        .unwrap();
    let err = c.send(HttpRequest::get("/secure")).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    assert!(err.to_string().contains("req-9"), "request id kept: {err}");
    for text in [
        format!("{c:?}"),
        format!("{err:?}"),
        err.to_string(),
        format!("{auth:?}"),
    ] {
        assert!(!text.contains(SECRET), "secret leaked in {text}");
    }
}

#[tokio::test]
async fn bad_base_urls_and_certificates_are_typed_errors() {
    assert!(matches!(
        HttpClient::builder("t", "not a url").build(),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        HttpClient::builder("t", "ftp://x").build(),
        Err(Error::InvalidInput { .. })
    ));
    let err = HttpClient::builder("t", "https://x")
        .with_root_certificate_pem(b"garbage")
        .build();
    assert!(err.is_err());
    let err = HttpClient::builder("t", "http://127.0.0.1:1")
        .with_retry(RetryPolicy::none())
        .build()
        .unwrap()
        .send(HttpRequest::get("/x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                timed_out: false,
                ..
            }
        ),
        "{err:?}"
    );
}
