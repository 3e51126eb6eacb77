//! Grid worlds: Level-Based Foraging exact to lbforaging 2.0.0 ([`foraging`]) on the rules in
//! [`world`], its two-team competitive variant, pictures of a state ([`svg`]), and the
//! multi-robot warehouse exact to rware 2.0.0 ([`warehouse`]), and IC3Net's predator-prey exact to
//! its reference ([`predator_prey`]).

pub mod foraging;
pub mod heuristic;
pub mod predator_prey;
pub mod svg;
pub mod warehouse;
pub mod world;

pub use foraging::{ForagingEnv, ForagingParams, TeamForagingParams};
pub use predator_prey::{PredatorPreyEnv, PredatorPreyParams};

use crate::api::EnvSpec;
use crate::error::EnvError;
use crate::params::task_params_with;

/// Makes an lbforaging task by its id (`Foraging-8x8-2p-2f-coop-v3`, with or without the
/// `lbf/` family), with `overrides` on top of the parameters the id stands for.
pub fn make_task(id: &str, overrides: &toml::Table) -> Result<ForagingEnv, EnvError> {
    let base = foraging::task_params(id).ok_or_else(|| {
        EnvError::invalid_params(
            id,
            "not an lbforaging task id `Foraging{-2s}-{S}x{S}-{P}p-{F}f{-coop}-v3`",
        )
    })?;
    let (params, full): (ForagingParams, _) = task_params_with(id, "lbf", &base, overrides)?;
    ForagingEnv::new(&full, &params)
}

/// Decodes one step's discrete actions (`actions[i]` an index below `n_actions` as `f32`) into
/// `dst`, naming the agent of an invalid one.
pub(crate) fn decode_actions(
    spec: &EnvSpec,
    n_actions: usize,
    actions: &[f32],
    dst: &mut [usize],
) -> Result<(), EnvError> {
    for (i, (&a, dst)) in actions.iter().zip(dst.iter_mut()).enumerate() {
        let index = a as usize;
        if index as f32 != a || index >= n_actions {
            return Err(EnvError::InvalidAction {
                agent: i,
                name: spec.agents[i].name.clone(),
                message: format!("{a} is not an action of Discrete({n_actions})"),
            });
        }
        *dst = index;
    }
    Ok(())
}
