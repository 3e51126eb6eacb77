//! Environment parameters from TOML: the one helper every environment and the registry share.
//!
//! A leaf module (it depends on nothing else in the crate but the error type), so that the
//! environments and the registry both use it without importing each other.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::EnvError;

/// Parses an environment's parameters, naming the environment in the error. Parameter structs
/// deny unknown fields, so a misspelled key is an error that lists the valid ones.
pub fn parse_params<P: DeserializeOwned>(id: &str, params: &toml::Table) -> Result<P, EnvError> {
    P::deserialize(toml::Value::Table(params.clone()))
        .map_err(|e| EnvError::invalid_params(id, e.to_string().trim()))
}

/// The parameters a task id stands for (`base`) with `overrides` on top, parsed as
/// [`parse_params`] does, and the id with its registry family (`family/`) in front.
pub fn task_params_with<P: Serialize + DeserializeOwned>(
    id: &str,
    family: &str,
    base: &P,
    overrides: &toml::Table,
) -> Result<(P, String), EnvError> {
    let mut table =
        toml::Table::try_from(base).map_err(|e| EnvError::invalid_params(id, e.to_string()))?;
    for (k, v) in overrides {
        table.insert(k.clone(), v.clone());
    }
    let params = parse_params(id, &table)?;
    let full = if id.starts_with(&format!("{family}/")) {
        id.to_string()
    } else {
        format!("{family}/{id}")
    };
    Ok((params, full))
}
