//! One task of a sweep: what a Slurm array task (and each local job) runs,
//! `marl sweep task SWEEP INDEX`. The run directory decides what to do, never the scheduler:
//! a finished run exits 0 at once, a run with a checkpoint resumes, anything else starts.
//! Every task appends what happened to `SWEEP/attempts/<run_id>.jsonl` (host, Slurm job,
//! outcome, the error line), which `marl sweep status` reads.
//!
//! A task whose run directory another process holds (a requeued job racing its predecessor,
//! a duplicated task) waits for it up to `lock_wait`, then looks again: most often the other
//! process finished the run meanwhile.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::manifest::{Manifest, SweepDir};
use crate::run::lock::Busy;
use crate::run::summary::RunRecord;
use crate::train::{self, Progress, Reporter, RunOptions};
use crate::util::signals::StopSignal;

/// How a task ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The run is finished (by this task or before it).
    Finished,
    /// Stopped by a signal after a checkpoint; a later task resumes it.
    Stopped,
    /// Another process held the run directory for all of `lock_wait`.
    Busy,
    /// An error (the `error` field says which).
    Failed,
}

/// One line of `attempts/<run_id>.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    /// The manifest index the task ran.
    pub index: usize,
    /// Unix time the task started and ended.
    pub start: f64,
    /// Unix time the task ended.
    pub end: f64,
    /// The machine.
    pub host: String,
    /// The process.
    pub pid: u32,
    /// `<array job>_<task>` (or the job id) when under Slurm.
    pub slurm_job: Option<String>,
    /// Slurm's restart count of the job (requeues).
    pub restart: Option<u32>,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether it resumed from a checkpoint.
    pub resumed: bool,
    /// Environment steps of the run when the task ended.
    pub global_step: Option<u64>,
    /// The error, for `failed` and `busy`.
    pub error: Option<String>,
}

/// Reads a run's attempts (oldest first); none when the file is absent.
pub fn attempts(dir: &SweepDir, run_id: &str) -> Vec<Attempt> {
    std::fs::read_to_string(dir.attempts(run_id))
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn append_attempt(dir: &SweepDir, run_id: &str, a: &Attempt) -> Result<()> {
    use std::io::Write;
    let path = dir.attempts(run_id);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(a)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Prints the trainer's news with a time stamp (task output goes to log files, so no bar).
struct LineReporter {
    start: Instant,
    every: u64,
}

impl Reporter for LineReporter {
    fn update(&mut self, p: &Progress) {
        if p.update.is_multiple_of(self.every) || p.update == p.num_updates {
            println!(
                "[{:8.1} s] update {}/{}, step {}, return {:.3}, {:.0} steps/s",
                self.start.elapsed().as_secs_f64(),
                p.update,
                p.num_updates,
                p.global_step,
                p.episodic_return,
                p.sps
            );
        }
    }
    fn note(&mut self, msg: &str) {
        println!("[{:8.1} s] {msg}", self.start.elapsed().as_secs_f64());
    }
}

/// Runs (or resumes, or skips) run `index` of the sweep in `sweep`; Err for failures, which
/// are recorded first.
pub fn run(sweep: &Path, index: usize, stop: &StopSignal, lock_wait: Duration) -> Result<Outcome> {
    let dir = SweepDir::new(sweep)?;
    let manifest = Manifest::read(&dir)?;
    let entry = manifest.entry(index)?.clone();
    let start = now();
    let slurm_job = std::env::var("SLURM_ARRAY_JOB_ID")
        .ok()
        .zip(std::env::var("SLURM_ARRAY_TASK_ID").ok())
        .map(|(j, t)| format!("{j}_{t}"))
        .or_else(|| std::env::var("SLURM_JOB_ID").ok());
    let restart = std::env::var("SLURM_RESTART_COUNT")
        .ok()
        .and_then(|s| s.parse().ok());
    println!(
        "sweep {} index {index}: run {} ({} seed {}) on {}{}",
        manifest.name,
        entry.run_id,
        entry.label,
        entry.seed,
        crate::run::lock::hostname(),
        slurm_job
            .as_ref()
            .map(|j| format!(", Slurm job {j}"))
            .unwrap_or_default()
    );
    let mut resumed = false;
    let result = train_or_skip(&dir, &manifest, index, stop, lock_wait, &mut resumed);
    let run_dir = dir.run_dir(&entry.run_id);
    let (outcome, error) = match &result {
        Ok(o) => (*o, None),
        Err(e) => (Outcome::Failed, Some(format!("{e:#}"))),
    };
    let error = match (outcome, error) {
        (Outcome::Busy, None) => run_dir
            .lock_holder()
            .map(|h| format!("{} is in use by {h}", run_dir.display())),
        (_, e) => e,
    };
    let attempt = Attempt {
        index,
        start,
        end: now(),
        host: crate::run::lock::hostname(),
        pid: std::process::id(),
        slurm_job,
        restart,
        outcome,
        resumed,
        global_step: RunRecord::read(&run_dir).map(|r| r.global_step),
        error,
    };
    append_attempt(&dir, &entry.run_id, &attempt)?;
    result
}

fn train_or_skip(
    dir: &SweepDir,
    manifest: &Manifest,
    index: usize,
    stop: &StopSignal,
    lock_wait: Duration,
    resumed: &mut bool,
) -> Result<Outcome> {
    let entry = manifest.entry(index)?;
    let cfg = Manifest::run_config(dir, entry)?;
    let wanted = cfg.to_toml()?;
    let run_dir = dir.run_dir(&entry.run_id);
    let waited = Instant::now();
    loop {
        if let Some(existing) = run_dir.config_text() {
            if existing != wanted {
                anyhow::bail!(
                    "{} holds a run of another config than {}; move it away",
                    run_dir.display(),
                    dir.config(&entry.run_id).display()
                );
            }
        }
        if RunRecord::read(&run_dir).is_some_and(|r| r.finished) {
            println!("{}: finished already", run_dir.display());
            return Ok(Outcome::Finished);
        }
        let resume = run_dir.has_config() && run_dir.has_checkpoint();
        *resumed = resume;
        let opts = RunOptions {
            config_name: entry
                .source
                .as_deref()
                .and_then(|s| Path::new(s).file_stem()?.to_str())
                .unwrap_or(&manifest.name)
                .to_string(),
            resume: resume.then(|| run_dir.path().to_path_buf()),
            run_dir: (!resume).then(|| run_dir.path().to_path_buf()),
        };
        let mut reporter = LineReporter {
            start: Instant::now(),
            every: (cfg.num_updates / 20).max(1),
        };
        match train::train(cfg.clone(), &opts, &mut reporter, stop.flag.clone()) {
            Ok(s) if s.interrupted => {
                println!(
                    "stopped by {} at step {}; checkpoint kept",
                    stop.received().unwrap_or("request"),
                    s.global_step
                );
                return Ok(Outcome::Stopped);
            }
            Ok(s) => {
                println!(
                    "finished: step {}, greedy evaluation {:.3} per agent",
                    s.global_step, s.eval_return
                );
                return Ok(Outcome::Finished);
            }
            Err(e) if e.downcast_ref::<Busy>().is_some() => {
                if waited.elapsed() >= lock_wait
                    || stop.flag.load(std::sync::atomic::Ordering::SeqCst)
                {
                    eprintln!("error: {e:#}");
                    return Ok(Outcome::Busy);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}
