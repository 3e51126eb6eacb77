//! The layout of a run directory: every file name a training run writes and the tools read,
//! in one place. Code outside `crate::run` asks a [`RunDir`] for paths and contents and never
//! spells a file name itself, so the layout (README, "Training") changes here or nowhere.
//!
//! ```text
//! RUN/config.toml                      the resolved config (RunDir::config_path)
//! RUN/metrics.csv, RUN/metrics.jsonl   one row per update (crate::run::metrics)
//! RUN/events.out.tfevents.*            the same rows for TensorBoard (crate::run::tensorboard)
//! RUN/summary.json                     the run as a whole (crate::run::summary)
//! RUN/.lock                            the writer's lock (crate::run::lock)
//! RUN/eval/<name>.json                 final evaluations (marl compare, marl sweep collect)
//! RUN/checkpoints/latest               the name of the newest checkpoint
//! RUN/checkpoints/<update:06>/         model.safetensors, optimizer.safetensors, state.json,
//!                                      envs.bin, checksums.json (crate::run::checkpoint)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::RawConfig;
use crate::run::{fsio, lock};

const CONFIG: &str = "config.toml";
const METRICS_CSV: &str = "metrics.csv";
const METRICS_JSONL: &str = "metrics.jsonl";
const SUMMARY: &str = "summary.json";
const EVAL: &str = "eval";
const CHECKPOINTS: &str = "checkpoints";
/// The pointer file naming the newest checkpoint, inside `checkpoints/`.
pub(crate) const LATEST: &str = "latest";
/// The prefix TensorBoard looks for in a log directory.
pub(crate) const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// The files of one checkpoint directory (`checkpoints/<update:06>/`).
pub(crate) mod checkpoint_files {
    /// Network tensors, frozen layout.
    pub const MODEL: &str = "model.safetensors";
    /// Adam moments.
    pub const OPTIMIZER: &str = "optimizer.safetensors";
    /// Counters, generator, value normalization ([`crate::run::checkpoint::TrainerState`]).
    pub const STATE: &str = "state.json";
    /// Environment snapshots.
    pub const ENVS: &str = "envs.bin";
    /// The SHA-256 of the four above (absent in checkpoints written before it existed).
    pub const CHECKSUMS: &str = "checksums.json";
    /// The files the checksums cover, in the order they are loaded.
    pub const COVERED: [&str; 4] = [MODEL, OPTIMIZER, STATE, ENVS];
}

