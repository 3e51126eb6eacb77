//! `marl compare CONFIG --baseline ippo`: trains the config and a baseline over several seeds,
//! evaluates every final policy as `marl eval --greedy` does (or, with `--eval-mode
//! stochastic`, as `marl eval` does, and the curves of the stochastic evaluations), and
//! reports per agent group a
//! table (mean, IQM and bootstrap interval of the final return, area under the evaluation
//! curve, steps to a threshold, wall time, steps/s) with Welch's t-test and a bootstrap
//! interval of the difference, plus learning-curve figures (SVG, PNG, CSV).
//!
//! Layout: `OUT/<method>/s<seed>/` is a normal run directory (so `marl eval` and `marl plot`
//! work on it), `OUT/compare.md` and `OUT/compare.json` the results, `OUT/plots/` the figures.
//! A finished run whose config matches is reused; an interrupted one is resumed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::config::{self, RawConfig, TrainConfig};
use crate::run::metrics::EVAL_RETURN;
use crate::run::summary::RunRecord;
use crate::run::RunDir;
use crate::tools::eval::{self, EvalOptions, EvalReport};
use crate::tools::plot::{self, Curve};
use crate::tools::stats;
use crate::train::evaluation::EvalPolicy;
use crate::train::{self, RunOptions};

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The method's config file.
    pub config: PathBuf,
    /// `ippo`, `mappo`, or a config file.
    pub baseline: String,
    /// Seeds per method (the config's seed, seed + 1, ...).
    pub seeds: usize,
    /// `--set` overrides, applied to both methods.
    pub set: Vec<String>,
    /// Output directory (default `<out_dir>/compare-<config>-vs-<baseline>`).
    pub out: Option<PathBuf>,
    /// Return that counts as solved, for "steps to threshold" (default: the baseline's mean
    /// final return, per group).
    pub threshold: Option<f64>,
    /// Episodes of each final evaluation.
    pub episodes: usize,
    /// The evaluation compared, greedy or stochastic (default: greedy, unless the config
    /// evaluates stochastic only).
    pub eval_mode: Option<EvalPolicy>,
    /// Runs trained at once (each on its own thread).
    pub jobs: usize,
}

/// One method: a label and its resolved config (seed not yet set).
#[derive(Debug, Clone)]
struct Method {
    label: String,
    raw: RawConfig,
}

/// A finished run with its evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Method label.
    pub method: String,
    /// Seed.
    pub seed: u64,
    /// Run directory.
    pub run_dir: PathBuf,
    /// What `marl eval RUN --greedy --episodes E --seed 0` reports (without `--greedy` when
    /// comparing stochastic evaluations).
    pub eval: EvalReport,
    /// Training wall time and speed.
    pub record: RunRecord,
}

/// One row of a group's table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Method label.
    pub method: String,
    /// Final evaluation return (per-agent mean of the group), one per seed.
    pub finals: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their interquartile mean.
    pub iqm: f64,
    /// 95% bootstrap interval of the mean.
    pub ci95: (f64, f64),
    /// Mean over seeds of the area under the evaluation curve divided by its length.
    pub auc: f64,
    /// Mean over the seeds that reached the threshold of the first evaluation step at or above
    /// it, and how many did.
    pub steps_to_threshold: Option<f64>,
    /// Seeds that reached the threshold.
    pub reached: usize,
    /// Mean wall time of a run.
    pub wall_s: f64,
    /// Mean environment steps per second.
    pub sps: f64,
}

/// A group's table and test.
#[derive(Debug, Clone, Serialize)]
pub struct GroupTable {
    /// Group name (`all` for the per-agent mean over every agent).
    pub group: String,
    /// The threshold used.
    pub threshold: f64,
    /// Method first, baseline second.
    pub rows: Vec<Row>,
    /// Welch's t-test of method vs baseline final returns.
    pub welch: stats::Welch,
    /// 95% bootstrap interval of mean(method) - mean(baseline).
    pub diff_ci95: (f64, f64),
}

/// Everything a comparison found.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Output directory.
    pub out: PathBuf,
    /// The evaluation compared: final returns, curves, threshold.
    pub eval_mode: EvalPolicy,
    /// Every run.
    pub runs: Vec<RunResult>,
    /// One table per group, then `all`.
    pub tables: Vec<GroupTable>,
    /// Figures written.
    pub figures: Vec<PathBuf>,
}

