//! THE training loop, top to bottom: collect -> advantages -> update -> log / evaluate /
//! checkpoint. Everything else is behind calls; the order of operations is here.

pub mod buffer;
pub mod evaluation;
pub mod learner;
pub mod rollout;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use marl_envs::derive_seed;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{self, TrainConfig};
use crate::run::checkpoint;
use crate::run::metrics::{MetricsSink, Row};
use crate::run::summary::RunRecord;
use crate::run::RunDir;
use crate::train::evaluation::EvalPolicy;
use crate::train::learner::{EpisodeStats, Learner};
use crate::train::rollout::EnvPool;

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

/// Seeds of the learner's generators, derived from the master seed.
fn init_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, 0x1_0000_0001))
}

fn sample_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, 0x1_0000_0002))
}

/// The seed of the evaluation environments: fixed for the run, so curves compare like with
/// like.
pub fn eval_seed(seed: u64) -> u64 {
    derive_seed(seed, 0x1_0000_0003)
}

/// Builds the learner for a config (networks initialized from the seed) with its training
/// environments.
pub fn build_learner(cfg: TrainConfig, dev: Device) -> Result<Learner> {
    let e = &cfg.raw.env;
    let pool = EnvPool::new(&e.id, &e.params, e.n_envs, cfg.raw.num_workers)?;
    build_learner_with(cfg, dev, Some(pool))
}

/// Builds the learner for a config acting in `pool`; `None` for a learner that only evaluates
/// on the pools it is given (`marl eval`), so that no environment of its own is started (for a
/// Python environment: no idle worker process). Such a learner cannot collect or checkpoint.
pub fn build_learner_with(cfg: TrainConfig, dev: Device, pool: Option<EnvPool>) -> Result<Learner> {
    let pool = pool.unwrap_or_else(|| EnvPool::detached(&cfg.spec));
    let seed = cfg.raw.seed;
    Learner::new(cfg, dev, pool, &mut init_rng(seed), sample_rng(seed))
}

