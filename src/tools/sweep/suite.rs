//! The results table of a suite: `marl sweep collect SWEEP` on a sweep made from a directory of
//! configs (`marl sweep configs/benchmarks --seeds 1..=5`), one row per config (a task and a
//! method), with the peers' figures beside marl's in the same units.
//!
//! Per row, over the config's finished seeds:
//! - the final greedy and stochastic returns, each run evaluated on `--episodes` (1,000)
//!   episodes of evaluation seed `--eval-seed` (0; refused when a run trained with that seed):
//!   mean, interquartile mean and 95% percentile-bootstrap interval of the mean over seeds;
//! - EPyMARL's statistic: the maximum over training of the mean over seeds of the periodic
//!   evaluations (`logging.eval_episodes` episodes each, the run's own evaluation seed), and the
//!   step where it was reached;
//! - steps to the peer's figure (first periodic evaluation at or above it, mean over the seeds
//!   that reached it), the peer's figure and its source;
//! - wall time and environment steps per second of a run.
//!
//! What a row shows, and the peer figures, come from `suite.toml` in the configs' directory
//! ([`SuiteFile`]), frozen into the sweep directory at launch. Without it every row shows the
//! per-agent return, or the team return on LBF and the warehouse, and no peer.
//!
//! The final evaluations are cached in `RUN/eval/suite_<policy>_seed<S>_n<N>.json` (reused while
//! the run's step count is unchanged), so collecting a suite again costs only its new runs. It
//! writes `SWEEP/results.md`, `SWEEP/results.json`, `SWEEP/marl-eval.json` and one figure per
//! family in `SWEEP/plots/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::collect::Missing;
use super::manifest::{Entry, Manifest, SweepDir};
use super::marl_eval::{self, ExportRun};
use crate::config::{CommKind, RecurrentKind, TrainConfig};
use crate::run::summary::RunRecord;
use crate::tools::compare::fmt;
use crate::tools::eval::{self, EvalOptions, EvalReport};
use crate::tools::plot::{self, Curve, LineStyle};
use crate::tools::stats;
use crate::train::evaluation::EvalPolicy;

/// The file of a configs' directory that describes its table (not a config).
pub const SUITE_FILE: &str = "suite.toml";

/// `suite.toml`: per config (by file stem), what its row shows and the peer figure beside it.
///
/// ```toml
/// [mpe_simple_spread_mappo]
/// metric = "return"                 # "return" (per agent) or "team_return" (sum over agents)
/// group = "adversary"               # optional: the per-agent return of this group only
/// unit = "return per agent"         # optional: the table's words for it
/// peer = { figure = -9.46, policy = "greedy", steps = 10_000_000, source = "JaxMARL ..." }
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuiteFile {
    /// Per config stem.
    pub configs: BTreeMap<String, CellSpec>,
}

/// What one config's row shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSpec {
    /// `return` (per-agent mean) or `team_return` (sum over agents).
    pub metric: Option<String>,
    /// Show the per-agent return of this group only.
    pub group: Option<String>,
    /// The unit's words in the table.
    pub unit: Option<String>,
    /// The peer figure.
    pub peer: Option<Peer>,
}

/// A peer's figure, in the row's units.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The figure.
    pub figure: f64,
    /// The policy it was measured with (`greedy` or `stochastic`): its curve gives "steps to
    /// peer".
    pub policy: PeerPolicy,
    /// Environment steps the peer trained for, where known.
    pub steps: Option<u64>,
    /// Who measured it, how and where it is written.
    pub source: String,
}

/// The policy a peer's figure was measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerPolicy {
    /// Most likely actions.
    Greedy,
    /// Sampled actions.
    Stochastic,
}

impl PeerPolicy {
    fn policy(self) -> EvalPolicy {
        match self {
            Self::Greedy => EvalPolicy::Greedy,
            Self::Stochastic => EvalPolicy::Stochastic,
        }
    }
}

