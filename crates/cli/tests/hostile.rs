//! Hostile and broken servers, stores and input, each attack once, run
//! through the `tasktrack` binary as a user would meet them. The servers
//! are raw TCP on loopback so they can do what no well-behaved framework
//! lets them: redirect anywhere, send bodies that never end, trickle a
//! byte at a time, hold a connection and never answer.
//!
//! The README's "Proof" section lists these tests.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const UPID: &str = "UPID:pve1:000ABCDE:0012D687:65F1A2B3:vzdump:100:root@pam:";
const PVE_SECRET: &str = "hostile-pve-token-secret";
const PASSWORD: &str = "hostile-login-password";
const CSRF: &str = "hostile-csrf-prevention-token";
const AK: &str = "HOSTILEACCESSKEY0001";
const SK: &str = "hostile-secret-key-value";
const IAM_TOKEN: &str = "hostile-iam-token-value";
const KPS_ID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

// ---------------------------------------------------------------------------
// The hostile server
// ---------------------------------------------------------------------------

/// A request as the hostile server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    /// The whole head, as sent.
    head: String,
    /// The body, as sent.
    body: String,
}

/// What the hostile server does with a request.
enum Answer {
    Json(u16, String),
    Redirect(u16, String),
    /// A body that never ends, with this `Content-Length` (or none).
    Endless(Option<u64>),
    /// A status answer sent a byte every 200 ms.
    Trickle,
    /// Keeps the connection open and never answers.
    Hold,
}

type Script = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Hostile {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    /// Connections held open right now (`Answer::Hold`).
    holding: Arc<AtomicUsize>,
    /// Body bytes written by `Answer::Endless` before the client hung up.
    written: Arc<AtomicU64>,
}

