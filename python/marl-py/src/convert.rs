//! Conversions between Python values and marl's: parameters, action arrays, specs, errors.

use marl_envs::{ActionSpace, EnvSpec};
use numpy::prelude::*;
use numpy::{PyArray1, PyArray2, PyReadonlyArrayDyn, PyUntypedArray};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Deserialize;
use std::sync::{Mutex, MutexGuard, TryLockError};

/// A Rust error as a Python `ValueError` with the Rust message (the whole chain of causes).
pub fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// An `anyhow` error as a Python `RuntimeError` carrying every cause.
pub fn runtime_err(e: anyhow::Error) -> PyErr {
    PyRuntimeError::new_err(format!("{e:#}"))
}

/// Locks an object's state without waiting: a call that finds it in use (another Python
/// thread stepping it with the GIL released) is an error, not a wait, since waiting while
/// holding the GIL would deadlock with the call that must take the GIL back to return.
pub fn try_lock<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    m.try_lock().map_err(|e| match e {
        TryLockError::WouldBlock => PyRuntimeError::new_err(
            "this object is in use by another thread: use one object per thread",
        ),
        TryLockError::Poisoned(_) => PyRuntimeError::new_err(
            "a previous call panicked while using this object; make a new one",
        ),
    })
}

/// Parameters given as JSON text (the Python side serializes its keyword arguments) as the
/// TOML table marl's registry reads. A `null` leaves the parameter at its default.
pub fn params_from_json(what: &str, json: &str) -> PyResult<toml::Table> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("{what}: not valid JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a mapping of parameter names to values"
        )));
    };
    map.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            toml::Value::deserialize(v)
                .map(|tv| (k.clone(), tv))
                .map_err(|e| PyValueError::new_err(format!("{what}: parameter `{k}`: {e}")))
        })
        .collect()
}

/// The spec of an environment as a plain dict (see `marl/_marl.pyi`).
pub fn spec_dict<'py>(
    py: Python<'py>,
    spec: &EnvSpec,
    metric_names: &[&str],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &spec.id)?;
    let agents = PyList::empty(py);
    for a in &spec.agents {
        let ad = PyDict::new(py);
        ad.set_item("name", &a.name)?;
        ad.set_item("type", &a.agent_type)?;
        ad.set_item("team", &a.team)?;
        ad.set_item("obs_dim", a.obs_dim)?;
        match a.action_space {
            ActionSpace::Discrete(n) => {
                ad.set_item("action", ("discrete", n))?;
            }
            ActionSpace::Box { dim, low, high } => {
                ad.set_item("action", ("box", dim, low, high))?;
            }
        }
        agents.append(ad)?;
    }
    d.set_item("agents", agents)?;
    d.set_item("state_dim", spec.state_dim)?;
    d.set_item("max_steps", spec.max_steps)?;
    d.set_item("has_action_masks", spec.has_action_masks)?;
    d.set_item("metric_names", metric_names.to_vec())?;
    Ok(d)
}

/// The shapes an action array of `rows` joint actions may have, for error messages and checks:
/// `[rows, action_len]` always, `[rows, n_agents]` where every agent takes one number, and
/// `[rows, n_agents, w]` where every agent takes `w`. With `rows` None (one environment) the
/// leading dimension is left out.
fn accepted_shapes(spec: &EnvSpec, rows: Option<usize>) -> Vec<Vec<usize>> {
    let n = spec.num_agents();
    let widths: Vec<usize> = spec.agents.iter().map(|a| a.action_space.width()).collect();
    let mut tails = vec![vec![spec.action_len()]];
    if let Some(&w) = widths.first() {
        if widths.iter().all(|&x| x == w) {
            if w == 1 {
                tails.push(vec![n]);
            } else {
                tails.push(vec![n, w]);
            }
        }
    }
    tails.dedup();
    tails
        .into_iter()
        .map(|t| match rows {
            Some(r) => std::iter::once(r).chain(t).collect(),
            None => t,
        })
        .collect()
}

/// What [`read_actions`] checks an action array against, made once per environment object.
pub struct ActionCheck {
    /// Joint actions per array (None: one, without a leading dimension).
    rows: Option<usize>,
    /// The shapes accepted ([`accepted_shapes`]).
    shapes: Vec<Vec<usize>>,
    /// Per number of a joint action: `n` for a discrete agent's action (an integer in `0..n`),
    /// infinity for a box action's (a finite number).
    limits: Vec<f32>,
}

impl ActionCheck {
    /// The checks of arrays of `rows` joint actions of `spec`.
    pub fn new(spec: &EnvSpec, rows: Option<usize>) -> Self {
        let limits = spec
            .agents
            .iter()
            .flat_map(|a| match a.action_space {
                ActionSpace::Discrete(n) => vec![n as f32],
                ActionSpace::Box { dim, .. } => vec![f32::INFINITY; dim],
            })
            .collect();
        Self {
            rows,
            shapes: accepted_shapes(spec, rows),
            limits,
        }
    }

