//! Training, evaluation and policies from Python: the library functions the `marl` binary
//! calls (`marl::train::train`, `marl::tools::eval`), with the GIL released while they run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use marl::config::{self, TrainConfig};
use marl::tools::eval::{self as eval_tool, EvalOptions, Loaded};
use marl::train::evaluation;
use marl::train::rollout::EnvPool;
use marl::train::{Progress, Reporter, RunOptions};
use marl_envs::EnvSpec;
use numpy::prelude::*;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::convert::{array2, params_from_json, runtime_err, spec_dict, try_lock, value_err};

/// Adds the training functions and the `Policy` class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(eval_episodes, m)?)?;
    m.add_function(wrap_pyfunction!(toml_to_json, m)?)?;
    m.add_class::<Policy>()?;
    Ok(())
}

/// TOML text as JSON text (so that Python < 3.11, without `tomllib`, reads a run's config).
#[pyfunction]
fn toml_to_json(text: &str) -> PyResult<String> {
    let table: toml::Table = toml::from_str(text).map_err(value_err)?;
    serde_json::to_string(&table).map_err(value_err)
}

/// Progress to Python: `on_event("update", dict)` after every update, `on_event("note", str)`
/// for news. Ctrl-C (a pending KeyboardInterrupt), an exception in the callback or a callback
/// returning False asks the run to stop at the next safe point (after the update, with a
/// checkpoint), as SIGINT does for the binary.
struct PyReporter {
    on_event: Option<Py<PyAny>>,
    stop: Arc<AtomicBool>,
    /// An exception to raise once the run has stopped.
    error: Option<PyErr>,
    interrupted: bool,
}

impl PyReporter {
    fn event(
        &mut self,
        kind: &str,
        payload: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
    ) {
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                    self.interrupted = true;
                } else if self.error.is_none() {
                    self.error = Some(e);
                }
                self.stop.store(true, Ordering::SeqCst);
            }
            let Some(cb) = &self.on_event else { return };
            let result = payload(py).and_then(|p| cb.bind(py).call1((kind, p)));
            match result {
                Ok(r) if r.extract::<bool>().ok() == Some(false) => {
                    self.stop.store(true, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(e) => {
                    if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                        self.interrupted = true;
                    } else if self.error.is_none() {
                        self.error = Some(e);
                    }
                    self.stop.store(true, Ordering::SeqCst);
                }
            }
        });
    }
}

impl Reporter for PyReporter {
    fn update(&mut self, p: &Progress) {
        let p = p.clone();
        self.event("update", move |py| {
            let d = PyDict::new(py);
            d.set_item("update", p.update)?;
            d.set_item("num_updates", p.num_updates)?;
            d.set_item("global_step", p.global_step)?;
            d.set_item("episodic_return", p.episodic_return)?;
            d.set_item("eval_return", p.eval_return)?;
            d.set_item("sps", p.sps)?;
            Ok(d.into_any())
        });
    }

    fn note(&mut self, msg: &str) {
        let msg = msg.to_string();
        self.event("note", move |py| {
            Ok(pyo3::types::PyString::new(py, &msg).into_any())
        });
    }
}

