//! The Proxmox VE simulator answers as pve-manager, pve-common and
//! pve-http-server do (each check names the code it follows).

use std::time::Duration;

use serde_json::Value;
use tasktrack_core::ManualClock;
use tasktrack_sim::proxmox::Proxmox;
use tasktrack_sim::{SimBuilder, SimClock, SimHandle, SimOutcome, TaskSpec};

const TOKEN: &str = "PVEAPIToken=root@pam!ci=sim-secret";

async fn start(clock: &ManualClock, pve: Proxmox) -> SimHandle {
    SimBuilder::new(pve.with_api_token("root@pam!ci", "sim-secret"))
        .with_clock(SimClock::manual(clock.clone()))
        .start()
        .await
        .unwrap()
}

async fn get(
    sim: &SimHandle,
    path: &str,
) -> (u16, Option<String>, reqwest::header::HeaderMap, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/api2/json{path}", sim.base_url()))
        .header("authorization", TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
    let headers = resp.headers().clone();
    (status, reason, headers, resp.text().await.unwrap())
}

async fn json(sim: &SimHandle, path: &str) -> Value {
    let (status, _, _, body) = get(sim, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test]
async fn the_task_list_marks_active_tasks_running_and_counts_like_node_tasks() {
    let clock = ManualClock::new();
    let sim = start(&clock, Proxmox::new(["pve1"])).await;
    let done = sim.create_task(TaskSpec::new("qmstart", s(1)).with_attr("id", "100"));
    clock.advance(s(1));
    let failed = sim.create_task(
        TaskSpec::new("vzdump", s(1))
            .with_attr("id", "101")
            .with_failure("E", "job errors"),
    );
    clock.advance(s(1));
    let running = sim.create_task(TaskSpec::new("qmigrate", s(600)).with_attr("id", "102"));
    let token = sim.create_task(
        TaskSpec::new("vzdump", s(600))
            .with_attr("id", "103")
            .with_attr("user", "root@pam!ci"),
    );
    clock.advance(s(2));

    // source=all: the active file first, in its order, then the archive
    // newest first (PVE/API2/Tasks.pm node_tasks).
    let all = json(&sim, "/nodes/pve1/tasks?source=all").await;
    let upids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["upid"].as_str().unwrap())
        .collect();
    assert_eq!(
        upids,
        [
            running.as_str(),
            token.as_str(),
            failed.as_str(),
            done.as_str()
        ]
    );
    assert_eq!(all["total"], 4);
    let first = &all["data"][0];
    assert_eq!(
        (first["status"].as_str(), first["saved"].as_str()),
        (Some("RUNNING"), Some("0"))
    );
    assert!(first.get("endtime").is_none());
    let tok = &all["data"][1];
    assert_eq!(
        (tok["user"].as_str(), tok["tokenid"].as_str()),
        (Some("root@pam"), Some("ci"))
    );
    assert_eq!(all["data"][2]["status"], "job errors");
    assert!(all["data"][2]["endtime"].is_i64());

    // The default source is the archive only.
    assert_eq!(
        json(&sim, "/nodes/pve1/tasks").await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // `limit=0` lists nothing but still counts.
    let none = json(&sim, "/nodes/pve1/tasks?source=all&limit=0").await;
    assert_eq!(
        (none["data"].as_array().unwrap().len(), &none["total"]),
        (0, &Value::from(4))
    );
    // `start` skips counted matches.
    let page = json(&sim, "/nodes/pve1/tasks?source=all&start=1&limit=2").await;
    assert_eq!(page["data"][0]["upid"], token.as_str());
    // Filters: statusfilter sees running tasks as "unknown" (status unset
    // when filtered); errors=1 drops only "ok".
    let ok = json(&sim, "/nodes/pve1/tasks?source=all&statusfilter=ok").await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 1);
    let errors = json(&sim, "/nodes/pve1/tasks?source=all&errors=1").await;
    assert_eq!(
        errors["data"].as_array().unwrap().len(),
        3,
        "failed + 2 running"
    );
    let user = json(&sim, "/nodes/pve1/tasks?source=all&userfilter=ROOT@").await;
    assert_eq!(
        user["data"].as_array().unwrap().len(),
        4,
        "case-insensitive substring"
    );
    let vmid = json(&sim, "/nodes/pve1/tasks?source=all&vmid=102").await;
    assert_eq!(vmid["data"][0]["upid"], running.as_str());
    // Nothing matching: no total at all (Formatter/Standard.pm).
    let empty = json(&sim, "/nodes/pve1/tasks?typefilter=nothing").await;
    assert!(empty.get("total").is_none(), "{empty}");
}

#[tokio::test]
async fn a_task_not_yet_archived_is_still_running_in_the_list_but_stopped_in_status() {
    let clock = ManualClock::new();
    let sim = start(&clock, Proxmox::new(["pve1"]).with_archive_lag(s(10))).await;
    let upid = sim
        .create_task(TaskSpec::new("vzdump", s(5)).with_outcome(SimOutcome::Warnings { count: 1 }));
    clock.advance(s(6));
    let status = json(&sim, &format!("/nodes/pve1/tasks/{upid}/status")).await;
    assert_eq!(
        (
            status["data"]["status"].as_str(),
            status["data"]["exitstatus"].as_str()
        ),
        (Some("stopped"), Some("WARNINGS: 1"))
    );
    let listed = json(&sim, "/nodes/pve1/tasks?source=all").await;
    assert_eq!(listed["data"][0]["status"], "RUNNING");
    clock.advance(s(10));
    let listed = json(&sim, "/nodes/pve1/tasks?source=all").await;
    assert_eq!(listed["data"][0]["status"], "WARNINGS: 1");
}

#[tokio::test]
async fn logs_follow_dump_logfile() {
    let clock = ManualClock::new();
    let sim = start(&clock, Proxmox::new(["pve1"])).await;
    let lines: Vec<String> = (1..=5).map(|i| format!("INFO: {i}")).collect();
    let upid = sim.create_task(TaskSpec::new("vzdump", s(1)).with_log(lines));
    clock.advance(s(2));
    let rest = json(
        &sim,
        &format!("/nodes/pve1/tasks/{upid}/log?start=3&limit=0"),
    )
    .await;
    let texts: Vec<&str> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["t"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["INFO: 4", "INFO: 5", "TASK OK"],
        "limit=0 reads to the end"
    );
    assert_eq!(rest["total"], 6);
    let unknown = "UPID:pve1:00000001:00000001:00000001:vzdump:1:root@pam:";
    let missing = json(&sim, &format!("/nodes/pve1/tasks/{unknown}/log")).await;
    assert_eq!(
        missing["data"][0]["t"],
        "unable to open file - No such file or directory"
    );
    let (status, reason, _, body) = get(&sim, &format!("/nodes/pve1/tasks/{unknown}/status")).await;
    assert_eq!(
        (status, reason.as_deref()),
        (400, Some("Parameter verification failed."))
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"]["upid"], "no such task");
    assert_eq!(body["message"], "Parameter verification failed.\n");
}

#[tokio::test]
async fn errors_are_answered_as_pveproxy_does() {
    let clock = ManualClock::new();
    let sim = start(&clock, Proxmox::new(["pve1"])).await;
    // A bad token: 401, the reason phrase, no body, the connection closed.
    let resp = reqwest::Client::new()
        .get(format!("{}/api2/json/nodes", sim.base_url()))
        .header("authorization", "PVEAPIToken=root@pam!ci=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| r.as_bytes().to_vec());
    assert_eq!(reason.as_deref(), Some(&b"Authentication failed!"[..]));
    assert_eq!(resp.headers().get("connection").unwrap(), "close");
    assert!(resp.text().await.unwrap().is_empty());
    let resp = reqwest::get(format!("{}/api2/json/nodes", sim.base_url()))
        .await
        .unwrap();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| r.as_bytes().to_vec());
    assert_eq!(reason.as_deref(), Some(&b"No ticket"[..]));

    // Parameter verification: every bad parameter is named.
    let (status, _, headers, body) =
        get(&sim, "/nodes/pve1/tasks?limit=-1&errors=true&color=blue").await;
    assert_eq!(status, 400);
    assert_eq!(headers.get("connection").unwrap(), "close");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["errors"]["limit"],
        "value must have a minimum value of 0"
    );
    assert_eq!(
        body["errors"]["errors"],
        "type check ('boolean') failed - got 'true'"
    );
    assert!(body["errors"]["color"]
        .as_str()
        .unwrap()
        .starts_with("property is not defined"));
    let (status, _, _, body) = get(&sim, "/nodes/pve1/tasks/UPID:nonsense/status").await;
    assert_eq!(status, 400);
    assert!(body.contains("unable to parse worker upid"), "{body}");
    let (status, _, _, body) = get(&sim, "/nodes/pve1/nothing-here").await;
    assert_eq!(status, 501);
    assert!(
        body.contains("Method 'GET /nodes/pve1/nothing-here' not implemented"),
        "{body}"
    );
}

#[tokio::test]
async fn stopping_a_task_writes_received_interrupt() {
    let clock = ManualClock::new();
    let sim = start(&clock, Proxmox::new(["pve1"])).await;
    let upid = sim.create_task(TaskSpec::new("qmigrate", s(600)));
    clock.advance(s(1));
    let resp = reqwest::Client::new()
        .delete(format!(
            "{}/api2/json/nodes/pve1/tasks/{upid}",
            sim.base_url()
        ))
        .header("authorization", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["data"], Value::Null);
    let status = json(&sim, &format!("/nodes/pve1/tasks/{upid}/status")).await;
    assert_eq!(status["data"]["exitstatus"], "received interrupt");
    let log = json(&sim, &format!("/nodes/pve1/tasks/{upid}/log?limit=0")).await;
    let last = log["data"].as_array().unwrap().last().unwrap()["t"].clone();
    assert_eq!(last, "TASK ERROR: received interrupt");
}
