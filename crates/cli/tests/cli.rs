//! The `tasktrack` binary as a process, against simulators over loopback.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use tasktrack_core::{ManualClock, TaskEvent, TaskSnapshot, TaskState};
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, TaskSpec};

const SECRET: &str = "pve-cli-secret-value";
const OCP_PASSWORD: &str = "ocp-cli-password";

struct Env {
    _dir: tempfile::TempDir,
    config: PathBuf,
    pve: SimHandle,
    ocp: Ocp,
    /// The OCP simulator's time: the tests move it, the CLI process polls it.
    ocp_clock: ManualClock,
    _ocp_sim: SimHandle,
}

async fn env() -> Env {
    let pve = SimBuilder::new(Proxmox::new(["pve1"]).with_api_token("root@pam!cli", SECRET))
        .start()
        .await
        .unwrap();
    let ocp_clock = ManualClock::new();
    let ocp = Ocp::new("admin", OCP_PASSWORD).with_clock(SimClock::manual(ocp_clock.clone()));
    let ocp_sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tasktrack.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[backends.pve]
kind = "proxmox"
url = "{}"
token = "${{TT_TEST_PVE_TOKEN}}"

[backends.ocp]
kind = "ocp"
url = "{}"
user = "admin"
password = "{OCP_PASSWORD}"

[backends.down]
kind = "ocp"
url = "http://127.0.0.1:1"
user = "admin"
password = "x"
"#,
            pve.base_url(),
            ocp_sim.base_url()
        ),
    )
    .unwrap();
    Env {
        _dir: dir,
        config,
        pve,
        ocp,
        ocp_clock,
        _ocp_sim: ocp_sim,
    }
}

async fn tasktrack(env: &Env, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env("TT_TEST_PVE_TOKEN", format!("root@pam!cli={SECRET}"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_no_secret(o: &Output) {
    let (out, err) = text(o);
    for s in [SECRET, OCP_PASSWORD] {
        assert!(
            !out.contains(s) && !err.contains(s),
            "secret printed:\n{out}\n{err}"
        );
    }
}

#[tokio::test]
async fn wait_exit_codes() {
    let env = env().await;
    let ok = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_millis(300)).with_attr("id", "100"));
    let o = tasktrack(&env, &["wait", "pve", &ok, "--interval", "100ms"]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("succeeded (stopped: OK)"), "{out}");

    let bad = env.pve.create_task(
        TaskSpec::new("qmigrate", Duration::from_millis(200))
            .with_log(["copying disk", "ERROR: target storage full"])
            .with_failure("E", "migration aborted"),
    );
    let o = tasktrack(&env, &["wait", "pve", &bad, "--interval", "100ms"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("failed: migration aborted"), "{err}");
    assert!(
        err.contains("ERROR: target storage full") && err.contains("TASK ERROR: migration aborted"),
        "log tail: {err}"
    );

    let slow = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)));
    let o = tasktrack(
        &env,
        &[
            "wait",
            "pve",
            &slow,
            "--interval",
            "100ms",
            "--timeout",
            "400ms",
        ],
    )
    .await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("gave up waiting"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_no_secret(&o);
}

#[tokio::test]
async fn json_output_parses_line_by_line() {
    let env = env().await;
    let id = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_millis(300)));
    let o = tasktrack(&env, &["wait", "pve", &id, "--interval", "100ms", "--json"]).await;
    let (out, _) = text(&o);
    let snaps: Vec<TaskSnapshot> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(snaps.last().unwrap().state, TaskState::Succeeded);
    assert!(snaps.iter().all(|s| s.id == id));

    let o = tasktrack(&env, &["status", "pve", &id, "--json"]).await;
    let s: TaskSnapshot = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(s.kind.as_deref(), Some("vzdump"));
    let o = tasktrack(&env, &["list", "pve", "--json"]).await;
    assert!(text(&o)
        .0
        .lines()
        .all(|l| serde_json::from_str::<TaskSnapshot>(l).is_ok()));
    let o = tasktrack(&env, &["logs", "pve", &id, "--tail", "1", "--json"]).await;
    let line: serde_json::Value = serde_json::from_str(text(&o).0.trim()).unwrap();
    assert_eq!(line["text"], "TASK OK");
}

