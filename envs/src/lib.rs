//! `marl-envs`: the environments of marl, pure Rust, with no neural-network dependency.
//!
//! - [`api`]: the [`MultiAgentEnv`] trait every environment implements (caller-owned buffers,
//!   terminated and truncated apart, global state, action masks, world state and snapshots).
//! - [`registry`]: every built-in environment by versioned id, with parameters that reject
//!   unknown keys.
//! - [`vec_env`]: N environments with auto-reset, writing into caller-owned flat buffers.
//! - [`episode`]: one environment's episode stepped by the caller.
//! - [`particle`]: the Multi-Agent Particle Environments, bit-exact ports of mpe2 1.1.1.
//! - [`grid`]: Level-Based Foraging (lbforaging 2.0.0) and the multi-robot warehouse
//!   (rware 2.0.0), exact ports, and IC3Net's predator-prey, exact to its reference.
//! - [`numpy_random`]: numpy's random generator, draw for draw, for references that draw
//!   during an episode.
//! - [`parity`]: replays episodes recorded from the Python references (`marl-parity-v1`,
//!   `-lbf-v1`, `-rware-v1`, `-predator-prey-v1`).
//! - [`testing`]: the conformance suite every registered environment passes.

#![deny(missing_docs)]

pub mod api;
pub mod episode;
pub mod error;
pub mod grid;
pub mod numpy_random;
pub mod params;
pub mod parity;
pub mod particle;
pub mod python;
pub mod registry;
pub mod snapshot;
pub mod testing;
pub mod vec_env;

pub use api::{
    all_ended, derive_seed, ActionSpace, AgentSpec, EnvSpec, MultiAgentEnv, StepBuffers, StepOut,
    WorldState,
};
pub use episode::LiveEpisode;
pub use error::EnvError;
pub use registry::{make, REGISTRY};
pub use vec_env::{VecEnv, VecStep};