fn make_run_dir(cfg: &TrainConfig, opts: &RunOptions) -> Result<PathBuf> {
    if let Some(d) = &opts.run_dir {
        std::fs::create_dir_all(d)
            .with_context(|| format!("cannot create output directory {}", d.display()))?;
        return Ok(d.clone());
    }
    let out = Path::new(&cfg.raw.out_dir);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!(
        "{}__{}__s{}__{ts}",
        cfg.spec.id.replace('/', "-"),
        opts.config_name,
        cfg.raw.seed
    );
    let dir = out.join(name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    Ok(dir)
}

/// Trains `cfg` (or resumes the run in `opts.resume`) and returns where it wrote.
pub fn train(
    cfg: TrainConfig,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary> {
    let dev = crate::backend::device::parse(&cfg.raw.device)?;
    // ── set-up: run directory, learner, metrics ──
    let run_dir = RunDir::new(match &opts.resume {
        Some(dir) => checkpoint::resolve(dir).map(|_| dir.clone())?,
        None => make_run_dir(&cfg, opts)?,
    });
    // One writer per run directory, until this function returns.
    let _lock = run_dir.lock()?;
    let resume_ck = match &opts.resume {
        Some(dir) => Some(checkpoint::load_latest_good(dir)?.checkpoint),
        None => None,
    };
    if resume_ck.is_none() {
        run_dir
            .write_config(&config::to_toml(&cfg.raw)?)
            .with_context(|| format!("output directory {} is not writable", run_dir.display()))?;
    }
    let mut l = build_learner(cfg.clone(), dev)?;
    l.reset_envs(cfg.raw.seed)?;
    let (mut update, mut global_step, mut episodes) = (0u64, 0u64, 0u64);
    if let Some(ck) = &resume_ck {
        l.restore(ck, true)?;
        (update, global_step, episodes) =
            (ck.state.update, ck.state.global_step, ck.state.episodes);
        reporter.note(&format!(
            "resumed {} at update {update}, step {global_step}",
            run_dir.display()
        ));
    }
    // Opened with the first row: its columns are the names the row carries.
    let mut sink: Option<MetricsSink> = None;
    let mut eval_pool = if cfg.raw.logging.eval_interval > 0 {
        Some(EnvPool::new(
            &cfg.raw.env.id,
            &cfg.raw.env.params,
            cfg.raw.env.n_envs,
            0,
        )?)
    } else {
        None
    };
    let p = cfg.raw.ppo.clone();
    let lg = cfg.raw.logging.clone();
    let batch = cfg.batch_size as u64;
    let na = cfg.spec.num_agents();
    let start = Instant::now();
    let start_step = global_step;
    let policies = EvalPolicy::of_mode(lg.eval_mode);
    let mut last_eval: Vec<Evaluation> = policies
        .iter()
        .map(|&policy| Evaluation {
            policy,
            return_per_agent: f64::NAN,
            groups: Vec::new(),
        })
        .collect();
    let mut interrupted = false;
    // A failed write ends the run on one line that names the latest good checkpoint.
    let stopped = |e: anyhow::Error| checkpoint::with_latest_good(e, &run_dir);
    if resume_ck.is_none() {
        // The initial policy: a baseline for evaluation, and something to keep if the very
        // first update goes wrong.
        let ck = l.checkpoint(0, 0, 0)?;
        checkpoint::save(&run_dir, &ck, lg.keep_checkpoints).map_err(stopped)?;
    }

    while update < cfg.num_updates {
        let progress = update as f64 / cfg.num_updates as f64;
        let lr = l.set_learning_rate(progress);
        let ent_coef = Learner::scheduled(
            p.entropy_schedule,
            p.entropy_coef,
            p.entropy_coef_final,
            progress,
        );

        // ── collect ──
        let t0 = Instant::now();
        let mut stats = EpisodeStats {
            agent_return_sum: vec![0.0; na],
            ..Default::default()
        };
        l.collect(&mut stats)?;
        let rollout_s = t0.elapsed().as_secs_f64();

        // ── advantages ──
        l.advantages();

        // ── update ──
        let t1 = Instant::now();
        let gstats = l.update(ent_coef)?;
        let update_s = t1.elapsed().as_secs_f64();
        update += 1;
        global_step += batch;
        episodes += stats.episodes;

        // ── evaluate ──
        let crossed = |interval: u64| {
            interval > 0 && (global_step / interval) > ((global_step - batch) / interval)
        };
        let last = update == cfg.num_updates;
        // Per policy: per-agent, team and per-group returns (NaN: no evaluation this update).
        let mut eval_rows =
            vec![(f64::NAN, f64::NAN, vec![f64::NAN; cfg.groups.len()]); policies.len()];
        if let Some(pool) = &mut eval_pool {
            if crossed(lg.eval_interval) || last {
                for (k, policy) in policies.iter().enumerate() {
                    let returns = evaluate_episodes(
                        &mut l,
                        pool,
                        cfg.raw.seed,
                        lg.eval_episodes,
                        policy.greedy(),
                    )?;
                    let (per_agent, team, groups) = summarize(&returns, &cfg);
                    let by_group: Vec<(String, f64)> = cfg
                        .groups
                        .iter()
                        .map(|g| g.name.clone())
                        .zip(groups.iter().copied())
                        .collect();
                    reporter.note(&format!(
                        "step {global_step}: {} evaluation return {per_agent:.3} per agent ({})",
                        policy.name(),
                        by_group
                            .iter()
                            .map(|(g, r)| format!("{g} {r:.3}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    eval_rows[k] = (per_agent, team, groups);
                    last_eval[k].return_per_agent = per_agent;
                    last_eval[k].groups = by_group;
                }
            }
        }

        // ── log ──
        let means = stats.agent_means();
        let team: f64 = if stats.episodes == 0 {
            f64::NAN
        } else {
            means.iter().sum()
        };
        let per_agent = if stats.episodes == 0 {
            f64::NAN
        } else {
            team / na as f64
        };
        let sps = (global_step - start_step) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let mut row = Row::default();
        row.set("update", update as f64);
        row.set("global_step", global_step as f64);
        row.set("episodes", episodes as f64);
        row.set("charts/episodic_return", per_agent);
        row.set("charts/team_return", team);
        row.set(
            "charts/episode_length",
            if stats.episodes == 0 {
                f64::NAN
            } else {
                stats.length_sum as f64 / stats.episodes as f64
            },
        );
        row.set("charts/sps", sps);
        row.set("charts/learning_rate", lr);
        row.set("charts/entropy_coef", ent_coef);
        // Each loss term and diagnostic by its name: the mean over groups, then per group.
        for (name, _) in gstats[0].terms.iter() {
            let mean = gstats
                .iter()
                .map(|g| g.terms.get(name).unwrap_or(f64::NAN))
                .sum::<f64>()
                / gstats.len() as f64;
            row.set(format!("losses/{name}"), mean);
        }
        row.set("time/rollout_s", rollout_s);
        row.set("time/update_s", update_s);
        for (policy, (per_agent, team, _)) in policies.iter().zip(&eval_rows) {
            row.set(policy.column("eval/return"), *per_agent);
            row.set(policy.column("eval/team_return"), *team);
        }
        for (gi, g) in cfg.groups.iter().enumerate() {
            let gr = if stats.episodes == 0 {
                f64::NAN
            } else {
                g.agents.iter().map(|&a| means[a]).sum::<f64>() / g.agents.len() as f64
            };
            row.set(format!("{}/return", g.name), gr);
            for (policy, (_, _, groups)) in policies.iter().zip(&eval_rows) {
                row.set(
                    policy.column(&format!("{}/eval_return", g.name)),
                    groups[gi],
                );
            }
            for (name, v) in gstats[gi].terms.iter() {
                row.set(format!("{}/{name}", g.name), v);
            }
        }
        if lg.log_agent_metrics {
            for a in 0..na {
                let (gi, k) = cfg
                    .groups
                    .iter()
                    .enumerate()
                    .find_map(|(gi, g)| g.agents.iter().position(|&x| x == a).map(|k| (gi, k)))
                    .expect("every agent is in a group");
                row.set(format!("agent_{a}/return"), means[a]);
                row.set(
                    format!("agent_{a}/policy_loss"),
                    gstats[gi].agent_policy_loss[k],
                );
            }
        }
        let sink = match &mut sink {
            Some(s) => s,
            None => sink.insert(
                MetricsSink::open(
                    &run_dir,
                    row.names(),
                    resume_ck.as_ref().map(|c| c.state.update),
                )
                .map_err(stopped)?,
            ),
        };
        sink.write_row(&row).map_err(stopped)?;
        tracing::debug!(
            update,
            global_step,
            per_agent,
            rollout_s,
            update_s,
            "update"
        );
        reporter.update(&Progress {
            update,
            num_updates: cfg.num_updates,
            global_step,
            episodic_return: per_agent,
            eval_return: last_eval[0].return_per_agent,
            sps,
        });

        // ── checkpoint ──
        let stop_now = stop.load(Ordering::SeqCst);
        if crossed(lg.checkpoint_interval) || last || stop_now {
            let ck = l.checkpoint(update, global_step, episodes)?;
            let dest = checkpoint::save(&run_dir, &ck, lg.keep_checkpoints).map_err(stopped)?;
            reporter.note(&format!("checkpoint {}", dest.display()));
        }
        if stop_now && !last {
            reporter.note("stopped on request; resume with --resume");
            interrupted = true;
            break;
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let before = if resume_ck.is_some() {
        RunRecord::read(&run_dir).map_or(0.0, |r| r.wall_s)
    } else {
        0.0
    };
    RunRecord {
        finished: update == cfg.num_updates,
        updates: update,
        global_step,
        wall_s: before + wall_s,
        sps: global_step as f64 / (before + wall_s).max(1e-9),
        eval_return: Some(last_eval[0].return_per_agent).filter(|r| r.is_finite()),
    }
    .write(&run_dir)
    .map_err(stopped)?;
    Ok(RunSummary {
        run_dir: run_dir.path().to_path_buf(),
        updates: update,
        global_step,
        eval_return: last_eval[0].return_per_agent,
        eval_group_returns: last_eval[0].groups.clone(),
        evaluations: last_eval,
        interrupted,
        steps_this_run: global_step - start_step,
        wall_s,
    })
}

/// Runs greedy (or, with `greedy = false`, stochastic) episodes on the evaluation pool until
/// `episodes` have finished; returns each episode's per-agent returns.
pub fn evaluate_episodes(
    l: &mut Learner,
    pool: &mut EnvPool,
    seed: u64,
    episodes: usize,
    greedy: bool,
) -> Result<Vec<Vec<f64>>> {
    // Sampled evaluation actions come from a generator of their own, so that training's
    // numbers do not depend on whether (or how) it evaluates.
    let sampler = ChaCha8Rng::seed_from_u64(derive_seed(eval_seed(seed), 7));
    let training = l.swap_sampler(sampler);
    let mut out = Vec::new();
    let mut round = 0u64;
    let result = loop {
        if out.len() >= episodes {
            break Ok(());
        }
        match l.evaluate(pool, derive_seed(eval_seed(seed), round), greedy, &[]) {
            Ok(r) => out.extend(r.into_iter().map(|e| e.returns)),
            Err(e) => break Err(e),
        }
        round += 1;
    };
    l.swap_sampler(training);
    result?;
    out.truncate(episodes);
    Ok(out)
}

/// Mean per-agent return, mean team return, and each group's mean per-agent return.
pub fn summarize(returns: &[Vec<f64>], cfg: &TrainConfig) -> (f64, f64, Vec<f64>) {
    let n = returns.len().max(1) as f64;
    let na = cfg.spec.num_agents() as f64;
    let team = returns.iter().map(|r| r.iter().sum::<f64>()).sum::<f64>() / n;
    let groups = cfg
        .groups
        .iter()
        .map(|g| {
            returns
                .iter()
                .map(|r| g.agents.iter().map(|&a| r[a]).sum::<f64>() / g.agents.len() as f64)
                .sum::<f64>()
                / n
        })
        .collect();
    (team / na, team, groups)
}
