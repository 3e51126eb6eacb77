//! The training run: the object that owns a run's data (its directory and lock, the learner,
//! the evaluation pool, the metrics sink, the counters) and does each stage of an iteration as
//! a method, and [`train`], the loop that calls them. One iteration, top to bottom:
//!
//! | stage | method | what happens |
//! |---|---|---|
//! | set up or resume | [`TrainingRun::start`] | run directory and lock, config.toml, the learner; from the latest checkpoint on `--resume` |
//! | collect | [`TrainingRun::iterate`] | `Learner::collect`: one rollout of every environment, acting batched over environments and agents |
//! | advantages | [`TrainingRun::iterate`] | `Learner::advantages`: GAE per group |
//! | update | [`TrainingRun::iterate`] | `Learner::update`: PPO epochs over the batch, loss terms by name |
//! | evaluate | [`TrainingRun::evaluate`] | greedy and/or stochastic episodes when `logging.eval_interval` is crossed, and at the end |
//! | log | [`TrainingRun::log`] | one row of metrics.csv, metrics.jsonl and TensorBoard |
//! | checkpoint | [`TrainingRun::checkpoint`] | when `logging.checkpoint_interval` is crossed, at the end, or on a stop request |
//! | finish | [`TrainingRun::finish`] | summary.json, and what the caller is told |

pub mod buffer;
pub mod evaluation;
pub mod learner;
pub mod rollout;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::backend::device;
use crate::config::TrainConfig;
use crate::run::checkpoint::{self, Checkpoint};
use crate::run::lock::RunLock;
use crate::run::metrics::{EvalColumns, GroupColumns, MetricsSink, UpdateMetrics};
use crate::run::summary::RunRecord;
use crate::run::RunDir;
use crate::train::evaluation::{EvalFigures, EvalPolicy};
use crate::train::learner::{EpisodeStats, GroupStats, Learner};
use crate::train::rollout::EnvPool;

/// Trains `cfg` (or resumes the run in `opts.resume`) and returns where it wrote.
pub fn train(
    cfg: TrainConfig,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary> {
    let mut run = TrainingRun::start(cfg, opts, reporter)?;
    while !run.is_complete() {
        let iteration = run.iterate()?;
        let evaluations = run.evaluate(reporter)?;
        run.log(&iteration, &evaluations, reporter)?;
        let stop_requested = stop.load(Ordering::SeqCst);
        run.checkpoint(stop_requested, reporter)?;
        if stop_requested && !run.is_complete() {
            reporter.note("stopped on request; resume with --resume");
            return run.finish(true);
        }
    }
    run.finish(false)
}

/// Progress as the loop reports it after every update.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Updates done.
    pub update: u64,
    /// Updates in the run.
    pub num_updates: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// Mean per-agent return of the episodes finished in this update.
    pub episodic_return: f64,
    /// Latest evaluation return (per agent) of the first policy of `logging.eval_mode`
    /// (greedy unless it is `stochastic`).
    pub eval_return: f64,
    /// Environment steps per second over the run.
    pub sps: f64,
}

/// Receives progress (the binary shows it with indicatif).
pub trait Reporter {
    /// After every update.
    fn update(&mut self, p: &Progress);
    /// A line of news (checkpoint written, evaluation, stop requested).
    fn note(&mut self, msg: &str);
}

/// A reporter that says nothing.
pub struct Quiet;

impl Reporter for Quiet {
    fn update(&mut self, _p: &Progress) {}
    fn note(&mut self, _msg: &str) {}
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Name used in the run directory (the config file's stem).
    pub config_name: String,
    /// Continue the run in this directory from its latest checkpoint.
    pub resume: Option<PathBuf>,
    /// Exact run directory to use instead of a new timestamped one.
    pub run_dir: Option<PathBuf>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Updates done.
    pub updates: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// Last evaluation of the first policy of `logging.eval_mode` (greedy unless it is
    /// `stochastic`), per-agent mean return.
    pub eval_return: f64,
    /// The same evaluation, per group (name, mean return of its agents).
    pub eval_group_returns: Vec<(String, f64)>,
    /// Every policy's last evaluation (`logging.eval_mode = "both"`: greedy, then
    /// stochastic).
    pub evaluations: Vec<Evaluation>,
    /// Whether the run stopped early on request.
    pub interrupted: bool,
    /// Environment steps done by this invocation (less than `global_step` after a resume).
    pub steps_this_run: u64,
    /// Wall time of the training loop.
    pub wall_s: f64,
}

/// One policy's evaluation during training.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Greedy or stochastic.
    pub policy: EvalPolicy,
    /// Per-agent mean return (NaN: none yet).
    pub return_per_agent: f64,
    /// Per group: name, mean return of its agents.
    pub groups: Vec<(String, f64)>,
}

