//! The web dashboard: its JSON API over HTTP, and the page in a real
//! headless Chromium (Debian's `chromium` and `chromium-driver`).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, TaskSpec};

const PVE_SECRET: &str = "web-pve-secret-value";
const OCP_PASSWORD: &str = "web-ocp-password-value";
const TOKEN: &str = "web-action-token";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver in a process group of its own, killed with the browsers it
/// started: killing chromedriver alone leaves every Chromium process of
/// its session running after the test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Starts a `tasktrack` command that prints `dashboard: URL` first.
fn start_dashboard(
    args: &[&str],
    config: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasktrack"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("dashboard: ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let url = url
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    (Proc(child), url)
}

/// `tasktrack serve` on loopback with a config of these backends (`extra`
/// added to its arguments, `env` to its environment); the directory
/// holding the config lives as long as the returned guard.
fn serve_backends(
    backends: &[String],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Proc, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    std::fs::write(&config, backends.join("\n")).unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (server, url) = start_dashboard(&args, Some(&config), env);
    (dir, server, url)
}

/// Backend `pve` of a config, on the Proxmox simulator at `url`.
fn pve_backend(url: &str) -> String {
    format!("[backends.pve]\nkind = \"proxmox\"\nurl = \"{url}\"\ntoken = \"root@pam!web={PVE_SECRET}\"\n")
}

