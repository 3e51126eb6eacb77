//! The learning algorithm's math: GAE ([`gae`]), value normalization ([`value_norm`]) and
//! PPO's losses ([`ppo`]). Pure functions, each pinned by tests against hand-computed values.

pub mod gae;
pub mod ppo;
pub mod ppo_cpu;
pub mod scalars;
pub mod value_norm;