/// Trains as `marl train` does and returns the summary as a dict. Exactly one of
/// `config_path`, `config_json` (a config as JSON text) and `resume` (a run directory) is
/// given; `overrides` are `KEY=VALUE` strings as for `--set`.
#[pyfunction]
#[pyo3(signature = (config_path = None, config_json = None, overrides = Vec::new(), out = None, run_dir = None, resume = None, device = None, name = String::from("python"), on_event = None))]
#[allow(clippy::too_many_arguments)]
fn train<'py>(
    py: Python<'py>,
    config_path: Option<PathBuf>,
    config_json: Option<String>,
    overrides: Vec<String>,
    out: Option<String>,
    run_dir: Option<PathBuf>,
    resume: Option<PathBuf>,
    device: Option<String>,
    name: String,
    on_event: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut raw = match (&config_path, &config_json, &resume) {
        (None, None, Some(run)) => {
            if !overrides.is_empty() {
                return Err(PyValueError::new_err(
                    "resume continues a run with its own config.toml: drop the overrides",
                ));
            }
            marl::run::RunDir::new(run.as_path())
                .read_config()
                .map_err(runtime_err)?
        }
        (Some(path), None, None) => config::load(path, &overrides).map_err(value_err_chain)?,
        (None, Some(json), None) => {
            let table = params_from_json("config", json)?;
            let text = toml::to_string(&table).map_err(value_err)?;
            config::parse(&text, "the config dict", &overrides).map_err(value_err_chain)?
        }
        _ => {
            return Err(PyValueError::new_err(
                "give exactly one of a config (a TOML file or a dict) and resume",
            ))
        }
    };
    if let Some(out) = out {
        raw.out_dir = out;
    }
    if let Some(d) = device {
        raw.device = d;
    }
    let cfg = TrainConfig::resolve(raw).map_err(value_err_chain)?;
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        config_name: name,
        resume,
        run_dir,
    };
    let mut reporter = PyReporter {
        on_event,
        stop: stop.clone(),
        error: None,
        interrupted: false,
    };
    let result = py.detach(|| marl::train::train(cfg, &opts, &mut reporter, stop));
    if let Some(e) = reporter.error.take() {
        return Err(e);
    }
    let summary = result.map_err(runtime_err)?;
    if reporter.interrupted {
        return Err(PyKeyboardInterrupt::new_err(format!(
            "training stopped by Ctrl-C after update {} ({} environment steps) with a checkpoint \
             in {}; continue it with marl.train(resume=\"{}\")",
            summary.updates,
            summary.global_step,
            summary.run_dir.display(),
            summary.run_dir.display()
        )));
    }
    let d = PyDict::new(py);
    d.set_item("run_dir", summary.run_dir.display().to_string())?;
    d.set_item("updates", summary.updates)?;
    d.set_item("global_step", summary.global_step)?;
    d.set_item("eval_return", summary.eval_return)?;
    let groups = PyDict::new(py);
    for (g, r) in &summary.eval_group_returns {
        groups.set_item(g, r)?;
    }
    d.set_item("eval_group_returns", groups)?;
    let evals = PyList::empty(py);
    for e in &summary.evaluations {
        let ed = PyDict::new(py);
        ed.set_item("policy", e.policy.name())?;
        ed.set_item("return_per_agent", e.return_per_agent)?;
        let g = PyDict::new(py);
        for (name, r) in &e.groups {
            g.set_item(name, r)?;
        }
        ed.set_item("groups", g)?;
        evals.append(ed)?;
    }
    d.set_item("evaluations", evals)?;
    d.set_item("interrupted", summary.interrupted)?;
    d.set_item("steps_this_run", summary.steps_this_run)?;
    d.set_item("wall_s", summary.wall_s)?;
    Ok(d)
}

/// A config error as a `ValueError` with every cause (the file, the key, what was expected).
fn value_err_chain(e: anyhow::Error) -> PyErr {
    PyValueError::new_err(format!("{e:#}"))
}