fn methods(opts: &CompareOptions) -> Result<(Method, Method)> {
    let raw = config::load(&opts.config, &opts.set)?;
    TrainConfig::resolve(raw.clone()).with_context(|| opts.config.display().to_string())?;
    let stem = |p: &Path| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("config")
            .to_string()
    };
    let algo = |r: &RawConfig| {
        if r.algo.centralized_training {
            "MAPPO"
        } else {
            "IPPO"
        }
    };
    let base = match opts.baseline.as_str() {
        "ippo" | "mappo" => {
            let central = opts.baseline == "mappo";
            if raw.algo.centralized_training == central {
                bail!(
                    "--baseline {}: {} already trains {}; compare it with --baseline {} or a config file",
                    opts.baseline,
                    opts.config.display(),
                    algo(&raw),
                    if central { "ippo" } else { "mappo" }
                );
            }
            let mut b = raw.clone();
            b.algo.centralized_training = central;
            Method {
                label: opts.baseline.clone(),
                raw: b,
            }
        }
        other => {
            let p = Path::new(other);
            if !(p.extension().is_some_and(|e| e == "toml") || p.is_file()) {
                bail!("--baseline `{other}`: expected `ippo`, `mappo` or a config file (.toml)");
            }
            if !p.is_file() {
                bail!("--baseline {other}: no such config file");
            }
            let b = config::load(p, &opts.set)?;
            TrainConfig::resolve(b.clone()).with_context(|| p.display().to_string())?;
            Method {
                label: stem(p),
                raw: b,
            }
        }
    };
    let mut label = stem(&opts.config);
    if label == base.label {
        label = format!("{label}-{}", algo(&raw).to_lowercase());
    }
    Ok((Method { label, raw }, base))
}

/// The output directory a comparison writes to when `--out` is not given.
pub fn default_out(opts: &CompareOptions) -> Result<PathBuf> {
    let (m, b) = methods(opts)?;
    Ok(Path::new(&m.raw.out_dir).join(format!("compare-{}-vs-{}", m.label, b.label)))
}

/// The evaluation a comparison shows: `--eval-mode`, else greedy unless the config evaluates
/// stochastic only; both methods must log it during training.
fn eval_policy(opts: &CompareOptions, method: &Method, baseline: &Method) -> Result<EvalPolicy> {
    let policy = opts
        .eval_mode
        .unwrap_or_else(|| EvalPolicy::default_for(method.raw.logging.eval_mode));
    for m in [method, baseline] {
        policy.check_logged(m.raw.logging.eval_mode, &format!("`{}`", m.label))?;
    }
    Ok(policy)
}

