//! `marl eval`: load a run's policy with the config stored beside it (never the current
//! defaults), run episodes, and report returns, lengths and the task's own figures with their
//! spread; or play one episode and draw it.
//!
//! Episodes are played by the one evaluation loop ([`crate::train::evaluation`], which says how
//! they are seeded) on n = min(episodes, 128) environments, so the numbers depend on the
//! checkpoint, the seed and the episode count only: not on the number of worker threads.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use marl_envs::{derive_seed, registry};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::backend::MessageMode;
use crate::config::TrainConfig;
use crate::run::{checkpoint, RunDir};
pub use crate::tools::stats::Spread;
use crate::train::evaluation::{self, EvalEpisode};
use crate::train::learner::Learner;
use crate::train::rollout::EnvPool;

/// What to evaluate and how.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Episodes to run.
    pub episodes: usize,
    /// Most likely actions instead of samples.
    pub greedy: bool,
    /// Seed of the evaluation environments (and of sampling).
    pub seed: u64,
    /// Groups that act uniformly at random instead of by their policy.
    pub random_groups: Vec<String>,
    /// Another environment id to evaluate in (`--env`; its parameters then start empty and
    /// come from `env_set`), e.g. the reference env through the Python bridge.
    pub env_id: Option<String>,
    /// Environment parameters changed from the run's (`--env-set`).
    pub env_set: toml::Table,
    /// Worker threads stepping the environments (None: the run's `num_workers`).
    pub num_workers: Option<usize>,
    /// What communicating actors receive (`--messages`): as sent, zeros, or shuffled.
    pub messages: MessageMode,
}

/// An evaluation's result.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The checkpoint evaluated.
    pub checkpoint: String,
    /// Environment steps the checkpoint was trained for.
    pub global_step: u64,
    /// Environment id.
    pub env: String,
    /// Environment parameters evaluated under (the run's, with `--env-set` applied).
    pub env_params: toml::Table,
    /// Episodes run.
    pub episodes: usize,
    /// Greedy or stochastic.
    pub greedy: bool,
    /// Seed of the episodes.
    pub seed: u64,
    /// What communicating actors received: `sent`, `zero` or `shuffle`.
    pub messages: &'static str,
    /// Per-agent mean return (PettingZoo scale), over episodes.
    pub return_per_agent: Spread,
    /// Team return (sum over agents).
    pub team_return: Spread,
    /// Episode length.
    pub episode_length: Spread,
    /// Per group: mean per-agent return of its members.
    pub groups: Vec<(String, Spread)>,
    /// Per agent.
    pub agents: Vec<(String, Spread)>,
    /// The environment's task figures (LBF: food collected; tag: catches; spread:
    /// collisions and occupied landmarks).
    pub task: Vec<(String, Spread)>,
}

/// A run's policy, ready to act in pools of `n_envs` environments (it holds none itself).
pub struct Loaded {
    /// The checkpoint loaded.
    pub ck_dir: PathBuf,
    /// The run's config, resolved for `n_envs` environments on the CPU.
    pub cfg: TrainConfig,
    /// The networks, restored.
    pub learner: Learner,
    /// Per group: acts at random (`EvalOptions::random_groups`).
    pub random: Vec<bool>,
    /// Environment steps the checkpoint was trained for.
    pub global_step: u64,
}

