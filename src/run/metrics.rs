//! metrics.csv and metrics.jsonl: one row per update, with stable column names fixed when the
//! run starts (docs/design.md section 6). Missing values (no finished episode, no evaluation this
//! update) are empty in the CSV and null in the JSONL. Rows are flushed as they are written, so
//! a crash loses nothing already logged. The same rows go to a TensorBoard event file
//! ([`crate::run::tensorboard`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::algo::scalars::Scalars;
use crate::run::dir::{Metrics, RunDir};
use crate::run::tensorboard::ScalarLog;

/// Columns whose values depend on the machine, not the numbers (excluded when comparing runs).
pub const TIMING_COLUMNS: [&str; 3] = ["charts/sps", "time/rollout_s", "time/update_s"];

/// The column of the periodic evaluation's per-agent mean return (the greedy policy's; the
/// stochastic one's adds `_stochastic`: `crate::train::evaluation::EvalPolicy::column`).
pub const EVAL_RETURN: &str = "eval/return";

/// Writes the metrics files of a run.
pub struct MetricsSink {
    columns: Vec<String>,
    csv: File,
    jsonl: File,
    csv_path: PathBuf,
    events: ScalarLog,
}

impl MetricsSink {
    /// Creates the files (or, when `resume_update` is given, keeps the rows up to that update
    /// and appends after them, in the columns the file already has).
    pub fn open(dir: &RunDir, columns: Vec<String>, resume_update: Option<u64>) -> Result<Self> {
        let csv_path = dir.metrics_csv_path();
        let jsonl_path = dir.metrics_jsonl_path();
        // A run stopped before its first row has no file yet: it starts one.
        if let Some(upto) = resume_update.filter(|_| csv_path.exists()) {
            truncate_after(&csv_path, upto, true)?;
            let header = Metrics::read(&csv_path)?.header;
            let columns = if header.iter().all(String::is_empty) {
                columns
            } else {
                header
            };
            truncate_after(&jsonl_path, upto, false)?;
            let csv = OpenOptions::new()
                .append(true)
                .open(&csv_path)
                .with_context(|| format!("cannot open {}", csv_path.display()))?;
            let jsonl = OpenOptions::new()
                .append(true)
                .open(&jsonl_path)
                .with_context(|| format!("cannot open {}", jsonl_path.display()))?;
            return Ok(Self {
                columns,
                csv,
                jsonl,
                csv_path,
                events: ScalarLog::open(dir, true)?,
            });
        }
        let mut csv = File::create(&csv_path)
            .with_context(|| format!("cannot create {}", csv_path.display()))?;
        writeln!(csv, "{}", columns.join(","))
            .map_err(|e| crate::run::fsio::failed("writing metrics", &csv_path, e))?;
        let jsonl = File::create(&jsonl_path)
            .with_context(|| format!("cannot create {}", jsonl_path.display()))?;
        Ok(Self {
            columns,
            csv,
            jsonl,
            csv_path,
            events: ScalarLog::open(dir, false)?,
        })
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Appends one row given by name; every column must be named (NaN: missing).
    pub fn write_row(&mut self, row: &Row) -> Result<()> {
        let values = self
            .columns
            .iter()
            .map(|c| {
                row.get(c).with_context(|| {
                    format!(
                        "{}: column `{c}` has no value in this run (was the run started by another version?)",
                        self.csv_path.display()
                    )
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        self.write(&values)
    }

    /// Appends one row; `values` follows `columns` (NaN: missing).
    pub fn write(&mut self, values: &[f64]) -> Result<()> {
        let cells: Vec<String> = values
            .iter()
            .map(|v| {
                if v.is_finite() {
                    format_number(*v)
                } else {
                    String::new()
                }
            })
            .collect();
        writeln!(self.csv, "{}", cells.join(","))
            .and_then(|()| self.csv.flush())
            .map_err(|e| crate::run::fsio::failed("writing metrics", &self.csv_path, e))?;
        let mut obj = serde_json::Map::new();
        for (c, v) in self.columns.iter().zip(values) {
            let j = if v.is_finite() {
                serde_json::json!(v)
            } else {
                serde_json::Value::Null
            };
            obj.insert(c.clone(), j);
        }
        writeln!(self.jsonl, "{}", serde_json::Value::Object(obj))
            .and_then(|()| self.jsonl.flush())
            .map_err(|e| {
                let path = self.csv_path.with_extension("jsonl");
                crate::run::fsio::failed("writing metrics", &path, e)
            })?;
        self.events.write(&self.columns, values)
    }
}

/// The suffix of a stochastic policy's evaluation columns (`eval/return_stochastic`); the
/// greedy policy's carry none.
pub const STOCHASTIC_SUFFIX: &str = "_stochastic";

/// The column of an evaluation figure, given the greedy policy's name for it.
pub fn eval_column(greedy_column: &str, stochastic: bool) -> String {
    if stochastic {
        format!("{greedy_column}{STOCHASTIC_SUFFIX}")
    } else {
        greedy_column.to_string()
    }
}

/// The training episodes that finished during one update (NaN: none finished).
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeFigures {
    /// Mean per-agent return.
    pub per_agent: f64,
    /// Mean team return (sum over agents).
    pub team: f64,
    /// Mean episode length.
    pub length: f64,
    /// Each agent's mean return.
    pub agent_means: Vec<f64>,
}

/// One group's part of a row.
pub struct GroupColumns<'a> {
    /// The group's name (the columns' prefix).
    pub name: &'a str,
    /// Its agents' indices.
    pub agents: &'a [usize],
    /// Its loss terms and diagnostics by name.
    pub terms: &'a Scalars,
    /// Each member's policy loss (filled when agents are logged).
    pub agent_policy_loss: &'a [f64],
}

/// One evaluation policy's part of a row.
pub struct EvalColumns<'a> {
    /// Whether the policy samples its actions (its columns carry [`STOCHASTIC_SUFFIX`]).
    pub stochastic: bool,
    /// Per-agent return, team return and each group's return, where it evaluated this update.
    pub figures: Option<(f64, f64, &'a [f64])>,
}

/// Everything one update reports, by name. [`UpdateMetrics::row`] is the one place that lays
/// it out in columns, so the columns of metrics.csv, metrics.jsonl and TensorBoard are defined
/// here and nowhere else.
pub struct UpdateMetrics<'a> {
    /// Updates done.
    pub update: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// The training episodes of this update.
    pub training: &'a EpisodeFigures,
    /// Environment steps per second over this invocation.
    pub sps: f64,
    /// The actor's learning rate.
    pub learning_rate: f64,
    /// The entropy coefficient.
    pub entropy_coef: f64,
    /// Wall time of the collect stage.
    pub rollout_s: f64,
    /// Wall time of the update stage.
    pub update_s: f64,
    /// Per group, in the config's order.
    pub groups: Vec<GroupColumns<'a>>,
    /// Per evaluation policy, in `logging.eval_mode`'s order.
    pub evaluations: Vec<EvalColumns<'a>>,
    /// Whether per-agent columns are logged (`logging.log_agent_metrics`).
    pub log_agents: bool,
}

impl UpdateMetrics<'_> {
    /// The row: counters, training episodes, schedules, each loss term as the mean over
    /// groups, timings, evaluations; then per group its return, evaluations and terms; then,
    /// when asked, per agent.
    pub fn row(&self) -> Row {
        let mut row = Row::default();
        row.set("update", self.update as f64);
        row.set("global_step", self.global_step as f64);
        row.set("episodes", self.episodes as f64);
        row.set("charts/episodic_return", self.training.per_agent);
        row.set("charts/team_return", self.training.team);
        row.set("charts/episode_length", self.training.length);
        row.set("charts/sps", self.sps);
        row.set("charts/learning_rate", self.learning_rate);
        row.set("charts/entropy_coef", self.entropy_coef);
        // Over the groups that train (a group of `algo.random_groups` has no terms).
        let trained: Vec<_> = self.groups.iter().filter(|g| !g.terms.is_empty()).collect();
        if let Some(first) = trained.first() {
            for (name, _) in first.terms.iter() {
                let mean = trained
                    .iter()
                    .map(|g| g.terms.get(name).unwrap_or(f64::NAN))
                    .sum::<f64>()
                    / trained.len() as f64;
                row.set(format!("losses/{name}"), mean);
            }
        }
        row.set("time/rollout_s", self.rollout_s);
        row.set("time/update_s", self.update_s);
        for e in &self.evaluations {
            let (per_agent, team) = e.figures.map_or((f64::NAN, f64::NAN), |f| (f.0, f.1));
            row.set(eval_column(EVAL_RETURN, e.stochastic), per_agent);
            row.set(eval_column("eval/team_return", e.stochastic), team);
        }
        let means = &self.training.agent_means;
        for (gi, g) in self.groups.iter().enumerate() {
            let group_return =
                g.agents.iter().map(|&a| means[a]).sum::<f64>() / g.agents.len() as f64;
            row.set(format!("{}/return", g.name), group_return);
            for e in &self.evaluations {
                let value = e.figures.map_or(f64::NAN, |f| f.2[gi]);
                let column = eval_column(&format!("{}/eval_return", g.name), e.stochastic);
                row.set(column, value);
            }
            for (name, v) in g.terms.iter() {
                row.set(format!("{}/{name}", g.name), v);
            }
        }
        if self.log_agents {
            // In the environment's agent order, whatever the groups.
            for (a, &mean) in means.iter().enumerate() {
                let policy_loss = self
                    .groups
                    .iter()
                    .find_map(|g| {
                        let k = g.agents.iter().position(|&x| x == a)?;
                        Some(g.agent_policy_loss[k])
                    })
                    .unwrap_or(f64::NAN);
                row.set(format!("agent_{a}/return"), mean);
                row.set(format!("agent_{a}/policy_loss"), policy_loss);
            }
        }
        row
    }
}

/// One row of metrics by column name, in the order the names were first set.
#[derive(Debug, Clone, Default)]
pub struct Row {
    cells: Vec<(String, f64)>,
}

impl Row {
    /// Sets column `name` (NaN: missing).
    pub fn set(&mut self, name: impl Into<String>, value: f64) {
        let name = name.into();
        match self.cells.iter_mut().find(|(n, _)| *n == name) {
            Some(c) => c.1 = value,
            None => self.cells.push((name, value)),
        }
    }

    /// The value of column `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.cells.iter().find(|(n, _)| n == name).map(|c| c.1)
    }

    /// The column names in order.
    pub fn names(&self) -> Vec<String> {
        self.cells.iter().map(|(n, _)| n.clone()).collect()
    }
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Drops the rows of updates after `upto` (column `update`) from a metrics file.
fn truncate_after(path: &Path, upto: u64, csv: bool) -> Result<()> {
    let f =
        File::open(path).with_context(|| format!("cannot open {} to resume", path.display()))?;
    let mut kept = Vec::new();
    let mut col = None;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line?;
        if csv {
            if i == 0 {
                col = line.split(',').position(|c| c == "update");
                kept.push(line);
                continue;
            }
            let u = col
                .and_then(|c| line.split(',').nth(c))
                .and_then(|s| s.parse::<f64>().ok());
            if u.is_some_and(|u| u as u64 <= upto) {
                kept.push(line);
            }
        } else {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v.get("update")
                .and_then(|u| u.as_f64())
                .is_some_and(|u| u as u64 <= upto)
            {
                kept.push(line);
            }
        }
    }
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    crate::run::fsio::write_atomic(path, text.as_bytes())
}
