//! Training, evaluation and policies from Python.

use pyo3::prelude::*;

/// Adds the training functions and the `Policy` class to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
