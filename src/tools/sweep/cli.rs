//! The command line of `marl sweep`: the clap definitions and what each subcommand prints.
//!
//! Exit codes: 0 done (a local sweep: every run finished; Slurm: submitted), 1 a local sweep
//! with failed runs, 2 an error, 3 stopped by a signal (`task`, local sweeps), 4 the run
//! directory is in use by another process (`task`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::collect::{self, CollectOptions};
use super::grid::Grid;
use super::manifest::SweepDir;
use super::slurm::SlurmOptions;
use super::task::Outcome;
use super::{LaunchOptions, Scheduler};
use crate::run::lock::EXIT_BUSY;
use crate::util::signals::{StopSignal, EXIT_STOPPED};

/// `marl sweep ...`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    /// Status, resubmit, collect, or one task.
    #[command(subcommand)]
    pub action: Option<SweepCommand>,
    /// The launch itself.
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// `marl sweep CONFIG ...`
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The config file (its `[sweep]` table, if any, gives axes and seeds), or a directory of
    /// configs: a suite, every `*.toml` in it but `suite.toml`, in one sweep.
    #[arg(required = true)]
    pub config: Option<PathBuf>,
    /// An axis (`--set ppo.learning_rate=1e-3,3e-4`) or, with one value, an override of every
    /// run.
    #[arg(long = "set", value_name = "KEY=V1,V2,...")]
    pub set: Vec<String>,
    /// Seeds: `0..5` (five), `2..=4`, or `0,3,7` (default: the config's seed).
    #[arg(long)]
    pub seeds: Option<String>,
    /// The sweep directory (default: <out_dir>/sweep-<config>); launching into it again
    /// reuses finished runs, resumes interrupted ones and appends new ones.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to run: here (`--jobs` at a time) or as Slurm job arrays.
    #[arg(long = "backend", value_enum, default_value = "local")]
    pub scheduler: Scheduler,
    /// Local runs at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Slurm: options of the batch script.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Print the runs, the batch script and the sbatch commands; write and submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of the batch script and its submission.
#[derive(Debug, Args, Clone, Default)]
pub struct SlurmArgs {
    /// At most K tasks of each array at once (`--array=...%K`).
    #[arg(long, value_name = "K")]
    pub parallel: Option<usize>,
    /// sbatch --partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// sbatch --time (the job's time limit; USR1 comes 90 s before it).
    #[arg(long)]
    pub time: Option<String>,
    /// sbatch --account.
    #[arg(long)]
    pub account: Option<String>,
    /// Any other sbatch option, as written: `--sbatch=--mem=4G --sbatch=--qos=low`.
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// Requeues a task makes itself after the time-limit warning (SLURM_RESTART_COUNT bound).
    #[arg(long, default_value_t = 3)]
    pub max_restarts: u32,
}

impl SlurmArgs {
    fn options(&self) -> Result<SlurmOptions> {
        Ok(SlurmOptions {
            exe: std::env::current_exe().context("cannot find the marl binary")?,
            partition: self.partition.clone(),
            time: self.time.clone(),
            account: self.account.clone(),
            extra: self.sbatch.clone(),
            max_restarts: self.max_restarts,
        })
    }

    fn any_script_option(&self) -> bool {
        self.partition.is_some()
            || self.time.is_some()
            || self.account.is_some()
            || !self.sbatch.is_empty()
            || self.max_restarts != 3
    }
}

