//! `marl sweep collect DIR`: the tables of `marl compare` for a sweep, one row per config
//! (its seeds pooled), every config set against the first; the runs still missing, listed;
//! learning curves; and the marl-eval JSON file ([`super::marl_eval`]).
//!
//! Every finished run is evaluated as `marl eval RUN --greedy --episodes N --seed S` (`S`:
//! `--eval-seed`, 0 unless told; saved in
//! `RUN/eval/final.json`), exactly as `marl compare` does, so the numbers depend on the runs
//! only: the same sweep trained on Slurm or locally collects into the same tables.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::manifest::{Entry, Manifest, SweepDir};
use super::status::{self, State};
use crate::run::summary::RunRecord;
use crate::tools::compare::{self, fmt, Row, RunResult};
use crate::tools::stats;
use crate::train::evaluation::EvalPolicy;

/// How to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Episodes of each final greedy evaluation.
    pub episodes: usize,
    /// Their evaluation seed.
    pub eval_seed: u64,
    /// Return counted as solved for "steps to threshold" (default: the first config's mean
    /// final return, per group).
    pub threshold: Option<f64>,
    /// Evaluations run at once.
    pub jobs: usize,
}

/// A config of the sweep against the first one.
#[derive(Debug, Clone, Serialize)]
pub struct Versus {
    /// Welch's t-test of this config's final returns against the first config's.
    pub welch: stats::Welch,
    /// 95% bootstrap interval of mean(this) - mean(first).
    pub diff_ci95: (f64, f64),
}

/// A group's table.
#[derive(Debug, Clone, Serialize)]
pub struct SweepTable {
    /// Group name (`all`: every agent).
    pub group: String,
    /// The threshold used.
    pub threshold: f64,
    /// One row per config with a finished run, in manifest order.
    pub rows: Vec<Row>,
    /// Per row, the test against the first row (None for the first).
    pub versus: Vec<Option<Versus>>,
}

/// A run that is not finished.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    /// Manifest index.
    pub index: usize,
    /// Run id.
    pub run_id: String,
    /// Config label.
    pub label: String,
    /// Seed.
    pub seed: u64,
    /// Its state and note, as `status` gives them.
    pub state: String,
}

/// What `collect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    /// The sweep directory.
    pub out: PathBuf,
    /// The sweep's name.
    pub name: String,
    /// Runs in the manifest.
    pub total: usize,
    /// Finished runs with their evaluations, in manifest order.
    pub runs: Vec<RunResult>,
    /// Unfinished runs.
    pub missing: Vec<Missing>,
    /// One table per group, then `all`.
    pub tables: Vec<SweepTable>,
    /// Figures written.
    pub figures: Vec<PathBuf>,
    /// The marl-eval file.
    pub marl_eval: PathBuf,
}

/// The manifest's runs that are finished, and the others with their state.
pub fn split_finished<'m>(
    dir: &SweepDir,
    manifest: &'m Manifest,
) -> Result<(Vec<&'m Entry>, Vec<Missing>)> {
    let states = status::status(dir, true)?;
    let mut finished: Vec<&Entry> = Vec::new();
    let mut missing = Vec::new();
    for (e, s) in manifest.runs.iter().zip(&states) {
        if s.state == State::Finished {
            finished.push(e);
        } else {
            missing.push(Missing {
                index: e.index,
                run_id: e.run_id.clone(),
                label: e.label.clone(),
                seed: e.seed,
                state: if s.note.is_empty() {
                    s.state.to_string()
                } else {
                    format!("{}: {}", s.state, s.note)
                },
            });
        }
    }
    Ok((finished, missing))
}

