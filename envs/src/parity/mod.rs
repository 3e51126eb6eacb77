//! Replays episodes recorded from the Python reference environments and reports the first
//! difference.
//!
//! Format `marl-parity-v1` (mpe2 particle worlds; `envs/tests/parity/FORMAT.md`): the recorded
//! initial world state is loaded with [`MultiAgentEnv::set_state`], the recorded joint actions
//! are applied, and after every step the observations must equal the `f32` cast of the recorded
//! `f64` values, the rewards the recorded `f64` values, the termination and truncation flags the
//! recorded ones, and the agents' post-step physical state the recorded `f64` state. Equal, not
//! within a tolerance. Nothing depends on particular files: any recording of the reference in
//! this format must pass.
//!
//! Format `marl-parity-lbf-v1` (lbforaging 2.0.0; `envs/tests/parity/FORMAT_LBF.md`): the
//! recorded field, agents and reward normaliser are loaded, the recorded actions applied, and
//! after every step the observations, the rewards (`f64`), the episode flag (the reference's
//! `terminated` against marl's `terminated || truncated`: the reference reports the step limit
//! as a termination), the agents' positions and their valid actions must equal the recording.
//!
//! Format `marl-parity-rware-v1` (rware 2.0.0; `envs/tests/parity/FORMAT_RWARE.md`): see [`rware`].
//!
//! Format `marl-parity-predator-prey-v1` (IC3Net's predator-prey;
//! `envs/tests/parity/FORMAT_PREDATOR_PREY.md`): see [`predator_prey`].

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::api::{EnvSpec, MultiAgentEnv, StepBuffers, WorldState};
use crate::registry;

pub mod predator_prey;
pub mod rware;

/// A trace that cannot be read or does not describe an environment marl has.
#[derive(Debug, Error)]
#[error("{file}: {message}")]
pub struct TraceError {
    /// The trace file.
    pub file: String,
    /// What is wrong with it.
    pub message: String,
}

/// The first place where a replay differs from the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Step `t` of the recording (0: the observation right after reset).
    pub step: usize,
    /// The agent's index and name, where the value belongs to one agent.
    pub agent: Option<(usize, String)>,
    /// What differs (`obs`, `reward`, `terminated`, `truncated`, `p_pos`, `p_vel`, `c`).
    pub field: String,
    /// Index within the field.
    pub index: usize,
    /// The recorded value.
    pub expected: String,
    /// marl's value.
    pub got: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}", self.step)?;
        if let Some((i, name)) = &self.agent {
            write!(f, ", agent {i} ({name})")?;
        }
        write!(
            f,
            ", {}[{}]: expected {}, got {}",
            self.field, self.index, self.expected, self.got
        )
    }
}

/// The outcome of replaying one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityReport {
    /// The trace file.
    pub file: String,
    /// The environment id the trace was replayed on.
    pub env_id: String,
    /// Steps replayed and compared.
    pub steps: usize,
    /// The first difference, if any.
    pub mismatch: Option<Mismatch>,
}

impl ParityReport {
    /// A report of no steps yet on `env_id` for the trace `file`.
    fn new(file: &str, env_id: String) -> Self {
        Self {
            file: file.to_string(),
            env_id,
            steps: 0,
            mismatch: None,
        }
    }

    /// Whether the replay matched the recording exactly.
    pub fn passed(&self) -> bool {
        self.mismatch.is_none()
    }
}

impl fmt::Display for ParityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mismatch {
            None => write!(
                f,
                "PASS {} ({}, {} steps)",
                self.file, self.env_id, self.steps
            ),
            Some(m) => write!(f, "FAIL {} ({}): {m}", self.file, self.env_id),
        }
    }
}

/// Replays the trace in `path`.
pub fn check_file(path: &Path) -> Result<ParityReport, TraceError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TraceError {
        file: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    check_str(&text, &file)
}

