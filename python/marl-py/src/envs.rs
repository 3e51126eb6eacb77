//! `Env` (one environment, stepped by the caller) and `VecEnv` (N environments with auto-reset,
//! stepped together with the GIL released).

use std::sync::Mutex;

use marl_envs::{EnvSpec, MultiAgentEnv, StepBuffers, VecEnv as RustVecEnv, VecStep, WorldState};
use numpy::ndarray::ArrayViewMut2;
use numpy::{Element, PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{params_from_json, read_actions, spec_dict, try_lock, value_err, ActionCheck};

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
    /// What `step` checks actions against.
    check: ActionCheck,
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
            check: ActionCheck::new(&spec, None),
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
        read_actions(actions, &self.spec, &self.check, &mut inner.actions)?;
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
    /// The global states `[num_envs, state_dim]`, written by `write_state`.
    states: Vec<f32>,
    /// All true, `[num_envs, mask_len]`: the masks of an environment that has none.
    no_masks: Vec<bool>,
    next_seed: u64,
    started: bool,
}

impl VecInner {
    /// Joins the shards' buffers into the whole batch's, when there are several: every row of
    /// what the next step acts on and of the step's outcome, and the final rows (`final_obs`,
    /// `final_states`, the episode's return, length and metrics) only of the environments whose
    /// episode just ended, so that the other rows keep what they held, as one shard's do.
    fn gather(&mut self) {
        let Some(whole) = self.whole.as_mut() else {
            return;
        };
        for s in &self.shards {
            let (at, n, src) = (s.at, s.out.len(), &s.out);
            put(&mut whole.obs, at, n, &src.obs);
            put(&mut whole.masks, at, n, &src.masks);
            put(&mut whole.rewards, at, n, &src.rewards);
            put(&mut whole.terminated, at, n, &src.terminated);
            put(&mut whole.truncated, at, n, &src.truncated);
            put(&mut whole.done, at, n, &src.done);
            for i in (0..n).filter(|&i| src.done[i]) {
                put_row(&mut whole.final_obs, at + i, &src.final_obs, i, n);
                put_row(&mut whole.final_states, at + i, &src.final_states, i, n);
                put_row(&mut whole.final_return, at + i, &src.final_return, i, n);
                put_row(&mut whole.final_len, at + i, &src.final_len, i, n);
                put_row(&mut whole.final_metrics, at + i, &src.final_metrics, i, n);
            }
        }
    }
}

/// Copies `src` (`rows` rows of equal width) into `dst` from row `at`.
fn put<T: Copy>(dst: &mut [T], at: usize, rows: usize, src: &[T]) {
    let w = src.len() / rows;
    dst[at * w..(at + rows) * w].copy_from_slice(src);
}

/// Copies row `from` of `src` (`rows` rows of equal width) into row `to` of `dst`.
fn put_row<T: Copy>(dst: &mut [T], to: usize, src: &[T], from: usize, rows: usize) {
    let w = src.len() / rows;
    dst[to * w..(to + 1) * w].copy_from_slice(&src[from * w..(from + 1) * w]);
}

/// Buffers without the per-step global states (computed on demand by `write_state`), and
/// without masks where the environment has none.
fn lean_step(n: usize, spec: &EnvSpec, n_metrics: usize) -> VecStep {
    let mut s = VecStep::new(n, spec, n_metrics);
    s.states = Vec::new();
    if !spec.has_action_masks {
        s.masks = Vec::new();
    }
    s
}

/// A numpy array `[rows, cols]` over `data` (no copy), whose base is `owner`.
///
/// # Safety
/// `data` must be the storage of a buffer that `owner` holds and that is neither freed nor
/// resized (so neither moved) while `owner` lives: the array keeps `owner` alive, not `data`.
unsafe fn view<'py, T: Element>(
    owner: &Bound<'py, PyAny>,
    data: &mut [T],
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let a = ArrayViewMut2::from_shape((rows, cols), data).map_err(value_err)?;
    // SAFETY: the caller's promise; the pointer comes from a unique borrow, so numpy may write
    // through it.
    Ok(unsafe { PyArray2::borrow_from_array(&a, owner.clone()) })
}

/// N environments of one id with auto-reset, stepped together (on `num_threads` threads) with
/// the GIL released, into buffers the object owns: `buffers()` gives numpy views of them,
/// which every `reset` and `step` overwrite (nothing is allocated per step). Arrays are flat
/// per environment: `obs [num_envs, obs_len]`.
#[pyclass(module = "marl._marl", frozen)]
pub struct VecEnv {
    inner: Mutex<VecInner>,
    spec: EnvSpec,
    metric_names: Vec<&'static str>,
    num_envs: usize,
    /// What `step` checks actions against.
    check: ActionCheck,
}

impl VecEnv {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, VecInner>> {
        try_lock(&self.inner)
    }
}

