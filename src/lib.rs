//! marl: multi-agent PPO (MAPPO with centralized critics, IPPO as the baseline) in one binary.
//!
//! The folders are the architecture; dependencies point down this list, never up:
//!
//! | module | role |
//! |---|---|
//! | [`cli`] | the command line: argument parsing, then a call into a tool or the training run |
//! | [`tools`] | what the commands do besides training: eval, compare, plot, sweep, bench |
//! | [`train`] | the training core: the run and its stages, the learner, rollouts, evaluation |
//! | [`run`] | a run directory on disk: its files, checkpoints, metrics, TensorBoard, lock |
//! | [`backend`] | the compute trait and its CPU and candle implementations, devices |
//! | [`algo`] | the math of PPO: losses, advantages (GAE), value normalization, named scalars |
//! | [`nn`] | networks: layers, kernels, distributions, the optimizer |
//! | [`config`] | the TOML file, overrides, and the resolved configuration |
//! | [`util`] | leaf helpers: the second core, stop signals |
//!
//! The environments live in the `marl-envs` crate, re-exported here as [`envs`].

pub mod algo;
pub mod backend;
pub mod cli;
pub mod config;
pub mod nn;
pub mod run;
pub mod tools;
pub mod train;
pub mod util;

pub use marl_envs as envs;
