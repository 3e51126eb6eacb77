//! Replays `marl-parity-predator-prey-v1` traces (IC3Net's predator-prey;
//! `tests/parity/FORMAT_PREDATOR_PREY.md`).
//!
//! `ic3net/predator_prey_v0` is built from the trace's reference arguments, loaded with the
//! recorded start cells (the reference draws them from numpy's legacy global generator, which
//! marl does not emulate), and stepped with the recorded actions. After every step the
//! observations, the `f64` rewards, every predator's cell and the metric `success` (where the
//! reference keeps it) must equal the recording, and marl's flags must be the reference's episode
//! mapped as marl maps it: in `mixed` mode a predator is terminated once the reference marks it
//! as having reached the prey, and the reference's `episode_over` is every predator terminated;
//! a predator not terminated at the trainer's time limit is truncated.

use serde::Deserialize;
use serde_json::Value;

use super::{agent_of, compare_each, compare_obs, encode_indices, replay_steps, ParityReport};
use super::{json_to_toml, Mismatch};
use crate::api::{MultiAgentEnv, WorldState};
use crate::grid::predator_prey::{PredatorPreyEnv, PredatorPreyParams, PREDATOR_PREY_ID};
use crate::params::parse_params;

#[derive(Deserialize)]
pub(super) struct Trace {
    env_args: serde_json::Map<String, Value>,
    max_steps: usize,
    initial_state: Start,
    initial_obs: Vec<Vec<f64>>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Start {
    predator_loc: Vec<[usize; 2]>,
    prey_loc: Vec<[usize; 2]>,
}

#[derive(Deserialize)]
struct Step {
    t: usize,
    actions: Vec<i64>,
    obs: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    episode_over: bool,
    time_limit: bool,
    reached_prey: Vec<u8>,
    success: Option<f64>,
    predator_loc: Vec<[usize; 2]>,
}

/// The env's parameters from the reference's arguments: the ones marl offers under the
/// reference's names, `nfriendly` as `npredator`; the ones it fixes must hold their only value.
fn params(trace: &Trace) -> Result<PredatorPreyParams, String> {
    let args = &trace.env_args;
    let fixed = [
        ("nenemies", Value::from(1)),
        ("moving_prey", Value::from(false)),
        ("enemy_comm", Value::from(false)),
    ];
    for (key, only) in &fixed {
        if let Some(v) = args.get(*key).filter(|v| *v != only) {
            return Err(format!(
                "env_args.{key} is {v}: marl's predator-prey only has {key} = {only}"
            ));
        }
    }
    let mut table = json_to_toml(
        args,
        &["nenemies", "moving_prey", "enemy_comm", "nfriendly"],
    )?;
    let n = args
        .get("nfriendly")
        .cloned()
        .ok_or("env_args has no `nfriendly`")?;
    table.insert(
        "npredator".into(),
        toml::Value::deserialize(n).map_err(|e| format!("env_args.nfriendly: {e}"))?,
    );
    table.insert(
        "max_steps".into(),
        toml::Value::from(trace.max_steps as i64),
    );
    parse_params(PREDATOR_PREY_ID, &table).map_err(|e| e.to_string())
}

fn cells(cells: &[[usize; 2]]) -> Vec<f64> {
    cells
        .iter()
        .flat_map(|c| [c[0] as f64, c[1] as f64])
        .collect()
}

/// Each predator's cell against the recording.
fn compare_cells(t: usize, env: &PredatorPreyEnv, recorded: &[[usize; 2]]) -> Option<Mismatch> {
    let got: Vec<[usize; 2]> = env.predators().iter().map(|&(r, c)| [r, c]).collect();
    let i = recorded.iter().zip(&got).position(|(e, g)| e != g)?;
    Some(Mismatch {
        step: t,
        agent: Some((i, env.spec().agents[i].name.clone())),
        field: "predator_loc".into(),
        index: 0,
        expected: format!("{:?}", recorded[i]),
        got: format!("{:?}", got[i]),
    })
}

pub(super) fn replay(trace: &Trace, file: &str) -> Result<ParityReport, String> {
    let p = params(trace)?;
    let mut env = PredatorPreyEnv::new(PREDATOR_PREY_ID, &p).map_err(|e| e.to_string())?;
    let spec = env.spec().clone();
    let n = spec.num_agents();
    let mut report = ParityReport::new(file, format!("{PREDATOR_PREY_ID} {p:?}"));
    let start = &trace.initial_state;
    if start.predator_loc.len() != n || start.prey_loc.len() != 1 {
        return Err(format!(
            "initial_state has {} predators and {} prey, expected {n} and 1",
            start.predator_loc.len(),
            start.prey_loc.len()
        ));
    }
    let mut ws = WorldState::default();
    ws.insert("predator_pos", cells(&start.predator_loc));
    ws.insert("prey_pos", cells(&start.prey_loc));
    let mut obs = vec![0.0f32; spec.obs_len()];
    env.reset(Some(0), &mut obs);
    env.set_state(&ws)
        .map_err(|e| format!("initial_state: {e}"))?;
    env.observe(&mut obs);
    if let Some(m) = compare_obs(0, &spec, &obs, &trace.initial_obs)? {
        report.mismatch = Some(m);
        return Ok(report);
    }
    let mixed = p.mode == crate::grid::predator_prey::Mode::Mixed;
    let agent = agent_of(&spec);
    let mut success = [0.0f64; 2];
    replay_steps(
        &mut env,
        &trace.steps,
        &mut report,
        |s| s.t,
        |s, actions| encode_indices(&s.actions, n, "predators", actions),
        |t, step, env, out| {
            if step.reached_prey.len() != n {
                return Err(format!(
                    "step {t}: reached_prey has {} values",
                    step.reached_prey.len()
                ));
            }
            let terminated: Vec<bool> =
                step.reached_prey.iter().map(|&r| mixed && r == 1).collect();
            let truncated: Vec<bool> = terminated
                .iter()
                .map(|&te| step.time_limit && !te)
                .collect();
            env.metrics(&mut success);
            let first = compare_obs(t, &spec, &out.obs, &step.obs)?
                .or_else(|| compare_each(t, "reward", &step.rewards, &out.rewards, &agent))
                .or_else(|| compare_cells(t, env, &step.predator_loc))
                .or_else(|| compare_each(t, "terminated", &terminated, &out.terminated, &agent))
                .or_else(|| compare_each(t, "truncated", &truncated, &out.truncated, &agent))
                .or_else(|| {
                    let all = out.terminated.iter().all(|&x| x);
                    compare_each(t, "episode_over", &[step.episode_over], &[all], &|_| None)
                })
                .or_else(|| {
                    let recorded = step.success?;
                    compare_each(t, "success", &[recorded], &success[..1], &|_| None)
                });
            Ok(first)
        },
    )?;
    Ok(report)
}
