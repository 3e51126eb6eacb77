//! What the commands do besides training: evaluate a run, compare runs, plot them, run sweeps,
//! benchmark the learner, and the statistics and pictures they report with.

pub mod bench;
pub mod compare;
pub mod eval;
pub mod picture;
pub mod plot;
pub mod stats;
pub mod sweep;
