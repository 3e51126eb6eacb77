//! Grid worlds: Level-Based Foraging exact to lbforaging 2.0.0 ([`foraging`]) on the rules in
//! [`world`], its two-team competitive variant, pictures of a state ([`svg`]), and the
//! multi-robot warehouse exact to rware 2.0.0 ([`warehouse`]).

pub mod foraging;
pub mod heuristic;
pub mod svg;
pub mod warehouse;
pub mod world;

pub use foraging::{ForagingEnv, ForagingParams, TeamForagingParams};

use crate::error::EnvError;
use crate::params::parse_params;

/// Makes an lbforaging task by its id (`Foraging-8x8-2p-2f-coop-v3`, with or without the
/// `lbf/` family), with `overrides` on top of the parameters the id stands for.
pub fn make_task(id: &str, overrides: &toml::Table) -> Result<ForagingEnv, EnvError> {
    let base = foraging::task_params(id).ok_or_else(|| EnvError::InvalidParams {
        env: id.to_string(),
        message: "not an lbforaging task id `Foraging{-2s}-{S}x{S}-{P}p-{F}f{-coop}-v3`".into(),
    })?;
    let mut table = toml::Table::try_from(&base).map_err(|e| EnvError::InvalidParams {
        env: id.to_string(),
        message: e.to_string(),
    })?;
    for (k, v) in overrides {
        table.insert(k.clone(), v.clone());
    }
    let params: ForagingParams = parse_params(id, &table)?;
    let full = if id.starts_with("lbf/") {
        id.to_string()
    } else {
        format!("lbf/{id}")
    };
    ForagingEnv::new(&full, &params)
}
