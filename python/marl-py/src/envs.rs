//! `Env` (one environment, stepped by the caller) and `VecEnv` (N environments with auto-reset,
//! stepped together with the GIL released).

use std::sync::Mutex;

use marl_envs::{EnvSpec, MultiAgentEnv, StepBuffers, VecEnv as RustVecEnv, VecStep, WorldState};
use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    array2, emit, params_from_json, read_actions, spec_dict, try_lock, value_err,
};

/// Every built-in environment id (`marl_envs::registry::ids()`).
#[pyfunction]
pub fn env_ids() -> Vec<&'static str> {
    marl_envs::registry::ids()
}

/// The seed of environment `index` of a batch seeded with `seed` (what `VecEnv` gives its
/// environments), so a single `Env` can replay one of them.
#[pyfunction]
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    marl_envs::derive_seed(seed, index)
}

fn make_env(id: &str, params_json: &str) -> PyResult<Box<dyn MultiAgentEnv>> {
    let params = params_from_json(id, params_json)?;
    marl_envs::make(id, &params).map_err(value_err)
}

struct EnvInner {
    env: Box<dyn MultiAgentEnv>,
    buf: StepBuffers,
    actions: Vec<f32>,
    /// Whether the episode is over (stepping again needs a reset).
    ended: bool,
    started: bool,
}

/// One environment: `reset`, `step` with a flat joint action, observations concatenated in
/// agent order. `marl.envs.make` wraps it as a PettingZoo `ParallelEnv`.
#[pyclass(module = "marl._marl", frozen)]
pub struct Env {
    inner: Mutex<EnvInner>,
    spec: EnvSpec,
    metric_names: Vec<&'static str>,
}

impl Env {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, EnvInner>> {
        try_lock(&self.inner)
    }
}

#[pymethods]
impl Env {
    #[new]
    #[pyo3(signature = (id, params_json = "{}"))]
    fn new(id: &str, params_json: &str) -> PyResult<Self> {
        let env = make_env(id, params_json)?;
        let spec = env.spec().clone();
        let metric_names = env.metric_names().to_vec();
        Ok(Self {
            inner: Mutex::new(EnvInner {
                buf: StepBuffers::new(&spec),
                actions: vec![0.0; spec.action_len()],
                env,
                ended: false,
                started: false,
            }),
            spec,
            metric_names,
        })
    }

