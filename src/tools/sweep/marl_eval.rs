//! The sweep as a marl-eval file (InstaDeep's marl-eval, which BenchMARL and Mava plot from):
//!
//! ```text
//! { "<environment>": { "<task>": { "<algorithm>": { "seed_<s>": {
//!     "step_00": { "step_count": <env steps>, "return": [x], "team_return": [x], ... },
//!     ...
//!     "absolute_metrics": { "return": [x], "team_return": [x], ... } } } } } }
//! ```
//!
//! - environment and task: the env id split at its first `/` (`mpe/simple_spread_v3` gives
//!   `mpe`, `simple_spread_v3`);
//! - algorithm: the run's axis values without `env.*` ones (those make tasks), or the sweep's
//!   name without axes; in a suite, the method (`MAPPO`, `IPPO`, with ` (GRU)`, ` + mean messages`), or the config's
//!   stem where two configs share a task and method; commas become spaces (marl-eval refuses
//!   them);
//! - run: `seed_<seed>`, as BenchMARL writes it;
//! - steps: every periodic greedy evaluation logged in metrics.csv (`eval/return`), keys
//!   zero-padded so that they sort in training order, one value each (the mean over `logging.eval_episodes`, which marl-eval accepts as a one-element
//!   list);
//! - absolute_metrics: the final greedy evaluation of `collect` (1,000 episodes by default), one
//!   value each. The paper's absolute metric re-evaluates the best policy with 10 times the
//!   episodes; marl keeps the newest checkpoints, not the best, so this is the final policy.
//!
//! Metrics: `return` (per-agent mean, PettingZoo scale), `team_return` (sum over agents), and
//! with several agent groups `return_<group>` too.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::manifest::{Entry, Manifest};
use crate::run::dir::Metrics;
use crate::run::metrics::EVAL_RETURN;
use crate::run::RunDir;

/// One finished run as the export needs it.
#[derive(Debug, Clone)]
pub struct ExportRun {
    /// The run directory (its metrics.csv gives the steps).
    pub run_dir: PathBuf,
    /// The env id (split into environment and task).
    pub env: String,
    /// The algorithm's name in the file.
    pub algorithm: String,
    /// The seed.
    pub seed: u64,
    /// The run's agent groups.
    pub groups: Vec<String>,
    /// The final greedy evaluation: per-agent mean return, team return, per group.
    pub final_return: f64,
    /// Team return of the final evaluation.
    pub final_team_return: f64,
    /// Per group, the final evaluation's per-agent return.
    pub final_groups: Vec<(String, f64)>,
}

/// The algorithm name of a sweep's run: its axis values without `env.*` ones (those make
/// tasks), or the sweep's name without axes; commas become spaces (marl-eval refuses them).
pub fn algorithm(manifest: &Manifest, entry: &Entry) -> String {
    let axes: Vec<&str> = entry
        .axes
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("env."))
        .collect();
    let name = if axes.is_empty() {
        manifest.name.clone()
    } else {
        axes.join(" ")
    };
    clean(&name)
}

/// A name marl-eval accepts: no commas.
pub fn clean(name: &str) -> String {
    name.replace(", ", " ").replace(',', " ")
}

/// The marl-eval document of finished runs.
pub fn export(runs: &[ExportRun]) -> Result<Value> {
    let mut root = Map::new();
    for r in runs {
        let (env, task) = r.env.split_once('/').unwrap_or((&r.env, &r.env));
        let several = r.groups.len() > 1;
        let mut run = Map::new();
        let Metrics { header, rows } = RunDir::new(r.run_dir.as_path()).read_metrics()?;
        let col = |name: &str| header.iter().position(|c| c == name);
        let (step_col, ret_col, team_col) = (
            col("global_step"),
            col(EVAL_RETURN),
            col("eval/team_return"),
        );
        let num = |row: &Vec<String>, c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .and_then(|s| s.parse::<f64>().ok())
        };
        // Zero-padded, so that the keys sort in order (JSON objects are written sorted).
        let evals = rows.iter().filter(|r| num(r, ret_col).is_some()).count();
        let width = evals.saturating_sub(1).to_string().len();
        let mut k = 0;
        for row in &rows {
            let Some(ret) = num(row, ret_col) else {
                continue;
            };
            let mut step = Map::new();
            step.insert(
                "step_count".into(),
                json!(num(row, step_col).unwrap_or(0.0) as u64),
            );
            step.insert("return".into(), json!([ret]));
            if let Some(team) = num(row, team_col) {
                step.insert("team_return".into(), json!([team]));
            }
            if several {
                for g in &r.groups {
                    if let Some(x) = num(row, col(&format!("{g}/eval_return"))) {
                        step.insert(format!("return_{g}"), json!([x]));
                    }
                }
            }
            run.insert(format!("step_{k:0width$}"), Value::Object(step));
            k += 1;
        }
        let mut absolute = Map::new();
        absolute.insert("return".into(), json!([r.final_return]));
        absolute.insert("team_return".into(), json!([r.final_team_return]));
        if several {
            for (g, x) in &r.final_groups {
                absolute.insert(format!("return_{g}"), json!([x]));
            }
        }
        run.insert("absolute_metrics".into(), Value::Object(absolute));
        let slot = root
            .entry(env.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .and_then(|m| {
                m.entry(task.to_string())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            })
            .and_then(|m| {
                m.entry(r.algorithm.clone())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            });
        if let Some(algo) = slot {
            algo.insert(format!("seed_{}", r.seed), Value::Object(run));
        }
    }
    Ok(Value::Object(root))
}