#[tokio::test]
async fn config_and_input_errors_are_one_clear_line() {
    let env = env().await;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["status", "nope", "1"],
            "unknown backend \"nope\" (configured backends: down, ocp, pve)",
        ),
        (
            vec!["status", "pve", "UPID:broken"],
            "UPID:node:PID:PSTART:STARTTIME:type:id:user@realm:",
        ),
        (
            vec!["status", "ocp", "abc"],
            "an OCP task instance id (a number)",
        ),
        (vec!["status", "down", "1"], "check the backend's URL"),
        (vec!["logs", "ocp", "999"], "not found"),
    ];
    for (args, needle) in cases {
        let o = tasktrack(&env, &args).await;
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .args(["--config", "/nonexistent/tasktrack.toml", "list", "pve"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("tasktrack demo --print-config"),
        "{}",
        text(&o).1
    );
    // The token variable unset: the error names the variable, not a value.
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&env.config)
        .args(["list", "pve"])
        .env_remove("TT_TEST_PVE_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .1
            .contains("environment variable TT_TEST_PVE_TOKEN (for token) is not set"),
        "{}",
        text(&o).1
    );
    // Wrong credentials: a clear line, no secret.
    let bad = env.config.with_file_name("bad.toml");
    std::fs::write(&bad, format!("[backends.pve]\nkind = \"proxmox\"\nurl = \"{}\"\ntoken = \"root@pam!cli=wrong-{SECRET}\"\n", env.pve.base_url())).unwrap();
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&bad)
        .args(["list", "pve"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("authentication failed") && err.contains("check the credentials"),
        "{err}"
    );
    assert_eq!(err.matches("credentials").count(), 1, "said once: {err}");
    assert_no_secret(&o);
}