/// Loads the checkpoint found at `path` (run directory or checkpoint) with the run's own
/// config, as `marl eval` does, for batches of `n_envs` environments (the Python `Policy`).
pub fn load(path: &Path, opts: &EvalOptions, n_envs: usize) -> Result<Loaded> {
    // The checkpoint `latest` names, or the newest intact one before it when that is damaged.
    let checkpoint::Found {
        dir: ck_dir,
        checkpoint: ck,
    } = checkpoint::load_latest_good(path)?;
    let run = RunDir::of_checkpoint(&ck_dir);
    let cfg_path = run.config_path();
    if !run.has_config() {
        bail!(
            "{}: no config beside the checkpoint (expected {}); marl eval needs the run's own config",
            ck_dir.display(),
            cfg_path.display()
        );
    }
    let mut raw = run.read_config()?;
    if let Some(id) = &opts.env_id {
        raw.env.id = id.clone();
        raw.env.params = toml::Table::new();
    }
    for (k, v) in &opts.env_set {
        raw.env.params.insert(k.clone(), v.clone());
    }
    raw.env.n_envs = n_envs;
    raw.num_workers = opts.num_workers.unwrap_or(raw.num_workers);
    // The policy acts on the CPU in f32, wherever and however it trained.
    raw.device = "cpu".into();
    raw.ppo.use_mixed_precision = false;
    // Only the networks matter here; keep the resolved config valid for the new batch size.
    raw.total_timesteps = raw
        .total_timesteps
        .max((raw.env.n_envs * raw.env.rollout_length) as u64);
    let cfg = TrainConfig::resolve(raw).with_context(|| {
        if opts.env_set.is_empty() && opts.env_id.is_none() {
            format!("{}", cfg_path.display())
        } else {
            format!("{} with --env / --env-set", cfg_path.display())
        }
    })?;
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
    // The policy acts on the CPU whatever it trained on: evaluation batches are small.
    let dev = crate::backend::device::parse("cpu")?;
    // No training environments: the caller builds the pool it evaluates on.
    let mut learner = Learner::for_evaluation(cfg.clone(), dev)?;
    if opts.messages != MessageMode::Sent {
        if !cfg.groups.iter().any(|g| g.communicates) {
            bail!(
                "--messages {}: the run's actors do not communicate (algo.enable_communication \
                 is false in {})",
                opts.messages.name(),
                cfg_path.display()
            );
        }
        learner.set_message_mode(opts.messages);
    }
    learner.restore(&ck, false).with_context(|| {
        format!(
            "{}: the checkpoint does not fit `{}` with parameters {}",
            ck_dir.display(),
            cfg.spec.id,
            toml::Value::Table(cfg.env().params.clone())
        )
    })?;
    Ok(Loaded {
        ck_dir,
        cfg,
        learner,
        random,
        global_step: ck.state.global_step,
    })
}

/// Evaluates the checkpoint found at `path` (run directory or checkpoint).
pub fn evaluate(path: &Path, opts: &EvalOptions) -> Result<EvalReport> {
    if opts.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let Loaded {
        ck_dir,
        cfg,
        mut learner,
        random,
        global_step,
    } = load(path, opts, opts.episodes.min(128))?;
    let env = cfg.env();
    let mut pool = EnvPool::new(&env.id, &env.params, env.n_envs, cfg.num_workers())?;
    let episodes = evaluation::run_episodes(
        &mut learner,
        &mut pool,
        opts.seed,
        opts.episodes,
        opts.greedy,
        &random,
    )?;
    let na = cfg.spec.num_agents();
    let column =
        |f: &dyn Fn(&EvalEpisode) -> f64| Spread::of(&episodes.iter().map(f).collect::<Vec<_>>());
    let groups = cfg
        .groups
        .iter()
        .map(|g| {
            let s = column(&|e| {
                g.agents.iter().map(|&a| e.returns[a]).sum::<f64>() / g.agents.len() as f64
            });
            (g.name.clone(), s)
        })
        .collect();
    let agents = (0..na)
        .map(|a| (cfg.spec.agents[a].name.clone(), column(&|e| e.returns[a])))
        .collect();
    let task = pool
        .metric_names()
        .iter()
        .enumerate()
        .map(|(k, name)| (name.to_string(), column(&|e| e.metrics[k])))
        .collect();
    Ok(EvalReport {
        checkpoint: ck_dir.display().to_string(),
        global_step,
        env: cfg.spec.id.clone(),
        env_params: cfg.env().params.clone(),
        episodes: episodes.len(),
        greedy: opts.greedy,
        seed: opts.seed,
        messages: opts.messages.name(),
        return_per_agent: column(&|e| e.returns.iter().sum::<f64>() / na as f64),
        team_return: column(&|e| e.returns.iter().sum::<f64>()),
        episode_length: column(&|e| e.length as f64),
        groups,
        agents,
        task,
    })
}

