//! `max_concurrency` bounds a fleet, not a process: three clients (three
//! replicas, each with its own connection to one redis-server) drawing
//! slots from one bucket never have more than the bound in flight at a
//! server that holds every request until the test lets it go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use tasktrack_core::http::{ConcurrencyGate, ConfigureHttp, HttpClient, HttpRequest};
use tasktrack_core::TrackStore;
use tasktrack_redis::testing::{free_port, RedisServer};
use tasktrack_redis::RedisStore;
use tokio::sync::Semaphore;

const LIMIT: usize = 2;
const PER_CLIENT: usize = 4;

#[derive(Default)]
struct Gauge {
    current: AtomicUsize,
    max: AtomicUsize,
    served: AtomicUsize,
}

struct Held {
    gauge: Gauge,
    release: Semaphore,
}

async fn work(State(held): State<Arc<Held>>) -> &'static str {
    let now = held.gauge.current.fetch_add(1, Ordering::SeqCst) + 1;
    held.gauge.max.fetch_max(now, Ordering::SeqCst);
    held.release.acquire().await.unwrap().forget();
    held.gauge.current.fetch_sub(1, Ordering::SeqCst);
    held.gauge.served.fetch_add(1, Ordering::SeqCst);
    "{}"
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_concurrency_bound() {
    let redis = RedisServer::start(free_port().unwrap(), None).unwrap();
    let held = Arc::new(Held {
        gauge: Gauge::default(),
        release: Semaphore::new(0),
    });
    let app = axum::Router::new()
        .route("/work", get(work))
        .with_state(held.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut requests = Vec::new();
    for replica in 0..3 {
        let store: Arc<dyn TrackStore> = Arc::new(RedisStore::connect(&redis.url()).await.unwrap());
        let client = HttpClient::builder(format!("pve-{replica}"), &base)
            .with_concurrency_gate(ConcurrencyGate::shared(LIMIT, "pve-cluster", store))
            .build()
            .unwrap();
        for _ in 0..PER_CLIENT {
            let client = client.clone();
            requests.push(tokio::spawn(async move {
                client
                    .send(HttpRequest::get("/work"))
                    .await
                    .map(|r| r.status)
            }));
        }
    }
    let total = 3 * PER_CLIENT;
    // Each step waits until the bound is full (or all that is left is in
    // flight), then lets one request finish: the server sees every request,
    // and never more than the bound at once.
    for step in 0..total {
        let left = total - step;
        until("the bound fills", || {
            held.gauge.current.load(Ordering::SeqCst) >= left.min(LIMIT)
        })
        .await;
        let in_flight = held.gauge.current.load(Ordering::SeqCst);
        assert!(
            in_flight <= LIMIT,
            "{in_flight} in flight over a bound of {LIMIT}"
        );
        held.release.add_permits(1);
        until("the released request is answered", || {
            held.gauge.served.load(Ordering::SeqCst) == step + 1
        })
        .await;
    }
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap(), 200);
    }
    assert_eq!(
        held.gauge.max.load(Ordering::SeqCst),
        LIMIT,
        "in flight at most the bound, fleet-wide"
    );
}
