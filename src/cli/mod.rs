//! The command line: clap definitions and the dispatch to each command.

pub mod logging;
pub mod progress;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use marl_envs::testing::random_actions;
use marl_envs::{parity, registry, LiveEpisode};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Multi-agent reinforcement learning: MAPPO with centralized critics, and IPPO.
#[derive(Debug, Parser)]
#[command(name = "marl", version, about, long_about = None)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train MAPPO (or IPPO) from a TOML config.
    Train(TrainArgs),
    /// Evaluate a trained policy with the config stored beside it.
    Eval(EvalArgs),
    /// Train a config and a baseline (IPPO, MAPPO or another config) over several seeds and
    /// report a table, a significance test and learning curves.
    Compare(CompareArgs),
    /// Learning curves of runs (grouped by method: seeds become a mean with an interval).
    Plot(PlotArgs),
    /// Grids of configs and seeds, here or as Slurm job arrays; their status, resubmission
    /// and tables (README, "Sweeps on a cluster").
    Sweep(Box<crate::tools::sweep::cli::SweepArgs>),
    /// Benchmarks of the learner.
    Bench {
        /// What to measure.
        #[command(subcommand)]
        action: BenchCommand,
    },
    /// Inspect configs.
    Config {
        /// What to do.
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// List the built-in environments, or check them against recorded reference episodes.
    Envs {
        /// What to do with the environments (default: list them).
        #[command(subcommand)]
        action: Option<EnvsCommand>,
    },
}

/// `marl train ...`
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The config file (not needed with --resume, which reads the run's own config).
    pub config: Option<PathBuf>,
    /// Override a key: `--set ppo.learning_rate=3e-4 --set seed=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Directory for run directories (overrides `out_dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device (overrides `device`): cpu, cuda, cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Continue the run in RUN_DIR from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Write into exactly this run directory.
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub run_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `marl eval ...`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory or a checkpoint directory.
    pub checkpoint: PathBuf,
    /// Episodes to run.
    #[arg(long, default_value_t = 100)]
    pub episodes: usize,
    /// Take the most likely action instead of sampling.
    #[arg(long)]
    pub greedy: bool,
    /// Seed of the evaluation episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Make a group act at random: `--policy prey=random`.
    #[arg(long = "policy", value_name = "GROUP=random")]
    pub policy: Vec<String>,
    /// Evaluate under a changed environment parameter: `--env-set max_cycles=50`.
    #[arg(long = "env-set", value_name = "KEY=VALUE")]
    pub env_set: Vec<String>,
    /// Evaluate in another environment with the same spaces (its parameters from --env-set):
    /// `--env python --env-set factory='"mpe2.simple_spread_v3:parallel_env"' ...`.
    #[arg(long = "env", value_name = "ID")]
    pub env_id: Option<String>,
    /// Worker threads stepping the environments (default: the run's num_workers); the
    /// numbers do not depend on it.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Play the first episode and draw it: `ascii` (terminal), FILE.gif (animation), or
    /// FILE.svg / FILE.png (the last frame).
    #[arg(long, value_name = "ascii|FILE.gif|FILE.svg|FILE.png")]
    pub render: Option<String>,
    /// What communicating actors receive: the messages as `sent`, `zero`s, or each
    /// receiver's counterpart's in another environment of the batch (`shuffle`).
    #[arg(long, value_name = "sent|zero|shuffle", default_value = "sent")]
    pub messages: crate::backend::MessageMode,
}