/// Where a run is: updates, environment steps and episodes done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Updates done.
    pub update: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// Episodes finished.
    pub episodes: u64,
}

/// What one iteration's collect, advantages and update stages produced.
pub struct Iteration {
    /// The actor's learning rate of this update.
    pub learning_rate: f64,
    /// The entropy coefficient of this update.
    pub entropy_coef: f64,
    /// The training episodes that finished during the rollout.
    pub episodes: EpisodeStats,
    /// Each group's loss terms and diagnostics.
    pub groups: Vec<GroupStats>,
    /// Wall time of the collect stage.
    pub rollout_s: f64,
    /// Wall time of the update stage.
    pub update_s: f64,
}

/// A training run in progress: everything its stages share.
pub struct TrainingRun {
    cfg: TrainConfig,
    run_dir: RunDir,
    /// One writer per run directory, for the run's lifetime.
    _lock: RunLock,
    learner: Learner,
    /// The environments of periodic evaluations (`logging.eval_interval > 0`).
    eval_pool: Option<EnvPool>,
    /// The policies every evaluation runs (`logging.eval_mode`).
    policies: &'static [EvalPolicy],
    /// Each policy's latest evaluation.
    last_eval: Vec<Evaluation>,
    /// Opened with the first row: its columns are the names that row carries.
    sink: Option<MetricsSink>,
    /// The update the run resumed at (its metrics files are cut there).
    resumed_at: Option<u64>,
    at: Counters,
    started: Instant,
    start_step: u64,
}

impl TrainingRun {
    /// Sets the run up: a new run directory with its config.toml and the initial checkpoint,
    /// or, with `opts.resume`, the learner, generators and environments of the latest
    /// checkpoint.
    pub fn start(cfg: TrainConfig, opts: &RunOptions, reporter: &mut dyn Reporter) -> Result<Self> {
        let dev = device::parse(cfg.device())?;
        let run_dir = match (&opts.resume, &opts.run_dir) {
            (Some(dir), _) => checkpoint::resolve(dir).map(|_| RunDir::new(dir))?,
            (None, Some(dir)) => RunDir::create(dir)?,
            (None, None) => RunDir::create_in(
                Path::new(cfg.out_dir()),
                &cfg.spec.id,
                &opts.config_name,
                cfg.seed(),
            )?,
        };
        let lock = run_dir.lock()?;
        let resumed: Option<Checkpoint> = match &opts.resume {
            Some(dir) => Some(checkpoint::load_latest_good(dir)?.checkpoint),
            None => None,
        };
        if resumed.is_none() {
            run_dir.write_config(&cfg.to_toml()?).with_context(|| {
                format!("output directory {} is not writable", run_dir.display())
            })?;
        }
        let mut learner = Learner::for_training(cfg.clone(), dev)?;
        learner.reset_envs(cfg.seed())?;
        let mut at = Counters::default();
        if let Some(ck) = &resumed {
            learner.restore(ck, true)?;
            at = Counters {
                update: ck.state.update,
                global_step: ck.state.global_step,
                episodes: ck.state.episodes,
            };
            reporter.note(&format!(
                "resumed {} at update {}, step {}",
                run_dir.display(),
                at.update,
                at.global_step
            ));
        }
        let logging = cfg.logging();
        let env = cfg.env();
        let eval_pool = if logging.eval_interval > 0 {
            Some(EnvPool::new(&env.id, &env.params, env.n_envs, 0)?)
        } else {
            None
        };
        let policies = EvalPolicy::of_mode(logging.eval_mode);
        let last_eval = policies
            .iter()
            .map(|&policy| Evaluation {
                policy,
                return_per_agent: f64::NAN,
                groups: Vec::new(),
            })
            .collect();
        let mut run = Self {
            run_dir,
            _lock: lock,
            learner,
            eval_pool,
            policies,
            last_eval,
            sink: None,
            resumed_at: resumed.as_ref().map(|ck| ck.state.update),
            start_step: at.global_step,
            at,
            started: Instant::now(),
            cfg,
        };
        if resumed.is_none() {
            // The initial policy: a baseline for evaluation, and something to keep if the very
            // first update goes wrong.
            run.save_checkpoint()?;
        }
        Ok(run)
    }

