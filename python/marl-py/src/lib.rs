//! `marl._marl`: the Rust half of the `marl` Python package.
//!
//! The classes here are thin: they hold marl's own types, check what Python hands them (shapes,
//! dtypes, action ranges, NaN) and turn every Rust error into a Python exception carrying the
//! Rust message. The Python package (`python/marl/`) wraps them in PettingZoo and batched APIs;
//! users should import `marl`, not this module.

use pyo3::prelude::*;

mod convert;
mod envs;
mod train;

/// The extension module `marl._marl`.
#[pymodule]
fn _marl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<envs::Env>()?;
    m.add_class::<envs::VecEnv>()?;
    m.add_function(wrap_pyfunction!(envs::env_ids, m)?)?;
    m.add_function(wrap_pyfunction!(envs::derive_seed, m)?)?;
    train::register(m)?;
    Ok(())
}