/// Replays a trace given as JSON text; `file` names it in reports and errors.
pub fn check_str(text: &str, file: &str) -> Result<ParityReport, TraceError> {
    let fail = |message: String| TraceError {
        file: file.to_string(),
        message,
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    let format = value
        .get("format")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("no `format` field: not a marl parity trace".into()))?;
    match format {
        "marl-parity-v1" => {
            let trace: MpeTrace = serde_json::from_value(value)
                .map_err(|e| fail(format!("malformed marl-parity-v1 trace: {e}")))?;
            replay_mpe(&trace, file).map_err(fail)
        }
        "marl-parity-lbf-v1" => {
            let trace: LbfTrace = serde_json::from_value(value)
                .map_err(|e| fail(format!("malformed marl-parity-lbf-v1 trace: {e}")))?;
            replay_lbf(&trace, file).map_err(fail)
        }
        "marl-parity-rware-v1" => {
            let trace: rware::Trace = serde_json::from_value(value)
                .map_err(|e| fail(format!("malformed marl-parity-rware-v1 trace: {e}")))?;
            rware::replay(&trace, file).map_err(fail)
        }
        "marl-parity-predator-prey-v1" => {
            let trace: predator_prey::Trace = serde_json::from_value(value)
                .map_err(|e| fail(format!("malformed marl-parity-predator-prey-v1 trace: {e}")))?;
            predator_prey::replay(&trace, file).map_err(fail)
        }
        other => Err(fail(format!(
            "unknown trace format `{other}` (known: marl-parity-v1, marl-parity-lbf-v1, \
             marl-parity-rware-v1, marl-parity-predator-prey-v1)"
        ))),
    }
}

#[derive(Deserialize)]
struct MpeTrace {
    scenario: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    env_kwargs: serde_json::Map<String, Value>,
    agents: Vec<String>,
    #[serde(default)]
    scenario_extra: serde_json::Map<String, Value>,
    obs_dims: Vec<usize>,
    initial_state: MpeState,
    initial_obs: Vec<Vec<f64>>,
    steps: Vec<MpeStep>,
}

#[derive(Deserialize)]
struct MpeState {
    agents: Vec<EntityState>,
    landmarks: Vec<EntityState>,
}

#[derive(Deserialize)]
struct EntityState {
    p_pos: [f64; 2],
    p_vel: [f64; 2],
    #[serde(default)]
    c: Vec<f64>,
}

#[derive(Deserialize)]
struct MpeStep {
    t: usize,
    actions: Vec<Value>,
    obs: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    terminations: Vec<bool>,
    truncations: Vec<bool>,
    state: Vec<EntityState>,
}

fn world_state(trace: &MpeTrace) -> Result<WorldState, String> {
    let s = &trace.initial_state;
    let mut ws = WorldState::default();
    let flat = |f: &dyn Fn(&EntityState) -> Vec<f64>, es: &[EntityState]| -> Vec<f64> {
        es.iter().flat_map(f).collect()
    };
    ws.insert("agent_pos", flat(&|e| e.p_pos.to_vec(), &s.agents));
    ws.insert("agent_vel", flat(&|e| e.p_vel.to_vec(), &s.agents));
    ws.insert("agent_c", flat(&|e| e.c.clone(), &s.agents));
    ws.insert("landmark_pos", flat(&|e| e.p_pos.to_vec(), &s.landmarks));
    ws.insert("landmark_vel", flat(&|e| e.p_vel.to_vec(), &s.landmarks));
    if let Some(goal) = trace.scenario_extra.get("goal_landmark_index") {
        let values = match goal {
            Value::Array(a) => a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>(),
            v => v.as_f64().map(|g| vec![g]),
        };
        let values = values.ok_or("`scenario_extra.goal_landmark_index` is not a number")?;
        ws.insert("goal_landmark", values);
    }
    Ok(ws)
}

