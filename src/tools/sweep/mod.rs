//! `marl sweep`: grids of configs and seeds, run locally or as Slurm job arrays, safe under
//! preemption, and collected into the tables of `marl compare`, TensorBoard and marl-eval
//! files.
//!
//! The sweep directory is the source of truth, not the scheduler: runs are named by a hash of
//! their resolved config ([`manifest`]), every task decides from its run directory whether to
//! skip, resume or start ([`task`]), and one process at a time writes a run directory
//! ([`crate::run::lock`]). Launching again reuses finished runs and resumes the rest;
//! [`status`] reads the runs (and squeue/sacct), `resubmit` sends the missing and failed ones
//! again, and [`collect`] tabulates.
//!
//! - [`grid`]: axes and seeds, expanded in a fixed order;
//! - [`manifest`]: the sweep directory, run ids, frozen configs;
//! - [`task`]: one run, as an array task runs it;
//! - [`local`], [`slurm`]: the schedulers (`--backend`);
//! - [`status`], [`collect`], [`marl_eval`]: what came of it;
//! - [`suite`]: a sweep of a directory of configs and its results table;
//! - [`cli`]: the command line.

pub mod cli;
pub mod collect;
pub mod grid;
pub mod local;
pub mod manifest;
pub mod marl_eval;
pub mod slurm;
pub mod status;
pub mod suite;
pub mod task;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use self::grid::Grid;
use self::manifest::{Manifest, SweepDir};
use self::slurm::{SlurmOptions, Submission};
use crate::run::summary::RunRecord;
use crate::util::signals::StopSignal;

/// Where the tasks run (`--backend`): the machine that launches them, or Slurm. Not a compute
/// backend ([`crate::backend::Backend`]); every task trains on its config's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheduler {
    /// On this machine, `--jobs` at a time.
    Local,
    /// As Slurm job arrays (`sbatch`).
    Slurm,
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The config file, or a directory of configs (a suite: every `*.toml` in it but
    /// `suite.toml`).
    pub config: PathBuf,
    /// Axes, fixed overrides and seeds from the command line (on top of the file's `[sweep]`).
    pub grid: Grid,
    /// The sweep directory (default `<out_dir>/sweep-<config stem>`).
    pub out: Option<PathBuf>,
    /// Where the tasks run.
    pub scheduler: Scheduler,
    /// Local runs at once.
    pub jobs: usize,
    /// Slurm tasks of an array at once (`%K`).
    pub parallel: Option<usize>,
    /// The batch script's options.
    pub slurm: SlurmOptions,
    /// Print, do not write or submit.
    pub dry_run: bool,
}

/// What a launch (or resubmit) did.
#[derive(Debug, Clone)]
pub struct Launched {
    /// The sweep directory.
    pub dir: SweepDir,
    /// The manifest.
    pub manifest: Manifest,
    /// The indices sent to the scheduler.
    pub submitted: Vec<usize>,
    /// Slurm arrays submitted.
    pub submissions: Vec<Submission>,
    /// What the local tasks did.
    pub local: Option<local::LocalReport>,
}

/// `marl sweep CONFIG ...`: plans the grid, writes (or extends) the sweep directory, and
/// sends the runs that are not finished to the scheduler.
pub fn launch(opts: &LaunchOptions, stop: &StopSignal, log: &dyn Fn(&str)) -> Result<Launched> {
    let (name, planned) = manifest::plan(&opts.config, opts.grid.clone())?;
    let out = match &opts.out {
        Some(o) => o.clone(),
        None => {
            let first = crate::config::parse(&planned[0].config_text, "resolved config", &[])?;
            Path::new(&first.out_dir).join(format!("sweep-{name}"))
        }
    };
    let dir = SweepDir::new(&out)?;
    if opts.config.is_dir() {
        // Checked before anything is written or run.
        suite::SuiteFile::of_dir(&opts.config)?;
    }
    if opts.dry_run {
        println!(
            "sweep `{name}` in {}: {} runs",
            dir.root.display(),
            planned.len()
        );
        println!("{:>5}  {:<12}  {:>5}  config", "#", "run", "seed");
        for (k, p) in planned.iter().enumerate() {
            println!(
                "{k:>5}  {:<12}  {:>5}  {}",
                p.entry.run_id, p.entry.seed, p.entry.label
            );
        }
        let indices: Vec<usize> = (0..planned.len()).collect();
        match opts.scheduler {
            Scheduler::Slurm => {
                let text = slurm::script(&dir, &name, &opts.slurm);
                slurm::submit(&dir, &text, &indices, opts.parallel, true)?;
            }
            Scheduler::Local => {
                for i in indices {
                    println!(
                        "{} sweep task {} {i}",
                        opts.slurm.exe.display(),
                        dir.root.display()
                    );
                }
            }
        }
        return Ok(Launched {
            manifest: Manifest {
                format: manifest::FORMAT.into(),
                name,
                config: opts.config.display().to_string(),
                runs: planned.into_iter().map(|p| p.entry).collect(),
            },
            dir,
            submitted: Vec::new(),
            submissions: Vec::new(),
            local: None,
        });
    }
    let (manifest, indices) = Manifest::create_or_extend(&dir, &name, &opts.config, &planned)?;
    if opts.config.is_dir() {
        suite::freeze(&opts.config, &dir)?;
    }
    let todo: Vec<usize> = indices
        .iter()
        .copied()
        .filter(|&i| {
            let dir_i = dir.run_dir(&manifest.runs[i].run_id);
            !RunRecord::read(&dir_i).is_some_and(|r| r.finished)
        })
        .collect();
    log(&format!(
        "sweep `{name}` in {}: {} runs, {} finished already, {} to run",
        dir.root.display(),
        indices.len(),
        indices.len() - todo.len(),
        todo.len()
    ));
    let text = slurm::script(&dir, &name, &opts.slurm);
    let how = Send {
        scheduler: opts.scheduler,
        exe: opts.slurm.exe.clone(),
        jobs: opts.jobs,
        parallel: opts.parallel,
        script: text,
    };
    send(dir, manifest, todo, &how, stop, log)
}