    /// Whether every action of `actions` (`[rows, action_len]`) lies in its space: one pass
    /// without branches on the spec (the detailed check names the first that does not).
    fn all_valid(&self, actions: &[f32]) -> bool {
        let len = self.limits.len().max(1);
        actions.chunks_exact(len).all(|joint| {
            joint.iter().zip(&self.limits).all(|(&x, &hi)| {
                if hi == f32::INFINITY {
                    x.abs() < f32::INFINITY
                } else {
                    x >= 0.0 && x < hi && (x as u32) as f32 == x
                }
            })
        })
    }
}

fn fmt_shape(s: &[usize]) -> String {
    match s {
        [x] => format!("({x},)"),
        _ => format!(
            "({})",
            s.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Reads a joint action array (`rows` joint actions, or one without a leading dimension when
/// `rows` is None) into `out` (`[rows, action_len]`), checking its dtype, that its shape is one
/// of `check`'s (what [`accepted_shapes`] gives for `spec` and `rows`) and that every action lies
/// in its agent's space: a discrete action is an integer in `0..n`, a box action is finite (the
/// environment clips it to the box). Allocates nothing when the array is valid.
pub fn read_actions(
    obj: &Bound<'_, PyAny>,
    spec: &EnvSpec,
    check: &ActionCheck,
    out: &mut [f32],
) -> PyResult<()> {
    let (rows, shapes) = (check.rows, &check.shapes);
    let shape_of = |s: &[usize]| -> PyResult<()> {
        if shapes.iter().any(|x| x == s) {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "actions have shape {}, expected {} for `{}` ({})",
                fmt_shape(s),
                shapes
                    .iter()
                    .map(|x| fmt_shape(x))
                    .collect::<Vec<_>>()
                    .join(" or "),
                spec.id,
                describe_actions(spec, rows)
            )))
        }
    };
    let Ok(array) = obj.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "actions must be a numpy array of floats or integers, got a {}",
            obj.get_type().name()?
        )));
    };
    let dt = array.dtype();
    let py = obj.py();
    macro_rules! copy_as {
        ($t:ty) => {
            if dt.is_equiv_to(&numpy::dtype::<$t>(py)) {
                let a = obj.extract::<PyReadonlyArrayDyn<'_, $t>>()?;
                shape_of(a.shape())?;
                let v = a.as_array();
                match v.as_slice() {
                    Some(s) => out.iter_mut().zip(s).for_each(|(d, &x)| *d = x as f32),
                    None => out
                        .iter_mut()
                        .zip(v.iter())
                        .for_each(|(d, &x)| *d = x as f32),
                }
                if check.all_valid(out) {
                    return Ok(());
                }
                return check_actions(spec, out);
            }
        };
    }
    copy_as!(i64);
    copy_as!(f32);
    copy_as!(f64);
    copy_as!(i32);
    copy_as!(i16);
    copy_as!(i8);
    copy_as!(u8);
    copy_as!(u16);
    copy_as!(u32);
    copy_as!(u64);
    Err(PyTypeError::new_err(format!(
        "actions must be a numpy array of floats or integers, got an array of dtype {dt}"
    )))
}

fn describe_actions(spec: &EnvSpec, rows: Option<usize>) -> String {
    let per_agent: Vec<String> = spec
        .agents
        .iter()
        .map(|a| format!("{}: {}", a.name, a.action_space))
        .collect();
    let lead = match rows {
        Some(r) => format!("{r} environments, "),
        None => String::new(),
    };
    format!("{lead}{}", per_agent.join(", "))
}

/// Checks every joint action in `actions` (`[rows, action_len]`) against the spaces, naming the
/// first that lies outside its space.
fn check_actions(spec: &EnvSpec, actions: &[f32]) -> PyResult<()> {
    let len = spec.action_len().max(1);
    for (row, joint) in actions.chunks(len).enumerate() {
        for (i, a) in spec.agents.iter().enumerate() {
            let mine = &joint[spec.action_range(i)];
            let bad = |x: f32, why: &str| {
                PyValueError::new_err(format!(
                    "action of agent {} ({}) in row {row} is {x}: {why}",
                    i, a.name
                ))
            };
            match a.action_space {
                ActionSpace::Discrete(n) => {
                    let x = mine[0];
                    if !(x.is_finite() && x.fract() == 0.0 && x >= 0.0 && (x as usize) < n) {
                        return Err(bad(x, &format!("expected an integer in 0..{n}")));
                    }
                }
                ActionSpace::Box { dim, .. } => {
                    if let Some(&x) = mine.iter().find(|x| !x.is_finite()) {
                        return Err(bad(
                            x,
                            &format!(
                                "expected {dim} finite numbers (NaN and infinity are refused)"
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A fresh numpy array `[rows, cols]` holding `data`.
pub fn array2<'py, T: numpy::Element + Copy>(
    py: Python<'py>,
    data: &[T],
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray1::from_slice(py, data).reshape([rows, cols])
}