fn message_mode(name: &str) -> PyResult<marl::backend::MessageMode> {
    use marl::backend::MessageMode;
    match name {
        "sent" => Ok(MessageMode::Sent),
        "zero" => Ok(MessageMode::Zero),
        "shuffle" => Ok(MessageMode::Shuffle),
        other => Err(PyValueError::new_err(format!(
            "messages `{other}`: expected \"sent\", \"zero\" or \"shuffle\""
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn eval_options(
    episodes: usize,
    greedy: bool,
    seed: u64,
    random_groups: Vec<String>,
    env_id: Option<String>,
    env_params_json: &str,
    num_workers: Option<usize>,
    messages: &str,
) -> PyResult<EvalOptions> {
    if episodes == 0 {
        return Err(PyValueError::new_err("episodes must be at least 1"));
    }
    Ok(EvalOptions {
        episodes,
        greedy,
        seed,
        random_groups,
        env_id,
        env_set: params_from_json("env_params", env_params_json)?,
        num_workers,
        messages: message_mode(messages)?,
    })
}

/// `marl eval`: the report as JSON text (what `marl eval --json` prints).
#[pyfunction]
#[pyo3(signature = (path, episodes = 1000, greedy = false, seed = 0, random_groups = Vec::new(), env_id = None, env_params_json = "{}", num_workers = None, messages = "sent"))]
#[allow(clippy::too_many_arguments)]
fn evaluate(
    py: Python<'_>,
    path: PathBuf,
    episodes: usize,
    greedy: bool,
    seed: u64,
    random_groups: Vec<String>,
    env_id: Option<String>,
    env_params_json: &str,
    num_workers: Option<usize>,
    messages: &str,
) -> PyResult<String> {
    let opts = eval_options(
        episodes,
        greedy,
        seed,
        random_groups,
        env_id,
        env_params_json,
        num_workers,
        messages,
    )?;
    let report = py
        .detach(|| eval_tool::evaluate(&path, &opts))
        .map_err(runtime_err)?;
    serde_json::to_string(&report).map_err(value_err)
}

/// The episodes `marl eval` plays (the same loop, `evaluation::run_episodes`, on the same
/// `min(episodes, 128)` environments), one row each: `(returns float64 [episodes, n_agents],
/// lengths uint64 [episodes])`.
#[pyfunction]
#[pyo3(signature = (path, episodes = 1000, greedy = false, seed = 0))]
#[allow(clippy::type_complexity)]
fn eval_episodes<'py>(
    py: Python<'py>,
    path: PathBuf,
    episodes: usize,
    greedy: bool,
    seed: u64,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<u64>>)> {
    let opts = eval_options(episodes, greedy, seed, Vec::new(), None, "{}", None, "sent")?;
    let played = py
        .detach(|| -> anyhow::Result<_> {
            let Loaded {
                cfg,
                mut learner,
                random,
                ..
            } = eval_tool::load(&path, &opts, episodes.min(128))?;
            let env = cfg.env();
            let mut pool = EnvPool::new(&env.id, &env.params, env.n_envs, cfg.num_workers())?;
            let eps =
                evaluation::run_episodes(&mut learner, &mut pool, seed, episodes, greedy, &random)?;
            Ok((eps, cfg.spec.num_agents()))
        })
        .map_err(runtime_err)?;
    let (eps, n) = played;
    let returns: Vec<f64> = eps.iter().flat_map(|e| e.returns.clone()).collect();
    let lengths: Vec<u64> = eps.iter().map(|e| e.length).collect();
    Ok((
        array2(py, &returns, eps.len(), n)?,
        PyArray1::from_vec(py, lengths),
    ))
}

struct PolicyInner {
    /// The networks, loaded for batches of `batch` rows.
    loaded: Option<(usize, Loaded)>,
    /// Generator of the groups that act at random (none unless asked).
    rng: ChaCha8Rng,
    /// Counts the calls: a state handed back must be the latest one.
    calls: u64,
}

/// A trained policy, acting on batches of observations as `marl eval` does.
#[pyclass(module = "marl._marl", frozen)]
pub struct Policy {
    inner: Mutex<PolicyInner>,
    path: PathBuf,
    spec: EnvSpec,
    metric_names: Vec<&'static str>,
    groups: Vec<(String, Vec<usize>)>,
    checkpoint: String,
    global_step: u64,
    recurrent: bool,
}

fn load_policy(path: &std::path::Path, batch: usize) -> anyhow::Result<Loaded> {
    let opts = EvalOptions {
        episodes: batch,
        ..EvalOptions::default()
    };
    eval_tool::load(path, &opts, batch)
}

#[pymethods]
impl Policy {
    /// Loads the latest intact checkpoint of a run directory (or a checkpoint directory).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let loaded = py.detach(|| load_policy(&path, 1)).map_err(runtime_err)?;
        let spec = loaded.cfg.spec.clone();
        let metric_names = marl_envs::make(&loaded.cfg.env().id, &loaded.cfg.env().params)
            .map(|e| e.metric_names().to_vec())
            .unwrap_or_default();
        let groups = loaded
            .cfg
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.agents.clone()))
            .collect();
        let recurrent = loaded.cfg.raw.network.recurrent != config::RecurrentKind::None;
        Ok(Self {
            path,
            spec,
            metric_names,
            groups,
            checkpoint: loaded.ck_dir.display().to_string(),
            global_step: loaded.global_step,
            recurrent,
            inner: Mutex::new(PolicyInner {
                loaded: Some((1, loaded)),
                rng: ChaCha8Rng::seed_from_u64(0),
                calls: 0,
            }),
        })
    }

    /// The environment's shape as a dict (as `marl._marl.Env.spec`).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        spec_dict(py, &self.spec, &self.metric_names)
    }

    /// The policy's groups: `[(name, [agent indices])]`.
    #[getter]
    fn groups(&self) -> Vec<(String, Vec<usize>)> {
        self.groups.clone()
    }

    /// The checkpoint directory loaded.
    #[getter]
    fn checkpoint(&self) -> String {
        self.checkpoint.clone()
    }

    /// Environment steps the checkpoint was trained for.
    #[getter]
    fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Whether the networks are recurrent (their state carries over between calls).
    #[getter]
    fn recurrent(&self) -> bool {
        self.recurrent
    }

    /// One joint action per row: `obs float32 [B, obs_len]`, `masks bool [B, mask_len]` (None:
    /// all available), `first bool [B]` (rows that start an episode: their recurrent state is
    /// zeroed). `seed` restarts the sampler of stochastic actions as `marl eval --seed` does;
    /// None continues it. `state` is the counter the previous call returned (None: a fresh
    /// start of every row). Returns `(actions float32 [B, action_len], state)`.
    #[pyo3(signature = (obs, first, masks = None, greedy = true, seed = None, state = None, agent_dead = None))]
    #[allow(clippy::too_many_arguments)]
    fn act<'py>(
        &self,
        py: Python<'py>,
        obs: PyReadonlyArray2<'py, f32>,
        first: PyReadonlyArray1<'py, bool>,
        masks: Option<PyReadonlyArray2<'py, bool>>,
        greedy: bool,
        seed: Option<u64>,
        state: Option<u64>,
        agent_dead: Option<PyReadonlyArray2<'py, bool>>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, u64)> {
        let shape = obs.shape();
        let (b, width) = (shape[0], shape[1]);
        if width != self.spec.obs_len() || b == 0 {
            return Err(PyValueError::new_err(format!(
                "observations have shape ({b}, {width}), expected (B, {}) with B >= 1 for `{}`",
                self.spec.obs_len(),
                self.spec.id
            )));
        }
        if first.len() != b {
            return Err(PyValueError::new_err(format!(
                "episode_start has {} rows, the observations {b}",
                first.len()
            )));
        }
        let ml = self.spec.mask_len();
        let mask_vec: Vec<bool> = match &masks {
            Some(m) => {
                if m.shape() != [b, ml] {
                    return Err(PyValueError::new_err(format!(
                        "action masks have shape {:?}, expected ({b}, {ml})",
                        m.shape()
                    )));
                }
                m.as_array().iter().copied().collect()
            }
            None => vec![true; b * ml],
        };
        let n_agents = self.spec.num_agents();
        let dead_vec: Vec<bool> = match &agent_dead {
            Some(d) => {
                if d.shape() != [b, n_agents] {
                    return Err(PyValueError::new_err(format!(
                        "agent_done has shape {:?}, expected ({b}, {n_agents})",
                        d.shape()
                    )));
                }
                d.as_array().iter().copied().collect()
            }
            None => Vec::new(),
        };
        let obs_vec: Vec<f32> = obs.as_array().iter().copied().collect();
        if let Some(x) = obs_vec.iter().find(|x| !x.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "observations hold {x}: expected finite numbers"
            )));
        }
        let mut first_vec: Vec<bool> = first.as_array().iter().copied().collect();
        let mut g = try_lock(&self.inner)?;
        let inner = &mut *g;
        match state {
            None => first_vec.fill(true),
            Some(s) if s != inner.calls => {
                return Err(PyValueError::new_err(format!(
                    "stale policy state {s}: the policy keeps the recurrent state of its latest \
                     call ({}); pass the state that call returned, or None to start over",
                    inner.calls
                )))
            }
            Some(_) => {}
        }
        let path = &self.path;
        let mut joint = vec![0.0f32; b * self.spec.action_len()];
        let rng = &mut inner.rng;
        let loaded = &mut inner.loaded;
        py.detach(|| -> anyhow::Result<()> {
            if loaded.as_ref().map(|(n, _)| *n) != Some(b) {
                // A batch of another size: the networks' buffers are sized by the batch.
                *loaded = Some((b, load_policy(path, b)?));
                first_vec.fill(true);
            }
            let Some((_, l)) = loaded.as_mut() else {
                anyhow::bail!("no policy loaded");
            };
            if let Some(s) = seed {
                l.learner.swap_sampler(evaluation::sampler(s));
                *rng = ChaCha8Rng::seed_from_u64(s);
            }
            l.learner.policy_actions(
                &obs_vec, &mask_vec, &first_vec, &dead_vec, greedy, &l.random, rng, &mut joint,
            )
        })
        .map_err(runtime_err)?;
        inner.calls += 1;
        Ok((array2(py, &joint, b, self.spec.action_len())?, inner.calls))
    }
}