impl SuiteFile {
    /// Reads a `suite.toml`; errors name the file and the key.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    /// The suite file of a configs' directory, checked against its configs (every key names
    /// one), or an empty one when the directory has none.
    pub fn of_dir(dir: &Path) -> Result<Self> {
        let path = dir.join(SUITE_FILE);
        if !path.is_file() {
            return Ok(Self::default());
        }
        let s = Self::read(&path)?;
        let stems: Vec<String> = super::manifest::suite_configs(dir)?
            .iter()
            .filter_map(|p| p.file_stem()?.to_str().map(String::from))
            .collect();
        for (key, spec) in &s.configs {
            if !stems.contains(key) {
                bail!(
                    "{}: [{key}] names no config of {} (configs: {})",
                    path.display(),
                    dir.display(),
                    stems.join(", ")
                );
            }
            Metric::of(spec, "", &format!("{}: [{key}]", path.display()))?;
        }
        Ok(s)
    }
}

/// What a row shows, as read from the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Per-agent mean return over every agent.
    Return,
    /// Sum over agents.
    TeamReturn,
    /// Per-agent mean return of one group.
    Group(String),
}

impl Metric {
    /// From a cell's spec; the default by the env id: team return on LBF and the warehouse,
    /// per-agent return elsewhere.
    fn of(spec: &CellSpec, env: &str, what: &str) -> Result<Self> {
        let default = if env.starts_with("lbf/") || env.contains("rware") {
            "team_return"
        } else {
            "return"
        };
        let m = spec.metric.as_deref().unwrap_or(default);
        Ok(match (m, &spec.group) {
            ("return", None) => Self::Return,
            ("return", Some(g)) => Self::Group(g.clone()),
            ("team_return", None) => Self::TeamReturn,
            ("team_return", Some(_)) => {
                bail!("{what}: `group` takes metric = \"return\" (a group's per-agent return)")
            }
            (other, _) => {
                bail!("{what}: metric = \"{other}\": expected \"return\" or \"team_return\"")
            }
        })
    }

    /// The greedy evaluation's metrics.csv column.
    fn column(&self) -> String {
        match self {
            Self::Return => crate::run::metrics::EVAL_RETURN.to_string(),
            Self::TeamReturn => "eval/team_return".into(),
            Self::Group(g) => format!("{g}/eval_return"),
        }
    }

    /// The default words for the unit.
    fn unit(&self, env: &str) -> String {
        match self {
            Self::Return => "return per agent".into(),
            Self::TeamReturn if env.contains("rware") => {
                "deliveries per episode (team return)".into()
            }
            Self::TeamReturn => "team return (sum over agents)".into(),
            Self::Group(g) => format!("return per `{g}` agent"),
        }
    }

    /// The figure in a final evaluation.
    fn of_eval(&self, e: &FinalEval) -> Option<Fig> {
        match self {
            Self::Return => Some(e.return_per_agent),
            Self::TeamReturn => Some(e.team_return),
            Self::Group(g) => e.groups.iter().find(|x| &x.0 == g).map(|x| x.1),
        }
    }
}

/// A mean and its 95% half-width over episodes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fig {
    /// Mean over episodes.
    pub mean: f64,
    /// 1.96 standard errors.
    pub ci95: f64,
}

impl From<&stats::Spread> for Fig {
    fn from(s: &stats::Spread) -> Self {
        Self {
            mean: s.mean,
            ci95: s.ci95,
        }
    }
}

/// A run's final evaluation, as cached in `RUN/eval/suite_<policy>_seed<S>_n<N>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalEval {
    /// The env id.
    pub env: String,
    /// Environment steps of the checkpoint.
    pub global_step: u64,
    /// Episodes.
    pub episodes: usize,
    /// Evaluation seed.
    pub seed: u64,
    /// Greedy or sampled actions.
    pub greedy: bool,
    /// Per-agent mean return.
    pub return_per_agent: Fig,
    /// Sum over agents.
    pub team_return: Fig,
    /// Per group, per-agent mean return.
    pub groups: Vec<(String, Fig)>,
    /// The env's task figures (LBF: food collected; rware: deliveries).
    pub task: Vec<(String, Fig)>,
}