/// Backend `ocp` of a config, on the OCP simulator at `url`.
fn ocp_backend(url: &str) -> String {
    format!("[backends.ocp]\nkind = \"ocp\"\nurl = \"{url}\"\nuser = \"admin\"\npassword = \"{OCP_PASSWORD}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_tasks_events_and_guarded_actions() {
    let pve = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token("root@pam!web", PVE_SECRET))
        .start()
        .await
        .unwrap();
    let ocp = Ocp::new("admin", OCP_PASSWORD);
    let ocp_sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let upid =
        pve.create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)).with_attr("id", "100"));
    let failed = ocp.create(OcpTaskSpec::new(
        "Add tenant",
        vec![OcpSubtaskSpec::new("Create tenant", Duration::ZERO, &[]).with_fail_runs(1)],
    ));
    let (_dir, _server, url) = serve_backends(
        &[
            pve_backend(&pve.base_url()),
            ocp_backend(&ocp_sim.base_url()),
        ],
        &["--allow-actions"],
        &[("TASKTRACK_TOKEN", TOKEN)],
    );
    let http = reqwest::Client::new();
    let mut bodies = Vec::new();

    // The listing runs at start: wait until it is in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let tasks: Vec<Value> = loop {
        let tasks: Vec<Value> = common::get_json(&http, format!("{url}/api/tasks")).await;
        if tasks.len() >= 2 || Instant::now() > deadline {
            break tasks;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        tasks.iter().any(|t| t["id"] == upid.as_str())
            && tasks
                .iter()
                .any(|t| t["id"].as_str() == Some(failed.to_string().as_str())),
        "{tasks:?}"
    );
    let ocp_only: Vec<Value> =
        common::get_json(&http, format!("{url}/api/tasks?backend=ocp")).await;
    assert!(ocp_only.iter().all(|t| t["provider"] == "ocp"));

    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let one = http
        .get(format!("{url}/api/tasks/pve/{}", enc(&upid)))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["state"], "running");
    let logs = common::get_text(&http, format!("{url}/api/tasks/ocp/{failed}/logs?tail=2")).await;
    assert!(logs.contains("failed on run 1"), "{logs}");
    bodies.push(logs);

    // SSE: the stream is open and speaks text/event-stream.
    let sse = http.get(format!("{url}/api/events")).send().await.unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    drop(sse);

    // Actions: POST only, bearer token, capability checked, JSON errors.
    let action = format!("{url}/api/tasks/ocp/{failed}/actions/retry");
    let r = http.get(&action).send().await.unwrap();
    assert_eq!(r.status(), 405);
    bodies.push(r.text().await.unwrap());
    let r = http.post(&action).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("bearer token"));
    for wrong in [&TOKEN[..TOKEN.len() - 1], "web-action-tokem", ""] {
        let r = http.post(&action).bearer_auth(wrong).send().await.unwrap();
        assert_eq!(r.status(), 401, "a wrong token {wrong:?} is refused");
    }
    let r = http
        .post(format!("{url}/api/tasks/pve/{}/actions/retry", enc(&upid)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "proxmox cannot retry");
    let r = http.post(&action).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http.post(&action).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 400, "refused locally: no longer failed");
    bodies.push(r.text().await.unwrap());
    let r = http
        .get(format!("{url}/api/tasks/nope/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    bodies.push(r.text().await.unwrap());
    bodies.push(common::get_text(&http, format!("{url}/")).await);
    bodies.push(serde_json::to_string(&tasks).unwrap());
    for b in &bodies {
        assert!(
            !b.contains(PVE_SECRET) && !b.contains(OCP_PASSWORD) && !b.contains(TOKEN),
            "a credential reached the API: {b}"
        );
    }
}

#[test]
fn a_public_address_needs_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .args(["demo", "--web", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("refusing to listen on 0.0.0.0:0 without a token"));
}

/// A minimal WebDriver client over chromedriver's HTTP API.
struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chromedriver ({e}); install Debian's chromium and chromium-driver (.ci/run does)"));
        let http = reqwest::Client::new();
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http
            .get(format!("{driver_url}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1500,950",
                     format!("--user-data-dir={}", profile.path().display())]
        }}}});
        let session: Value = http
            .post(format!("{driver_url}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        Browser {
            http,
            base: format!("{driver_url}/session/{id}"),
            _driver: Driver(driver),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            req = req.json(&body);
        }
        let v = req.send().await.unwrap().json::<Value>().await.unwrap();
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": js, "args": [] }),
        )
        .await
    }

    /// Polls a script until it returns something truthy.
    async fn until(&self, what: &str, js: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.script(js).await;
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_live_in_a_real_browser() {
    let (_demo, url) = start_dashboard(
        &[
            "demo",
            "--web",
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "0.6",
        ],
        None,
        &[],
    );
    let browser = Browser::start().await;
    browser.goto(&format!("{url}/")).await;

    // Rows from all four backends are rendered.
    let backends = browser
        .until("rows of four backends", "const b = new Set([...document.querySelectorAll('tbody tr')].map(r => r.dataset.backend)); return b.size >= 4 ? [...b].sort() : null;")
        .await;
    assert_eq!(backends, json!(["dcs", "kps", "ocp", "proxmox"]));

    // A row changes state without a reload (the page's own marker survives).
    let before = browser.script("window.__noReload = true; return Object.fromEntries([...document.querySelectorAll('tbody tr')].map(r => [r.dataset.key, r.dataset.state]));").await;
    let changed = browser
        .until(
            "a live state change",
            &format!("const before = {before}; return window.__noReload && [...document.querySelectorAll('tbody tr')].some(r => before[r.dataset.key] && before[r.dataset.key] !== r.dataset.state);"),
        )
        .await;
    assert_eq!(changed, json!(true));

    // Clicking the failed OCP task (the one the demo leaves failed) shows
    // its failed subtask. Found and clicked in one script, so a re-render
    // cannot swap the row in between.
    browser
        .until(
            "the failed OCP task, clicked",
            "const r = [...document.querySelectorAll('tbody tr')].find(r => r.dataset.backend === 'ocp' && r.dataset.state === 'failed' && r.cells[2].textContent === 'Delete cluster'); if (!r) return false; r.click(); return true;",
        )
        .await;
    let failed_step = browser
        .until("its failed subtask", "const li = document.querySelector('#steps li[data-state=\"failed\"]'); return li ? li.textContent : null;")
        .await;
    assert!(
        failed_step.as_str().unwrap().contains("Clean data"),
        "{failed_step}"
    );
    let log = browser
        .until(
            "its log tail",
            "const p = document.getElementById('log'); return p ? p.textContent : null;",
        )
        .await;
    assert!(log.as_str().unwrap().contains("Clean data"), "{log}");

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = match std::env::var("TASKTRACK_SCREENSHOT") {
        Ok(p) => std::path::PathBuf::from(p),
        Err(_) => std::env::temp_dir().join("tasktrack-dashboard.png"),
    };
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
}

/// Vendor text is shown as text: task and step names and log lines full of
/// markup render literally and run nothing. The page also reads the list
/// at once, sorts failed first, filters by search, opens a deep link and
/// offers the actions a failed task allows when `--allow-actions` is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_vendor_text_renders_literally_in_a_real_browser() {
    const HOSTILE: &str = "<img src=x onerror=\"window.__pwned=1\"> </script><script>window.__pwned=2</script> & \"q\"";
    let ocp = Ocp::new("admin", OCP_PASSWORD);
    let ocp_sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let bad = ocp.create(OcpTaskSpec::new(
        HOSTILE,
        vec![OcpSubtaskSpec::new(HOSTILE, Duration::ZERO, &[])
            .with_fail_runs(u32::MAX)
            .with_log([HOSTILE])],
    ));
    ocp.create(OcpTaskSpec::new(
        "Plain backup",
        vec![OcpSubtaskSpec::new("Copy", Duration::from_secs(3600), &[])],
    ));
    let (_dir, _server, url) = serve_backends(
        &[ocp_backend(&ocp_sim.base_url())],
        &["--allow-actions"],
        &[("TASKTRACK_TOKEN", TOKEN)],
    );
    let browser = Browser::start().await;
    browser.goto(&format!("{url}/#ocp/{bad}")).await;

    // Both tasks, the failed one first, its name as plain text.
    let first = browser
        .until(
            "two rows, the failed first",
            "const rows = [...document.querySelectorAll('tbody tr')]; return rows.length === 2 && rows[0].dataset.state === 'failed' ? rows[0].cells[2].textContent : null;",
        )
        .await;
    assert_eq!(first, json!(HOSTILE));
    // The deep link opened it: its step and log, literally.
    let step = browser
        .until("its failed step", "const li = document.querySelector('#steps li[data-state=\"failed\"]'); return li ? li.textContent : null;")
        .await;
    assert!(step.as_str().unwrap().contains(HOSTILE), "{step}");
    let log = browser
        .until("its log", "const p = document.getElementById('log'); return p && p.textContent.includes('onerror') ? p.textContent : null;")
        .await;
    assert!(log.as_str().unwrap().contains(HOSTILE), "{log}");
    let injected = browser
        .script("return [window.__pwned === undefined, document.querySelectorAll('tbody img, aside img, aside script, tbody script').length];")
        .await;
    assert_eq!(
        injected,
        json!([true, 0]),
        "vendor markup ran or became elements"
    );
    // A failed task offers retry and rollback.
    let actions = browser
        .until("action buttons", "const b = [...document.querySelectorAll('#actions button')].map(b => b.dataset.action); return b.length ? b : null;")
        .await;
    assert_eq!(actions, json!(["retry", "rollback"]));
    // Search narrows the list.
    let shown = browser
        .until(
            "a search for the plain task",
            "const q = document.getElementById('q'); q.value = 'plain'; q.dispatchEvent(new Event('input')); const rows = [...document.querySelectorAll('tbody tr')]; return rows.length === 1 ? rows[0].cells[2].textContent : null;",
        )
        .await;
    assert_eq!(shown, json!("Plain backup"));
    let counts = browser
        .script("return document.getElementById('count').textContent;")
        .await;
    assert!(
        counts
            .as_str()
            .unwrap()
            .contains("1 / 2 tasks · 1 failed · 1 running (ocp 2)"),
        "{counts}"
    );
}