#[tokio::test]
async fn actions_and_their_refusals() {
    let env = env().await;
    let s = Duration::from_millis;
    let id = env.ocp.create(OcpTaskSpec::new(
        "Add tenant",
        vec![
            OcpSubtaskSpec::new("Create unit", s(50), &[]),
            OcpSubtaskSpec::new("Apply parameters", s(50), &[0]).with_fail_runs(u32::MAX),
            OcpSubtaskSpec::new("Create tenant", s(50), &[1]),
        ],
    ));
    let subs = env.ocp.subtask_ids(id);
    let id = id.to_string();
    let o = tasktrack(&env, &["cancel", "ocp", &id, "--yes"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("backend ocp (ocp) cannot cancel (ocp backends support: retry, rollback, retry-step, skip-step, cancel-step)"), "{}", text(&o).1);
    env.ocp_clock.advance(s(150)); // the second subtask has failed
    let o = tasktrack(&env, &["skip-step", "ocp", &id, &subs[1].to_string()]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "no --yes and no terminal: refused"
    );
    assert!(text(&o).1.contains("pass --yes"), "{}", text(&o).1);
    let o = tasktrack(
        &env,
        &["skip-step", "ocp", &id, &subs[2].to_string(), "--yes"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("only a FAILED subtask can be skipped"),
        "{}",
        text(&o).1
    );
    let o = tasktrack(
        &env,
        &["skip-step", "ocp", &id, &subs[1].to_string(), "--yes"],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert!(
        text(&o)
            .0
            .contains(&format!("skip-step {} sent to ocp task {id}", subs[1])),
        "{}",
        text(&o).0
    );
    env.ocp_clock.advance(s(100));
    let o = tasktrack(&env, &["wait", "ocp", &id, "--interval", "100ms"]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "the downstream ran: {}",
        text(&o).1
    );
    let o = tasktrack(&env, &["rollback", "ocp", &id, "--yes"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("only a FAILED task can be rolled back"),
        "{}",
        text(&o).1
    );
    let upid = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)));
    let o = tasktrack(&env, &["cancel", "pve", &upid, "--yes"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let o = tasktrack(&env, &["status", "pve", &upid]).await;
    assert!(
        text(&o).0.contains("stopped: received interrupt"),
        "{}",
        text(&o).0
    );
    assert_no_secret(&o);
}

/// The demo's closing table and summary, as a person reads them: one row
/// a line (they were once printed as one line, their line breaks escaped).
#[tokio::test]
async fn the_demo_ends_with_its_table_and_summary_one_row_a_line() {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .args(["demo", "--time-scale", "0.1"])
        .output()
        .await
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!out.contains("\\x0a"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("BACKEND") && l.contains("SUCCEEDED"))
        .unwrap_or_else(|| panic!("no summary header: {out}"));
    for backend in ["dcs", "kps", "ocp", "proxmox"] {
        assert!(
            lines[header + 1..].iter().any(|l| l.starts_with(backend)),
            "{backend} has a summary row: {out}"
        );
    }
    assert!(
        lines.iter().filter(|l| l.starts_with("proxmox ")).count() > 5,
        "the final table has a row per task: {out}"
    );
    assert!(lines.last().unwrap().contains("tasks tracked in"), "{out}");
}

#[tokio::test]
async fn demo_json_finishes_with_every_task_terminal_and_a_matching_summary() {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .args(["demo", "--json", "--time-scale", "0.1"])
        .output()
        .await
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let events: Vec<TaskEvent> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut last: HashMap<(String, String), &TaskEvent> = HashMap::new();
    for e in &events {
        last.insert((e.provider.clone(), e.id.clone()), e);
    }
    assert!(last.len() >= 38, "about 40 tasks: {}", last.len());
    assert!(
        last.values().all(|e| e.is_final()),
        "every task ends terminal"
    );
    let mut counts: HashMap<(String, String), u64> = HashMap::new();
    for ((backend, _), e) in &last {
        let state = e
            .state()
            .map_or("gave_up".to_owned(), |s| s.as_str().to_owned());
        *counts.entry((backend.clone(), state)).or_default() += 1;
    }
    let summary: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    for ((backend, state), n) in &counts {
        assert_eq!(
            summary["states"][backend][state], *n,
            "{backend} {state}: {summary}"
        );
    }
    for backend in ["proxmox", "kps", "dcs", "ocp"] {
        assert!(
            summary["requests"][backend].as_u64().unwrap() > 0,
            "{summary}"
        );
    }
    let actions = summary["actions"].as_array().unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("retry on ocp")),
        "{summary}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("skip-step")),
        "{summary}"
    );
    // The retried and skipped OCP tasks end well; some tasks of each kind fail.
    assert!(
        counts
            .get(&("ocp".into(), "succeeded".into()))
            .copied()
            .unwrap_or(0)
            >= 7
    );
    assert!(
        counts
            .get(&("proxmox".into(), "failed".into()))
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

#[tokio::test]
async fn print_config_is_a_valid_config() {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .args(["demo", "--print-config"])
        .output()
        .await
        .unwrap();
    let (out, _) = text(&o);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, &out).unwrap();
    // Parses, and names the four backends (nothing listens there: a connection error).
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&path)
        .args(["status", "nope", "1"])
        .output()
        .await
        .unwrap();
    assert!(
        text(&o)
            .1
            .contains("configured backends: dcs, kps, ocp, pve"),
        "{}",
        text(&o).1
    );
}

#[tokio::test]
async fn watch_follows_running_tasks_to_their_end() {
    let env = env().await;
    let done = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::ZERO).with_failure("E", "old failure"));
    let running = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_millis(400)));
    let _ = done;
    let o = tasktrack(&env, &["watch", "pve", "--json", "--exit-when-idle"]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Listed snapshots and tracker events, one JSON value per line.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ended = lines.iter().any(|v| {
        v["id"] == running.as_str()
            && v["event"] == "changed"
            && v["snapshot"]["state"] == "succeeded"
    });
    assert!(ended, "the running task was followed to its end: {out}");
    assert!(
        lines.iter().any(|v| v["state"] == "failed"),
        "the failed task is shown: {out}"
    );
}