/// `marl compare ...`
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The method's config file.
    pub config: PathBuf,
    /// `ippo` (the config with centralized_training = false), `mappo`, or a config file.
    #[arg(long, default_value = "ippo")]
    pub baseline: String,
    /// Seeds per method: the config's seed, seed + 1, ...
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Override a key of both configs: `--set total_timesteps=500000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output directory (default: <out_dir>/compare-<config>-vs-<baseline>); finished runs
    /// in it are reused, interrupted ones resumed.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Return that counts as solved for "steps to threshold" (default: the baseline's mean
    /// final return).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Episodes of each final evaluation.
    #[arg(long, default_value_t = 100)]
    pub episodes: usize,
    /// The evaluation to compare: `greedy` (most likely actions; the curves' eval/return) or
    /// `stochastic` (sampled actions; eval/return_stochastic, which the config must log with
    /// logging.eval_mode = "stochastic" or "both"). Default: greedy, unless the config
    /// evaluates stochastic only.
    #[arg(long, value_enum)]
    pub eval_mode: Option<crate::train::evaluation::EvalPolicy>,
    /// Runs trained at once, one thread each (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print JSON instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// `marl plot ...`
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Run directories (runs of one method across seeds are averaged).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The metrics.csv column to draw.
    #[arg(long, default_value = crate::run::metrics::EVAL_RETURN)]
    pub metric: String,
    /// For an evaluation column: the greedy evaluation's figures, the stochastic one's
    /// (`<column>_stochastic`), or both (two curves per method). Default: what every run
    /// logged (logging.eval_mode).
    #[arg(long, value_enum)]
    pub eval_mode: Option<crate::config::EvalMode>,
    /// Output directory.
    #[arg(long, default_value = "plots")]
    pub out: PathBuf,
    /// File name (without extension) of the figure.
    #[arg(long, default_value = "curves")]
    pub name: String,
}

/// `marl bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One PPO minibatch update (forward, log-prob, entropy, losses, backward, clip, Adam) on
    /// random data, as bench/torch_ppo_update.py measures PyTorch; one thread.
    Update {
        /// `plain` (JaxMARL/CleanRL), `mappo` (on-policy, LayerNorms) or `rnn` (JaxMARL's
        /// MAPPO-RNN: Dense 128, GRU 128, Dense 128 on sequences).
        #[arg(long, default_value = "plain")]
        arch: String,
        /// Minibatch size (rows).
        #[arg(long, default_value_t = 4800)]
        batch: usize,
        /// Steps per sequence for `--arch rnn` (25: one MPE episode).
        #[arg(long, default_value_t = 25)]
        seq: usize,
        /// Timed repetitions.
        #[arg(long, default_value_t = 9)]
        reps: usize,
        /// `manual` (the hand-written CPU forward and backward of nn::cpu_mlp: what training
        /// uses on the CPU) or `candle` (autograd: what it uses on CUDA, or with
        /// network.cpu_fast_path = false).
        #[arg(long = "impl", default_value = "manual")]
        implementation: String,
        /// Device: cpu, cuda, cuda:N (CUDA takes `--impl candle`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// bf16 passes with f32 parameters and Adam moments (ppo.use_mixed_precision; CUDA).
        #[arg(long)]
        mixed_precision: bool,
    },
}