    /// The environment's shape as a dict (id, agents, state_dim, max_steps, ...).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        spec_dict(py, &self.spec, &self.metric_names)
    }

    /// Starts an episode; `seed=None` continues the environment's generator.
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        py.detach(|| inner.env.reset(seed, &mut inner.buf.obs));
        inner.ended = false;
        inner.started = true;
        Ok(PyArray1::from_slice(py, &inner.buf.obs))
    }

    /// Applies one joint action, with the GIL released while the environment steps; returns
    /// `(obs, rewards, terminated, truncated)` as fresh arrays (`float32 [obs_len]`, `float64 [n_agents]`, `bool [n_agents]`, `bool [n_agents]`).
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f32>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray1<bool>>,
    )> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        if !inner.started {
            return Err(PyValueError::new_err(
                "step() before reset(): call reset() first",
            ));
        }
        if inner.ended {
            return Err(PyValueError::new_err(
                "step() after the episode ended: call reset() first",
            ));
        }
        read_actions(actions, &self.spec, None, &mut inner.actions)?;
        // The GIL is released while the environment steps, as `VecEnv` does: other Python
        // threads run meanwhile (the object's lock keeps this one to one caller at a time).
        let (buf, env, acts) = (&mut inner.buf, inner.env.as_mut(), &inner.actions);
        py.detach(|| buf.step(env, acts)).map_err(value_err)?;
        inner.ended = inner.buf.ended();
        Ok((
            PyArray1::from_slice(py, &inner.buf.obs),
            PyArray1::from_slice(py, &inner.buf.rewards),
            PyArray1::from_slice(py, &inner.buf.terminated),
            PyArray1::from_slice(py, &inner.buf.truncated),
        ))
    }

    /// The current observations, `float32 [obs_len]` (after `set_world_state`, the new ones).
    fn observe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        inner.env.observe(&mut inner.buf.obs);
        Ok(PyArray1::from_slice(py, &inner.buf.obs))
    }

    /// The global state for a centralized critic, `float32 [state_dim]`.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let g = self.lock()?;
        let mut out = vec![0.0f32; self.spec.state_dim];
        g.env.state(&mut out);
        Ok(PyArray1::from_vec(py, out))
    }

    /// Which discrete actions are available, `bool [mask_len]` (each discrete agent's choices
    /// in agent order; all true where the environment has no masks).
    fn action_mask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let g = self.lock()?;
        let mut out = vec![true; self.spec.mask_len()];
        g.env.avail_actions(&mut out);
        Ok(PyArray1::from_vec(py, out))
    }

    /// The world's physical state: field name to `float64` array (documented per environment).
    fn world_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = self.lock()?;
        let d = PyDict::new(py);
        for (k, v) in g.env.get_state().fields {
            d.set_item(k, PyArray1::from_vec(py, v))?;
        }
        Ok(d)
    }

    /// Loads a world state (field name to a sequence of floats), restarting the step counter;
    /// the generator is untouched. Call `observe()` for the observations it gives.
    fn set_world_state(
        &self,
        fields: std::collections::BTreeMap<String, Vec<f64>>,
    ) -> PyResult<()> {
        let mut g = self.lock()?;
        let ws = WorldState { fields };
        g.env.set_state(&ws).map_err(value_err)?;
        g.ended = false;
        g.started = true;
        Ok(())
    }

    /// The task figures of the episode so far (`metric_names` in `spec`), as a dict.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = self.lock()?;
        let mut out = vec![0.0; self.metric_names.len()];
        g.env.metrics(&mut out);
        let d = PyDict::new(py);
        for (k, v) in self.metric_names.iter().zip(out) {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The environment drawn as text.
    fn render_ascii(&self) -> PyResult<String> {
        Ok(self.lock()?.env.render_ascii())
    }

    /// The environment drawn as an SVG document, or None where it has no picture.
    fn render_svg(&self) -> PyResult<Option<String>> {
        Ok(self.lock()?.env.render_svg())
    }
}

/// Output arrays kept between steps when the env returns its own buffers (`copy=False`).
#[derive(Default)]
struct Kept {
    obs: Option<Py<PyArray2<f32>>>,
    rewards: Option<Py<PyArray2<f64>>>,
    terminated: Option<Py<PyArray2<bool>>>,
    truncated: Option<Py<PyArray2<bool>>>,
    masks: Option<Py<PyArray2<bool>>>,
}

/// A group of consecutive environments stepped on one thread into its own buffers.
struct Shard {
    envs: RustVecEnv,
    out: VecStep,
    at: usize,
}

struct VecInner {
    shards: Vec<Shard>,
    /// The whole batch, when there are several shards (one shard writes it directly).
    whole: Option<VecStep>,
    actions: Vec<f32>,
    next_seed: u64,
    started: bool,
    kept: Kept,
}

impl VecInner {
    fn gather(&mut self) {
        if let Some(whole) = self.whole.as_mut() {
            for s in &self.shards {
                whole.copy_rows_from(s.at, &s.out);
            }
        }
    }
}

/// Buffers without the per-step global states (computed on demand by `state()`), and without
/// masks where the environment has none.
fn lean_step(n: usize, spec: &EnvSpec, n_metrics: usize) -> VecStep {
    let mut s = VecStep::new(n, spec, n_metrics);
    s.states = Vec::new();
    if !spec.has_action_masks {
        s.masks = Vec::new();
    }
    s
}

/// N environments of one id with auto-reset, stepped together (on `num_threads` threads) with
/// the GIL released. Arrays are flat per environment: `obs [num_envs, obs_len]`.
#[pyclass(module = "marl._marl", frozen)]
pub struct VecEnv {
    inner: Mutex<VecInner>,
    spec: EnvSpec,
    metric_names: Vec<&'static str>,
    num_envs: usize,
    copy: bool,
}

impl VecEnv {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, VecInner>> {
        try_lock(&self.inner)
    }
}