/// A run directory (which need not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the directory at `root` (and its parents) for a new run.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let dir = Self::new(root);
        std::fs::create_dir_all(&dir.root)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        Ok(dir)
    }

    /// Creates a new run's directory under `out_dir`, named after what it trains and when:
    /// `<env id>__<config name>__s<seed>__<unix time>`, the id's `/` as `-`.
    pub fn create_in(out_dir: &Path, env_id: &str, config_name: &str, seed: u64) -> Result<Self> {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!(
            "{}__{config_name}__s{seed}__{time}",
            env_id.replace('/', "-")
        );
        Self::create(out_dir.join(name))
    }

    /// The run directory a checkpoint directory belongs to: two levels up
    /// (`RUN/checkpoints/000123` -> `RUN`).
    pub fn of_checkpoint(ck_dir: &Path) -> Self {
        Self::new(ck_dir.parent().and_then(Path::parent).unwrap_or(ck_dir))
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// For messages.
    pub fn display(&self) -> std::path::Display<'_> {
        self.root.display()
    }

    /// `config.toml`: the resolved config the run trains with.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// `metrics.csv`.
    pub fn metrics_csv_path(&self) -> PathBuf {
        self.root.join(METRICS_CSV)
    }

    /// `metrics.jsonl`.
    pub fn metrics_jsonl_path(&self) -> PathBuf {
        self.root.join(METRICS_JSONL)
    }

    /// `summary.json`.
    pub fn summary_path(&self) -> PathBuf {
        self.root.join(SUMMARY)
    }

    /// The lock file held by the process training in the directory.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(lock::LOCK_FILE)
    }

    /// `checkpoints/`.
    pub fn checkpoints_path(&self) -> PathBuf {
        self.root.join(CHECKPOINTS)
    }

    /// `checkpoints/latest`, the pointer to the newest checkpoint.
    pub fn latest_path(&self) -> PathBuf {
        self.checkpoints_path().join(LATEST)
    }

    /// The checkpoint directory of `update` (`checkpoints/000123`).
    pub fn checkpoint_path(&self, update: u64) -> PathBuf {
        self.checkpoints_path().join(checkpoint_name(update))
    }

    /// `eval/<name>.json`, a saved evaluation report (`final`, `final_stochastic`).
    pub fn eval_report_path(&self, name: &str) -> PathBuf {
        self.root.join(EVAL).join(format!("{name}.json"))
    }

    /// A new TensorBoard event file named after `stamp` (`<time>.<host>.marl`).
    pub fn event_file_path(&self, stamp: &str) -> PathBuf {
        self.root.join(format!("{EVENTS_PREFIX}{stamp}"))
    }

    /// The TensorBoard event files, sorted by name (oldest first).
    pub fn event_files(&self) -> Result<Vec<PathBuf>> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .map_err(|e| fsio::failed("listing", &self.root, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(EVENTS_PREFIX))
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// Whether the run has written its config (it has started).
    pub fn has_config(&self) -> bool {
        self.config_path().is_file()
    }

    /// Whether the run has a metrics.csv.
    pub fn has_metrics(&self) -> bool {
        self.metrics_csv_path().is_file()
    }

    /// Whether the run has a checkpoint to resume from (`checkpoints/latest` exists).
    pub fn has_checkpoint(&self) -> bool {
        self.latest_path().is_file()
    }

    /// The text of `config.toml`, or None when the run has none (or it is unreadable).
    pub fn config_text(&self) -> Option<String> {
        std::fs::read_to_string(self.config_path()).ok()
    }

    /// Writes `eval/<name>.json` (atomically), creating `eval/`.
    pub fn write_eval_report(&self, name: &str, json: &str) -> Result<()> {
        let path = self.eval_report_path(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fsio::failed("creating", dir, e))?;
        }
        fsio::write_atomic(&path, json.as_bytes())
    }

    /// Parses `config.toml`; an error names the file.
    pub fn read_config(&self) -> Result<RawConfig> {
        let path = self.config_path();
        crate::config::load(&path, &[])
            .with_context(|| format!("the run's config {}", path.display()))
    }

    /// Writes `config.toml` (atomically).
    pub fn write_config(&self, text: &str) -> Result<()> {
        fsio::write_atomic(&self.config_path(), text.as_bytes())
    }

    /// `metrics.csv` as its header and rows of cells.
    pub fn read_metrics(&self) -> Result<Metrics> {
        Metrics::read(&self.metrics_csv_path())
    }

    /// Takes the writer's lock (see [`lock::RunLock`]), creating the lock file.
    pub fn lock(&self) -> Result<lock::RunLock> {
        lock::RunLock::acquire(&self.root)
    }

    /// Who holds the writer's lock now (`pid@host`), if anyone.
    pub fn lock_holder(&self) -> Option<String> {
        lock::holder(&self.root)
    }
}

/// The name of the checkpoint directory of `update`: zero-padded so that names sort in order.
pub(crate) fn checkpoint_name(update: u64) -> String {
    format!("{update:06}")
}

/// Whether `name` is that of a checkpoint directory.
pub(crate) fn is_checkpoint_name(name: &str) -> bool {
    name.len() >= 6 && name.chars().all(|c| c.is_ascii_digit())
}

/// A metrics.csv read back: its header and rows of cells (empty: missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// The column names.
    pub header: Vec<String>,
    /// The rows, cells in the header's order.
    pub rows: Vec<Vec<String>>,
}

impl Metrics {
    /// Reads a metrics.csv file (the run's [`RunDir::read_metrics`]); an error names it.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        Ok(Self { header, rows })
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|c| c == name)
    }

    /// The last row's value of column `name`, when there is one and it is a number.
    pub fn last(&self, name: &str) -> Option<f64> {
        let c = self.column(name)?;
        self.rows.last()?.get(c)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_the_run_of_a_checkpoint() {
        let run = RunDir::new("runs/r");
        assert_eq!(run.config_path(), Path::new("runs/r/config.toml"));
        assert_eq!(run.latest_path(), Path::new("runs/r/checkpoints/latest"));
        let ck = run.checkpoint_path(40);
        assert_eq!(ck, Path::new("runs/r/checkpoints/000040"));
        assert_eq!(RunDir::of_checkpoint(&ck), run);
        assert_eq!(
            run.eval_report_path("final_stochastic"),
            Path::new("runs/r/eval/final_stochastic.json")
        );
        assert!(is_checkpoint_name(&checkpoint_name(7)));
        assert!(!is_checkpoint_name(".tmp-000007") && !is_checkpoint_name(LATEST));
    }
}