impl Hostile {
    async fn start(script: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = Hostile {
            url,
            requests: Arc::default(),
            holding: Arc::default(),
            written: Arc::default(),
        };
        let script: Script = Arc::new(script);
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(s.clone().serve(stream, script.clone()));
            }
        });
        server
    }

    /// A server that records every request and answers each with a 404.
    async fn witness() -> Hostile {
        Hostile::start(|_| Answer::Json(404, "{}".into())).await
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    async fn serve(self, stream: TcpStream, script: Script) {
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        let mut body = vec![0; length.min(1 << 20)];
        let _ = reader.read_exact(&mut body).await;
        let mut first = head.lines().next().unwrap_or_default().split(' ');
        let request = Request {
            method: first.next().unwrap_or_default().to_owned(),
            target: first.next().unwrap_or_default().to_owned(),
            head: head.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        self.requests.lock().unwrap().push(request.clone());
        let mut stream = reader.into_inner();
        match script(&request) {
            Answer::Json(status, body) => {
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            }
            Answer::Redirect(status, location) => {
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
            Answer::Endless(declared) => {
                let length = declared
                    .map(|n| format!("Content-Length: {n}\r\n"))
                    .unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n{{\"data\":\""
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'a'; 64 * 1024];
                while stream.write_all(&chunk).await.is_ok() {
                    self.written
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            Answer::Trickle => {
                let body = format!("{{\"data\":{{\"status\":\"running\",\"upid\":\"{UPID}\"}}}}");
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for b in body.bytes() {
                    if stream.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Answer::Hold => {
                self.holding.fetch_add(1, Ordering::SeqCst);
                // Until the client gives up and closes its end.
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                self.holding.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn pve_status(status: &str, exitstatus: Option<&str>) -> String {
    let exit = exitstatus
        .map(|e| format!(",\"exitstatus\":{}", serde_json::Value::String(e.into())))
        .unwrap_or_default();
    format!(
        "{{\"data\":{{\"status\":\"{status}\",\"upid\":\"{UPID}\",\"node\":\"pve1\",\"pid\":703710,\"pstart\":1234567,\"starttime\":1710334643,\"type\":\"vzdump\",\"id\":\"100\",\"user\":\"root@pam\"{exit}}}}}"
    )
}

fn pve_log(lines: &[String], total: Option<usize>) -> String {
    let data: Vec<serde_json::Value> = lines
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"n": i + 1, "t": t}))
        .collect();
    let mut body = serde_json::json!({ "data": data });
    if let Some(total) = total {
        body["total"] = total.into();
    }
    body.to_string()
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn config(dir: &std::path::Path, toml: &str) -> std::path::PathBuf {
    let path = dir.join("tasktrack.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

async fn tasktrack(config: &std::path::Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_one_clear_line(run: &Run, what: &str) {
    assert_eq!(run.code, Some(2), "{what}: {}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr.trim().lines().count(),
        1,
        "{what}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
    for secret in [PVE_SECRET, PASSWORD, CSRF, SK, IAM_TOKEN] {
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "{what}: a secret was printed"
        );
    }
}

fn pve_token_backend(url: &str) -> String {
    format!("[backends.pve]\nkind = \"proxmox\"\nurl = \"{url}\"\ntoken = \"root@pam!t={PVE_SECRET}\"\n")
}

// ---------------------------------------------------------------------------
// 1. Secrets never follow a redirect
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_never_carry_a_credential_to_another_host() {
    let witness = Hostile::witness().await;
    let away = witness.url.clone();
    let everything_away = move |r: &Request| Answer::Redirect(307, format!("{away}{}", r.target));
    let hostile = Hostile::start(everything_away.clone()).await;
    // Ticket login succeeds; the stop (a control action) is redirected.
    let away = witness.url.clone();
    let login_then_away = Hostile::start(move |r| {
        if r.target.contains("/access/ticket") {
            Answer::Json(
                200,
                format!("{{\"data\":{{\"ticket\":\"PVE:root@pam:66AA::sig\",\"CSRFPreventionToken\":\"{CSRF}\",\"username\":\"root@pam\"}}}}"),
            )
        } else if !r.head.to_ascii_lowercase().contains("pveauthcookie") {
            // PVE answers an unauthenticated request 401, with no body.
            Answer::Json(401, String::new())
        } else if r.method == "GET" {
            Answer::Json(200, pve_status("running", None))
        } else {
            Answer::Redirect(307, format!("{away}{}", r.target))
        }
    })
    .await;
    let u = &hostile.url;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[backends.ticket]\nkind = \"proxmox\"\nurl = \"{u}\"\nuser = \"root@pam\"\npassword = \"{PASSWORD}\"\n\n[backends.csrf]\nkind = \"proxmox\"\nurl = \"{}\"\nuser = \"root@pam\"\npassword = \"{PASSWORD}\"\n\n[backends.kps]\nkind = \"kps\"\nendpoint = \"{u}\"\nproject_id = \"p1\"\nak = \"{AK}\"\nsk = \"{SK}\"\n\n[backends.dcs]\nkind = \"dcs\"\nendpoint = \"{u}\"\nproject_id = \"p1\"\ntoken = \"{IAM_TOKEN}\"\n\n[backends.ocp]\nkind = \"ocp\"\nurl = \"{u}\"\nuser = \"admin\"\npassword = \"{PASSWORD}\"\n\n[backends.follow]\nkind = \"proxmox\"\nurl = \"{u}\"\ntoken = \"root@pam!t={PVE_SECRET}\"\n[backends.follow.http]\nredirects = \"same-origin\"\n",
            pve_token_backend(u),
            login_then_away.url
        ),
    );
    let cases: [(&str, Vec<&str>); 7] = [
        ("PVE API token header", vec!["status", "pve", UPID]),
        (
            "PVE ticket login (user and password)",
            vec!["status", "ticket", UPID],
        ),
        (
            "PVE CSRF token on a stop",
            vec!["cancel", "csrf", UPID, "--yes"],
        ),
        ("Huawei AK/SK signature", vec!["status", "kps", KPS_ID]),
        ("Huawei X-Auth-Token", vec!["status", "dcs", "inst1/task1"]),
        ("OCP Basic auth", vec!["retry", "ocp", "7", "--yes"]),
        (
            "same-origin policy, cross-origin target",
            vec!["status", "follow", UPID],
        ),
    ];
    for (what, args) in cases {
        let run = tasktrack(&cfg, &args).await;
        assert_one_clear_line(&run, what);
        assert!(
            run.stderr.contains("redirected") && run.stderr.contains(witness.host()),
            "{what}: the error names the target: {}",
            run.stderr
        );
    }
    assert!(
        witness.requests().is_empty(),
        "a request reached the other host: {:?}",
        witness.requests()
    );
    // The ticket case did log in here, so there was a password to leak.
    assert!(login_then_away
        .requests()
        .iter()
        .any(|r| r.target.contains("/access/ticket") && r.body.contains(PASSWORD)));
    assert!(login_then_away
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.head.contains(CSRF)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_origin_redirect_is_followed_for_reads_only_when_enabled() {
    let server = Hostile::start(|r| {
        if r.target.starts_with("/moved") {
            Answer::Json(200, pve_status("stopped", Some("OK")))
        } else {
            Answer::Redirect(308, "/moved".into())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "{}[backends.pve.http]\nredirects = \"same-origin\"\n\n[backends.strict]\nkind = \"proxmox\"\nurl = \"{}\"\ntoken = \"root@pam!t={PVE_SECRET}\"\n",
            pve_token_backend(&server.url),
            server.url
        ),
    );
    let run = tasktrack(&cfg, &["status", "pve", UPID]).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);
    let run = tasktrack(&cfg, &["status", "strict", UPID]).await;
    assert_one_clear_line(&run, "redirects off by default");
    let run = tasktrack(&cfg, &["cancel", "pve", UPID, "--yes"]).await;
    assert_ne!(run.code, Some(0), "a stop never follows a redirect");
    let deletes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(
        deletes.len(),
        1,
        "the stop was sent once, not re-sent: {deletes:?}"
    );
    assert!(!deletes[0].target.starts_with("/moved"));
}

// ---------------------------------------------------------------------------
// 2-3. Bodies and pages are bounded
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_never_end_stop_at_the_cap() {
    for declared in [Some(2u64 << 30), None] {
        let server = Hostile::start(move |_| Answer::Endless(declared)).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &pve_token_backend(&server.url));
        let run = tasktrack(&cfg, &["status", "pve", UPID]).await;
        assert_one_clear_line(&run, "body bomb");
        assert!(run.stderr.contains("MiB"), "{}", run.stderr);
        // The client stopped reading at 32 MiB; what the server got into the
        // socket beyond that is the kernel's buffers, not the client's memory.
        let sent = server.written.load(Ordering::Relaxed);
        assert!(sent < 64 << 20, "{sent} bytes taken in");
    }
    // The cap is per backend.
    let server = Hostile::start(|_| Answer::Endless(None)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "{}[backends.pve.http]\nmax_body_bytes = 65536\n",
            pve_token_backend(&server.url)
        ),
    );
    let run = tasktrack(&cfg, &["status", "pve", UPID]).await;
    assert_one_clear_line(&run, "a small cap");
    assert!(run.stderr.contains("64 KiB"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_pages_that_never_end_are_bounded() {
    // Every page is new lines, and the whole-log read says there are more.
    let served = Arc::new(AtomicU64::new(0));
    let n = served.clone();
    let server = Hostile::start(move |_| {
        let page = n.fetch_add(1, Ordering::Relaxed);
        let lines: Vec<String> = (0..3).map(|i| format!("page {page} line {i}")).collect();
        // Line numbers restart on every page, as a hostile server may do.
        Answer::Json(200, pve_log(&lines, Some(usize::MAX / 2)))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&server.url));
    let run = tasktrack(&cfg, &["logs", "pve", UPID, "--tail", "5"]).await;
    assert!(run.code.is_some(), "the command ended");
    let requests = server.requests().len();
    assert!(requests <= 10, "{requests} requests for a tail of 5");

    // No total and a first page that is empty: the page bound ends it.
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    let server = Hostile::start(move |r| {
        let page = c.fetch_add(1, Ordering::Relaxed);
        if r.target.contains("limit=0") {
            return Answer::Json(200, "{\"data\":[],\"total\":100000000}".into());
        }
        let start = page * 500;
        let data: Vec<serde_json::Value> = (0..500)
            .map(|i| serde_json::json!({"n": start + i + 1, "t": format!("line {}", start + i)}))
            .collect();
        Answer::Json(200, serde_json::json!({ "data": data }).to_string())
    })
    .await;
    let cfg = config(dir.path(), &pve_token_backend(&server.url));
    let run = tasktrack(&cfg, &["logs", "pve", UPID]).await;
    assert!(run.code.is_some());
    let requests = server.requests().len();
    assert!(
        requests <= 2_002,
        "{requests} requests: the page bound holds"
    );
}

// ---------------------------------------------------------------------------
// 4. Ids are checked before any request
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_and_malformed_ids_never_reach_the_server() {
    let server = Hostile::witness().await;
    let u = &server.url;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[backends.kps]\nkind = \"kps\"\nendpoint = \"{u}\"\nproject_id = \"p1\"\ntoken = \"{IAM_TOKEN}\"\n\n[backends.dcs]\nkind = \"dcs\"\nendpoint = \"{u}\"\nproject_id = \"p1\"\ntoken = \"{IAM_TOKEN}\"\n\n[backends.ocp]\nkind = \"ocp\"\nurl = \"{u}\"\nuser = \"admin\"\npassword = \"{PASSWORD}\"\n",
            pve_token_backend(u)
        ),
    );
    for (backend, id) in [
        (
            "pve",
            "UPID:..:000ABCDE:0012D687:65F1A2B3:vzdump:100:root@pam:",
        ),
        ("pve", "UPID:pve1:zz:0012D687:65F1A2B3:vzdump:100:root@pam:"),
        ("dcs", "../.."),
        ("dcs", "inst/."),
        ("kps", ".."),
        ("kps", "a/b"),
        ("ocp", ".."),
    ] {
        let run = tasktrack(&cfg, &["status", backend, id]).await;
        assert_one_clear_line(&run, id);
        let run = tasktrack(&cfg, &["logs", backend, id]).await;
        assert_eq!(run.code, Some(2), "{id}");
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

// ---------------------------------------------------------------------------
// 5. Listings that repeat an id
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Running;

impl tasktrack_core::TaskStatus for Running {
    fn state(&self) -> tasktrack_core::TaskState {
        tasktrack_core::TaskState::Running
    }
    fn vendor_state(&self) -> String {
        "running".into()
    }
}

struct Repeating;

#[tasktrack_core::async_trait]
impl tasktrack_core::TaskProvider for Repeating {
    type Id = String;
    type Status = Running;
    fn name(&self) -> &str {
        "repeating"
    }
    async fn status(&self, _id: &String) -> tasktrack_core::Result<Running> {
        Ok(Running)
    }
    async fn list(
        &self,
        _filter: &tasktrack_core::TaskFilter,
    ) -> tasktrack_core::Result<tasktrack_core::TaskPage<(String, Running)>> {
        let items = ["a", "b", "a", "a", "b"]
            .iter()
            .map(|id| (id.to_string(), Running))
            .collect();
        Ok(tasktrack_core::TaskPage::new(items, None, None))
    }
}

#[tokio::test]
async fn a_listing_that_repeats_an_id_counts_it_once() {
    use tasktrack_core::DynTaskProvider;
    let page = Repeating
        .list_snapshots(&tasktrack_core::TaskFilter::default())
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

// ---------------------------------------------------------------------------
// 8. The deadline bounds everything under it
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ends_at_its_timeout_against_a_trickling_server() {
    let server = Hostile::start(|_| Answer::Trickle).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&server.url));
    let started = Instant::now();
    let run = tasktrack(&cfg, &["wait", "pve", UPID, "--timeout", "2s"]).await;
    let took = started.elapsed();
    assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
    // The promise under test is itself a time bound: the timeout plus one
    // second, whatever the server does (it would take 60 s to answer).
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

// ---------------------------------------------------------------------------
// 7, 12, 13. Input, output and stores that must not crash or mislead
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_durations_and_store_urls_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend("http://127.0.0.1:1"));
    for args in [
        vec!["wait", "pve", UPID, "--timeout", "1e30"],
        vec!["wait", "pve", UPID, "--interval", "1e25"],
        vec!["wait", "pve", UPID, "--interval", "0"],
        vec!["worker", "--store", "memory", "--lease-ttl", "1e300"],
        vec!["worker", "--store", "memory", "--lease-ttl", "1e19"],
        vec!["serve", "--max-connections", "0"],
    ] {
        let run = tasktrack(&cfg, &args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}");
    }
    let run = tasktrack(
        &cfg,
        &["events", "--store", "redis:/:hunter2password@127.0.0.1:1"],
    )
    .await;
    assert_one_clear_line(&run, "a Redis URL typo");
    assert!(!run.stderr.contains("hunter2password"), "{}", run.stderr);

    let redis = tasktrack_redis::testing::RedisServer::start(
        tasktrack_redis::testing::free_port().unwrap(),
        None,
    )
    .unwrap();
    let upper = redis.url().replacen("redis://", "REDIS://", 1);
    let run = tasktrack(&cfg, &["events", "--store", &upper]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_empty_store_file_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend("http://127.0.0.1:1"));
    let path = dir.path().join("s.redb");
    {
        let store = tasktrack_core::FileStore::open(&path).unwrap();
        for i in 0..200 {
            let event = tasktrack_core::TaskEvent::new(
                "pve",
                format!("task-{i}"),
                None,
                tasktrack_core::TaskEventKind::GaveUp {
                    error_kind: "x".into(),
                    message: "y".repeat(100),
                },
            );
            tasktrack_core::TrackStore::append(&store, &event)
                .await
                .unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    let end = (mid + 4096).min(bytes.len());
    for b in &mut bytes[mid..end] {
        *b ^= 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let store = format!("file:{}", path.display());
    for args in [
        vec!["events", "--store", store.as_str()],
        vec!["store", "check", path.to_str().unwrap()],
    ] {
        let run = tasktrack(&cfg, &args).await;
        assert_one_clear_line(&run, "damaged store");
        assert!(run.stderr.contains("s.redb"), "{}", run.stderr);
    }
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let run = tasktrack(
        &cfg,
        &["events", "--store", &format!("file:{}", empty.display())],
    )
    .await;
    assert_one_clear_line(&run, "empty store file");
    assert!(run.stderr.contains("empty.redb"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_escapes_in_vendor_text_are_shown_not_obeyed() {
    let nasty = [
        "\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}clipboard".to_owned(),
        "\u{1b}]0;fake title\u{7}title".to_owned(),
        "\u{1b}[2J\u{1b}[Hcleared".to_owned(),
        "erase\u{1b}[2K\rline".to_owned(),
        "c1 \u{9b}31m and bidi \u{202e}txt".to_owned(),
    ];
    let lines = nasty.to_vec();
    let server = Hostile::start(move |r| {
        if r.target.contains("/log") {
            Answer::Json(200, pve_log(&lines, Some(lines.len())))
        } else {
            Answer::Json(
                200,
                pve_status("stopped", Some("\u{1b}[31mERROR\u{1b}]52;c;eA==\u{7}")),
            )
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&server.url));
    for args in [
        vec!["logs", "pve", UPID],
        vec!["status", "pve", UPID],
        vec!["wait", "pve", UPID, "--timeout", "30s"],
    ] {
        let run = tasktrack(&cfg, &args).await;
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            !all.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']),
            "{args:?} let a control character through: {all:?}"
        );
        assert!(all.contains("\\x1b"), "{args:?} shows the escape: {all}");
    }
    // JSON keeps vendor text verbatim (escaped by JSON itself).
    let run = tasktrack(&cfg, &["logs", "pve", UPID, "--json"]).await;
    let texts: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts, nasty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_is_a_quiet_exit() {
    let lines: Vec<String> = (0..20_000)
        .map(|i| format!("line {i} {}", "x".repeat(60)))
        .collect();
    let server =
        Hostile::start(move |_| Answer::Json(200, pve_log(&lines, Some(lines.len())))).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&server.url));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&cfg)
        .args(["logs", "pve", UPID])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).await.unwrap();
    assert!(first.contains("line 0"), "{first}");
    drop(stdout); // `| head -1`
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// 6, 10, 11. `serve`: slow backends, crowds of clients, SSE resume
// ---------------------------------------------------------------------------

/// A running `tasktrack serve`, killed when dropped.
struct Serve {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn serve(config: &std::path::Path, extra: &[&str]) -> Serve {
    serve_on(config, "127.0.0.1:0", extra).await
}

/// `tasktrack serve --listen LISTEN`, once it has said where it listens.
async fn serve_on(config: &std::path::Path, listen: &str, extra: &[&str]) -> Serve {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", listen])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("dashboard: ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    Serve { child, url }
}

/// An open SSE stream.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(url: &str, last_id: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(format!("{url}/api/events"));
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        req.send().await.unwrap()
    }

    async fn connect(url: &str, last_id: Option<&str>) -> Sse {
        let response = Sse::open(url, last_id).await;
        assert_eq!(response.status(), 200);
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next `task` event's id.
    async fn next_id(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                    return id.to_owned();
                }
                continue;
            }
            let chunk = self
                .response
                .chunk()
                .await
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn pve_with_tasks(n: u64) -> tasktrack_sim::SimHandle {
    let pve = tasktrack_sim::SimBuilder::new(
        tasktrack_sim::proxmox::Proxmox::new(["pve1"]).with_api_token("root@pam!t", PVE_SECRET),
    )
    .start()
    .await
    .unwrap();
    for i in 0..n {
        pve.create_task(
            tasktrack_sim::TaskSpec::new("vzdump", Duration::from_millis(700 + i * 700))
                .with_attr("id", (100 + i).to_string()),
        );
    }
    pve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_does_not_hold_up_the_others() {
    let hole = Hostile::start(|_| Answer::Hold).await;
    let pve = pve_with_tasks(4).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "{}\n[backends.hole]\nkind = \"ocp\"\nurl = \"{}\"\nuser = \"admin\"\npassword = \"{PASSWORD}\"\n",
            pve_token_backend(&pve.base_url()),
            hole.url
        ),
    );
    let server = serve(&cfg, &[]).await;
    let mut events = Sse::connect(&server.url, None).await;
    for _ in 0..3 {
        events.next_id().await;
    }
    assert!(
        hole.holding.load(Ordering::SeqCst) >= 1,
        "events arrived while the silent backend still held its listing"
    );
    let health: serde_json::Value = reqwest::get(format!("{}/api/backends", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["pve"]["ok"], true, "{health}");
}

fn nofile_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_clients_gets_503_and_the_rest_keeps_answering() {
    let pve = pve_with_tasks(0).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&pve.base_url()));
    let server = serve(&cfg, &["--max-connections", "3"]).await;
    let (soft, hard) = nofile_limits(server.child.id().unwrap());
    assert_eq!(soft, hard, "the descriptor limit is raised at start");
    let held: Vec<Sse> =
        futures::future::join_all((0..3).map(|_| Sse::connect(&server.url, None))).await;
    let busy = reqwest::get(format!("{}/api/tasks", server.url))
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    let body: serde_json::Value = busy.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("too many connections"));
    drop(held);
    // The server notices the closed streams on its own schedule: ask until
    // it answers (each refusal is immediate, so this is progress, not luck).
    let mut answered = false;
    for _ in 0..200 {
        let r = reqwest::get(format!("{}/api/tasks", server.url))
            .await
            .unwrap();
        if r.status() == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "freed connections are reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_ids_are_store_cursors_that_resume_across_restarts() {
    let pve = pve_with_tasks(8).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&pve.base_url()));
    let store = format!("file:{}", dir.path().join("s.redb").display());
    let server = serve(&cfg, &["--store", &store]).await;
    let mut live = Sse::connect(&server.url, None).await;
    let (first, second) = (live.next_id().await, live.next_id().await);
    assert!(
        first.bytes().all(|b| b.is_ascii_digit()),
        "a file store's cursor: {first}"
    );
    let mut resumed = Sse::connect(&server.url, Some(&first)).await;
    assert_eq!(resumed.next_id().await, second, "resume sends what follows");
    for bad in ["abc", "-1", "5-0", "99999999999999999999999"] {
        let r = Sse::open(&server.url, Some(bad)).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    drop((live, resumed));
    // Killed and gone (its lock on the store file with it) before the next
    // server opens the same file.
    let mut old = server;
    old.child.kill().await.unwrap();
    // The store holds the log: a new server resumes the same page.
    let server = serve(&cfg, &["--store", &store]).await;
    let mut resumed = Sse::connect(&server.url, Some(&first)).await;
    assert_eq!(resumed.next_id().await, second, "resume after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_ids_without_a_store_belong_to_one_process() {
    let pve = pve_with_tasks(8).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&pve.base_url()));
    let server = serve(&cfg, &[]).await;
    let mut live = Sse::connect(&server.url, None).await;
    let (first, second) = (live.next_id().await, live.next_id().await);
    let (stream, n) = first.rsplit_once('-').unwrap();
    assert!(stream.starts_with('s') && stream.len() == 9, "{first}");
    let mut resumed = Sse::connect(&server.url, Some(&first)).await;
    assert_eq!(resumed.next_id().await, second);
    // Another process's id: only what is new, not a replay from the start.
    let other = format!(
        "s{}-{n}",
        if &stream[1..] == "00000000" {
            "11111111"
        } else {
            "00000000"
        }
    );
    let mut fresh = Sse::connect(&server.url, Some(&other)).await;
    let next = fresh.next_id().await;
    let position = |id: &str| id.rsplit_once('-').unwrap().1.parse::<u64>().unwrap();
    assert!(position(&next) > position(&second), "{next} is new");
    for bad in ["7", "garbage", "s123-1", "sZZZZZZZZ-1"] {
        assert_eq!(
            Sse::open(&server.url, Some(bad)).await.status(),
            400,
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_dashboard_needs_its_token_for_every_read() {
    const TOKEN: &str = "public-dashboard-token";
    let pve = pve_with_tasks(1).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&pve.base_url()));
    let server = serve_on(&cfg, "0.0.0.0:0", &["--token", TOKEN, "--allow-actions"]).await;
    let port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", server.url));
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{url}{path}"));
    for path in [
        "/api/tasks",
        "/api/events",
        "/api/backends",
        "/api/tasks/pve/x",
    ] {
        assert_eq!(
            get(path).send().await.unwrap().status(),
            401,
            "{path} without a token"
        );
        let wrong = get(path)
            .bearer_auth("public-dashboard-tokem")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
    }
    assert_eq!(
        get("/api/tasks")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let cookie = get("/api/tasks")
        .header("Cookie", format!("other=1; tasktrack_token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 200, "the page's cookie");
    assert_eq!(
        get("/").send().await.unwrap().status(),
        200,
        "the page asks for the token"
    );
    let cross_origin = http
        .post(format!("{url}/api/tasks/pve/x/actions/cancel"))
        .header("Origin", "http://evil.example")
        .header("Cookie", format!("tasktrack_token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross_origin.status(),
        401,
        "an action needs the bearer header, which another site cannot send"
    );
    assert!(cross_origin
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_dashboard_answers_only_to_its_own_host() {
    let pve = pve_with_tasks(0).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pve_token_backend(&pve.base_url()));
    let server = serve(&cfg, &[]).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let http = reqwest::Client::new();
    let with_host = |host: String| {
        http.get(format!("{}/api/tasks", server.url))
            .header("Host", host)
            .send()
    };
    assert_eq!(
        with_host(format!("127.0.0.1:{port}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_host(format!("localhost:{port}"))
            .await
            .unwrap()
            .status(),
        200
    );
    let rebound = with_host(format!("evil.example:{port}")).await.unwrap();
    assert_eq!(rebound.status(), 421, "DNS rebinding is refused");
    assert_eq!(with_host("127.0.0.1:1".into()).await.unwrap().status(), 421);
}