/// Trains (or reuses) one run and evaluates it with `policy`.
fn run_one(
    method: &Method,
    seed: u64,
    dir: &Path,
    opts: &CompareOptions,
    policy: EvalPolicy,
    stop: &Arc<AtomicBool>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<RunResult> {
    let mut raw = method.raw.clone();
    raw.seed = seed;
    let cfg = TrainConfig::resolve(raw)?;
    let wanted = cfg.to_toml()?;
    let run = RunDir::new(dir);
    let record = RunRecord::read(&run);
    let existing = run.config_text();
    if let Some(text) = &existing {
        if text != &wanted {
            bail!(
                "{} holds a run of another config; remove it or choose another --out",
                dir.display()
            );
        }
    }
    let record = match record {
        Some(r) if r.finished && existing.is_some() => {
            log(&format!(
                "{} seed {seed}: reusing {}",
                method.label,
                dir.display()
            ));
            r
        }
        _ => {
            let resume = run.has_checkpoint() && existing.is_some();
            log(&format!(
                "{} seed {seed}: {} {}",
                method.label,
                if resume { "resuming" } else { "training" },
                dir.display()
            ));
            let run_opts = RunOptions {
                config_name: method.label.clone(),
                resume: resume.then(|| dir.to_path_buf()),
                run_dir: (!resume).then(|| dir.to_path_buf()),
            };
            let s = train::train(cfg, &run_opts, &mut train::Quiet, stop.clone())
                .with_context(|| format!("training {} seed {seed}", method.label))?;
            if s.interrupted {
                bail!("stopped on request; run the same command again to resume");
            }
            RunRecord::read(&run).ok_or_else(|| {
                anyhow!("{}: missing after training", run.summary_path().display())
            })?
        }
    };
    let eval = evaluate_final(&run, opts.episodes, 0, policy)?;
    log(&format!(
        "{} seed {seed}: final {} return {:.3} per agent ({:.0} s, {:.0} steps/s)",
        method.label,
        policy.name(),
        eval.return_per_agent.mean,
        record.wall_s,
        record.sps
    ));
    Ok(RunResult {
        method: method.label.clone(),
        seed,
        run_dir: dir.to_path_buf(),
        eval,
        record,
    })
}

/// The final evaluation of a run with `policy`, as `marl eval RUN [--greedy] --episodes N
/// --seed SEED` gives it, also written to `RUN/eval/final.json` (`final_stochastic.json`).
pub fn evaluate_final(
    run: &RunDir,
    episodes: usize,
    seed: u64,
    policy: EvalPolicy,
) -> Result<EvalReport> {
    let eval = eval::evaluate(
        run.path(),
        &EvalOptions {
            episodes,
            greedy: policy.greedy(),
            seed,
            ..EvalOptions::default()
        },
    )?;
    run.write_eval_report(
        &policy.column("final"),
        &serde_json::to_string_pretty(&eval)?,
    )?;
    Ok(eval)
}

/// Runs the comparison.
pub fn compare(
    opts: &CompareOptions,
    stop: Arc<AtomicBool>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Comparison> {
    if opts.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let (method, baseline) = methods(opts)?;
    let policy = eval_policy(opts, &method, &baseline)?;
    let out = match &opts.out {
        Some(o) => o.clone(),
        None => default_out(opts)?,
    };
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let first_seed = method.raw.seed;
    let jobs_list: Vec<(usize, &Method, u64)> = [&method, &baseline]
        .into_iter()
        .enumerate()
        .flat_map(|(mi, m)| (0..opts.seeds as u64).map(move |k| (mi, m, first_seed + k)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunResult>>>> =
        Mutex::new((0..jobs_list.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, jobs_list.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(_, m, seed)) = jobs_list.get(i) else {
                    break;
                };
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let dir = out.join(&m.label).join(format!("s{seed}"));
                let r = run_one(m, seed, &dir, opts, policy, &stop, log);
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    let mut runs = Vec::new();
    for r in results
        .into_inner()
        .map_err(|_| anyhow!("a training thread panicked"))?
    {
        match r {
            Some(r) => runs.push(r?),
            None => bail!("stopped on request; run the same command again to resume"),
        }
    }
    let tables = tables(&method, &baseline, &runs, opts.threshold, policy)?;
    let figures = figures(&out, &method, &baseline, &runs, policy)?;
    let c = Comparison {
        out: out.clone(),
        eval_mode: policy,
        runs,
        tables,
        figures,
    };
    crate::run::fsio::write_atomic(
        &out.join("compare.json"),
        serde_json::to_string_pretty(&c)?.as_bytes(),
    )?;
    crate::run::fsio::write_atomic(&out.join("compare.md"), markdown(&c, opts).as_bytes())?;
    Ok(c)
}

/// The groups of the comparison: every group of the method's config, then `all`.
pub fn group_names(runs: &[RunResult]) -> Vec<String> {
    let mut names: Vec<String> = runs
        .first()
        .map(|r| r.eval.groups.iter().map(|g| g.0.clone()).collect())
        .unwrap_or_default();
    if names.len() != 1 {
        names.push("all".into());
    }
    names
}

/// The metrics.csv column of a group's evaluation curve.
pub fn curve_column(group: &str, single: bool) -> String {
    if group == "all" || single {
        EVAL_RETURN.into()
    } else {
        format!("{group}/eval_return")
    }
}

/// A run's final evaluation return for a group (`all`: per agent over every agent).
pub fn final_return(r: &RunResult, group: &str) -> f64 {
    if group == "all" {
        return r.eval.return_per_agent.mean;
    }
    r.eval
        .groups
        .iter()
        .find(|g| g.0 == group)
        .map_or(f64::NAN, |g| g.1.mean)
}

fn tables(
    method: &Method,
    baseline: &Method,
    runs: &[RunResult],
    threshold: Option<f64>,
    policy: EvalPolicy,
) -> Result<Vec<GroupTable>> {
    let names = group_names(runs);
    let single = names.len() == 1;
    let mut out = Vec::new();
    for group in &names {
        let column = policy.column(&curve_column(group, single));
        let of = |m: &Method| -> Vec<&RunResult> {
            runs.iter().filter(|r| r.method == m.label).collect()
        };
        let finals =
            |m: &Method| -> Vec<f64> { of(m).iter().map(|r| final_return(r, group)).collect() };
        let (fa, fb) = (finals(method), finals(baseline));
        let thr = threshold.unwrap_or_else(|| stats::mean(&fb));
        let mut rows = Vec::new();
        for m in [method, baseline] {
            rows.push(table_row(&m.label, &of(m), group, &column, thr)?);
        }
        out.push(GroupTable {
            group: group.clone(),
            threshold: thr,
            rows,
            welch: stats::welch(&fa, &fb),
            diff_ci95: stats::bootstrap_diff_ci(&fa, &fb, 10_000, 1),
        });
    }
    Ok(out)
}

/// One row of a group's table: the final returns of `runs` (one method's seeds), their mean,
/// IQM and bootstrap interval, the curves' AUC and steps to `threshold`, time and speed.
pub fn table_row(
    label: &str,
    runs: &[&RunResult],
    group: &str,
    column: &str,
    threshold: f64,
) -> Result<Row> {
    let fs: Vec<f64> = runs.iter().map(|r| final_return(r, group)).collect();
    let mut aucs = Vec::new();
    let mut hits = Vec::new();
    for r in runs {
        let curve = plot::read_curve(&r.run_dir, column)?;
        aucs.push(stats::normalized_auc(&curve));
        if let Some(s) = stats::steps_to(&curve, threshold) {
            hits.push(s);
        }
    }
    Ok(Row {
        method: label.to_string(),
        mean: stats::mean(&fs),
        iqm: stats::iqm(&fs),
        ci95: stats::bootstrap_ci(&fs, stats::mean, 10_000, 0),
        auc: stats::mean(&aucs),
        steps_to_threshold: (!hits.is_empty()).then(|| stats::mean(&hits)),
        reached: hits.len(),
        wall_s: stats::mean(&runs.iter().map(|r| r.record.wall_s).collect::<Vec<_>>()),
        sps: stats::mean(&runs.iter().map(|r| r.record.sps).collect::<Vec<_>>()),
        finals: fs,
    })
}

fn figures(
    out: &Path,
    method: &Method,
    baseline: &Method,
    runs: &[RunResult],
    policy: EvalPolicy,
) -> Result<Vec<PathBuf>> {
    let methods = [method, baseline].map(|m| (m.label.clone(), m.raw.algo.centralized_training));
    learning_curves(out, &methods, runs, policy)
}

/// The learning-curve figures of `runs` (the `policy`'s evaluations) grouped by method
/// (`(label, centralized_training)`, in legend order), one per group (then `all`), into
/// `out/plots/`.
pub fn learning_curves(
    out: &Path,
    methods: &[(String, bool)],
    runs: &[RunResult],
    policy: EvalPolicy,
) -> Result<Vec<PathBuf>> {
    let names = group_names(runs);
    let single = names.len() == 1;
    let env = runs.first().map(|r| r.eval.env.clone()).unwrap_or_default();
    let mut files = Vec::new();
    for group in &names {
        let column = policy.column(&curve_column(group, single));
        let mut curves = Vec::new();
        for (label, centralized) in methods {
            let mut c = Curve {
                label: label.clone(),
                runs: Vec::new(),
                style: plot::LineStyle::default(),
            };
            for r in runs.iter().filter(|r| &r.method == label) {
                c.runs.push(plot::read_curve(&r.run_dir, &column)?);
            }
            let n = c.runs.len();
            let algo = if *centralized { "MAPPO" } else { "IPPO" };
            c.label = if c.label.eq_ignore_ascii_case(algo) {
                format!("{algo} ({n} seeds)")
            } else {
                format!("{}: {algo} ({n} seeds)", c.label)
            };
            curves.push(c);
        }
        let which = policy.name();
        let (stem, ylabel) = if group == "all" || single {
            (
                policy.column("eval_return"),
                format!("{which} return per agent"),
            )
        } else {
            (
                policy.column(&format!("eval_return_{group}")),
                format!("{which} return per agent ({group})"),
            )
        };
        files.extend(plot::write_figure(
            &out.join("plots"),
            &stem,
            &env,
            &ylabel,
            &curves,
        )?);
    }
    Ok(files)
}

/// A figure of a table: three decimals, `-` where it is not finite.
pub(crate) fn fmt(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "-".into()
    }
}

/// The "steps to threshold" cell of a row.
pub(crate) fn steps_cell(r: &Row) -> String {
    match r.steps_to_threshold {
        Some(x) => format!("{:.0} ({}/{})", x, r.reached, r.finals.len()),
        None => format!("never (0/{})", r.finals.len()),
    }
}

/// The per-run table (first column `label`, return column `return_label`) and the figures.
pub(crate) fn write_runs_and_figures(
    s: &mut String,
    label: &str,
    return_label: &str,
    runs: &[RunResult],
    figures: &[PathBuf],
) {
    let _ = writeln!(
        s,
        "Per run:\n\n| {label} | seed | {return_label} | run |\n|---|---|---|---|"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.method,
            r.seed,
            fmt(r.eval.return_per_agent.mean),
            r.run_dir.display()
        );
    }
    let figures: Vec<_> = figures.iter().map(|p| p.display().to_string()).collect();
    let _ = write!(s, "\nFigures: {}", figures.join(", "));
}

/// The tables as Markdown (what `marl compare` prints and writes to compare.md).
pub fn markdown(c: &Comparison, opts: &CompareOptions) -> String {
    let mut s = String::new();
    let env = c.runs.first().map(|r| r.eval.env.as_str()).unwrap_or("");
    let which = c.eval_mode.name();
    let _ =
        writeln!(
        s,
        "# {} vs {} on {env}, {} seeds each, {which} evaluation\n\nFinal return: `marl eval RUN{} \
         --episodes {} --seed 0` (the {which} policy; per-agent mean return of the group). \
         Interval: 95% bootstrap of the mean over seeds. AUC: the {which} evaluation curve's \
         mean over training. Steps: first {which} evaluation at or above the threshold (mean \
         over the seeds that reached it).\n",
        c.tables.first().map_or("", |t| t.rows[0].method.as_str()),
        c.tables.first().map_or("", |t| t.rows[1].method.as_str()),
        opts.seeds,
        if c.eval_mode.greedy() { " --greedy" } else { "" },
        opts.episodes
    );
    for t in &c.tables {
        let _ = writeln!(
            s,
            "## group `{}` (threshold {})\n",
            t.group,
            fmt(t.threshold)
        );
        let _ = writeln!(
            s,
            "| method | final {which} return | IQM | 95% CI | AUC | steps to threshold | wall time | steps/s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &t.rows {
            let steps = steps_cell(r);
            let _ = writeln!(
                s,
                "| {} | {} | {} | [{}, {}] | {} | {} | {:.1} s | {:.0} |",
                r.method,
                fmt(r.mean),
                fmt(r.iqm),
                fmt(r.ci95.0),
                fmt(r.ci95.1),
                fmt(r.auc),
                steps,
                r.wall_s,
                r.sps
            );
        }
        let _ = writeln!(
            s,
            "\ndifference {} - {}: {} (95% bootstrap CI [{}, {}]); Welch's t = {}, df = {}, p = {}\n",
            t.rows[0].method,
            t.rows[1].method,
            fmt(t.rows[0].mean - t.rows[1].mean),
            fmt(t.diff_ci95.0),
            fmt(t.diff_ci95.1),
            fmt(t.welch.t),
            fmt(t.welch.df),
            fmt(t.welch.p)
        );
    }
    let return_label = format!("final {which} return");
    write_runs_and_figures(&mut s, "method", &return_label, &c.runs, &c.figures);
    s.push('\n');
    s
}