/// A fifth kind is one line in the CLI's registry: the in-memory provider,
/// `kind = "memory"`, goes through the same config, commands and errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_kind_of_backend_works_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    std::fs::write(
        &config,
        "[backends.mem]\nkind = \"memory\"\ntasks = [{ kind = \"backup\", seconds = 3600 }, { kind = \"restore\", seconds = 1, fails = true }]\n",
    )
    .unwrap();
    let run = |args: &'static [&'static str]| {
        let config = config.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
                .arg("--config")
                .arg(&config)
                .args(args)
                .output()
                .await
                .unwrap()
        }
    };
    let status = run(&["status", "mem", "1", "--json"]).await;
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    let snapshot: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(snapshot["state"], "running");
    assert_eq!(snapshot["kind"], "backup");
    let wait = run(&[
        "wait",
        "mem",
        "2",
        "--timeout",
        "30s",
        "--interval",
        "100ms",
    ])
    .await;
    assert_eq!(
        wait.status.code(),
        Some(1),
        "the scripted failure: {wait:?}"
    );
    let bad = run(&["status", "mem", "x"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("a task number"),
        "the kind's id syntax is named: {bad:?}"
    );

    std::fs::write(&config, "[backends.x]\nkind = \"nope\"\n").unwrap();
    let unknown = run(&["status", "x", "1"]).await;
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        err.contains("unknown kind \"nope\"") && err.contains("\"memory\""),
        "{err}"
    );
}

/// `list --ids` prints ids every other command takes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_ids_round_trip_into_status() {
    let env = env().await;
    let upid = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)).with_attr("id", "101"));
    let listed = tasktrack(&env, &["list", "pve", "--state", "running", "--ids"]).await;
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let (out, _) = text(&listed);
    let ids: Vec<&str> = out.lines().collect();
    assert!(ids.contains(&upid.as_str()), "{out}");
    for id in ids {
        let status = tasktrack(&env, &["status", "pve", id]).await;
        assert_eq!(status.status.code(), Some(0), "{id}: {status:?}");
    }
    // The short form the table prints (`pve1:PID`) names the same task.
    let table = tasktrack(&env, &["list", "pve", "--state", "running"]).await;
    let fields: Vec<&str> = upid.split(':').collect();
    let short = format!("{}:{}", fields[1], fields[2]);
    assert!(text(&table).0.contains(&short), "{}", text(&table).0);
    let status = tasktrack(&env, &["status", "pve", &short, "--json"]).await;
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert!(text(&status).0.contains(&upid), "{}", text(&status).0);
    let unknown = tasktrack(&env, &["status", "pve", "pve1:FFFFFFFF"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
}

/// `wait` with many ids: one tracker, one summary, one exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_waits_have_one_exit_code() {
    let env = env().await;
    let ok = |i: u64| {
        env.pve.create_task(
            TaskSpec::new("vzdump", Duration::from_millis(200 + 50 * i))
                .with_attr("id", (200 + i).to_string()),
        )
    };
    let (a, b, c) = (ok(1), ok(2), ok(3));
    let bad = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_millis(200)).with_failure("E", "boom"));
    let slow = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)).with_attr("id", "299"));
    let fast = ["--interval", "100ms"];
    let run = |ids: Vec<&str>, extra: Vec<&str>| {
        let mut args: Vec<String> = vec!["wait".into(), "pve".into()];
        args.extend(ids.into_iter().map(String::from));
        args.extend(fast.iter().map(|s| s.to_string()));
        args.extend(extra.into_iter().map(String::from));
        let env = &env;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tasktrack(env, &args).await
        }
    };
    let all = run(vec![&a, &b, &c], vec![]).await;
    assert_eq!(all.status.code(), Some(0), "{all:?}");
    assert_eq!(text(&all).0.lines().count(), 3, "one line per task");
    assert!(text(&all).1.contains("3 of 3 succeeded"));
    let one_failed = run(vec![&a, &bad, &c], vec![]).await;
    assert_eq!(one_failed.status.code(), Some(1));
    let any = run(vec![&bad, &a], vec!["--any"]).await;
    assert_eq!(any.status.code(), Some(0));
    let at_least = run(vec![&a, &b, &bad], vec!["--at-least", "2"]).await;
    assert_eq!(at_least.status.code(), Some(0));
    let fail_fast = run(vec![&bad, &slow], vec!["--fail-fast", "--timeout", "30s"]).await;
    assert_eq!(
        fail_fast.status.code(),
        Some(1),
        "stops at the failure, not the slow task"
    );
    let timed_out = run(vec![&a, &slow], vec!["--timeout", "1s"]).await;
    assert_eq!(timed_out.status.code(), Some(3), "{timed_out:?}");
    let impossible = run(vec![&a, &b], vec!["--at-least", "3"]).await;
    assert_eq!(impossible.status.code(), Some(2));

    // Ids from stdin, as `tasktrack list pve --ids | tasktrack wait pve -`.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&env.config)
        .args(["wait", "pve", "-", "--interval", "100ms", "--json"])
        .env("TT_TEST_PVE_TOKEN", format!("root@pam!cli={SECRET}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{a}\n{b}\n{c}\n").as_bytes())
            .await
            .unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["state"] == "succeeded"));
}