/// Where `--render` draws.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderTarget {
    /// Frames as text in the terminal.
    Ascii,
    /// An animated GIF of every frame.
    Gif(PathBuf),
    /// A picture of the last frame (SVG or PNG by the extension).
    Picture(PathBuf),
}

impl RenderTarget {
    /// Parses `ascii`, `FILE.gif`, `FILE.svg` or `FILE.png`.
    pub fn parse(s: &str) -> Result<Self> {
        if s == "ascii" {
            return Ok(Self::Ascii);
        }
        let p = PathBuf::from(s);
        match p.extension().and_then(|e| e.to_str()) {
            Some("gif") => Ok(Self::Gif(p)),
            Some("svg" | "png") => Ok(Self::Picture(p)),
            _ => bail!("--render `{s}`: expected `ascii` or a file ending in .gif, .svg or .png"),
        }
    }
}

/// Plays the evaluation's first episode (the same one `evaluate` counts first, for the same
/// seed and options) and draws it; returns its per-agent returns.
pub fn render(path: &Path, opts: &EvalOptions, target: &RenderTarget) -> Result<Vec<f64>> {
    let Loaded {
        cfg,
        mut learner,
        random,
        ..
    } = load(
        path,
        &EvalOptions {
            num_workers: Some(0),
            ..opts.clone()
        },
        1,
    )?;
    learner.swap_sampler(evaluation::sampler(opts.seed));
    let mut env = registry::make(&cfg.env().id, &cfg.env().params)?;
    let spec = env.spec().clone();
    let mut joint = vec![0.0; spec.action_len()];
    // What EnvPool::reset(derive_seed(seed, 0)) gives environment 0.
    let round_seed = evaluation::round_seed(opts.seed, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(round_seed);
    let mut ep = marl_envs::LiveEpisode::start(env.as_mut(), Some(derive_seed(round_seed, 0)));
    let draw = |env: &dyn marl_envs::MultiAgentEnv| -> Result<String> {
        match target {
            RenderTarget::Ascii => Ok(env.render_ascii()),
            _ => env
                .render_svg()
                .with_context(|| format!("`{}` cannot draw pictures; use --render ascii", spec.id)),
        }
    };
    let mut frames = vec![draw(env.as_ref())?];
    loop {
        let first = [ep.steps == 0];
        learner.policy_actions(
            &ep.obs,
            &ep.masks,
            &first,
            &[],
            opts.greedy,
            &random,
            &mut rng,
            &mut joint,
        )?;
        let ended = ep.step(env.as_mut(), &joint)?;
        frames.push(draw(env.as_ref())?);
        if ended {
            break;
        }
    }
    match target {
        RenderTarget::Ascii => {
            let mut out = std::io::stdout().lock();
            let live = out.is_terminal();
            for (k, f) in frames.iter().enumerate() {
                if live {
                    // Clear and redraw in place, at a pace a person can follow.
                    write!(out, "\x1b[2J\x1b[H")?;
                }
                writeln!(out, "frame {k}/{}\n{f}", frames.len() - 1)?;
                out.flush()?;
                if live {
                    std::thread::sleep(std::time::Duration::from_millis(150));
                }
            }
        }
        RenderTarget::Gif(p) => crate::tools::picture::write_gif(&frames, 12, p)?,
        RenderTarget::Picture(p) => {
            let last = frames.last().context("no frame")?;
            if p.extension().is_some_and(|e| e == "png") {
                crate::tools::picture::write_png(last, 2.0, p)?;
            } else {
                crate::tools::picture::write_svg(last, p)?;
            }
        }
    }
    Ok(ep.returns)
}
