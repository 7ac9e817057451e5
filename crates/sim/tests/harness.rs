//! The simulator harness over real loopback HTTP, on the generic vendor.

use std::time::{Duration, Instant};
use tasktrack_core::http::ConfigureHttp;

use reqwest::StatusCode;
use serde_json::Value;
use tasktrack_core::http::{HttpClient, HttpRequest, RetryPolicy};
use tasktrack_core::{Error, ManualClock};
use tasktrack_sim::generic::Generic;
use tasktrack_sim::{Fault, SimBuilder, SimClock, SimHandle, TaskSpec};

const TOKEN: &str = "sim-secret";
const STATUS: &str = "GET /api/tasks/{id}";

async fn sim() -> (ManualClock, SimHandle) {
    let clock = ManualClock::new();
    let sim = SimBuilder::new(Generic::new(TOKEN))
        .with_clock(SimClock::manual(clock.clone()))
        .start()
        .await
        .unwrap();
    (clock, sim)
}

async fn get(sim: &SimHandle, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

/// `GET path` with the token, its body as JSON.
async fn get_json(sim: &SimHandle, path: &str) -> Value {
    get(sim, path).await.json().await.unwrap()
}

fn client(sim: &SimHandle) -> HttpClient {
    HttpClient::builder("generic", sim.base_url())
        .with_retry(RetryPolicy::none())
        .with_default_header(
            "authorization".parse().unwrap(),
            format!("Bearer {TOKEN}").parse().unwrap(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn tasks_follow_the_manual_clock_and_requests_are_counted() {
    let (clock, sim) = sim().await;
    let id = sim
        .create_task(TaskSpec::new("backup", Duration::from_secs(10)).with_failure("E1", "boom"));
    let body: Value = get_json(&sim, &format!("/api/tasks/{id}")).await;
    assert_eq!(body["state"], "running");
    clock.advance(Duration::from_secs(11));
    let body: Value = get_json(&sim, &format!("/api/tasks/{id}")).await;
    assert_eq!(body["state"], "failed");
    assert_eq!(body["error"]["code"], "E1");
    let log: Value = get_json(&sim, &format!("/api/tasks/{id}/log")).await;
    assert_eq!(
        log["lines"].as_array().unwrap().last().unwrap()["t"],
        "TASK ERROR: boom"
    );
    assert_eq!(sim.requests().count(STATUS), 2);
    assert_eq!(sim.requests().count("GET /api/tasks/{id}/log"), 1);
    assert_eq!(sim.requests().total(), 3);
}

#[tokio::test]
async fn only_the_configured_token_is_accepted_until_it_expires() {
    let (clock, sim) = sim().await;
    let id = sim.create_task(TaskSpec::new("x", Duration::from_secs(100)));
    let url = format!("{}/api/tasks/{id}", sim.base_url());
    let http = reqwest::Client::new();
    let missing = http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let wrong = http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    sim.auth().expire_after(Duration::from_secs(60));
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}")).await.status(),
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(61));
    let expired = get(&sim, &format!("/api/tasks/{id}")).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let err = client(&sim)
        .send(HttpRequest::get(format!("/api/tasks/{id}")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    sim.auth().restore();
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn status_faults_answer_n_times_then_stop() {
    let (_clock, sim) = sim().await;
    let id = sim.create_task(TaskSpec::new("x", Duration::from_secs(100)));
    let path = format!("/api/tasks/{id}");
    for status in [500u16, 502, 503] {
        sim.faults().next(2, STATUS, Fault::status(status));
        for _ in 0..2 {
            let r = get(&sim, &path).await;
            assert_eq!(r.status().as_u16(), status);
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"]["message"].is_string(),
                "vendor-style error body"
            );
        }
        assert_eq!(get(&sim, &path).await.status(), StatusCode::OK);
    }
    sim.faults().next(1, STATUS, Fault::too_many_requests(7));
    let r = get(&sim, &path).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "7");
    let err = client(&sim).send(HttpRequest::get(&path)).await;
    assert!(err.is_ok(), "the 429 was used up");
    assert_eq!(
        sim.requests().count(STATUS),
        3 * 3 + 2,
        "three rounds of three, the 429, the client's call"
    );
}

#[tokio::test]
async fn faults_are_per_route() {
    let (_clock, sim) = sim().await;
    let id = sim.create_task(TaskSpec::new("x", Duration::from_secs(100)));
    sim.faults()
        .always("/api/tasks/{id}/log", Fault::status(500));
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}/log")).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}/log")).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    sim.faults().clear();
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}/log")).await.status(),
        StatusCode::OK
    );
    sim.faults().next(1, "*", Fault::status(503));
    assert_eq!(
        get(&sim, "/api/tasks").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn latency_is_added() {
    let (_clock, sim) = sim().await;
    let id = sim.create_task(TaskSpec::new("x", Duration::from_secs(100)));
    sim.faults()
        .next(1, STATUS, Fault::latency(Duration::from_millis(300)));
    let start = Instant::now();
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}")).await.status(),
        StatusCode::OK
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    // Past the client's timeout it is a transport timeout.
    sim.faults()
        .next(1, STATUS, Fault::latency(Duration::from_secs(5)));
    let c = HttpClient::builder("generic", sim.base_url())
        .with_retry(RetryPolicy::none())
        .with_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = c
        .send(HttpRequest::get(format!("/api/tasks/{id}")))
        .await
        .unwrap_err();
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
}

