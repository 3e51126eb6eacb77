//! `marl sweep status DIR`: each run's state, read from its run directory first (the source
//! of truth) and from Slurm second (`squeue`, and `sacct` where accounting is on).
//!
//! - finished: `summary.json` says so;
//! - running: a process holds the run directory's lock (its pid and host are shown), or Slurm
//!   runs the task;
//! - pending: Slurm has the task queued, or nothing has run it to the end yet (not started, or
//!   stopped with a checkpoint to resume);
//! - failed: the last task that ran it ended with an error (its last line is shown), or Slurm
//!   says the task failed, timed out or ran out of memory without a checkpointed stop.
//!
//! `resubmit` takes the runs that are neither finished, running nor queued.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::manifest::{Manifest, SweepDir};
use super::slurm::{self, TaskState};
use super::task::{self, Outcome};
use crate::run::summary::RunRecord;
use crate::run::RunDir;

/// A run's state.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not started, stopped with a checkpoint, or queued.
    Pending,
    /// Training now.
    Running,
    /// Done.
    Finished,
    /// The last attempt failed.
    Failed,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Finished => "finished",
            State::Failed => "failed",
        })
    }
}

/// One run's status.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// Manifest index.
    pub index: usize,
    /// Run id.
    pub run_id: String,
    /// Config label.
    pub label: String,
    /// Seed.
    pub seed: u64,
    /// The state.
    pub state: State,
    /// Environment steps logged (metrics.csv).
    pub global_step: u64,
    /// Environment steps of the whole run.
    pub total_steps: u64,
    /// Whether Slurm has the task queued or running.
    pub queued: bool,
    /// Slurm's view, when there is one.
    pub slurm: Option<TaskState>,
    /// The holder (`pid@host`), the error line, or what is known.
    pub note: String,
}

/// The status of every run of the sweep in `dir`; `use_slurm` asks squeue/sacct too.
pub fn status(dir: &SweepDir, use_slurm: bool) -> Result<Vec<RunStatus>> {
    let manifest = Manifest::read(dir)?;
    let slurm = if use_slurm {
        slurm::task_states(dir)
    } else {
        Default::default()
    };
    let mut out = Vec::new();
    for e in &manifest.runs {
        let run_dir = dir.run_dir(&e.run_id);
        let total_steps = crate::config::load(&dir.config(&e.run_id), &[])
            .map(|raw| {
                let batch = (raw.env.n_envs * raw.env.rollout_length).max(1) as u64;
                raw.total_timesteps / batch * batch
            })
            .unwrap_or(0);
        let global_step = last_step(&run_dir);
        let record = RunRecord::read(&run_dir);
        let holder = run_dir.lock_holder();
        let last = task::attempts(dir, &e.run_id)
            .into_iter()
            .rev()
            .find(|a| a.outcome != Outcome::Busy);
        let sl = slurm.get(&e.index).cloned();
        let queued = sl.as_ref().is_some_and(|s| s.queued);
        let (state, note) = if record.as_ref().is_some_and(|r| r.finished) {
            (State::Finished, String::new())
        } else if let Some(h) = holder {
            (State::Running, format!("training: {h}"))
        } else if let Some(s) = sl.as_ref().filter(|s| s.queued) {
            let state = if s.state == "RUNNING" {
                State::Running
            } else {
                State::Pending
            };
            (state, format!("Slurm {} {} ({})", s.job, s.state, s.reason))
        } else if let Some(a) = last.as_ref().filter(|a| a.outcome == Outcome::Failed) {
            let line = a
                .error
                .as_deref()
                .and_then(|e| e.lines().last())
                .unwrap_or("failed")
                .to_string();
            (State::Failed, line)
        } else if let Some(s) = sl.as_ref().filter(|s| {
            matches!(
                s.state.as_str(),
                "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE"
            ) && last.as_ref().is_none_or(|a| a.outcome != Outcome::Stopped)
        }) {
            (
                State::Failed,
                format!(
                    "Slurm {} {} ({}); see {}",
                    s.job,
                    s.state,
                    s.reason,
                    s.log.display()
                ),
            )
        } else {
            let note = match &last {
                Some(a) if a.outcome == Outcome::Stopped => {
                    format!("stopped at step {global_step} with a checkpoint; not queued")
                }
                _ if global_step > 0 => {
                    format!("interrupted at step {global_step}; not queued")
                }
                _ => "not started".to_string(),
            };
            (State::Pending, note)
        };
        out.push(RunStatus {
            index: e.index,
            run_id: e.run_id.clone(),
            label: e.label.clone(),
            seed: e.seed,
            state,
            global_step: if state == State::Finished {
                record.map_or(global_step, |r| r.global_step)
            } else {
                global_step
            },
            total_steps,
            queued,
            slurm: sl,
            note,
        });
    }
    Ok(out)
}

/// The last `global_step` in a run's metrics.csv (0 when none).
fn last_step(run_dir: &RunDir) -> u64 {
    run_dir
        .read_metrics()
        .ok()
        .and_then(|m| m.last("global_step"))
        .map_or(0, |x| x as u64)
}

/// The indices `resubmit` takes: neither finished, running nor queued.
pub fn to_resubmit(runs: &[RunStatus]) -> Vec<usize> {
    runs.iter()
        .filter(|r| matches!(r.state, State::Pending | State::Failed) && !r.queued)
        .map(|r| r.index)
        .collect()
}

/// The table `marl sweep status` prints.
pub fn table(runs: &[RunStatus]) -> String {
    let mut s = String::new();
    let width = runs.iter().map(|r| r.label.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        s,
        "{:>5}  {:<12}  {:<8}  {:>19}  {:<width$}  {:>5}  note",
        "index", "run", "state", "steps", "config", "seed"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "{:>5}  {:<12}  {:<8}  {:>19}  {:<width$}  {:>5}  {}",
            r.index,
            r.run_id,
            r.state.to_string(),
            format!("{}/{}", r.global_step, r.total_steps),
            r.label,
            r.seed,
            r.note
        );
    }
    let count = |st: State| runs.iter().filter(|r| r.state == st).count();
    let _ = writeln!(
        s,
        "{} runs: {} finished, {} running, {} pending, {} failed",
        runs.len(),
        count(State::Finished),
        count(State::Running),
        count(State::Pending),
        count(State::Failed)
    );
    s
}