/// Collects the sweep in `dir`: evaluates finished runs, writes `collect.md`,
/// `collect.json`, `plots/` and `marl-eval.json`.
pub fn collect(dir: &SweepDir, opts: &CollectOptions) -> Result<Collection> {
    let manifest = Manifest::read(dir)?;
    let (finished, missing) = split_finished(dir, &manifest)?;
    if finished.is_empty() {
        bail!(
            "no run of {} is finished yet ({} runs; `marl sweep status {}`)",
            dir.root.display(),
            manifest.runs.len(),
            dir.root.display()
        );
    }
    let runs = evaluate_all(dir, &finished, opts)?;
    // Configs in manifest order, each with its algorithm for the legends.
    let mut configs: Vec<(String, bool)> = Vec::new();
    for e in &finished {
        if !configs.iter().any(|c| c.0 == e.label) {
            let cfg = Manifest::run_config(dir, e)?;
            configs.push((e.label.clone(), cfg.algo().centralized_training));
        }
    }
    let tables = tables(&configs, &runs, opts.threshold)?;
    let figures = compare::learning_curves(&dir.root, &configs, &runs, EvalPolicy::Greedy)?;
    let marl_eval = dir.root.join("marl-eval.json");
    let export: Vec<super::marl_eval::ExportRun> = runs
        .iter()
        .zip(&finished)
        .map(|(r, e)| super::marl_eval::ExportRun {
            run_dir: r.run_dir.clone(),
            env: r.eval.env.clone(),
            algorithm: super::marl_eval::algorithm(&manifest, e),
            seed: r.seed,
            groups: r.eval.groups.iter().map(|g| g.0.clone()).collect(),
            final_return: r.eval.return_per_agent.mean,
            final_team_return: r.eval.team_return.mean,
            final_groups: r
                .eval
                .groups
                .iter()
                .map(|g| (g.0.clone(), g.1.mean))
                .collect(),
        })
        .collect();
    let doc = super::marl_eval::export(&export)?;
    crate::run::fsio::write_atomic(&marl_eval, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    let c = Collection {
        out: dir.root.clone(),
        name: manifest.name.clone(),
        total: manifest.runs.len(),
        runs,
        missing,
        tables,
        figures,
        marl_eval,
    };
    crate::run::fsio::write_atomic(
        &dir.root.join("collect.json"),
        serde_json::to_string_pretty(&c)?.as_bytes(),
    )?;
    crate::run::fsio::write_atomic(&dir.root.join("collect.md"), markdown(&c, opts).as_bytes())?;
    Ok(c)
}

/// Final evaluations of the finished runs, `opts.jobs` at a time, in manifest order.
fn evaluate_all(
    dir: &SweepDir,
    finished: &[&Entry],
    opts: &CollectOptions,
) -> Result<Vec<RunResult>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunResult>>>> =
        Mutex::new((0..finished.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, finished.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(e) = finished.get(i) else { break };
                let run_dir = dir.run_dir(&e.run_id);
                let r = (|| -> Result<RunResult> {
                    let record = RunRecord::read(&run_dir).with_context(|| {
                        format!("{}: missing", run_dir.summary_path().display())
                    })?;
                    let eval = compare::evaluate_final(
                        &run_dir,
                        opts.episodes,
                        opts.eval_seed,
                        EvalPolicy::Greedy,
                    )
                    .with_context(|| format!("evaluating {}", run_dir.display()))?;
                    Ok(RunResult {
                        method: e.label.clone(),
                        seed: e.seed,
                        run_dir: run_dir.path().to_path_buf(),
                        eval,
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

fn tables(
    configs: &[(String, bool)],
    runs: &[RunResult],
    threshold: Option<f64>,
) -> Result<Vec<SweepTable>> {
    let names = compare::group_names(runs);
    let single = names.len() == 1;
    let mut out = Vec::new();
    for group in &names {
        let column = compare::curve_column(group, single);
        let of = |label: &str| -> Vec<&RunResult> {
            runs.iter().filter(|r| r.method == label).collect()
        };
        let finals = |label: &str| -> Vec<f64> {
            of(label)
                .iter()
                .map(|r| compare::final_return(r, group))
                .collect()
        };
        let first = finals(&configs[0].0);
        let thr = threshold.unwrap_or_else(|| stats::mean(&first));
        let mut rows = Vec::new();
        let mut versus = Vec::new();
        for (k, (label, _)) in configs.iter().enumerate() {
            rows.push(compare::table_row(label, &of(label), group, &column, thr)?);
            versus.push((k > 0).then(|| {
                let these = finals(label);
                Versus {
                    welch: stats::welch(&these, &first),
                    diff_ci95: stats::bootstrap_diff_ci(&these, &first, 10_000, 1),
                }
            }));
        }
        out.push(SweepTable {
            group: group.clone(),
            threshold: thr,
            rows,
            versus,
        });
    }
    Ok(out)
}

/// The tables as Markdown (what `collect` prints and writes to collect.md).
pub fn markdown(c: &Collection, opts: &CollectOptions) -> String {
    let mut s = String::new();
    let env = c.runs.first().map(|r| r.eval.env.as_str()).unwrap_or("");
    let configs = c.tables.first().map_or(0, |t| t.rows.len());
    let _ = writeln!(
        s,
        "# Sweep `{}` on {env}: {configs} config{}, {} of {} runs finished\n\nFinal return: `marl eval RUN --greedy --episodes {} --seed {}` \
         (per-agent mean return of the group), pooled over each config's seeds. Interval: 95% \
         bootstrap of the mean over seeds. AUC: the evaluation curve's mean over training. \
         Steps: first evaluation at or above the threshold (mean over the seeds that reached \
         it). Versus the first config: difference of the means, its 95% bootstrap interval and \
         Welch's p.\n",
        c.name,
        if configs == 1 { "" } else { "s" },
        c.runs.len(),
        c.total,
        opts.episodes,
        opts.eval_seed
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
            "| config | seeds | final return | IQM | 95% CI | AUC | steps to threshold | wall time | steps/s | vs first |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for (r, v) in t.rows.iter().zip(&t.versus) {
            let steps = compare::steps_cell(r);
            let vs = match v {
                None => "-".to_string(),
                Some(v) => format!(
                    "{} [{}, {}], p = {}",
                    fmt(r.mean - t.rows[0].mean),
                    fmt(v.diff_ci95.0),
                    fmt(v.diff_ci95.1),
                    fmt(v.welch.p)
                ),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | [{}, {}] | {} | {} | {:.1} s | {:.0} | {} |",
                r.method,
                r.finals.len(),
                fmt(r.mean),
                fmt(r.iqm),
                fmt(r.ci95.0),
                fmt(r.ci95.1),
                fmt(r.auc),
                steps,
                r.wall_s,
                r.sps,
                vs
            );
        }
        let _ = writeln!(s);
    }
    if c.missing.is_empty() {
        let _ = writeln!(s, "Missing runs: none.\n");
    } else {
        let _ = writeln!(
            s,
            "Missing runs ({}; not in the tables):\n\n| index | run | config | seed | state |\n|---|---|---|---|---|",
            c.missing.len()
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
    compare::write_runs_and_figures(&mut s, "config", "final return", &c.runs, &c.figures);
    let _ = writeln!(s, "\n\nmarl-eval: {}", c.marl_eval.display());
    s
}