    /// Whether every update of the run is done.
    pub fn is_complete(&self) -> bool {
        self.at.update == self.cfg.num_updates
    }

    /// Collect, advantages, update: one rollout of every environment, GAE, and the PPO epochs
    /// over it, at this update's learning rate and entropy coefficient.
    pub fn iterate(&mut self) -> Result<Iteration> {
        let progress = self.at.update as f64 / self.cfg.num_updates as f64;
        let learning_rate = self.learner.set_learning_rate(progress);
        let ppo = self.cfg.ppo();
        let entropy_coef = Learner::scheduled(
            ppo.entropy_schedule,
            ppo.entropy_coef,
            ppo.entropy_coef_final,
            progress,
        );

        let collect_started = Instant::now();
        let mut episodes = EpisodeStats::of_agents(self.cfg.spec.num_agents());
        self.learner.collect(&mut episodes)?;
        let rollout_s = collect_started.elapsed().as_secs_f64();

        self.learner.advantages();

        let update_started = Instant::now();
        let groups = self.learner.update(entropy_coef)?;
        let update_s = update_started.elapsed().as_secs_f64();

        self.at.update += 1;
        self.at.global_step += self.cfg.batch_size as u64;
        self.at.episodes += episodes.episodes;
        Ok(Iteration {
            learning_rate,
            entropy_coef,
            episodes,
            groups,
            rollout_s,
            update_s,
        })
    }