/// `marl sweep resubmit DIR`: the runs neither finished, running nor queued, again.
#[allow(clippy::too_many_arguments)]
pub fn resubmit(
    dir: &Path,
    scheduler: Option<Scheduler>,
    jobs: usize,
    parallel: Option<usize>,
    new_script: Option<&SlurmOptions>,
    dry_run: bool,
    stop: &StopSignal,
    log: &dyn Fn(&str),
) -> Result<Launched> {
    let dir = SweepDir::new(dir)?;
    let manifest = Manifest::read(&dir)?;
    let states = status::status(&dir, true)?;
    let todo = status::to_resubmit(&states);
    let scheduler = scheduler.unwrap_or(if slurm::submissions(&dir).is_empty() {
        Scheduler::Local
    } else {
        Scheduler::Slurm
    });
    log(&format!(
        "sweep `{}` in {}: {} of {} runs to resubmit{}",
        manifest.name,
        dir.root.display(),
        todo.len(),
        manifest.runs.len(),
        if todo.is_empty() {
            String::new()
        } else {
            format!(" (indices {})", slurm::array_spec(&todo, None))
        }
    ));
    let text = match (new_script, slurm::existing_script(&dir)) {
        (Some(o), _) => slurm::script(&dir, &manifest.name, o),
        (None, Some(t)) => t,
        (None, None) if scheduler == Scheduler::Slurm => {
            bail!(
                "{} has no batch script yet: give the Slurm options (--partition, --time, ...)",
                dir.root.display()
            )
        }
        (None, None) => String::new(),
    };
    let parallel = parallel.or_else(|| slurm::last_parallel(&dir));
    if dry_run {
        if scheduler == Scheduler::Slurm {
            slurm::submit(&dir, &text, &todo, parallel, true)?;
        }
        return Ok(Launched {
            dir,
            manifest,
            submitted: Vec::new(),
            submissions: Vec::new(),
            local: None,
        });
    }
    let how = Send {
        scheduler,
        exe: std::env::current_exe()?,
        jobs,
        parallel,
        script: text,
    };
    send(dir, manifest, todo, &how, stop, log)
}

/// How to send tasks to a scheduler.
struct Send {
    scheduler: Scheduler,
    exe: PathBuf,
    jobs: usize,
    parallel: Option<usize>,
    script: String,
}

fn send(
    dir: SweepDir,
    manifest: Manifest,
    todo: Vec<usize>,
    how: &Send,
    stop: &StopSignal,
    log: &dyn Fn(&str),
) -> Result<Launched> {
    let mut launched = Launched {
        dir,
        manifest,
        submitted: todo.clone(),
        submissions: Vec::new(),
        local: None,
    };
    if todo.is_empty() {
        return Ok(launched);
    }
    match how.scheduler {
        Scheduler::Slurm => {
            launched.submissions =
                slurm::submit(&launched.dir, &how.script, &todo, how.parallel, false)?;
            for s in &launched.submissions {
                log(&format!(
                    "submitted job array {} (--array={}, indices {}..={})",
                    s.job_id,
                    s.array,
                    s.indices.first().copied().unwrap_or(0),
                    s.indices.last().copied().unwrap_or(0)
                ));
            }
        }
        Scheduler::Local => {
            launched.local = Some(local::run(
                &launched.dir,
                &how.exe,
                &todo,
                how.jobs,
                stop,
                log,
            )?);
        }
    }
    Ok(launched)
}
