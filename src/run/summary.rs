//! `summary.json`: what a run directory says about the run as a whole once its loop ends.

use anyhow::Result;

use crate::run::dir::RunDir;

/// `summary.json` of a run directory: written when the loop ends (finished or stopped), so
/// tools can tell a finished run from one to resume and know its cost.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// Whether every update was done.
    pub finished: bool,
    /// Updates done.
    pub updates: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// Wall time of the training loops (all invocations, resumes included).
    pub wall_s: f64,
    /// Environment steps per second of wall time.
    pub sps: f64,
    /// Last evaluation of the first policy of `logging.eval_mode` (greedy unless it is
    /// `stochastic`), per-agent mean return (null if none).
    pub eval_return: Option<f64>,
}

impl RunRecord {
    /// Reads a run's summary.json (None when absent or unreadable: an unfinished run).
    pub fn read(run_dir: &RunDir) -> Option<Self> {
        let text = std::fs::read_to_string(run_dir.summary_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the run's summary.json (atomically).
    pub fn write(&self, run_dir: &RunDir) -> Result<()> {
        crate::run::fsio::write_atomic(
            &run_dir.summary_path(),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}
