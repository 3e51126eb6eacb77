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

/// Runs `script` under `sh` in a private mount namespace (so a mount there is gone when it
/// ends); `None` where mounting a tmpfs is not permitted (no root, no `unshare`).
fn in_mount_namespace(script: &str, args: &[&Path]) -> Option<std::process::Output> {
    let probe = tempfile::tempdir().ok()?;
    let can_mount = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$0\""])
        .arg(probe.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_mount {
        return None;
    }
    Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .args(args)
        .output()
        .ok()
}

#[test]
fn a_full_disk_stops_training_on_one_line_that_names_the_path_and_the_latest_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mnt, kept) = (tmp.path().join("mnt"), tmp.path().join("kept"));
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let marl_bin = PathBuf::from(env!("CARGO_BIN_EXE_marl"));
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml");
    // A tmpfs with room for the config, the metrics and two of smoke's checkpoints (about
    // 190 kB each) but not three: the third checkpoint finds the disk full. The run is copied
    // out before the namespace (and the tmpfs) goes away.
    let script = r#"mount -t tmpfs -o size=480k tmpfs "$0" || exit 90
"$1" train "$2" --run-dir "$0/run" --no-progress -q > /dev/null 2> "$0.stderr"
code=$?
cp -r "$0/run" "$3"
exit $code"#;
    let Some(out) = in_mount_namespace(script, &[&mnt, &marl_bin, &smoke, &kept]) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root and unshare)");
        return;
    };
    let stderr = std::fs::read_to_string(tmp.path().join("mnt.stderr")).expect("stderr");
    assert_eq!(out.status.code(), Some(2), "{stderr}{out:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    let line = lines[0];
    let run = mnt.join("run").display().to_string();
    assert!(
        line.starts_with(&format!("error: writing checkpoint {run}/checkpoints/")),
        "{line}"
    );
    assert_eq!(line.matches("No space left on device").count(), 1, "{line}");
    let latest = line
        .split("the latest good checkpoint is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no latest good checkpoint in: {line}"));
    // That checkpoint is the run's `latest`, and it still loads.
    let copied = kept.join(
        latest
            .strip_prefix(&format!("{run}/"))
            .expect("under the run"),
    );
    assert_eq!(
        marl::run::checkpoint::resolve(&kept).expect("latest"),
        copied,
        "{line}"
    );
    marl::run::checkpoint::load(&copied).expect("the latest good checkpoint loads");
    let eval = marl()
        .args(["eval", "--episodes", "2"])
        .arg(&kept)
        .output()
        .expect("run marl eval");
    assert!(eval.status.success(), "{eval:?}");
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
