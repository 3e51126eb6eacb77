//! The `marl` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn marl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marl"))
}

fn parity_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/tests/parity")
}

#[test]
fn envs_lists_every_registered_id() {
    let out = marl().arg("envs").output().expect("run marl");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in marl::envs::registry::ids() {
        assert!(text.contains(id), "`marl envs` misses {id}:\n{text}");
    }
    assert!(
        text.contains("3x adversary obs 16 act Discrete(5), 1x agent obs 14"),
        "{text}"
    );
}

#[test]
fn check_parity_passes_on_recordings_and_fails_on_a_changed_one() {
    let good = parity_dir().join("simple_spread_v3_N3_discrete_seed0.json");
    let out = marl()
        .args(["envs", "check-parity"])
        .arg(&good)
        .output()
        .expect("run marl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("PASS") && text.contains("1 passed, 0 failed"),
        "{text}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&good).expect("read")).expect("json");
    let x = v["steps"][11]["obs"][2][5].as_f64().expect("obs value");
    v["steps"][11]["obs"][2][5] = serde_json::json!(x + 1e-3);
    let bad = dir.path().join("changed.json");
    std::fs::write(&bad, v.to_string()).expect("write");
    let out = marl()
        .args(["envs", "check-parity"])
        .arg(&good)
        .arg(&bad)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL") && text.contains("step 12, agent 2 (agent_2), obs[5]"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
}

#[test]
fn check_parity_names_a_malformed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{\"format\": \"marl-parity-v1\", \"scenario\": 3}").expect("write");
    let out = marl()
        .args(["envs", "check-parity"])
        .arg(&bad)
        .output()
        .expect("run marl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("broken.json") && text.contains("malformed marl-parity-v1"),
        "{text}"
    );
}

#[test]
fn check_parity_replays_a_warehouse_episode_and_names_a_bad_task_id() {
    let trace = parity_dir().join("rware_tiny-2ag_deliver_seed1.json");
    let out = marl()
        .args(["envs", "check-parity"])
        .arg(&trace)
        .output()
        .expect("run marl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("as rware-tiny-2ag-v2, 500 steps") && text.contains("1 passed"),
        "{text}"
    );

    let out = marl()
        .args(["envs", "render", "rware-huge-2ag-v2"])
        .output()
        .expect("run marl");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text.contains("`huge`") && text.contains("tiny, small, medium, large"),
        "{text}"
    );
}
