//! Replays `marl-parity-rware-v1` traces (rware 2.0.0; `tests/parity/FORMAT_RWARE.md`).
//!
//! The warehouse is built from the trace's keyword arguments (and, where the trace names a
//! registered id, marl's reading of that id must give the same parameters), reset with the
//! trace's seed (after its warm-up steps and a reset without a seed, if any), and must then hold
//! the recorded state, generator included. Every recorded joint action is applied, and after
//! every step the observations (`f32` cast of the recorded values), the `f64` rewards, rware's
//! `done` against marl's `terminated || truncated`, every robot's position, direction, carried
//! shelf and two-stage flag, the shelves away from home, the request queue and (where recorded)
//! numpy's generator state must equal the recording. A trace without a seed starts from its
//! recorded state instead.

use serde::Deserialize;
use serde_json::Value;

use super::{
    agent_of, compare_each, compare_obs, encode_indices, ended_each, json_to_toml, replay_steps,
    Mismatch, ParityReport,
};
use crate::api::{MultiAgentEnv, StepBuffers, WorldState};
use crate::grid::warehouse::{task_params, WarehouseEnv, WarehouseParams, RWARE_ID};
use crate::numpy_random::NumpyRngState;
use crate::params::parse_params;

#[derive(Deserialize)]
pub(super) struct Trace {
    #[serde(default)]
    env_id: Option<String>,
    env_kwargs: serde_json::Map<String, Value>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    warmup_actions: Vec<Vec<i64>>,
    initial_state: State,
    initial_obs: Vec<Vec<f64>>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct State {
    /// `[x, y, direction, carried shelf id (0: none), has_delivered]` per robot.
    agents: Vec<[usize; 5]>,
    /// `[id, x, y]` of every shelf not on its home cell.
    displaced_shelves: Vec<[usize; 3]>,
    request_queue: Vec<usize>,
    #[serde(default)]
    rng: Option<Rng>,
}

#[derive(Deserialize)]
struct Rng {
    state: String,
    #[serde(default)]
    inc: Option<String>,
    has_uint32: u8,
    uinteger: u32,
}

#[derive(Deserialize)]
struct Step {
    t: usize,
    actions: Vec<i64>,
    obs: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    done: bool,
    state: State,
}

fn hex128(s: &str) -> Result<u128, String> {
    u128::from_str_radix(s, 16).map_err(|e| format!("`{s}` is not a 128-bit hex number: {e}"))
}

fn params(trace: &Trace) -> Result<WarehouseParams, String> {
    let table = json_to_toml(&trace.env_kwargs, &[])?;
    let p: WarehouseParams = parse_params(RWARE_ID, &table).map_err(|e| e.to_string())?;
    if let Some(id) = &trace.env_id {
        let from_id = task_params(id)
            .ok_or_else(|| format!("env_id `{id}` is not an rware id"))?
            .map_err(|e| e.to_string())?;
        if from_id != p {
            return Err(format!(
                "marl reads `{id}` as {from_id:?}, the trace's kwargs are {p:?}"
            ));
        }
    }
    Ok(p)
}

/// The recorded state as marl's world-state fields.
fn world_state(s: &State, env: &WarehouseEnv) -> Result<WorldState, String> {
    let w = &env.world;
    let mut shelves: Vec<f64> = w
        .layout
        .shelf_home
        .iter()
        .flat_map(|&(x, y)| [x as f64, y as f64])
        .collect();
    for &[id, x, y] in &s.displaced_shelves {
        let slot = id
            .checked_sub(1)
            .and_then(|k| shelves.get_mut(2 * k..2 * k + 2))
            .ok_or_else(|| format!("displaced shelf id {id} is not a shelf of this floor"))?;
        slot.copy_from_slice(&[x as f64, y as f64]);
    }
    let col = |k: usize| s.agents.iter().map(|a| a[k] as f64).collect::<Vec<_>>();
    let mut ws = WorldState::default();
    ws.insert(
        "agent_pos",
        s.agents
            .iter()
            .flat_map(|a| [a[0] as f64, a[1] as f64])
            .collect(),
    );
    ws.insert("agent_dir", col(2));
    ws.insert("agent_carrying", col(3));
    ws.insert("agent_has_delivered", col(4));
    ws.insert("shelf_pos", shelves);
    ws.insert(
        "request_queue",
        s.request_queue.iter().map(|&q| q as f64).collect(),
    );
    Ok(ws)
}

/// The first difference between the env's state and a recorded one (an error for a recorded
/// state that cannot describe this floor).
fn compare_state(
    t: usize,
    env: &WarehouseEnv,
    s: &State,
    check_inc: bool,
) -> Result<Option<Mismatch>, String> {
    let spec = env.spec();
    let mine = env.get_state();
    let theirs = world_state(s, env).map_err(|e| format!("step {t}: {e}"))?;
    let names = [
        ("agent_pos", 2),
        ("agent_dir", 1),
        ("agent_carrying", 1),
        ("agent_has_delivered", 1),
        ("shelf_pos", 0),
        ("request_queue", 0),
    ];
    for (key, per_agent) in names {
        let (a, b) = (&theirs.fields[key], &mine.fields[key]);
        let at = |index: usize, expected: String, got: String| Mismatch {
            step: t,
            agent: (per_agent > 0 && a.len() == b.len()).then(|| {
                let i = index / per_agent;
                (i, spec.agents[i].name.clone())
            }),
            field: key.into(),
            index,
            expected,
            got,
        };
        if a.len() != b.len() {
            let (e, g) = (format!("{} values", a.len()), format!("{} values", b.len()));
            return Ok(Some(at(0, e, g)));
        }
        if let Some(j) = a.iter().zip(b).position(|(x, y)| x != y) {
            return Ok(Some(at(j, a[j].to_string(), b[j].to_string())));
        }
    }
    let Some(rng) = s.rng.as_ref() else {
        return Ok(None);
    };
    let got = env.rng_state();
    let inc = match (check_inc, rng.inc.as_deref()) {
        (true, Some(i)) => Some(hex128(i)?),
        _ => None,
    };
    let expected = (hex128(&rng.state)?, rng.has_uint32 != 0, rng.uinteger, inc);
    let mine = (
        got.state,
        got.has_uint32,
        got.uinteger,
        inc.map(|_| got.inc),
    );
    Ok((expected != mine).then(|| Mismatch {
        step: t,
        agent: None,
        field: "rng".into(),
        index: 0,
        expected: format!("{expected:x?}"),
        got: format!("{mine:x?}"),
    }))
}

pub(super) fn replay(trace: &Trace, file: &str) -> Result<ParityReport, String> {
    let p = params(trace)?;
    let mut env = WarehouseEnv::new(RWARE_ID, &p).map_err(|e| e.to_string())?;
    let spec = env.spec().clone();
    let n = spec.num_agents();
    let env_id = match &trace.env_id {
        Some(id) => format!("{RWARE_ID} as {id}"),
        None => RWARE_ID.to_string(),
    };
    let mut report = ParityReport::new(file, env_id);
    let mut out = StepBuffers::new(&spec);

    match trace.seed {
        Some(seed) => {
            env.reset(Some(seed), &mut out.obs);
            let mut actions = vec![0.0f32; spec.action_len()];
            for (k, a) in trace.warmup_actions.iter().enumerate() {
                encode_indices(a, n, "robots", &mut actions)
                    .map_err(|e| format!("warmup_actions[{k}]: {e}"))?;
                out.step(&mut env, &actions)
                    .map_err(|e| format!("warmup_actions[{k}]: {e}"))?;
            }
            if !trace.warmup_actions.is_empty() {
                env.reset(None, &mut out.obs);
            }
        }
        None => {
            let init = &trace.initial_state;
            env.set_state(&world_state(init, &env)?)
                .map_err(|e| format!("initial_state: {e}"))?;
            let rng = init
                .rng
                .as_ref()
                .ok_or("a trace without a seed needs initial_state.rng")?;
            let inc = rng
                .inc
                .as_deref()
                .ok_or("a trace without a seed needs initial_state.rng.inc")?;
            env.set_rng_state(NumpyRngState {
                state: hex128(&rng.state)?,
                inc: hex128(inc)?,
                has_uint32: rng.has_uint32 != 0,
                uinteger: rng.uinteger,
            });
            env.observe(&mut out.obs);
        }
    }
    let first = match compare_state(0, &env, &trace.initial_state, true)? {
        Some(m) => Some(m),
        None => compare_obs(0, &spec, &out.obs, &trace.initial_obs)?,
    };
    if first.is_some() {
        report.mismatch = first;
        return Ok(report);
    }

    let agent = agent_of(&spec);
    replay_steps(
        &mut env,
        &trace.steps,
        &mut report,
        |s| s.t,
        |s, actions| encode_indices(&s.actions, n, "robots", actions),
        |t, step, env, out| {
            Ok(compare_obs(t, &spec, &out.obs, &step.obs)?
                .or_else(|| compare_each(t, "reward", &step.rewards, &out.rewards, &agent))
                .or_else(|| compare_each(t, "done", &vec![step.done; n], &ended_each(out), &agent))
                // `or`, not `or_else`: a recorded state that cannot describe this floor is an
                // error even where an earlier field already differs.
                .or(compare_state(t, env, &step.state, false)?))
        },
    )?;
    Ok(report)
}