/// The open task's log pane follows a running task whose status does not
/// change (no event would refresh it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pane_follows_a_running_task() {
    let pve = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token("root@pam!web", PVE_SECRET))
        .start()
        .await
        .unwrap();
    let lines: Vec<String> = (0..30).map(|i| format!("copy step {i}")).collect();
    let upid = pve.create_task(
        TaskSpec::new("vzdump", Duration::from_secs(30))
            .with_attr("id", "100")
            .with_log(lines),
    );
    let (_dir, _server, url) = serve_backends(&[pve_backend(&pve.base_url())], &[], &[]);
    let browser = Browser::start().await;
    let link = url::form_urlencoded::byte_serialize(upid.as_bytes()).collect::<String>();
    browser.goto(&format!("{url}/#pve/{link}")).await;
    let first = browser
        .until("the log pane", "const p = document.getElementById('log'); return p && p.textContent.includes('copy step') ? p.textContent : null;")
        .await;
    let shown = first.as_str().unwrap().lines().count();
    let grown = browser
        .until(
            "more lines in the same pane",
            &format!("const p = document.getElementById('log'); return p && p.textContent.split('\\n').length > {shown} + 1 ? p.textContent.split('\\n').length : null;"),
        )
        .await;
    assert!(grown.as_u64().unwrap() as usize > shown, "{grown}");
    let state = browser
        .script("const r = document.querySelector('tbody tr'); return r && r.dataset.state;")
        .await;
    assert_eq!(state, json!("running"), "it grew while the task ran");
}