#[pymethods]
impl VecEnv {
    #[new]
    #[pyo3(signature = (id, num_envs, seed = 0, num_threads = 1, params_json = "{}", copy = true))]
    fn new(
        id: &str,
        num_envs: usize,
        seed: u64,
        num_threads: usize,
        params_json: &str,
        copy: bool,
    ) -> PyResult<Self> {
        if num_envs == 0 {
            return Err(PyValueError::new_err("num_envs must be at least 1"));
        }
        if num_threads == 0 {
            return Err(PyValueError::new_err("num_threads must be at least 1"));
        }
        let params = params_from_json(id, params_json)?;
        let threads = num_threads.min(num_envs);
        let mut shards = Vec::with_capacity(threads);
        let mut at = 0;
        for t in 0..threads {
            let n = num_envs / threads + usize::from(t < num_envs % threads);
            let envs = RustVecEnv::from_fn(n, at as u64, || marl_envs::make(id, &params))
                .map_err(value_err)?;
            let out = lean_step(n, envs.spec(), envs.metric_names().len());
            shards.push(Shard { envs, out, at });
            at += n;
        }
        let spec = shards[0].envs.spec().clone();
        let metric_names = shards[0].envs.metric_names().to_vec();
        let whole = (threads > 1).then(|| lean_step(num_envs, &spec, metric_names.len()));
        Ok(Self {
            inner: Mutex::new(VecInner {
                shards,
                whole,
                actions: vec![0.0; num_envs * spec.action_len()],
                next_seed: seed,
                started: false,
                kept: Kept::default(),
            }),
            spec,
            metric_names,
            num_envs,
            copy,
        })
    }