impl From<&EvalReport> for FinalEval {
    fn from(r: &EvalReport) -> Self {
        Self {
            env: r.env.clone(),
            global_step: r.global_step,
            episodes: r.episodes,
            seed: r.seed,
            greedy: r.greedy,
            return_per_agent: (&r.return_per_agent).into(),
            team_return: (&r.team_return).into(),
            groups: r
                .groups
                .iter()
                .map(|g| (g.0.clone(), (&g.1).into()))
                .collect(),
            task: r
                .task
                .iter()
                .map(|g| (g.0.clone(), (&g.1).into()))
                .collect(),
        }
    }
}

/// How to collect a suite.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Episodes of each final evaluation.
    pub episodes: usize,
    /// Their evaluation seed (not a training seed of the suite).
    pub eval_seed: u64,
    /// Evaluations at once.
    pub jobs: usize,
}

/// Mean, IQM and 95% bootstrap interval over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct OverSeeds {
    /// One value per seed, in seed order.
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their interquartile mean.
    pub iqm: f64,
    /// 95% percentile-bootstrap interval of the mean.
    pub ci95: (f64, f64),
    /// The largest 95% half-width of one run's evaluation (episodes), against the spread over
    /// seeds.
    pub eval_ci95: f64,
}

impl OverSeeds {
    fn of(values: Vec<f64>, eval_ci95: f64) -> Self {
        Self {
            mean: stats::mean(&values),
            iqm: stats::iqm(&values),
            ci95: stats::bootstrap_ci(&values, stats::mean, 10_000, 0),
            eval_ci95,
            values,
        }
    }
}

/// EPyMARL's statistic: the largest mean over seeds of one periodic evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct MaxOverTraining {
    /// The value.
    pub value: f64,
    /// The step of that evaluation.
    pub step: f64,
}

/// One row of the table: a config (a task and a method) over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRow {
    /// The env id's family (`mpe`, `lbf`, `rware`).
    pub family: String,
    /// The env id.
    pub task: String,
    /// `MAPPO` or `IPPO`, with ` (GRU)` for recurrent networks, ` vs random agent` where
    /// groups act at random (`algo.random_groups`) and ` + mean messages` (or attention) for
    /// learned communication.
    pub method: String,
    /// The config's label (its file stem, with the sweep's axes).
    pub config: String,
    /// The config file in the suite directory.
    pub source: Option<String>,
    /// What the row shows.
    pub metric: Metric,
    /// The unit's words.
    pub unit: String,
    /// Environment steps of a run.
    pub total_steps: u64,
    /// The seeds with a finished run.
    pub seeds: Vec<u64>,
    /// Runs of this config not finished.
    pub missing: usize,
    /// Final greedy evaluation.
    pub greedy: Option<OverSeeds>,
    /// Final stochastic evaluation.
    pub stochastic: Option<OverSeeds>,
    /// Max over training of the greedy periodic evaluations' mean over seeds.
    pub max_greedy: Option<MaxOverTraining>,
    /// The same for the stochastic ones (where the runs logged them).
    pub max_stochastic: Option<MaxOverTraining>,
    /// The peer figure.
    pub peer: Option<Peer>,
    /// Mean over the seeds that reached the peer figure of the first step they did.
    pub steps_to_peer: Option<f64>,
    /// Seeds that reached it.
    pub reached_peer: usize,
    /// Mean wall time of a run (s).
    pub wall_s: f64,
    /// Mean environment steps per second of a run.
    pub sps: f64,
}

/// A finished run with its two final evaluations.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRun {
    /// The config's label.
    pub config: String,
    /// Seed.
    pub seed: u64,
    /// Run directory.
    pub run_dir: PathBuf,
    /// Final greedy evaluation.
    pub greedy: FinalEval,
    /// Final stochastic evaluation.
    pub stochastic: FinalEval,
    /// Training time and speed.
    pub record: RunRecord,
}

/// What collecting a suite found.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResults {
    /// The sweep directory.
    pub out: PathBuf,
    /// The sweep's name.
    pub name: String,
    /// The configs' directory the suite was made from.
    pub configs: String,
    /// Episodes of each final evaluation.
    pub episodes: usize,
    /// Their seed.
    pub eval_seed: u64,
    /// One row per config, in file-name order.
    pub rows: Vec<SuiteRow>,
    /// Finished runs.
    pub runs: Vec<SuiteRun>,
    /// Runs not finished.
    pub missing: Vec<Missing>,
    /// Figures written.
    pub figures: Vec<PathBuf>,
    /// The marl-eval file.
    pub marl_eval: PathBuf,
}