/// `logs --follow` prints each line once, in order, as the task writes it,
/// and ends with the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_prints_every_line_once_and_ends_with_the_task() {
    let env = env().await;
    let lines: Vec<String> = (1..=12).map(|i| format!("step {i} of 12")).collect();
    let upid = env.pve.create_task(
        TaskSpec::new("vzdump", Duration::from_millis(1500))
            .with_attr("id", "310")
            .with_log(lines.clone()),
    );
    let o = tasktrack(
        &env,
        &["logs", "pve", &upid, "--follow", "--interval", "100ms"],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let (out, err) = text(&o);
    let printed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().split_once(' ').map(|(_, t)| t))
        .filter(|t| t.starts_with("step "))
        .collect();
    assert_eq!(printed, lines, "{out}");
    assert!(err.contains("succeeded"), "{err}");
    let bad = env.pve.create_task(
        TaskSpec::new("vzdump", Duration::from_millis(300))
            .with_log(["trying"])
            .with_failure("E", "boom"),
    );
    let o = tasktrack(
        &env,
        &["logs", "pve", &bad, "--follow", "--interval", "100ms"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{o:?}");
}

/// `watch` stays up and shows a task started after it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_keeps_watching_and_picks_up_new_tasks() {
    use tokio::io::AsyncBufReadExt;
    let env = env().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .arg("--config")
        .arg(&env.config)
        .args(["watch", "pve", "--json", "--relist", "200ms"])
        .env("TT_TEST_PVE_TOKEN", format!("root@pam!cli={SECRET}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Nothing runs yet; a task started now must still show up and end. It
    // runs long enough to be listed while running even when watch starts
    // slowly on a loaded machine (a listing leaves succeeded tasks out).
    let later = env
        .pve
        .create_task(TaskSpec::new("vzdump", Duration::from_secs(4)).with_attr("id", "320"));
    let mut ended = false;
    while let Some(line) = lines.next_line().await.unwrap() {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["id"] == later.as_str() && v["snapshot"]["state"] == "succeeded" {
            ended = true;
            break;
        }
    }
    assert!(ended, "the later task was picked up and followed");
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch is still running"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
}

/// `wait --stall-after` gives up on a task that stopped changing, and
/// `--running-for` on one past its phase limit, each saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_gives_up_on_a_stalled_or_overlong_task_and_says_why() {
    let env = env().await;
    for (limit, guest, why) in [
        ("--stall-after", "330", "stalled"),
        ("--running-for", "331", "running_for is 1s"),
    ] {
        let stuck = env
            .pve
            .create_task(TaskSpec::new("vzdump", Duration::from_secs(3600)).with_attr("id", guest));
        let args = [
            "wait",
            "pve",
            &stuck,
            limit,
            "1s",
            "--interval",
            "100ms",
            "--timeout",
            "60s",
        ];
        let o = tasktrack(&env, &args).await;
        assert_eq!(o.status.code(), Some(3), "{limit}: {o:?}");
        assert!(text(&o).1.contains(why), "{limit}: {}", text(&o).1);
    }
}

/// Without --config or ./tasktrack.toml, the user's config directory.
#[tokio::test]
async fn the_config_is_found_in_the_users_config_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(xdg.path().join("tasktrack")).unwrap();
    std::fs::write(
        xdg.path().join("tasktrack/tasktrack.toml"),
        "[backends.mem]\nkind = \"memory\"\ntasks = [{ kind = \"backup\", seconds = 3600 }]\n",
    )
    .unwrap();
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasktrack"))
        .args(["status", "mem", "1"])
        .current_dir(cwd.path())
        .env("XDG_CONFIG_HOME", xdg.path())
        .env_remove("TASKTRACK_CONFIG")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}
