//! Every recorded reference episode in `tests/parity/` replays exactly (see
//! `tests/parity/FORMAT.md`): observations equal to the f32 cast of the recorded values,
//! rewards equal to the recorded f64 values, flags and post-step physical state equal.

use std::path::{Path, PathBuf};

use marl_envs::parity;

fn traces(prefix: &str) -> Vec<PathBuf> {
    traces_in("tests/parity", prefix)
}

fn traces_in(dir: &str, prefix: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/parity exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_mpe_trace_replays_exactly() {
    let files = traces("simple_");
    assert!(
        files.len() >= 10,
        "expected the recorded MPE traces, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let report = parity::check_file(f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.steps, 25, "{report}");
        if !report.passed() {
            failures.push(report.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Recorded by `scripts/make_mpe_traces.py` from mpe2 1.1.1 / numpy 2.4.6 on an AVX-512
/// machine: other N, tag team sizes, continuous actions for every scenario, and the tag episode
/// whose good agent leaves the arena where numpy's `exp` differs from libm's.
#[test]
fn generated_traces_replay_exactly() {
    let files = traces_in("tests/parity/generated", "simple_");
    assert!(
        files.len() >= 9,
        "expected the generated traces, found {}",
        files.len()
    );
    for f in &files {
        let report = parity::check_file(f).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.passed() && report.steps == 25, "{report}");
    }
}

#[test]
fn every_lbf_trace_replays_exactly() {
    let mut files = traces("lbf_");
    assert!(
        files.len() >= 6,
        "expected the recorded LBF traces, found {}",
        files.len()
    );
    files.extend(traces_in("tests/parity/generated", "lbf_"));
    let mut failures = Vec::new();
    for f in &files {
        let report = parity::check_file(f).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.steps > 0, "{report}");
        if !report.passed() {
            failures.push(report.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_changed_lbf_recording_is_caught() {
    let f = &traces("lbf_10x10-3p-3f_seed8")[0];
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("json");
    // Agent 1 would have stayed at step 4 instead of moving: its position must differ.
    v["steps"][3]["actions"][1] = serde_json::json!(0);
    let report = parity::check_str(&v.to_string(), "changed.json").expect("well-formed");
    let m = report.mismatch.expect("a changed action must be caught");
    assert_eq!(m.step, 4, "{m}");
}

#[test]
fn a_changed_recording_is_caught_and_located() {
    let f = &traces("simple_spread_v3_N3_discrete_seed0")[0];
    let text = std::fs::read_to_string(f).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    // Nudge one reward of step 7 by one ulp: exact comparison must see it.
    let r = &mut v["steps"][6]["rewards"][1];
    let x = r.as_f64().expect("reward");
    *r = serde_json::json!(f64::from_bits(x.to_bits() + 1));
    let report = parity::check_str(&v.to_string(), "nudged.json").expect("well-formed");
    let m = report.mismatch.expect("a one-ulp change must be caught");
    assert_eq!((m.step, m.field.as_str()), (7, "reward"));
    assert_eq!(m.agent.map(|a| a.0), Some(1));
}

#[test]
fn malformed_traces_name_the_file_and_the_problem() {
    let err = parity::check_str("{\"format\": \"marl-parity-v1\"}", "empty.json").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("empty.json:") && msg.contains("missing field"),
        "{msg}"
    );

    let err = parity::check_str("not json", "junk.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("junk.json") && err.contains("not valid JSON"),
        "{err}"
    );

    let err = parity::check_str("{\"format\": \"other-v9\"}", "x.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown trace format `other-v9`"), "{err}");

    let f = &traces("simple_tag")[0];
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("json");
    v["scenario"] = serde_json::json!("simple_tagg_v3");
    let err = parity::check_str(&v.to_string(), "tag.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tag.json") && err.contains("did you mean `mpe/simple_tag_v3`"),
        "{err}"
    );
}

/// Recorded by `scripts/make_rware_traces.py --ci` from rware 2.0.0 (numpy 2.4.6, networkx
/// 3.6.1, CPython 3.11.7): crowded layouts with ties decided by CPython's set order and by
/// networkx's node order, a rotation, double deliveries, every reward type and difficulty,
/// sensor ranges 1 to 3, the inactivity limit, a custom layout and resets without a seed.
#[test]
fn every_rware_trace_replays_exactly() {
    let files = traces("rware_");
    assert!(
        files.len() >= 20,
        "expected the recorded warehouse traces, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut steps = 0;
    for f in &files {
        let report = parity::check_file(f).unwrap_or_else(|e| panic!("{e}"));
        steps += report.steps;
        if !report.passed() {
            failures.push(report.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(steps >= 2500, "only {steps} steps replayed");
}

fn rware_trace(name: &str) -> serde_json::Value {
    let f = &traces(name)[0];
    serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("json")
}

#[test]
fn a_changed_rware_action_is_caught_at_its_step() {
    let mut v = rware_trace("rware_tiny-2ag_deliver_seed1");
    // Robot 0 turns instead of what it did at step 30: its direction or position must differ.
    let a = v["steps"][29]["actions"][0].as_i64().expect("action");
    v["steps"][29]["actions"][0] = serde_json::json!(if a == 2 { 3 } else { 2 });
    let report = parity::check_str(&v.to_string(), "changed.json").expect("well-formed");
    let m = report.mismatch.expect("a changed action must be caught");
    assert_eq!(m.step, 30, "{m}");
}

#[test]
fn a_changed_replacement_request_is_caught() {
    let mut v = rware_trace("rware_tiny-2ag_deliver_seed1");
    let steps = v["steps"].as_array().expect("steps").clone();
    // The first step whose request queue differs from the one before: a delivery.
    let k = (1..steps.len())
        .find(|&k| steps[k]["state"]["request_queue"] != steps[k - 1]["state"]["request_queue"])
        .expect("the scripted policy delivers");
    let queue = &mut v["steps"][k]["state"]["request_queue"];
    let first = queue[0].as_i64().expect("id");
    queue[0] = serde_json::json!(if first == 1 { 2 } else { 1 });
    let report = parity::check_str(&v.to_string(), "changed.json").expect("well-formed");
    let m = report.mismatch.expect("a changed request must be caught");
    assert_eq!((m.step, m.field.as_str()), (k + 1, "request_queue"), "{m}");
}

#[test]
fn a_trace_without_a_seed_starts_from_its_recorded_state() {
    let mut v = rware_trace("rware_tiny-4ag-hard_deliver_seed4");
    v["seed"] = serde_json::Value::Null;
    let report = parity::check_str(&v.to_string(), "unseeded.json").expect("well-formed");
    assert!(report.passed() && report.steps == 220, "{report}");
}

/// Recorded by `scripts/make_predator_prey_traces.py` from IC3Net's `predator_prey_env.py`
/// (numpy 1.26.4, CPython 3.11.7): the easy and medium settings in `mixed` mode (captures,
/// time limits, frozen predators, shared cells, moves off the grid), and `cooperative` and
/// `competitive` episodes.
#[test]
fn every_predator_prey_trace_replays_exactly() {
    let files = traces("predator_prey_");
    assert!(
        files.len() >= 9,
        "expected the recorded predator-prey traces, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut steps = 0;
    for f in &files {
        let report = parity::check_file(f).unwrap_or_else(|e| panic!("{e}"));
        steps += report.steps;
        if !report.passed() {
            failures.push(report.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(steps >= 200, "only {steps} steps replayed");
}

fn predator_prey_trace(name: &str) -> serde_json::Value {
    let f = &traces(name)[0];
    serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("json")
}

#[test]
fn a_changed_predator_prey_recording_is_caught_at_its_step() {
    let v = predator_prey_trace("predator_prey_10x10-5p_mixed_seed0");
    // Predator 2 stays at step 2 instead of what it did: its cell (or, on the grid's edge, the
    // step after) must differ.
    let mut changed = v.clone();
    let a = changed["steps"][1]["actions"][2].as_i64().expect("action");
    changed["steps"][1]["actions"][2] = serde_json::json!(if a == 4 { 0 } else { 4 });
    let report = parity::check_str(&changed.to_string(), "changed.json").expect("well-formed");
    let m = report.mismatch.expect("a changed action must be caught");
    assert_eq!(m.step, 2, "{m}");

    // The reference says the episode went on where marl ends it: caught as a flag.
    let mut changed = v.clone();
    let last = changed["steps"].as_array().expect("steps").len() - 1;
    changed["steps"][last]["episode_over"] = serde_json::json!(false);
    let report = parity::check_str(&changed.to_string(), "changed.json").expect("well-formed");
    let m = report.mismatch.expect("a changed flag must be caught");
    assert_eq!(
        (m.step, m.field.as_str()),
        (last + 1, "episode_over"),
        "{m}"
    );

    // A trace of several prey cannot be replayed: marl has one.
    let mut changed = v;
    changed["env_args"]["nenemies"] = serde_json::json!(2);
    let err = parity::check_str(&changed.to_string(), "prey.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("prey.json") && err.contains("nenemies"),
        "{err}"
    );
}