fn replay_mpe(trace: &MpeTrace, file: &str) -> Result<ParityReport, String> {
    let env_id = format!("mpe/{}", trace.scenario);
    let kwargs = json_to_toml(&trace.env_kwargs, &[])?;
    let mut env = registry::make(&env_id, &kwargs).map_err(|e| e.to_string())?;
    let spec = env.spec().clone();
    let names: Vec<&str> = spec.agents.iter().map(|a| a.name.as_str()).collect();
    if names != trace.agents {
        return Err(format!(
            "trace agents {:?} differ from marl's {names:?}",
            trace.agents
        ));
    }
    let dims: Vec<usize> = spec.agents.iter().map(|a| a.obs_dim).collect();
    if dims != trace.obs_dims {
        return Err(format!(
            "trace obs_dims {:?} differ from marl's {dims:?}",
            trace.obs_dims
        ));
    }

    let mut report = ParityReport::new(file, env_id);
    let mut obs = vec![0.0f32; spec.obs_len()];
    env.reset(Some(0), &mut obs);
    env.set_state(&world_state(trace)?)
        .map_err(|e| format!("initial_state: {e}"))?;
    env.observe(&mut obs);
    if let Some(m) = compare_obs(0, &spec, &obs, &trace.initial_obs)? {
        report.mismatch = Some(m);
        return Ok(report);
    }

    replay_mpe_steps(env.as_mut(), trace, &mut report, true)?;
    Ok(report)
}

/// A trace's keyword arguments as a params table: nulls (the reference's "default") and the
/// keys in `skip` (arguments marl has no parameter for) left out.
fn json_to_toml(
    map: &serde_json::Map<String, Value>,
    skip: &[&str],
) -> Result<toml::Table, String> {
    map.iter()
        .filter(|(k, v)| !v.is_null() && !skip.contains(&k.as_str()))
        .map(|(k, v)| {
            toml::Value::deserialize(v.clone())
                .map(|tv| (k.clone(), tv))
                .map_err(|e| format!("env_kwargs.{k}: {e}"))
        })
        .collect()
}

/// Each agent's `terminated || truncated`: what references that report one episode flag
/// (lbforaging's `terminated`, rware's `done`) are compared with.
fn ended_each(out: &StepBuffers) -> Vec<bool> {
    out.terminated
        .iter()
        .zip(&out.truncated)
        .map(|(&a, &b)| a || b)
        .collect()
}

/// The replay loop of every format: step `k` of `steps` must be numbered `k + 1` (`t_of`),
/// `encode` writes its joint action, `env` is stepped with it and `compare` (given the step's
/// number, the recorded step, the env and its outputs) finds the first difference, which goes
/// into `report` and ends the replay. What differs between the formats (how actions are
/// recorded, what is compared) is in the two closures; the numbering, the stepping and the
/// `steps[k]: ` in front of their errors are here.
fn replay_steps<E: MultiAgentEnv + ?Sized, S>(
    env: &mut E,
    steps: &[S],
    report: &mut ParityReport,
    t_of: impl Fn(&S) -> usize,
    mut encode: impl FnMut(&S, &mut [f32]) -> Result<(), String>,
    mut compare: impl FnMut(usize, &S, &E, &StepBuffers) -> Result<Option<Mismatch>, String>,
) -> Result<(), String> {
    let mut out = StepBuffers::new(env.spec());
    let mut actions = vec![0.0f32; env.spec().action_len()];
    for (k, step) in steps.iter().enumerate() {
        let t = t_of(step);
        if t != k + 1 {
            return Err(format!("steps[{k}].t is {t}, expected {}", k + 1));
        }
        encode(step, &mut actions).map_err(|e| format!("steps[{k}]: {e}"))?;
        out.step(env, &actions)
            .map_err(|e| format!("steps[{k}]: {e}"))?;
        report.steps = t;
        if let Some(m) = compare(t, step, &*env, &out)? {
            report.mismatch = Some(m);
            return Ok(());
        }
    }
    Ok(())
}

/// Replays the steps of an MPE trace, comparing observations, rewards, terminations,
/// truncations and (with `physics`) the post-step physical state.
fn replay_mpe_steps(
    env: &mut dyn MultiAgentEnv,
    trace: &MpeTrace,
    report: &mut ParityReport,
    physics: bool,
) -> Result<(), String> {
    let spec = env.spec().clone();
    let agent = agent_of(&spec);
    replay_steps(
        env,
        &trace.steps,
        report,
        |s| s.t,
        |s, actions| encode_actions(&spec, &s.actions, actions),
        |t, step, env, out| {
            Ok(compare_obs(t, &spec, &out.obs, &step.obs)?
                .or_else(|| compare_each(t, "reward", &step.rewards, &out.rewards, &agent))
                .or_else(|| {
                    compare_each(t, "terminated", &step.terminations, &out.terminated, &agent)
                })
                .or_else(|| compare_each(t, "truncated", &step.truncations, &out.truncated, &agent))
                .or_else(|| {
                    physics
                        .then(|| compare_physics(t, env, &step.state, &agent))
                        .flatten()
                }))
        },
    )
}

