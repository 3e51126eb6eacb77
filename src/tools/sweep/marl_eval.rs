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
//!   name without axes; commas become spaces (marl-eval refuses them);
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

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::manifest::{Manifest, SweepDir};
use crate::run::dir::Metrics;
use crate::run::metrics::EVAL_RETURN;
use crate::run::RunDir;
use crate::tools::compare::RunResult;

/// The marl-eval document of the finished `runs` of a sweep.
pub fn export(dir: &SweepDir, manifest: &Manifest, runs: &[RunResult]) -> Result<Value> {
    let mut root = Map::new();
    for r in runs {
        let Some(entry) = manifest
            .runs
            .iter()
            .find(|e| dir.run_dir(&e.run_id).path() == r.run_dir)
        else {
            continue;
        };
        let (env, task) = r
            .eval
            .env
            .split_once('/')
            .unwrap_or((&r.eval.env, &r.eval.env));
        let axes: Vec<&str> = entry
            .axes
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with("env."))
            .collect();
        let algorithm = if axes.is_empty() {
            manifest.name.clone()
        } else {
            axes.join(" ")
        }
        .replace(", ", " ")
        .replace(',', " ");
        let groups: Vec<String> = r.eval.groups.iter().map(|g| g.0.clone()).collect();
        let several = groups.len() > 1;
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
                for g in &groups {
                    if let Some(x) = num(row, col(&format!("{g}/eval_return"))) {
                        step.insert(format!("return_{g}"), json!([x]));
                    }
                }
            }
            run.insert(format!("step_{k:0width$}"), Value::Object(step));
            k += 1;
        }
        let mut absolute = Map::new();
        absolute.insert("return".into(), json!([r.eval.return_per_agent.mean]));
        absolute.insert("team_return".into(), json!([r.eval.team_return.mean]));
        if several {
            for (g, x) in &r.eval.groups {
                absolute.insert(format!("return_{g}"), json!([x.mean]));
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
                m.entry(algorithm)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            });
        if let Some(algo) = slot {
            algo.insert(format!("seed_{}", r.seed), Value::Object(run));
        }
    }
    Ok(Value::Object(root))
}
