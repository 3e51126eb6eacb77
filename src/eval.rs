//! `marl eval`: load a run's policy with the config stored beside it and report returns with
//! their spread.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use marl_envs::derive_seed;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checkpoint;
use crate::config::{self, TrainConfig};
use crate::rollout::EnvPool;
use crate::trainer;

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Episodes to run.
    pub episodes: usize,
    /// Most likely actions instead of samples.
    pub greedy: bool,
    /// Seed of the evaluation environments (and of sampling).
    pub seed: u64,
    /// Groups that act uniformly at random instead of by their policy.
    pub random_groups: Vec<String>,
}

/// Mean, standard deviation and 95% confidence half-width.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// 1.96 standard errors.
    pub ci95: f64,
}

impl Spread {
    /// Of a sample.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n.max(1.0);
        let var = if n > 1.0 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            std: var.sqrt(),
            ci95: 1.96 * var.sqrt() / n.max(1.0).sqrt(),
        }
    }
}

/// An evaluation's result.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The checkpoint evaluated.
    pub checkpoint: String,
    /// Environment id.
    pub env: String,
    /// Episodes run.
    pub episodes: usize,
    /// Greedy or stochastic.
    pub greedy: bool,
    /// Per-agent mean return (PettingZoo scale), over episodes.
    pub return_per_agent: Spread,
    /// Team return (sum over agents).
    pub team_return: Spread,
    /// Per group: mean per-agent return of its members.
    pub groups: Vec<(String, Spread)>,
    /// Per agent.
    pub agents: Vec<(String, Spread)>,
}

/// The run directory a checkpoint belongs to (where config.toml lives).
pub fn run_dir_of(ck_dir: &Path) -> PathBuf {
    // run/checkpoints/000123 -> run
    ck_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ck_dir.to_path_buf())
}

/// Evaluates the checkpoint found at `path` (run directory or checkpoint).
pub fn evaluate(path: &Path, opts: &EvalOptions) -> Result<EvalReport> {
    let ck_dir = checkpoint::resolve(path)?;
    let run = run_dir_of(&ck_dir);
    let cfg_path = run.join("config.toml");
    let mut raw = config::load(&cfg_path, &[])
        .with_context(|| format!("the run's config {}", cfg_path.display()))?;
    raw.env.n_envs = opts.episodes.clamp(1, 128);
    raw.num_workers = 0;
    // Only the networks matter here; keep the resolved config valid for the new batch size.
    raw.total_timesteps = raw
        .total_timesteps
        .max((raw.env.n_envs * raw.env.rollout_length) as u64);
    let cfg = TrainConfig::resolve(raw)?;
    let random: Vec<bool> = cfg
        .groups
        .iter()
        .map(|g| opts.random_groups.contains(&g.name))
        .collect();
    for name in &opts.random_groups {
        if !cfg.groups.iter().any(|g| &g.name == name) {
            bail!(
                "--policy {name}=random: no group `{name}` (groups: {})",
                cfg.groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let dev = crate::device::parse(&cfg.raw.device).or_else(|_| crate::device::parse("cpu"))?;
    let ck = checkpoint::load(&ck_dir)?;
    let mut l = trainer::build_learner(cfg.clone(), dev)?;
    trainer::restore(&mut l, &ck, false)
        .with_context(|| format!("{}: incompatible with its config", ck_dir.display()))?;
    l.rng = ChaCha8Rng::seed_from_u64(derive_seed(opts.seed, 7));
    let mut pool = EnvPool::new(&cfg.raw.env.id, &cfg.raw.env.params, cfg.raw.env.n_envs, 0)?;
    let mut returns = Vec::new();
    let mut round = 0;
    while returns.len() < opts.episodes {
        returns.extend(l.evaluate(
            &mut pool,
            derive_seed(opts.seed, round),
            opts.greedy,
            &random,
        )?);
        round += 1;
    }
    returns.truncate(opts.episodes);
    let na = cfg.spec.num_agents();
    let per_agent: Vec<f64> = returns
        .iter()
        .map(|r| r.iter().sum::<f64>() / na as f64)
        .collect();
    let team: Vec<f64> = returns.iter().map(|r| r.iter().sum::<f64>()).collect();
    let groups = cfg
        .groups
        .iter()
        .map(|g| {
            let xs: Vec<f64> = returns
                .iter()
                .map(|r| g.agents.iter().map(|&a| r[a]).sum::<f64>() / g.agents.len() as f64)
                .collect();
            (g.name.clone(), Spread::of(&xs))
        })
        .collect();
    let agents = (0..na)
        .map(|a| {
            (
                cfg.spec.agents[a].name.clone(),
                Spread::of(&returns.iter().map(|r| r[a]).collect::<Vec<_>>()),
            )
        })
        .collect();
    Ok(EvalReport {
        checkpoint: ck_dir.display().to_string(),
        env: cfg.spec.id.clone(),
        episodes: returns.len(),
        greedy: opts.greedy,
        return_per_agent: Spread::of(&per_agent),
        team_return: Spread::of(&team),
        groups,
        agents,
    })
}