#[pymethods]
impl VecEnv {
    #[new]
    #[pyo3(signature = (id, num_envs, seed = 0, num_threads = 1, params_json = "{}"))]
    fn new(
        id: &str,
        num_envs: usize,
        seed: u64,
        num_threads: usize,
        params_json: &str,
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
            let mut out = lean_step(n, envs.spec(), envs.metric_names().len());
            // Before the first reset, the masks of the environments as made.
            if !out.masks.is_empty() {
                envs.avail_actions(&mut out.masks);
            }
            shards.push(Shard { envs, out, at });
            at += n;
        }
        let spec = shards[0].envs.spec().clone();
        let metric_names = shards[0].envs.metric_names().to_vec();
        let whole = (threads > 1).then(|| lean_step(num_envs, &spec, metric_names.len()));
        let mut inner = VecInner {
            shards,
            whole,
            actions: vec![0.0; num_envs * spec.action_len()],
            states: vec![0.0; num_envs * spec.state_dim],
            no_masks: if spec.has_action_masks {
                Vec::new()
            } else {
                vec![true; num_envs * spec.mask_len()]
            },
            next_seed: seed,
            started: false,
        };
        inner.gather();
        Ok(Self {
            inner: Mutex::new(inner),
            check: ActionCheck::new(&spec, Some(num_envs)),
            spec,
            metric_names,
            num_envs,
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

    /// Numpy views of the buffers this object owns and overwrites in place, `[num_envs, ...]`,
    /// each keeping the object alive: `obs`, `rewards`, `terminated`, `truncated`,
    /// `action_mask` (what `reset` and `step` write), `done`, `final_obs`, `final_state`,
    /// `episode_return`, `episode_length` (`[num_envs, 1]`), `episode_metrics` (`[num_envs,
    /// n_metrics]`; written by `step` for the rows where `done`), and `state` (written by
    /// `write_state`). Every call gives new views of the same memory.
    fn buffers<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let this = slf.get();
        let mut g = this.lock()?;
        let VecInner {
            shards,
            whole,
            states,
            no_masks,
            ..
        } = &mut *g;
        let v = match whole.as_mut() {
            Some(w) => w,
            None => &mut shards[0].out,
        };
        let owner = slf.as_any();
        let (n, a, spec) = (this.num_envs, this.spec.num_agents(), &this.spec);
        let masks = if v.masks.is_empty() {
            no_masks
        } else {
            &mut v.masks
        };
        let d = PyDict::new(py);
        // SAFETY: every buffer is a Vec of this object's state, made at construction with its
        // final length and never resized (reset and step write into it): its storage lives,
        // unmoved, as long as the object, which each view keeps alive.
        unsafe {
            d.set_item("obs", view(owner, &mut v.obs, n, spec.obs_len())?)?;
            d.set_item("rewards", view(owner, &mut v.rewards, n, a)?)?;
            d.set_item("terminated", view(owner, &mut v.terminated, n, a)?)?;
            d.set_item("truncated", view(owner, &mut v.truncated, n, a)?)?;
            d.set_item("action_mask", view(owner, masks, n, spec.mask_len())?)?;
            d.set_item("done", view(owner, &mut v.done, n, 1)?)?;
            d.set_item(
                "final_obs",
                view(owner, &mut v.final_obs, n, spec.obs_len())?,
            )?;
            d.set_item(
                "final_state",
                view(owner, &mut v.final_states, n, spec.state_dim)?,
            )?;
            d.set_item("episode_return", view(owner, &mut v.final_return, n, a)?)?;
            d.set_item("episode_length", view(owner, &mut v.final_len, n, 1)?)?;
            d.set_item(
                "episode_metrics",
                view(owner, &mut v.final_metrics, n, this.metric_names.len())?,
            )?;
            d.set_item("state", view(owner, states, n, spec.state_dim)?)?;
        }
        Ok(d)
    }

    /// Resets every environment into the buffers: environment `i` is seeded with
    /// `derive_seed(seed, i)`. `seed=None` takes the next seed (the constructor's, then one
    /// more at each reset).
    #[pyo3(signature = (seed = None))]
    fn reset(&self, py: Python<'_>, seed: Option<u64>) -> PyResult<()> {
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
        Ok(())
    }

    /// Steps every environment with `actions` (`[num_envs, action_len]`, or `[num_envs,
    /// n_agents]` / `[num_envs, n_agents, dim]` where every agent's action has the same width)
    /// into the buffers, resetting those whose episode ends; see `marl/_marl.pyi`.
    fn step(&self, py: Python<'_>, actions: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        if !inner.started {
            return Err(PyValueError::new_err(
                "step() before reset(): call reset() first",
            ));
        }
        read_actions(actions, &self.spec, &self.check, &mut inner.actions)?;
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
        Ok(())
    }

    /// Writes the global states of every environment into `buffers()["state"]`.
    fn write_state(&self) -> PyResult<()> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        let d = self.spec.state_dim;
        for s in &inner.shards {
            s.envs
                .states(&mut inner.states[s.at * d..(s.at + s.envs.len()) * d]);
        }
        Ok(())
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