/// Whether the sweep in `dir` was made from a directory of configs.
pub fn is_suite(manifest: &Manifest) -> bool {
    manifest.runs.iter().any(|e| e.source.is_some())
}

/// Copies the configs' directory's `suite.toml` (checked) into the sweep directory at launch,
/// or removes a stale copy when the directory has none.
pub fn freeze(configs: &Path, dir: &SweepDir) -> Result<()> {
    let suite = SuiteFile::of_dir(configs)?;
    let src = configs.join(SUITE_FILE);
    if src.is_file() {
        let text = toml::to_string(&suite).context("cannot write suite.toml")?;
        let text = format!(
            "# Frozen from {} by `marl sweep`: what `marl sweep collect` shows per config.\n{text}",
            src.display()
        );
        crate::run::fsio::write_atomic(&dir.suite(), text.as_bytes())?;
    } else if dir.suite().is_file() {
        std::fs::remove_file(dir.suite())
            .with_context(|| format!("cannot remove {}", dir.suite().display()))?;
    }
    Ok(())
}

/// Collects the suite in `dir`: evaluates its finished runs (or reads their cached
/// evaluations), writes `results.md`, `results.json`, `marl-eval.json` and `plots/`.
pub fn collect(dir: &SweepDir, opts: &SuiteOptions) -> Result<SuiteResults> {
    let manifest = Manifest::read(dir)?;
    let clash: Vec<&Entry> = manifest
        .runs
        .iter()
        .filter(|e| e.seed == opts.eval_seed)
        .collect();
    if let Some(e) = clash.first() {
        bail!(
            "evaluation seed {} is also the training seed of {} run(s) of {} ({} among them): \
             the table's episodes must say nothing about training seeds; pass --eval-seed with \
             a seed no run trained with (the suite's documented command trains seeds 1..=5 and \
             evaluates seed 0)",
            opts.eval_seed,
            clash.len(),
            dir.root.display(),
            e.label
        );
    }
    let suite = if dir.suite().is_file() {
        SuiteFile::read(&dir.suite())?
    } else {
        SuiteFile::default()
    };
    let (finished, missing) = super::collect::split_finished(dir, &manifest)?;
    let runs = evaluate_all(dir, &finished, opts)?;

    // Rows in manifest order, one per label.
    let mut labels: Vec<&Entry> = Vec::new();
    for e in &manifest.runs {
        if !labels.iter().any(|x| x.label == e.label) {
            labels.push(e);
        }
    }
    let mut rows = Vec::new();
    for first in &labels {
        let cfg = Manifest::run_config(dir, first)?;
        let stem = first
            .source
            .as_deref()
            .and_then(|s| Path::new(s).file_stem()?.to_str())
            .unwrap_or(&first.label)
            .to_string();
        let spec = suite.configs.get(&stem).cloned().unwrap_or_default();
        let what = format!("{}: [{stem}]", dir.suite().display());
        rows.push(row(first, &cfg, &spec, &runs, &missing, &what)?);
    }
    let figures = figures(&dir.root, &rows, &runs)?;

    // marl-eval: the method as the algorithm, or the config where two share a task and method.
    let export: Vec<ExportRun> = runs
        .iter()
        .filter_map(|r| {
            let row = rows.iter().find(|x| x.config == r.config)?;
            let shared = rows
                .iter()
                .filter(|x| x.task == row.task && x.method == row.method)
                .count()
                > 1;
            Some(ExportRun {
                run_dir: r.run_dir.clone(),
                env: r.greedy.env.clone(),
                algorithm: marl_eval::clean(if shared { &row.config } else { &row.method }),
                seed: r.seed,
                groups: r.greedy.groups.iter().map(|g| g.0.clone()).collect(),
                final_return: r.greedy.return_per_agent.mean,
                final_team_return: r.greedy.team_return.mean,
                final_groups: r
                    .greedy
                    .groups
                    .iter()
                    .map(|g| (g.0.clone(), g.1.mean))
                    .collect(),
            })
        })
        .collect();
    let marl_eval = dir.root.join("marl-eval.json");
    let doc = marl_eval::export(&export)?;
    crate::run::fsio::write_atomic(&marl_eval, serde_json::to_string_pretty(&doc)?.as_bytes())?;

    let results = SuiteResults {
        out: dir.root.clone(),
        name: manifest.name.clone(),
        configs: manifest.config.clone(),
        episodes: opts.episodes,
        eval_seed: opts.eval_seed,
        rows,
        runs,
        missing,
        figures,
        marl_eval,
    };
    crate::run::fsio::write_atomic(
        &dir.root.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    crate::run::fsio::write_atomic(&dir.root.join("results.md"), markdown(&results).as_bytes())?;
    Ok(results)
}

fn row(
    first: &Entry,
    cfg: &TrainConfig,
    spec: &CellSpec,
    runs: &[SuiteRun],
    missing: &[Missing],
    what: &str,
) -> Result<SuiteRow> {
    let env = cfg.env().id.clone();
    let metric = Metric::of(spec, &env, what)?;
    let mut method = if cfg.algo().centralized_training {
        "MAPPO".to_string()
    } else {
        "IPPO".to_string()
    };
    if !matches!(cfg.network().recurrent, RecurrentKind::None) {
        method.push_str(" (GRU)");
    }
    let random: Vec<&str> = cfg
        .groups
        .iter()
        .filter(|g| g.random)
        .map(|g| g.name.as_str())
        .collect();
    if !random.is_empty() {
        method.push_str(&format!(" vs random {}", random.join(", ")));
    }
    if cfg.algo().enable_communication {
        method.push_str(match cfg.algo().communication {
            CommKind::Mean => " + mean messages",
            CommKind::Attention => " + attention messages",
        });
    }
    let family = env
        .split_once('/')
        .map(|x| x.0)
        .or_else(|| env.split_once('-').map(|x| x.0))
        .unwrap_or(&env)
        .to_string();
    let mine: Vec<&SuiteRun> = runs.iter().filter(|r| r.config == first.label).collect();
    let finals = |pick: &dyn Fn(&SuiteRun) -> &FinalEval| -> Result<Option<OverSeeds>> {
        if mine.is_empty() {
            return Ok(None);
        }
        let mut values = Vec::new();
        let mut half = 0.0f64;
        for r in &mine {
            let e = pick(r);
            let f = metric
                .of_eval(e)
                .with_context(|| format!("{what}: {}: no such group", r.run_dir.display()))?;
            values.push(f.mean);
            half = half.max(f.ci95);
        }
        Ok(Some(OverSeeds::of(values, half)))
    };
    let greedy = finals(&|r| &r.greedy)?;
    let stochastic = finals(&|r| &r.stochastic)?;
    let curves = |policy: EvalPolicy| -> Option<Vec<Vec<(f64, f64)>>> {
        let column = policy.column(&metric.column());
        let c: Option<Vec<_>> = mine
            .iter()
            .map(|r| plot::read_curve(&r.run_dir, &column).ok())
            .collect();
        c.filter(|c| !c.is_empty() && c.iter().all(|x| !x.is_empty()))
    };
    let max_of = |c: &Option<Vec<Vec<(f64, f64)>>>| -> Option<MaxOverTraining> {
        let c = c.as_ref()?;
        plot::aggregate(c)
            .into_iter()
            .filter(|p| p.n == c.len())
            .max_by(|a, b| a.mean.total_cmp(&b.mean))
            .map(|p| MaxOverTraining {
                value: p.mean,
                step: p.x,
            })
    };
    let (cg, cs) = (curves(EvalPolicy::Greedy), curves(EvalPolicy::Stochastic));
    let (max_greedy, max_stochastic) = (max_of(&cg), max_of(&cs));
    let (mut steps_to_peer, mut reached_peer) = (None, 0);
    if let Some(p) = &spec.peer {
        let c = match p.policy.policy() {
            EvalPolicy::Greedy => &cg,
            EvalPolicy::Stochastic => &cs,
        };
        if let Some(c) = c {
            let hits: Vec<f64> = c
                .iter()
                .filter_map(|x| stats::steps_to(x, p.figure))
                .collect();
            reached_peer = hits.len();
            steps_to_peer = (!hits.is_empty()).then(|| stats::mean(&hits));
        }
    }
    let batch = cfg.batch_size as u64;
    Ok(SuiteRow {
        family,
        task: env.clone(),
        method,
        config: first.label.clone(),
        source: first.source.clone(),
        unit: spec.unit.clone().unwrap_or_else(|| metric.unit(&env)),
        metric,
        total_steps: cfg.num_updates * batch,
        seeds: mine.iter().map(|r| r.seed).collect(),
        missing: missing.iter().filter(|m| m.label == first.label).count(),
        greedy,
        stochastic,
        max_greedy,
        max_stochastic,
        peer: spec.peer.clone(),
        steps_to_peer,
        reached_peer,
        wall_s: stats::mean(&mine.iter().map(|r| r.record.wall_s).collect::<Vec<_>>()),
        sps: stats::mean(&mine.iter().map(|r| r.record.sps).collect::<Vec<_>>()),
    })
}

/// The final evaluation of a run with `policy`, from its cache file when that is of the same
/// checkpoint step, else run and cached.
fn final_eval(
    run: &crate::run::RunDir,
    record: &RunRecord,
    policy: EvalPolicy,
    opts: &SuiteOptions,
) -> Result<FinalEval> {
    let name = format!(
        "suite_{}_seed{}_n{}",
        policy.name(),
        opts.eval_seed,
        opts.episodes
    );
    let path = run.eval_report_path(&name);
    if let Some(cached) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<FinalEval>(&t).ok())
        .filter(|c| c.global_step == record.global_step)
    {
        return Ok(cached);
    }
    let report = eval::evaluate(
        run.path(),
        &EvalOptions {
            episodes: opts.episodes,
            greedy: policy.greedy(),
            seed: opts.eval_seed,
            ..EvalOptions::default()
        },
    )
    .with_context(|| format!("evaluating {}", run.path().display()))?;
    let f = FinalEval::from(&report);
    run.write_eval_report(&name, &serde_json::to_string_pretty(&f)?)?;
    Ok(f)
}