#[tokio::test]
async fn broken_bodies_become_typed_errors() {
    let (_clock, sim) = sim().await;
    let id = sim.create_task(TaskSpec::new("x", Duration::from_secs(100)));
    let path = format!("/api/tasks/{id}");
    let c = client(&sim);

    sim.faults().next(1, STATUS, Fault::DropConnection);
    let err = c.send(HttpRequest::get(&path)).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. }),
        "dropped connection: {err:?}"
    );

    sim.faults().next(1, STATUS, Fault::Truncated);
    let raw = get(&sim, &path).await;
    assert_eq!(raw.status(), StatusCode::OK);
    let text = raw.text().await.unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "truncated body still parses: {text}"
    );
    sim.faults().next(1, STATUS, Fault::Truncated);
    let err = c
        .send_json::<Value>(HttpRequest::get(&path), "task")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");

    sim.faults().next(1, STATUS, Fault::Html { status: 502 });
    let err = c.send(HttpRequest::get(&path)).await.unwrap_err();
    match &err {
        Error::Http(h) => {
            assert_eq!(h.status, 502);
            assert!(h.body_excerpt.contains("<title>502 Bad Gateway</title>"));
        }
        other => panic!("{other:?}"),
    }
    sim.faults().next(1, STATUS, Fault::Html { status: 200 });
    let err = c
        .send_json::<Value>(HttpRequest::get(&path), "task")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("<html>"),
        "decode error shows the body start: {err}"
    );
}

#[tokio::test]
async fn a_vanished_task_is_404() {
    let (_clock, sim) = sim().await;
    let id = sim.create_task(TaskSpec::new("x", Duration::from_secs(100)));
    assert!(sim.engine().remove(&id));
    let err = client(&sim)
        .send(HttpRequest::get(format!("/api/tasks/{id}")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn the_control_api_works_over_http() {
    let (_clock, sim) = sim().await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let created: Value = http
        .post(format!("{base}/_sim/tasks"))
        .json(&serde_json::json!({"kind": "backup", "duration_ms": 2000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{base}/_sim/faults"))
        .json(&serde_json::json!({"route": "*", "fault": {"kind": "status", "status": 503}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&sim, &format!("/api/tasks/{id}")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = http
        .post(format!("{base}/_sim/clock/advance?ms=2500"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let body: Value = get_json(&sim, &format!("/api/tasks/{id}")).await;
    assert_eq!(body["state"], "succeeded");
    let counts: Value = http
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts[STATUS], 2, "control calls are not counted: {counts}");
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let (_clock, first) = sim().await;
    let addr = first.addr();
    first.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let (_clock, second) = sim().await;
    let addr = second.addr();
    drop(second);
    // The abort lands when the runtime next polls the server task.
    let mut closed = false;
    for _ in 0..1000 {
        tokio::task::yield_now().await;
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "server still accepting after drop");
}

#[test]
fn the_standalone_binary_documents_itself_and_serves() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_tasktrack-sim");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for needle in ["--vendor", "--port", "/_sim/faults", "generic"] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
    let mut child = Command::new(bin)
        .args([
            "--vendor",
            "generic",
            "--port",
            "0",
            "--sample-tasks",
            "--token",
            "t0k",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/api/tasks"))
            .bearer_auth("t0k")
            .send()
            .await
            .map(|r| r.status())
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(status.unwrap(), StatusCode::OK, "from {line}");
}
