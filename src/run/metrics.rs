//! metrics.csv and metrics.jsonl: one row per update, with stable column names fixed when the
//! run starts (docs/design.md section 6). Missing values (no finished episode, no evaluation this
//! update) are empty in the CSV and null in the JSONL. Rows are flushed as they are written, so
//! a crash loses nothing already logged. The same rows go to a TensorBoard event file
//! ([`crate::run::tensorboard`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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

/// Reads a metrics.csv into its header and rows (for tests and tools; [`RunDir::read_metrics`]
/// reads a run's).
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let Metrics { header, rows } = Metrics::read(path)?;
    Ok((header, rows))
}
