//! marl: multi-agent PPO (MAPPO with centralized critics, IPPO as the baseline) in one binary.
//!
//! The environments live in the `marl-envs` crate, re-exported here as [`envs`].

pub mod cli;
pub mod logging;

pub use marl_envs as envs;
