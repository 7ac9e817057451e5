//! The task-store seam: every vendor's tasks are visible through
//! `SimHandle::tasks` and `GET /_sim/tasks`, OCP's DAGs included, and a
//! vendor that keeps its own tasks keeps its own clock.

use std::time::Duration;

use serde_json::Value;
use tasktrack_core::ManualClock;
use tasktrack_sim::generic::Generic;
use tasktrack_sim::ocp::{Ocp, OcpSubtaskSpec, OcpTaskSpec};
use tasktrack_sim::{SimBuilder, SimClock, SimState, TaskSpec};

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

async fn control_list(base: &str) -> Vec<Value> {
    let body: Value = reqwest::get(format!("{base}/_sim/tasks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn ocp_dag_tasks_are_listed_and_move_on_the_vendors_clock() {
    let clock = ManualClock::new();
    let ocp = Ocp::new("admin", "pw").with_clock(SimClock::manual(clock.clone()));
    let sim = SimBuilder::new(ocp.clone()).start().await.unwrap();
    let id = ocp.create(OcpTaskSpec::new(
        "Upgrade",
        vec![
            OcpSubtaskSpec::new("Prepare", s(2), &[]),
            OcpSubtaskSpec::new("Install", s(3), &[0]).with_fail_runs(1),
        ],
    ));
    // The handle's clock is the one the vendor was made with.
    assert!(sim.clock().advance(s(1)));
    let view = sim.tasks().view(&id.to_string()).expect("the DAG task");
    assert_eq!(view.state, SimState::Running);
    assert_eq!(view.steps.len(), 2);
    assert_eq!(view.steps[0].state, SimState::Running);

    clock.advance(s(10));
    let listed = control_list(&sim.base_url()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.to_string());
    assert_eq!(listed[0]["state"], "failed");
    assert_eq!(listed[0]["steps"][1]["state"], "failed");
    assert!(sim.engine().is_empty(), "OCP's tasks are not the engine's");

    assert!(sim.tasks().remove(&id.to_string()));
    assert!(sim.tasks().is_empty());
    assert!(!sim.tasks().remove("not-a-number"));
}

#[tokio::test]
async fn scripted_vendors_list_their_engine_tasks_through_the_same_seam() {
    let sim = SimBuilder::new(Generic::new("t")).start().await.unwrap();
    let id = sim.create_task(TaskSpec::new("backup", s(60)));
    assert_eq!(sim.tasks().len(), 1);
    assert_eq!(sim.tasks().view(&id).unwrap().state, SimState::Running);
    let listed = control_list(&sim.base_url()).await;
    assert_eq!(listed[0]["id"], id);
}

#[tokio::test]
async fn a_second_clock_for_a_vendor_with_its_own_is_refused_not_ignored() {
    let own = ManualClock::new();
    let ocp = Ocp::new("admin", "pw").with_clock(SimClock::manual(own.clone()));
    let err = SimBuilder::new(ocp.clone())
        .with_clock(SimClock::manual(ManualClock::new()))
        .start()
        .await
        .expect_err("two clocks");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("ocp"), "{err}");
    // The same clock given twice is fine.
    SimBuilder::new(ocp)
        .with_clock(SimClock::manual(own))
        .start()
        .await
        .expect("one clock");
}