/// Final greedy and stochastic evaluations of the finished runs, `opts.jobs` at a time.
fn evaluate_all(dir: &SweepDir, finished: &[&Entry], opts: &SuiteOptions) -> Result<Vec<SuiteRun>> {
    if finished.is_empty() {
        return Ok(Vec::new());
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SuiteRun>>>> =
        Mutex::new((0..finished.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, finished.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(e) = finished.get(i) else { break };
                let run = dir.run_dir(&e.run_id);
                let r = (|| -> Result<SuiteRun> {
                    let record = RunRecord::read(&run)
                        .with_context(|| format!("{}: missing", run.summary_path().display()))?;
                    Ok(SuiteRun {
                        config: e.label.clone(),
                        seed: e.seed,
                        run_dir: run.path().to_path_buf(),
                        greedy: final_eval(&run, &record, EvalPolicy::Greedy, opts)?,
                        stochastic: final_eval(&run, &record, EvalPolicy::Stochastic, opts)?,
                        record,
                    })
                })();
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| anyhow!("an evaluation thread panicked"))?
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow!("an evaluation did not run"))))
        .collect()
}

/// One sample-efficiency figure per family (greedy periodic evaluations of each row's metric,
/// mean and 95% interval over seeds), and one of the stochastic ones where every row of the
/// family logged them.
fn figures(out: &Path, rows: &[SuiteRow], runs: &[SuiteRun]) -> Result<Vec<PathBuf>> {
    let mut families: Vec<&str> = Vec::new();
    for r in rows {
        if !families.contains(&r.family.as_str()) {
            families.push(&r.family);
        }
    }
    let mut files = Vec::new();
    for fam in families {
        let of: Vec<&SuiteRow> = rows
            .iter()
            .filter(|r| r.family == fam && !r.seeds.is_empty())
            .collect();
        if of.is_empty() {
            continue;
        }
        // One colour per task (and per variant of a task's methods, such as learned
        // messages), IPPO dashed beside its MAPPO twin.
        let variant = |r: &SuiteRow| {
            let m = r.method.as_str();
            let rest = m.strip_prefix("IPPO").or_else(|| m.strip_prefix("MAPPO"));
            (r.task.clone(), rest.unwrap_or(m).to_string())
        };
        let mut tasks: Vec<(String, String)> = Vec::new();
        for r in &of {
            if !tasks.contains(&variant(r)) {
                tasks.push(variant(r));
            }
        }
        for policy in [EvalPolicy::Greedy, EvalPolicy::Stochastic] {
            let mut curves = Vec::new();
            for r in &of {
                let column = policy.column(&r.metric.column());
                let c: Result<Vec<_>> = runs
                    .iter()
                    .filter(|x| x.config == r.config)
                    .map(|x| plot::read_curve(&x.run_dir, &column))
                    .collect();
                let Ok(c) = c else { break };
                let task = r.task.split_once('/').map_or(r.task.as_str(), |x| x.1);
                let style = LineStyle {
                    color: tasks.iter().position(|t| *t == variant(r)),
                    dashed: r.method.starts_with("IPPO"),
                };
                curves.push(Curve {
                    label: format!("{task} {} ({} seeds)", r.method, c.len()),
                    runs: c,
                    style,
                });
            }
            if curves.len() != of.len() {
                continue;
            }
            let units: Vec<&str> = of.iter().map(|r| r.unit.as_str()).collect();
            let unit = if units.iter().all(|u| *u == units[0]) {
                units[0].to_string()
            } else {
                "return (each task's unit: results.md)".to_string()
            };
            let stem = match policy {
                EvalPolicy::Greedy => fam.to_string(),
                EvalPolicy::Stochastic => format!("{fam}_stochastic"),
            };
            files.extend(plot::write_figure(
                &out.join("plots"),
                &stem,
                &format!("{fam}: {} evaluations during training", policy.name()),
                &format!("{} {unit}", policy.name()),
                &curves,
            )?);
        }
    }
    Ok(files)
}