    /// The environments' shape as a dict (id, agents, state_dim, max_steps, ...).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        spec_dict(py, &self.spec, &self.metric_names)
    }

    /// Number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// Resets every environment: environment `i` is seeded with `derive_seed(seed, i)`.
    /// `seed=None` takes the next seed (the constructor's, then one more at each reset).
    /// Returns `obs float32 [num_envs, obs_len]`.
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let seed = seed.unwrap_or(inner.next_seed);
        inner.next_seed = seed.wrapping_add(1);
        py.detach(|| {
            for s in inner.shards.iter_mut() {
                s.envs.reset(seed, &mut s.out, 0);
            }
        });
        inner.gather();
        inner.started = true;
        let obs = match &inner.whole {
            Some(w) => &w.obs,
            None => &inner.shards[0].out.obs,
        };
        emit(
            py,
            &mut inner.kept.obs,
            obs,
            self.num_envs,
            self.spec.obs_len(),
            self.copy,
        )
    }

    /// Steps every environment with `actions` (`[num_envs, action_len]`, or `[num_envs,
    /// n_agents]` / `[num_envs, n_agents, dim]` where every agent's action has the same width),
    /// resetting those whose episode ends. Returns `(obs, rewards, terminated, truncated,
    /// info)`; see `marl/_marl.pyi`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<bool>>,
        Bound<'py, PyArray2<bool>>,
        Bound<'py, PyDict>,
    )> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        if !inner.started {
            return Err(PyValueError::new_err(
                "step() before reset(): call reset() first",
            ));
        }
        read_actions(actions, &self.spec, Some(self.num_envs), &mut inner.actions)?;
        let act_len = self.spec.action_len();
        let actions = &inner.actions;
        let shards = &mut inner.shards;
        let result: Result<(), marl_envs::EnvError> = py.detach(|| {
            let step_shard = |s: &mut Shard| {
                let mine = &actions[s.at * act_len..(s.at + s.envs.len()) * act_len];
                s.envs.step(mine, &mut s.out, 0)
            };
            match shards.as_mut_slice() {
                [one] => step_shard(one),
                // Two shards: the second on marl's persistent helper thread (no spawn per step).
                [a, b] => {
                    let (ra, rb) = marl::util::parallel::join(|| step_shard(a), || step_shard(b));
                    ra.and(rb.unwrap_or_else(|_| Err(thread_panicked())))
                }
                _ => std::thread::scope(|scope| {
                    let handles: Vec<_> = shards
                        .iter_mut()
                        .map(|s| scope.spawn(move || step_shard(s)))
                        .collect();
                    let mut first = Ok(());
                    for h in handles {
                        let r = h.join().unwrap_or_else(|_| Err(thread_panicked()));
                        if first.is_ok() {
                            first = r;
                        }
                    }
                    first
                }),
            }
        });
        result.map_err(value_err)?;
        inner.gather();
        let (n, a) = (self.num_envs, self.spec.num_agents());
        let v = match &inner.whole {
            Some(w) => w,
            None => &inner.shards[0].out,
        };
        let kept = &mut inner.kept;
        let obs = emit(py, &mut kept.obs, &v.obs, n, self.spec.obs_len(), self.copy)?;
        let rewards = emit(py, &mut kept.rewards, &v.rewards, n, a, self.copy)?;
        let terminated = emit(py, &mut kept.terminated, &v.terminated, n, a, self.copy)?;
        let truncated = emit(py, &mut kept.truncated, &v.truncated, n, a, self.copy)?;
        let info = PyDict::new(py);
        info.set_item("done", PyArray1::from_slice(py, &v.done))?;
        info.set_item(
            "final_obs",
            array2(py, &v.final_obs, n, self.spec.obs_len())?,
        )?;
        info.set_item(
            "final_state",
            array2(py, &v.final_states, n, self.spec.state_dim)?,
        )?;
        info.set_item("episode_return", array2(py, &v.final_return, n, a)?)?;
        info.set_item("episode_length", PyArray1::from_slice(py, &v.final_len))?;
        let metrics = PyDict::new(py);
        let m = self.metric_names.len();
        for (j, name) in self.metric_names.iter().enumerate() {
            let col: Vec<f64> = (0..n).map(|i| v.final_metrics[i * m + j]).collect();
            metrics.set_item(name, PyArray1::from_vec(py, col))?;
        }
        info.set_item("episode_metrics", metrics)?;
        Ok((obs, rewards, terminated, truncated, info))
    }

    /// The global states of every environment, `float32 [num_envs, state_dim]` (fresh array).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let g = self.lock()?;
        let d = self.spec.state_dim;
        let mut out = vec![0.0f32; self.num_envs * d];
        for s in &g.shards {
            s.envs.states(&mut out[s.at * d..(s.at + s.envs.len()) * d]);
        }
        array2(py, &out, self.num_envs, d)
    }

    /// The action masks for the next step, `bool [num_envs, mask_len]` (all true where the
    /// environment has no masks).
    fn action_mask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let m = self.spec.mask_len();
        if !self.spec.has_action_masks || !inner.started {
            let mut out = vec![true; self.num_envs * m];
            for s in &inner.shards {
                s.envs
                    .avail_actions(&mut out[s.at * m..(s.at + s.envs.len()) * m]);
            }
            return array2(py, &out, self.num_envs, m);
        }
        let masks = match &inner.whole {
            Some(w) => &w.masks,
            None => &inner.shards[0].out.masks,
        };
        emit(
            py,
            &mut inner.kept.masks,
            masks,
            self.num_envs,
            m,
            self.copy,
        )
    }

    /// Environment `index` drawn as text.
    fn render_ascii(&self, index: usize) -> PyResult<String> {
        let g = self.lock()?;
        let (s, i) = locate(&g.shards, index, self.num_envs)?;
        Ok(s.envs.env(i).render_ascii())
    }

    /// Environment `index` drawn as SVG, or None where it has no picture.
    fn render_svg(&self, index: usize) -> PyResult<Option<String>> {
        let g = self.lock()?;
        let (s, i) = locate(&g.shards, index, self.num_envs)?;
        Ok(s.envs.env(i).render_svg())
    }
}

fn thread_panicked() -> marl_envs::EnvError {
    marl_envs::EnvError::invalid_params("VecEnv", "an environment thread panicked")
}

fn locate(shards: &[Shard], index: usize, n: usize) -> PyResult<(&Shard, usize)> {
    shards
        .iter()
        .find(|s| index >= s.at && index < s.at + s.envs.len())
        .map(|s| (s, index - s.at))
        .ok_or_else(|| PyValueError::new_err(format!("env index {index} out of range 0..{n}")))
}