/// `marl config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the fully resolved config, every default filled in.
    Show {
        /// The config file.
        file: PathBuf,
        /// Override a key.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// `marl envs ...`
#[derive(Debug, Subcommand)]
pub enum EnvsCommand {
    /// List the registry: id, agents, observation and action spaces, one line each.
    List,
    /// Replay episodes recorded from the Python reference and report, per file, PASS or the
    /// first mismatch (step, agent, index, expected, got). Exits non-zero on any mismatch.
    CheckParity {
        /// Trace files (formats marl-parity-v1, marl-parity-lbf-v1).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Replay MPE traces (marl-parity-v1) through the Python bridge with the reference env
    /// itself (mpe2 in the given interpreter's environment): PASS or the first mismatch.
    CheckBridge {
        /// Trace files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The Python interpreter with mpe2 installed (scripts/setup-reference.sh makes .venv).
        #[arg(long, default_value = ".venv/bin/python")]
        python: String,
    },
    /// Environment steps per second of any environment (Python ones included) under uniform
    /// random actions, one environment, on this thread.
    Bench {
        /// Environment id.
        id: String,
        /// Environment parameter, as TOML: `--param factory="m:f"`.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Steps to time.
        #[arg(long, default_value_t = 20_000)]
        steps: usize,
    },
    /// Play an episode with random (masked) actions, print ASCII frames, and optionally write
    /// an SVG picture of the state after each step.
    Render {
        /// Environment id (`marl envs` lists them; any lbforaging task id works too).
        id: String,
        /// Environment parameter, as TOML: `--param N=5 --param local_ratio=0.3`.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Seed of the reset and of the actions.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop after this many steps (default: the whole episode).
        #[arg(long)]
        steps: Option<usize>,
        /// Write the initial state to FILE.svg, and step k to FILE-k.svg.
        #[arg(long, value_name = "FILE.svg")]
        svg: Option<PathBuf>,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let action = match cli.command {
        Command::Train(args) => return train(args, cli.global.quiet),
        Command::Eval(args) => return eval(args),
        Command::Compare(args) => return compare(args, cli.global.quiet),
        Command::Sweep(args) => return crate::tools::sweep::cli::run(*args, cli.global.quiet),
        Command::Plot(args) => {
            let files = crate::tools::plot::plot_runs(
                &args.runs,
                &args.metric,
                args.eval_mode,
                &args.out,
                &args.name,
            )?;
            for f in files {
                println!("wrote {}", f.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Config {
            action: ConfigCommand::Show { file, set },
        } => {
            let raw = crate::config::load(&file, &set)?;
            crate::config::TrainConfig::resolve(raw.clone())
                .with_context(|| format!("{}", file.display()))?;
            print!("{}", crate::config::to_toml(&raw)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench {
            action:
                BenchCommand::Update {
                    arch,
                    batch,
                    seq,
                    reps,
                    implementation,
                    device,
                    mixed_precision,
                },
        } => {
            let kind = crate::tools::bench::kind_of(&implementation)?;
            let dev = crate::backend::device::parse(&device)?;
            let precision = match mixed_precision {
                true => crate::backend::Precision::Bf16,
                false => crate::backend::Precision::F32,
            };
            let (median, min) =
                crate::tools::bench::update(kind, &arch, batch, seq, reps.max(1), &dev, precision)?;
            let tag = if implementation == "candle" {
                "marl_update"
            } else {
                "marl_update_manual"
            };
            let seq = if arch == "rnn" {
                format!(" seq={seq}")
            } else {
                String::new()
            };
            // The CPU's f32 line as before; other devices and bf16 say so at the end.
            let mut on = String::new();
            if !dev.is_cpu() {
                on += &format!(" device={device}");
            }
            if mixed_precision {
                on += " precision=bf16";
            }
            println!(
                "{tag} arch={arch}{seq} batch={batch} threads=1 median_ms={median:.2} min_ms={min:.2} reps={reps}{on}"
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Envs { action } => action,
    };
    match action {
        None | Some(EnvsCommand::List) => list_envs(),
        Some(EnvsCommand::CheckParity { files }) => check_parity(&files),
        Some(EnvsCommand::CheckBridge { files, python }) => check_bridge(&files, &python),
        Some(EnvsCommand::Bench { id, params, steps }) => bench_env(&id, &params, steps),
        Some(EnvsCommand::Render {
            id,
            params,
            seed,
            steps,
            svg,
        }) => render(&id, &params, seed, steps, svg.as_deref()),
    }
}

fn list_envs() -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for entry in registry::REGISTRY {
        let env = (entry.make)(&toml::Table::new())?;
        let spec = env.spec();
        let mut groups: Vec<String> = Vec::new();
        for ty in spec.agent_types() {
            let members: Vec<_> = spec.agents.iter().filter(|a| a.agent_type == ty).collect();
            let a = members[0];
            groups.push(format!(
                "{}x {ty} obs {} act {}",
                members.len(),
                a.obs_dim,
                a.action_space
            ));
        }
        writeln!(
            out,
            "{:<34} {} | state {} | {} steps | {}",
            entry.id,
            groups.join(", "),
            spec.state_dim,
            spec.max_steps,
            entry.summary
        )?;
    }
    writeln!(
        out,
        "{:<34} any environment written in Python (params: factory = \"module:function\", api = \"marl\" | \"pettingzoo\"; README)",
        marl_envs::python::ID
    )?;
    Ok(ExitCode::SUCCESS)
}

fn check_parity(files: &[PathBuf]) -> Result<ExitCode> {
    report_traces(files, &|f| parity::check_file(f))
}

fn check_bridge(files: &[PathBuf], python: &str) -> Result<ExitCode> {
    report_traces(files, &|f| parity::check_bridge_file(f, python))
}

/// Prints each trace's PASS, first mismatch or error, and the totals; fails if any failed.
fn report_traces(
    files: &[PathBuf],
    check: &dyn Fn(&std::path::Path) -> Result<parity::ParityReport, parity::TraceError>,
) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        match check(f) {
            Ok(report) => {
                if report.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                }
                writeln!(out, "{report}")?;
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "ERROR {e}")?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench_env(id: &str, params: &[String], steps: usize) -> Result<ExitCode> {
    let params = crate::config::parse_assignments(params, "--param")?;
    let mut env = registry::make(id, &params)?;
    let spec = env.spec().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    // Actions drawn up front, so the timing is the environment's alone.
    let mut all = vec![0.0; steps.max(1) * spec.action_len()];
    for a in all.chunks_exact_mut(spec.action_len().max(1)) {
        random_actions(env.as_ref(), &mut rng, a);
    }
    let mut ep = LiveEpisode::start(env.as_mut(), Some(0));
    let t0 = std::time::Instant::now();
    for k in 0..steps {
        let a = &all[k * spec.action_len()..(k + 1) * spec.action_len()];
        if ep.step(env.as_mut(), a)? {
            ep.restart(env.as_mut(), None);
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{id}: {steps} steps in {s:.3} s, {:.0} env-steps/s, {:.1} us/step (resets included)",
        steps as f64 / s,
        1e6 * s / steps.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

fn render(
    id: &str,
    params: &[String],
    seed: u64,
    steps: Option<usize>,
    svg: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let params = crate::config::parse_assignments(params, "--param")?;
    let mut env = registry::make(id, &params)?;
    let spec = env.spec().clone();
    let mut actions = vec![0.0; spec.action_len()];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ep = LiveEpisode::start(env.as_mut(), Some(seed));
    let write_svg = |env: &dyn marl_envs::MultiAgentEnv, k: Option<usize>| -> Result<()> {
        let Some(path) = svg else { return Ok(()) };
        let Some(picture) = env.render_svg() else {
            return Ok(());
        };
        let path = match k {
            None => path.to_path_buf(),
            Some(k) => {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("frame");
                path.with_file_name(format!("{stem}-{k}.svg"))
            }
        };
        std::fs::write(&path, picture).with_context(|| format!("cannot write {}", path.display()))
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", env.render_ascii())?;
    write_svg(env.as_ref(), None)?;
    for k in 1..=steps.unwrap_or(spec.max_steps).min(spec.max_steps) {
        random_actions(env.as_ref(), &mut rng, &mut actions);
        let ended = ep.step(env.as_mut(), &actions)?;
        writeln!(out, "actions {actions:?}\n{}", env.render_ascii())?;
        write_svg(env.as_ref(), Some(k))?;
        if ended {
            break;
        }
    }
    let returns = &ep.returns;
    let names: Vec<String> = spec
        .agents
        .iter()
        .zip(returns)
        .map(|(a, r)| format!("{} {r:.3}", a.name))
        .collect();
    writeln!(out, "returns: {}", names.join(", "))?;
    Ok(ExitCode::SUCCESS)
}

fn train(args: TrainArgs, quiet: bool) -> Result<ExitCode> {
    let (mut raw, name) = match (&args.config, &args.resume) {
        (_, Some(run)) => {
            if !args.set.is_empty() || args.config.is_some() {
                bail!("--resume continues a run with its own config.toml: drop the config file and --set");
            }
            (
                crate::run::RunDir::new(run.as_path())
                    .read_config()
                    .with_context(|| format!("resuming {}", run.display()))?,
                String::new(),
            )
        }
        (Some(file), None) => {
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("config")
                .to_string();
            (crate::config::load(file, &args.set)?, stem)
        }
        (None, None) => {
            bail!("marl train needs a config file (e.g. configs/coop.toml) or --resume RUN_DIR")
        }
    };
    if let Some(out) = &args.out {
        raw.out_dir = out.display().to_string();
    }
    if let Some(d) = &args.device {
        raw.device = d.clone();
    }
    let cfg = crate::config::TrainConfig::resolve(raw)?;
    // Ctrl-C, SIGTERM, SIGUSR1: finish the current update, checkpoint, exit with
    // EXIT_STOPPED; a second Ctrl-C kills.
    let signals = crate::util::signals::StopSignal::install()?;
    let stop = signals.flag.clone();
    let opts = crate::train::RunOptions {
        config_name: name,
        resume: args.resume.clone(),
        run_dir: args.run_dir.clone(),
    };
    let mut bar = crate::cli::progress::Bar::new(cfg.num_updates, !(args.no_progress || quiet));
    let summary = match crate::train::train(cfg, &opts, &mut bar, stop) {
        Err(e) if e.downcast_ref::<crate::run::lock::Busy>().is_some() => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(crate::run::lock::EXIT_BUSY));
        }
        other => other?,
    };
    bar.finish();
    println!("run directory: {}", summary.run_dir.display());
    println!(
        "{} updates, {} environment steps ({} in this run, {:.1} s, {:.0} steps/s){}",
        summary.updates,
        summary.global_step,
        summary.steps_this_run,
        summary.wall_s,
        summary.steps_this_run as f64 / summary.wall_s.max(1e-9),
        match (summary.interrupted, signals.received()) {
            (true, Some(sig)) => format!(", stopped by {sig}; resume with --resume"),
            (true, None) => ", stopped early".to_string(),
            _ => String::new(),
        }
    );
    for e in summary.evaluations.iter() {
        if e.return_per_agent.is_finite() {
            let groups: Vec<String> = e
                .groups
                .iter()
                .map(|(g, r)| format!("{g} {r:.3}"))
                .collect();
            println!(
                "{} evaluation: {:.3} per agent ({})",
                e.policy.name(),
                e.return_per_agent,
                groups.join(", ")
            );
        }
    }
    Ok(if summary.interrupted {
        ExitCode::from(crate::util::signals::EXIT_STOPPED)
    } else {
        ExitCode::SUCCESS
    })
}

fn eval(args: EvalArgs) -> Result<ExitCode> {
    let mut random_groups = Vec::new();
    for p in &args.policy {
        match p.split_once('=') {
            Some((g, "random")) => random_groups.push(g.to_string()),
            _ => bail!("--policy `{p}`: expected GROUP=random"),
        }
    }
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let opts = crate::tools::eval::EvalOptions {
        episodes: args.episodes,
        greedy: args.greedy,
        seed: args.seed,
        random_groups,
        env_set: crate::config::parse_assignments(&args.env_set, "--env-set")?,
        env_id: args.env_id.clone(),
        num_workers: args.workers,
        messages: args.messages,
    };
    if let Some(r) = &args.render {
        let target = crate::tools::eval::RenderTarget::parse(r)?;
        let returns = crate::tools::eval::render(&args.checkpoint, &opts, &target)?;
        let per_agent = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
        match &target {
            crate::tools::eval::RenderTarget::Gif(p)
            | crate::tools::eval::RenderTarget::Picture(p) => {
                println!(
                    "wrote {} (episode return {per_agent:.3} per agent)",
                    p.display()
                )
            }
            crate::tools::eval::RenderTarget::Ascii => {
                println!("episode return {per_agent:.3} per agent")
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = crate::tools::eval::evaluate(&args.checkpoint, &opts)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = |x: &crate::tools::eval::Spread| {
        format!("{:9.3} ± {:.3} (std {:.3})", x.mean, x.ci95, x.std)
    };
    writeln!(
        out,
        "{} (step {}) on {} {}: {} episodes, seed {}, {} policy ({}); mean ± 95% CI",
        report.checkpoint,
        report.global_step,
        report.env,
        toml::Value::Table(report.env_params.clone()),
        report.episodes,
        report.seed,
        if report.greedy {
            "greedy"
        } else {
            "stochastic"
        },
        if report.greedy {
            "the most likely actions"
        } else {
            "sampled actions; --greedy takes the most likely"
        },
    )?;
    let mut rows = vec![
        ("return per agent".to_string(), &report.return_per_agent),
        ("team return".to_string(), &report.team_return),
        ("episode length".to_string(), &report.episode_length),
    ];
    rows.extend(report.groups.iter().map(|(g, x)| (format!("group {g}"), x)));
    rows.extend(report.agents.iter().map(|(a, x)| (format!("agent {a}"), x)));
    rows.extend(report.task.iter().map(|(m, x)| (m.clone(), x)));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (label, x) in rows {
        writeln!(out, "  {label:<width$} {}", s(x))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareArgs, quiet: bool) -> Result<ExitCode> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let opts = crate::tools::compare::CompareOptions {
        config: args.config,
        baseline: args.baseline,
        seeds: args.seeds,
        set: args.set,
        out: args.out,
        threshold: args.threshold,
        episodes: args.episodes,
        eval_mode: args.eval_mode,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping the runs after their current update (Ctrl-C again to kill)");
    });
    let t0 = std::time::Instant::now();
    let log = |msg: &str| {
        if !quiet {
            eprintln!("[{:7.1} s] {msg}", t0.elapsed().as_secs_f64());
        }
    };
    let c = crate::tools::compare::compare(&opts, stop, &log)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", crate::tools::compare::markdown(&c, &opts));
        println!("\nwrote {}", c.out.join("compare.md").display());
    }
    Ok(ExitCode::SUCCESS)
}