/// `mean (IQM) [lo, hi]`, or `-`.
fn cell(x: &Option<OverSeeds>) -> String {
    match x {
        Some(s) => format!(
            "{} ({}) [{}, {}]",
            fmt(s.mean),
            fmt(s.iqm),
            fmt(s.ci95.0),
            fmt(s.ci95.1)
        ),
        None => "-".into(),
    }
}

/// Steps as a reader wants them: 300k, 1.5M.
fn steps(x: f64) -> String {
    let (v, unit) = if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let s = format!("{v:.2}");
    format!("{}{unit}", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The table as Markdown (`results.md`).
pub fn markdown(c: &SuiteResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Results of the suite `{}` ({} configs, {} finished runs, {} missing)\n\n\
         Made by `marl sweep {} --seeds ... --out {}` and `marl sweep collect {} --episodes {} \
         --eval-seed {}`.\n\n\
         Final: each run's last policy evaluated on {} episodes of evaluation seed {} (no run \
         trained with that seed), greedy (most likely actions) and stochastic (sampled); a cell \
         is `mean (IQM) [95% bootstrap interval of the mean]` over seeds. Max over training: \
         EPyMARL's statistic, the largest mean over seeds of one periodic evaluation \
         (`logging.eval_episodes` episodes each) and its step. Steps to peer: the first periodic \
         evaluation (of the peer's policy) at or above the peer's figure, mean over the seeds \
         that reached it. Steps are environment steps (one step of one environment, all agents). \
         Wall time and env-steps/s: mean of a run.\n",
        c.name,
        c.rows.len(),
        c.runs.len(),
        c.missing.len(),
        c.configs,
        c.out.display(),
        c.out.display(),
        c.episodes,
        c.eval_seed,
        c.episodes,
        c.eval_seed,
    );
    let mut families: Vec<&str> = Vec::new();
    for r in &c.rows {
        if !families.contains(&r.family.as_str()) {
            families.push(&r.family);
        }
    }
    let mut peers: Vec<(String, &Peer)> = Vec::new();
    for fam in families {
        let _ = writeln!(s, "## {fam}\n");
        let _ = writeln!(
            s,
            "| task | method | unit | steps | seeds | final greedy | final stochastic | max over training (greedy / stochastic) | peer | steps to peer | wall time | env-steps/s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in c.rows.iter().filter(|r| r.family == fam) {
            let max = |m: &Option<MaxOverTraining>| match m {
                Some(m) => format!("{} at {}", fmt(m.value), steps(m.step)),
                None => "-".into(),
            };
            let (peer, to_peer) = match &r.peer {
                Some(p) => {
                    peers.push((r.config.clone(), p));
                    let to = match r.steps_to_peer {
                        Some(x) => format!("{} ({}/{})", steps(x), r.reached_peer, r.seeds.len()),
                        None => format!("never (0/{})", r.seeds.len()),
                    };
                    (
                        format!(
                            "{} {} [{}]",
                            fmt(p.figure),
                            p.policy.policy().name(),
                            peers.len()
                        ),
                        to,
                    )
                }
                None => ("unknown".into(), "-".into()),
            };
            let seeds = if r.missing > 0 {
                format!("{} (+{} missing)", r.seeds.len(), r.missing)
            } else {
                r.seeds.len().to_string()
            };
            let task = r.task.split_once('/').map_or(r.task.as_str(), |x| x.1);
            let _ = writeln!(
                s,
                "| {task} | {} | {} | {} | {seeds} | {} | {} | {} / {} | {peer} | {to_peer} | {} | {} |",
                r.method,
                r.unit,
                steps(r.total_steps as f64),
                cell(&r.greedy),
                cell(&r.stochastic),
                max(&r.max_greedy),
                max(&r.max_stochastic),
                if r.wall_s.is_finite() {
                    format!("{:.0} s", r.wall_s)
                } else {
                    "-".into()
                },
                if r.sps.is_finite() {
                    format!("{:.1} k", r.sps / 1e3)
                } else {
                    "-".into()
                },
            );
        }
        let _ = writeln!(s);
    }
    if !peers.is_empty() {
        let _ = writeln!(s, "Peers' figures (in the row's unit):\n");
        for (k, (config, p)) in peers.iter().enumerate() {
            let at = p.steps.map(|x| format!(", {} steps", steps(x as f64)));
            let _ = writeln!(
                s,
                "{}. `{config}`: {} {}{}: {}",
                k + 1,
                fmt(p.figure),
                p.policy.policy().name(),
                at.unwrap_or_default(),
                p.source
            );
        }
        let _ = writeln!(s);
    }
    if c.missing.is_empty() {
        let _ = writeln!(s, "Missing runs: none.\n");
    } else {
        let _ = writeln!(
            s,
            "Missing runs ({}; not in the table; `marl sweep resubmit {}`):\n\n| index | run | config | seed | state |\n|---|---|---|---|---|",
            c.missing.len(),
            c.out.display()
        );
        for m in &c.missing {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                m.index, m.run_id, m.label, m.seed, m.state
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Per run (reproduce one: `marl train {}/<config>.toml --set seed=<seed>`):\n\n| config | seed | final greedy | final stochastic | wall time | env-steps/s | run |\n|---|---|---|---|---|---|---|",
        c.configs
    );
    for r in &c.runs {
        let metric = c
            .rows
            .iter()
            .find(|x| x.config == r.config)
            .map(|x| &x.metric);
        let show = |e: &FinalEval| {
            metric
                .and_then(|m| m.of_eval(e))
                .map_or("-".into(), |f| format!("{} ± {}", fmt(f.mean), fmt(f.ci95)))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} s | {:.0} | {} |",
            r.config,
            r.seed,
            show(&r.greedy),
            show(&r.stochastic),
            r.record.wall_s,
            r.record.sps,
            r.run_dir.display()
        );
    }
    let figures: Vec<String> = c.figures.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(
        s,
        "\nFigures: {}\n\nmarl-eval: {}",
        if figures.is_empty() {
            "none".to_string()
        } else {
            figures.join(", ")
        },
        c.marl_eval.display()
    );
    s
}