    /// Evaluates every policy of `logging.eval_mode` when this update crossed
    /// `logging.eval_interval` (or was the last); per policy, its figures or `None`.
    pub fn evaluate(&mut self, reporter: &mut dyn Reporter) -> Result<Vec<Option<EvalFigures>>> {
        let mut figures = vec![None; self.policies.len()];
        let due = self.crossed(self.cfg.logging().eval_interval) || self.is_complete();
        let Some(pool) = self.eval_pool.as_mut().filter(|_| due) else {
            return Ok(figures);
        };
        let seed = evaluation::training_eval_seed(self.cfg.seed());
        let episodes = self.cfg.logging().eval_episodes;
        for (k, policy) in self.policies.iter().enumerate() {
            let played = evaluation::run_episodes(
                &mut self.learner,
                pool,
                seed,
                episodes,
                policy.greedy(),
                &[],
            )?;
            let f = EvalFigures::of(&played, &self.cfg.groups, self.cfg.spec.num_agents());
            let by_group: Vec<(String, f64)> = self
                .cfg
                .groups
                .iter()
                .map(|g| g.name.clone())
                .zip(f.groups.iter().copied())
                .collect();
            reporter.note(&format!(
                "step {}: {} evaluation return {:.3} per agent ({})",
                self.at.global_step,
                policy.name(),
                f.per_agent,
                by_group
                    .iter()
                    .map(|(g, r)| format!("{g} {r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            self.last_eval[k].return_per_agent = f.per_agent;
            self.last_eval[k].groups = by_group;
            figures[k] = Some(f);
        }
        Ok(figures)
    }

    /// Writes this update's row of metrics and reports progress.
    pub fn log(
        &mut self,
        it: &Iteration,
        evaluations: &[Option<EvalFigures>],
        reporter: &mut dyn Reporter,
    ) -> Result<()> {
        let training = it.episodes.figures();
        let sps = (self.at.global_step - self.start_step) as f64
            / self.started.elapsed().as_secs_f64().max(1e-9);
        let row = UpdateMetrics {
            update: self.at.update,
            global_step: self.at.global_step,
            episodes: self.at.episodes,
            training: &training,
            sps,
            learning_rate: it.learning_rate,
            entropy_coef: it.entropy_coef,
            rollout_s: it.rollout_s,
            update_s: it.update_s,
            groups: self
                .cfg
                .groups
                .iter()
                .zip(&it.groups)
                .map(|(g, stats)| GroupColumns {
                    name: &g.name,
                    agents: &g.agents,
                    terms: &stats.terms,
                    agent_policy_loss: &stats.agent_policy_loss,
                })
                .collect(),
            evaluations: self
                .policies
                .iter()
                .zip(evaluations)
                .map(|(policy, f)| EvalColumns {
                    stochastic: !policy.greedy(),
                    figures: f
                        .as_ref()
                        .map(|f| (f.per_agent, f.team, f.groups.as_slice())),
                })
                .collect(),
            log_agents: self.cfg.logging().log_agent_metrics,
        }
        .row();
        if self.sink.is_none() {
            let sink = MetricsSink::open(&self.run_dir, row.names(), self.resumed_at)
                .map_err(|e| self.stopped(e))?;
            self.sink = Some(sink);
        }
        if let Some(sink) = &mut self.sink {
            sink.write_row(&row)
                .map_err(|e| checkpoint::with_latest_good(e, &self.run_dir))?;
        }
        tracing::debug!(
            update = self.at.update,
            global_step = self.at.global_step,
            per_agent = training.per_agent,
            rollout_s = it.rollout_s,
            update_s = it.update_s,
            "update"
        );
        reporter.update(&Progress {
            update: self.at.update,
            num_updates: self.cfg.num_updates,
            global_step: self.at.global_step,
            episodic_return: training.per_agent,
            eval_return: self.last_eval[0].return_per_agent,
            sps,
        });
        Ok(())
    }

    /// Writes a checkpoint when this update crossed `logging.checkpoint_interval`, was the
    /// last, or a stop was requested.
    pub fn checkpoint(&mut self, stop_requested: bool, reporter: &mut dyn Reporter) -> Result<()> {
        let due = self.crossed(self.cfg.logging().checkpoint_interval) || self.is_complete();
        if due || stop_requested {
            let dest = self.save_checkpoint()?;
            reporter.note(&format!("checkpoint {}", dest.display()));
        }
        Ok(())
    }

    /// Writes summary.json (the wall time adds up over resumes) and says how the run ended.
    pub fn finish(self, interrupted: bool) -> Result<RunSummary> {
        let wall_s = self.started.elapsed().as_secs_f64();
        let before = match self.resumed_at {
            Some(_) => RunRecord::read(&self.run_dir).map_or(0.0, |r| r.wall_s),
            None => 0.0,
        };
        let first = &self.last_eval[0];
        RunRecord {
            finished: self.is_complete(),
            updates: self.at.update,
            global_step: self.at.global_step,
            wall_s: before + wall_s,
            sps: self.at.global_step as f64 / (before + wall_s).max(1e-9),
            eval_return: Some(first.return_per_agent).filter(|r| r.is_finite()),
        }
        .write(&self.run_dir)
        .map_err(|e| self.stopped(e))?;
        Ok(RunSummary {
            updates: self.at.update,
            global_step: self.at.global_step,
            eval_return: first.return_per_agent,
            eval_group_returns: first.groups.clone(),
            interrupted,
            steps_this_run: self.at.global_step - self.start_step,
            wall_s,
            evaluations: self.last_eval,
            run_dir: self.run_dir.path().to_path_buf(),
        })
    }

    /// The learner's checkpoint at the current counters, saved into the run directory.
    fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let Counters {
            update,
            global_step,
            episodes,
        } = self.at;
        let ck = self.learner.checkpoint(update, global_step, episodes)?;
        checkpoint::save(&self.run_dir, &ck, self.cfg.logging().keep_checkpoints)
            .map_err(|e| self.stopped(e))
    }

    /// Whether the environment steps of this update crossed a multiple of `interval` (0: never).
    fn crossed(&self, interval: u64) -> bool {
        let step = self.at.global_step;
        let before = step - self.cfg.batch_size as u64;
        interval > 0 && step / interval > before / interval
    }

    /// A failed write ends the run on one line that names the latest good checkpoint.
    fn stopped(&self, err: anyhow::Error) -> anyhow::Error {
        checkpoint::with_latest_good(err, &self.run_dir)
    }
}
