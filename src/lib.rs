//! marl: multi-agent PPO (MAPPO with centralized critics, IPPO as the baseline) in one binary.
//!
//! The environments live in the `marl-envs` crate, re-exported here as [`envs`].

pub mod algo;
pub mod backend;
pub mod bench;
pub mod buffer;
pub mod checkpoint;
pub mod cli;
pub mod compare;
pub mod config;
pub mod device;
pub mod eval;
pub mod eval_policy;
pub mod fsio;
pub mod learner;
pub mod logging;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod parallel;
pub mod picture;
pub mod plot;
pub mod report;
pub mod rollout;
pub mod runlock;
pub mod scalars;
pub mod signals;
pub mod stats;
pub mod sweep;
pub mod tensorboard;
pub mod trainer;

pub use marl_envs as envs;