/// `marl sweep status|resubmit|collect|task`
#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Each run's state (pending, running, finished, failed with its last error line), from
    /// the run directories and, when there, squeue and sacct.
    Status {
        /// The sweep directory.
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Do not ask Slurm.
        #[arg(long)]
        no_slurm: bool,
    },
    /// Send the runs that are neither finished, running nor queued (missing and failed) again,
    /// as a sparse array.
    Resubmit {
        /// The sweep directory.
        dir: PathBuf,
        /// Where to run (default: Slurm if the sweep was submitted there).
        #[arg(long = "backend", value_enum)]
        scheduler: Option<Scheduler>,
        /// Local runs at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Slurm: a new batch script with these options (default: the sweep's script as it
        /// is; --parallel defaults to the last submission's).
        #[command(flatten)]
        slurm: SlurmArgs,
        /// Print what would be submitted.
        #[arg(long)]
        dry_run: bool,
    },
    /// The tables of `marl compare` grouped by config across seeds, the missing runs, learning
    /// curves, and marl-eval's JSON (collect.md, collect.json, plots/, marl-eval.json); for a
    /// suite (a sweep of a directory of configs), the results table instead (results.md,
    /// results.json, plots/, marl-eval.json).
    Collect {
        /// The sweep directory.
        dir: PathBuf,
        /// Episodes of each final evaluation.
        #[arg(long, default_value_t = 1000)]
        episodes: usize,
        /// The evaluation seed of the final evaluations (`marl eval --seed`); a suite refuses
        /// one that a run trained with.
        #[arg(long, default_value_t = 0)]
        eval_seed: u64,
        /// Return that counts as solved for "steps to threshold" (default: the first config's
        /// mean final return).
        #[arg(long)]
        threshold: Option<f64>,
        /// Evaluations at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print JSON instead of the tables.
        #[arg(long)]
        json: bool,
    },
    /// Train one run of the sweep (what each array task runs): skip it if finished, resume it
    /// from its checkpoint, or start it.
    Task {
        /// The sweep directory.
        dir: PathBuf,
        /// The manifest index.
        index: usize,
        /// Seconds to wait for a run directory another process holds.
        #[arg(long, default_value_t = 30)]
        lock_wait: u64,
    },
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `marl sweep ...`.
pub fn run(args: SweepArgs, quiet: bool) -> Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let log = move |msg: &str| {
        if !quiet {
            eprintln!("{msg}");
        }
    };
    let Some(action) = args.action else {
        let a = args.launch;
        let config = a.config.context("marl sweep needs a config file")?;
        let stop = StopSignal::install()?;
        let opts = LaunchOptions {
            config,
            grid: Grid::from_args(&a.set, a.seeds.as_deref())?,
            out: a.out,
            scheduler: a.scheduler,
            jobs: a.jobs.unwrap_or_else(cores),
            parallel: a.slurm.parallel,
            slurm: a.slurm.options()?,
            dry_run: a.dry_run,
        };
        let launched = super::launch(&opts, &stop, &log)?;
        return Ok(finish(&launched, &stop, t0));
    };
    match action {
        SweepCommand::Status {
            dir,
            json,
            no_slurm,
        } => {
            let runs = super::status::status(&SweepDir::new(&dir)?, !no_slurm)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", super::status::table(&runs));
            }
            Ok(ExitCode::SUCCESS)
        }
        SweepCommand::Resubmit {
            dir,
            scheduler,
            jobs,
            slurm,
            dry_run,
        } => {
            let stop = StopSignal::install()?;
            let options = slurm.options()?;
            let launched = super::resubmit(
                &dir,
                scheduler,
                jobs.unwrap_or_else(cores),
                slurm.parallel,
                slurm.any_script_option().then_some(&options),
                dry_run,
                &stop,
                &log,
            )?;
            Ok(finish(&launched, &stop, t0))
        }
        SweepCommand::Collect {
            dir,
            episodes,
            eval_seed,
            threshold,
            jobs,
            json,
        } => {
            anyhow::ensure!(episodes > 0, "--episodes must be at least 1");
            let sweep = SweepDir::new(&dir)?;
            if super::suite::is_suite(&super::manifest::Manifest::read(&sweep)?) {
                anyhow::ensure!(
                    threshold.is_none(),
                    "--threshold: a suite's table measures steps to each config's peer figure \
                     (suite.toml), not to one threshold"
                );
                let opts = super::suite::SuiteOptions {
                    episodes,
                    eval_seed,
                    jobs: jobs.unwrap_or_else(cores),
                };
                let c = super::suite::collect(&sweep, &opts)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&c)?);
                } else {
                    print!("{}", super::suite::markdown(&c));
                    println!("\nwrote {}", c.out.join("results.md").display());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let opts = CollectOptions {
                episodes,
                eval_seed,
                threshold,
                jobs: jobs.unwrap_or_else(cores),
            };
            let c = collect::collect(&sweep, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", collect::markdown(&c, &opts));
                println!("\nwrote {}", c.out.join("collect.md").display());
            }
            Ok(ExitCode::SUCCESS)
        }
        SweepCommand::Task {
            dir,
            index,
            lock_wait,
        } => {
            let stop = StopSignal::install()?;
            let outcome = super::task::run(&dir, index, &stop, Duration::from_secs(lock_wait))?;
            Ok(match outcome {
                Outcome::Finished => ExitCode::SUCCESS,
                Outcome::Stopped => ExitCode::from(EXIT_STOPPED),
                Outcome::Busy => ExitCode::from(EXIT_BUSY),
                Outcome::Failed => ExitCode::from(2),
            })
        }
    }
}

/// The exit code of a launch or resubmit, after a summary line.
fn finish(l: &super::Launched, stop: &StopSignal, t0: std::time::Instant) -> ExitCode {
    let dir = l.dir.root.display();
    match &l.local {
        Some(r) => {
            println!(
                "{} finished, {} stopped, {} failed, {} not started in {:.1} s; `marl sweep status {dir}`, `marl sweep collect {dir}`",
                r.finished.len(),
                r.stopped.len(),
                r.failed.len(),
                r.not_started.len(),
                t0.elapsed().as_secs_f64()
            );
            if !r.failed.is_empty() {
                ExitCode::FAILURE
            } else if !r.stopped.is_empty() || stop.received().is_some() {
                ExitCode::from(EXIT_STOPPED)
            } else {
                ExitCode::SUCCESS
            }
        }
        None => {
            if l.submissions.is_empty() {
                println!("nothing submitted");
            } else {
                let ids: Vec<&str> = l.submissions.iter().map(|s| s.job_id.as_str()).collect();
                println!(
                    "submitted {} runs as job array(s) {}; `marl sweep status {dir}`",
                    l.submitted.len(),
                    ids.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
    }
}