/// Names agent `i` in a [`Mismatch`].
fn agent_of(spec: &EnvSpec) -> impl Fn(usize) -> Option<(usize, String)> + '_ {
    |i| Some((i, spec.agents[i].name.clone()))
}

/// Replays a marl-parity-v1 (MPE) trace through the Python bridge: the reference env itself
/// (`mpe2.<scenario>:parallel_env`, run by `python`) reset with the trace's seed and stepped
/// with its actions must give its observations, rewards, terminations and truncations. With
/// [`check_file`] passing on the same trace for the built-in env, the bridge and the built-in
/// env agree for the same initial state and actions.
pub fn check_bridge_file(path: &Path, python: &str) -> Result<ParityReport, TraceError> {
    let file = path.display().to_string();
    let fail = |message: String| TraceError {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let trace: MpeTrace = serde_json::from_str(&text)
        .map_err(|e| fail(format!("not a marl-parity-v1 (MPE) trace: {e}")))?;
    let kwargs = json_to_toml(&trace.env_kwargs, &[]).map_err(&fail)?;
    let mut params = toml::Table::new();
    params.insert(
        "factory".into(),
        format!("mpe2.{}:parallel_env", trace.scenario).into(),
    );
    params.insert("kwargs".into(), toml::Value::Table(kwargs));
    params.insert("api".into(), "pettingzoo".into());
    params.insert("python".into(), python.into());
    let mut env = registry::make(crate::python::ID, &params).map_err(|e| fail(e.to_string()))?;
    let spec = env.spec().clone();
    let names: Vec<&str> = spec.agents.iter().map(|a| a.name.as_str()).collect();
    if names != trace.agents {
        return Err(fail(format!(
            "trace agents {:?} differ from the bridge's {names:?}",
            trace.agents
        )));
    }
    let mut report = ParityReport::new(&file, format!("python: mpe2.{}", trace.scenario));
    let mut obs = vec![0.0f32; spec.obs_len()];
    env.reset(Some(trace.seed), &mut obs);
    if let Some(m) = compare_obs(0, &spec, &obs, &trace.initial_obs).map_err(&fail)? {
        report.mismatch = Some(m);
        return Ok(report);
    }
    replay_mpe_steps(env.as_mut(), &trace, &mut report, false).map_err(fail)?;
    Ok(report)
}

/// Writes a joint action recorded as one action index per agent (lbforaging, rware); `who`
/// names the agents in the error for a wrong count.
fn encode_indices(recorded: &[i64], n: usize, who: &str, out: &mut [f32]) -> Result<(), String> {
    if recorded.len() != n {
        return Err(format!("{} actions for {n} {who}", recorded.len()));
    }
    for (d, &a) in out.iter_mut().zip(recorded) {
        *d = a as f32;
    }
    Ok(())
}

/// Writes one recorded joint action (an integer per discrete agent, a list per box agent).
fn encode_actions(spec: &EnvSpec, recorded: &[Value], out: &mut [f32]) -> Result<(), String> {
    if recorded.len() != spec.num_agents() {
        return Err(format!(
            "{} actions for {} agents",
            recorded.len(),
            spec.num_agents()
        ));
    }
    for (i, a) in recorded.iter().enumerate() {
        let dst = &mut out[spec.action_range(i)];
        match a {
            Value::Array(xs) if xs.len() == dst.len() => {
                for (d, x) in dst.iter_mut().zip(xs) {
                    *d = x.as_f64().ok_or(format!("action of agent {i} holds {x}"))? as f32;
                }
            }
            Value::Number(x) if dst.len() == 1 => {
                dst[0] = x.as_f64().ok_or(format!("action of agent {i} is {x}"))? as f32;
            }
            other => {
                return Err(format!(
                    "action of agent {i} is {other}, expected {}",
                    spec.agents[i].action_space
                ))
            }
        }
    }
    Ok(())
}

fn compare_obs(
    t: usize,
    spec: &EnvSpec,
    got: &[f32],
    expected: &[Vec<f64>],
) -> Result<Option<Mismatch>, String> {
    if expected.len() != spec.num_agents() {
        return Err(format!(
            "step {t}: {} observations for {} agents",
            expected.len(),
            spec.num_agents()
        ));
    }
    for (i, exp) in expected.iter().enumerate() {
        let mine = &got[spec.obs_range(i)];
        if exp.len() != mine.len() {
            return Err(format!(
                "step {t}: observation of agent {i} has {} values, expected {}",
                exp.len(),
                mine.len()
            ));
        }
        for (j, (&e, &g)) in exp.iter().zip(mine).enumerate() {
            let e32 = e as f32;
            if e32 != g {
                return Ok(Some(Mismatch {
                    step: t,
                    agent: Some((i, spec.agents[i].name.clone())),
                    field: "obs".into(),
                    index: j,
                    expected: format!("{e32:e} (f32 of {e:e})"),
                    got: format!("{g:e}"),
                }));
            }
        }
    }
    Ok(None)
}

fn compare_each<T: PartialEq + fmt::Debug>(
    t: usize,
    field: &str,
    expected: &[T],
    got: &[T],
    agent: &dyn Fn(usize) -> Option<(usize, String)>,
) -> Option<Mismatch> {
    if expected.len() != got.len() {
        return Some(Mismatch {
            step: t,
            agent: None,
            field: field.into(),
            index: 0,
            expected: format!("{} values", expected.len()),
            got: format!("{} values", got.len()),
        });
    }
    let i = expected.iter().zip(got).position(|(e, g)| e != g)?;
    Some(Mismatch {
        step: t,
        agent: agent(i),
        field: field.into(),
        index: 0,
        expected: format!("{:?}", expected[i]),
        got: format!("{:?}", got[i]),
    })
}

/// The agents' post-step `f64` state: stricter than the observations, which lose the low bits
/// (and velocities like 4e-194) in the cast to `f32`.
fn compare_physics(
    t: usize,
    env: &dyn MultiAgentEnv,
    recorded: &[EntityState],
    agent: &dyn Fn(usize) -> Option<(usize, String)>,
) -> Option<Mismatch> {
    let s = env.get_state();
    let pos = s.fields.get("agent_pos")?;
    let vel = s.fields.get("agent_vel")?;
    let comm = s.fields.get("agent_c")?;
    let dim_c = comm.len() / recorded.len().max(1);
    for (i, r) in recorded.iter().enumerate() {
        let fields: [(&str, &[f64], &[f64]); 3] = [
            ("p_pos", &r.p_pos, &pos[2 * i..2 * i + 2]),
            ("p_vel", &r.p_vel, &vel[2 * i..2 * i + 2]),
            ("c", &r.c, &comm[dim_c * i..dim_c * (i + 1)]),
        ];
        for (field, exp, got) in fields {
            if let Some(j) = exp.iter().zip(got).position(|(e, g)| e != g) {
                return Some(Mismatch {
                    step: t,
                    agent: agent(i),
                    field: field.into(),
                    index: j,
                    expected: format!("{:e}", exp[j]),
                    got: format!("{:e}", got[j]),
                });
            }
        }
    }
    None
}

#[derive(Deserialize)]
struct LbfTrace {
    env_id: String,
    env_kwargs: serde_json::Map<String, Value>,
    #[serde(default)]
    defaults_not_in_kwargs: serde_json::Map<String, Value>,
    initial_state: LbfState,
    initial_obs: Vec<Vec<f64>>,
    steps: Vec<LbfStep>,
}

#[derive(Deserialize)]
struct LbfPlayer {
    position: [usize; 2],
    level: u32,
}

#[derive(Deserialize)]
struct LbfState {
    players: Vec<LbfPlayer>,
    #[serde(default)]
    field: Vec<Vec<u32>>,
    #[serde(default)]
    food_spawned: Option<u32>,
    valid_actions: Vec<Vec<usize>>,
}

#[derive(Deserialize)]
struct LbfStep {
    t: usize,
    actions: Vec<i64>,
    obs: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    terminated: bool,
    state: LbfState,
}

fn replay_lbf(trace: &LbfTrace, file: &str) -> Result<ParityReport, String> {
    // lbforaging's `render_mode` only chooses a window: marl has no such parameter.
    let mut kwargs = json_to_toml(&trace.defaults_not_in_kwargs, &["render_mode"])?;
    kwargs.extend(json_to_toml(&trace.env_kwargs, &["render_mode"])?);
    let id = crate::grid::foraging::FORAGING_ID;
    let mut env = registry::make(id, &kwargs).map_err(|e| e.to_string())?;
    let spec = env.spec().clone();
    let n = spec.num_agents();
    let env_id = format!("{id} as {}", trace.env_id);
    let mut report = ParityReport::new(file, env_id);

    let init = &trace.initial_state;
    if init.players.len() != n {
        return Err(format!(
            "{} players in initial_state for {n} agents",
            init.players.len()
        ));
    }
    let mut ws = WorldState::default();
    ws.insert(
        "agent_pos",
        init.players
            .iter()
            .flat_map(|p| p.position.map(|x| x as f64))
            .collect(),
    );
    ws.insert(
        "agent_level",
        init.players.iter().map(|p| f64::from(p.level)).collect(),
    );
    ws.insert(
        "field",
        init.field.iter().flatten().map(|&f| f64::from(f)).collect(),
    );
    if let Some(spawned) = init.food_spawned {
        ws.insert("food_spawned", vec![f64::from(spawned)]);
    }
    let mut obs = vec![0.0f32; spec.obs_len()];
    env.reset(Some(0), &mut obs);
    env.set_state(&ws)
        .map_err(|e| format!("initial_state: {e}"))?;
    env.observe(&mut obs);
    let agent = agent_of(&spec);
    let first = compare_obs(0, &spec, &obs, &trace.initial_obs)?
        .or_else(|| compare_lbf_state(0, &*env, &init.players, &init.valid_actions, &agent));
    if first.is_some() {
        report.mismatch = first;
        return Ok(report);
    }

    replay_steps(
        env.as_mut(),
        &trace.steps,
        &mut report,
        |s| s.t,
        |s, actions| encode_indices(&s.actions, n, "agents", actions),
        |t, step, env, out| {
            Ok(compare_obs(t, &spec, &out.obs, &step.obs)?
                .or_else(|| compare_each(t, "reward", &step.rewards, &out.rewards, &agent))
                .or_else(|| {
                    compare_each(
                        t,
                        "terminated",
                        &vec![step.terminated; n],
                        &ended_each(out),
                        &agent,
                    )
                })
                .or_else(|| {
                    compare_lbf_state(
                        t,
                        env,
                        &step.state.players,
                        &step.state.valid_actions,
                        &agent,
                    )
                }))
        },
    )?;
    Ok(report)
}

/// Positions and valid actions (marl's action masks) against the recorded state.
fn compare_lbf_state(
    t: usize,
    env: &dyn MultiAgentEnv,
    players: &[LbfPlayer],
    valid: &[Vec<usize>],
    agent: &dyn Fn(usize) -> Option<(usize, String)>,
) -> Option<Mismatch> {
    let s = env.get_state();
    let pos = s.fields.get("agent_pos")?;
    let spec = env.spec();
    let mut mask = vec![false; spec.mask_len()];
    env.avail_actions(&mut mask);
    for (i, p) in players.iter().enumerate() {
        let got = [pos[2 * i] as usize, pos[2 * i + 1] as usize];
        if got != p.position {
            return Some(Mismatch {
                step: t,
                agent: agent(i),
                field: "position".into(),
                index: 0,
                expected: format!("{:?}", p.position),
                got: format!("{got:?}"),
            });
        }
        let m = &mask[spec.mask_range(i)];
        let got: Vec<usize> = (0..m.len()).filter(|&a| m[a]).collect();
        if valid.get(i) != Some(&got) {
            return Some(Mismatch {
                step: t,
                agent: agent(i),
                field: "valid_actions".into(),
                index: 0,
                expected: format!("{:?}", valid.get(i)),
                got: format!("{got:?}"),
            });
        }
    }
    None
}
