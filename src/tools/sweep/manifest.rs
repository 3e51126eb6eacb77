//! The sweep directory and its manifest: the list of runs (index, run id, config label, seed,
//! overrides), each run's resolved config frozen beside it, and where everything lives.
//!
//! ```text
//! SWEEP/manifest.json          format, name, source config, runs[index] = {run_id, config_id,
//!                              label, axes, seed, overrides}
//! SWEEP/configs/<run_id>.toml  the run's resolved config, frozen when the sweep was made
//! SWEEP/runs/<run_id>/         ordinary run directories (marl eval, plot, resume all work)
//! SWEEP/attempts/<run_id>.jsonl  one line per task that ran the run: host, job, outcome, error
//! SWEEP/slurm/                 sweep.sbatch and submissions.jsonl (the arrays submitted)
//! SWEEP/logs/                  each task's output (slurm-<job>_<task>.out, local-<index>.out)
//! SWEEP/suite.toml             a suite's table description, copied from the configs' directory
//! ```
//!
//! A sweep of a directory (a suite: `marl sweep configs/benchmarks`) takes every `*.toml` in it
//! but `suite.toml` ([`super::suite`]), in file-name order; each run's entry names its file
//! (`source`) and its label starts with the file's stem.
//!
//! The run id is the first 12 hex digits of the SHA-256 of the run's resolved config (its seed
//! included, `out_dir` left out), so the same run gets the same directory whatever the grid,
//! the index or the job that trains it: a relaunch finds its runs and reuses or resumes them.
//! The manifest only grows: a relaunch with a changed grid keeps every existing index and
//! appends the new runs, so array tasks already queued still find their runs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::grid::Grid;
use crate::config::{self, RawConfig, TrainConfig};
use crate::run::RunDir;

/// The manifest's format tag.
pub const FORMAT: &str = "marl-sweep-v1";

/// The paths of a sweep directory.
#[derive(Debug, Clone)]
pub struct SweepDir {
    /// The sweep directory (absolute).
    pub root: PathBuf,
}

impl SweepDir {
    /// The sweep directory at `path` (made absolute: the paths go into batch scripts).
    pub fn new(path: &Path) -> Result<Self> {
        let root = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(path)
        };
        Ok(Self { root })
    }

    /// `manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    /// The frozen config of a run.
    pub fn config(&self, run_id: &str) -> PathBuf {
        self.root.join("configs").join(format!("{run_id}.toml"))
    }

    /// The run directory of a run.
    pub fn run_dir(&self, run_id: &str) -> RunDir {
        RunDir::new(self.root.join("runs").join(run_id))
    }

    /// The attempts log of a run.
    pub fn attempts(&self, run_id: &str) -> PathBuf {
        self.root.join("attempts").join(format!("{run_id}.jsonl"))
    }

    /// Task output.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The batch script and the submissions.
    pub fn slurm(&self) -> PathBuf {
        self.root.join("slurm")
    }

    /// A suite's table description (`suite.toml`), frozen at launch.
    pub fn suite(&self) -> PathBuf {
        self.root.join(super::suite::SUITE_FILE)
    }
}

/// The runs of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The sweep's name (the config's file stem).
    pub name: String,
    /// The config file the sweep was made from (its runs' configs are frozen in `configs/`).
    pub config: String,
    /// The runs; `runs[i].index == i`.
    pub runs: Vec<Entry>,
}

/// One run of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Position in the manifest: the array task index.
    pub index: usize,
    /// Hash of the resolved config with its seed: the run directory's name.
    pub run_id: String,
    /// Hash of the resolved config without its seed: runs that differ only by seed share it.
    pub config_id: String,
    /// The config's label (`ppo.learning_rate=1e-3 ...`), what tables group by.
    pub label: String,
    /// The grid's axis values of this run (`key=value`), the seed left out.
    pub axes: Vec<String>,
    /// The seed.
    pub seed: u64,
    /// The `--set` overrides on top of the config file that make this run.
    pub overrides: Vec<String>,
    /// The config file this run comes from, for a sweep of a directory of configs (a suite):
    /// its file name in that directory. Absent for a sweep of one config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A run planned from a grid, with its resolved config.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The manifest entry (its index not yet known).
    pub entry: Entry,
    /// The resolved config, as written to `configs/<run_id>.toml`.
    pub config_text: String,
}

/// The first 12 hex digits of SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The run id of a resolved config (seed included, `out_dir` left out).
pub fn run_id(raw: &RawConfig) -> Result<String> {
    let mut r = raw.clone();
    r.out_dir = String::new();
    Ok(short_hash(&config::to_toml(&r)?))
}

/// The config id: the run id of the same config with seed 0.
pub fn config_id(raw: &RawConfig) -> Result<String> {
    let mut r = raw.clone();
    r.seed = 0;
    run_id(&r)
}

/// Reads a config file that may hold a `[sweep]` table: the grid it gives (empty if none)
/// and the config text without it.
pub fn read_config(path: &Path) -> Result<(Grid, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid config {}: {}", path.display(), e))?;
    let Some(sweep) = table.remove("sweep") else {
        return Ok((Grid::default(), text));
    };
    let Some(sweep) = sweep.as_table() else {
        bail!("{}: `sweep` must be a table", path.display());
    };
    let grid = Grid::from_table(sweep, &path.display().to_string())?;
    let rest = toml::to_string(&table).context("cannot re-serialize the config")?;
    Ok((grid, rest))
}

/// Expands `grid` over the config at `path` (whose own `[sweep]` table comes first): every
/// point resolved and validated, with its run id. Two points giving the same config are an
/// error. A directory is a suite: every config in it ([`plan_dir`]).
pub fn plan(path: &Path, grid: Grid) -> Result<(String, Vec<Planned>)> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sweep")
        .to_string();
    if path.is_dir() {
        return Ok((name, plan_dir(path, grid)?));
    }
    let planned = plan_file(path, grid, None)?;
    Ok((name, planned))
}

/// The configs of a suite directory: every `*.toml` but `suite.toml`, by file name.
pub fn suite_configs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the config directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "toml")
                && p.file_name().is_some_and(|n| n != super::suite::SUITE_FILE)
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no config (*.toml) in the directory", dir.display());
    }
    Ok(files)
}

/// Every config of the directory `dir` with `grid` (each file's own `[sweep]` table first),
/// in file-name order; labels start with the file's stem.
pub fn plan_dir(dir: &Path, grid: Grid) -> Result<Vec<Planned>> {
    let mut planned: Vec<Planned> = Vec::new();
    for file in suite_configs(dir)? {
        for p in plan_file(&file, grid.clone(), Some(&file))? {
            if let Some(twin) = planned.iter().find(|q| q.entry.run_id == p.entry.run_id) {
                bail!(
                    "{} and {} give the same run ({} seed {}): remove one",
                    twin.entry.source.as_deref().unwrap_or("?"),
                    p.entry.source.as_deref().unwrap_or("?"),
                    p.entry.label,
                    p.entry.seed
                );
            }
            planned.push(p);
        }
    }
    Ok(planned)
}

/// The points of one config file; `suite_file` (the file itself, in a suite) puts its name in
/// the entries and its stem in front of the labels.
fn plan_file(path: &Path, grid: Grid, suite_file: Option<&Path>) -> Result<Vec<Planned>> {
    let (file_grid, text) = read_config(path)?;
    let grid = file_grid.with(grid);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sweep")
        .to_string();
    let source = suite_file.and_then(|f| f.file_name()?.to_str().map(String::from));
    let mut planned: Vec<Planned> = Vec::new();
    for point in grid.expand() {
        let mut overrides = grid.fixed.clone();
        overrides.extend(point.values.iter().map(|(k, v)| format!("{k}={v}")));
        if let Some(s) = point.seed {
            overrides.push(format!("seed={s}"));
        }
        let raw = config::parse(&text, &path.display().to_string(), &overrides)?;
        TrainConfig::resolve(raw.clone())
            .with_context(|| format!("{} with --set {}", path.display(), overrides.join(" ")))?;
        let run_id = run_id(&raw)?;
        if let Some(twin) = planned.iter().find(|p| p.entry.run_id == run_id) {
            bail!(
                "two points of the grid give the same run: --set {} and --set {}",
                twin.entry.overrides.join(" "),
                overrides.join(" ")
            );
        }
        let label = match (point.values.is_empty(), source.is_some()) {
            (true, _) => stem.clone(),
            (false, false) => point.label(),
            (false, true) => format!("{stem} {}", point.label()),
        };
        planned.push(Planned {
            entry: Entry {
                index: 0,
                run_id,
                config_id: config_id(&raw)?,
                label,
                axes: point
                    .values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
                seed: raw.seed,
                overrides,
                source: source.clone(),
            },
            config_text: config::to_toml(&raw)?,
        });
    }
    Ok(planned)
}

impl Manifest {
    /// Reads `SWEEP/manifest.json`.
    pub fn read(dir: &SweepDir) -> Result<Self> {
        let path = dir.manifest();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is {} a sweep directory?)",
                path.display(),
                dir.root.display()
            )
        })?;
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a sweep manifest", path.display()))?;
        if m.format != FORMAT {
            bail!(
                "{}: format `{}`, expected `{FORMAT}`",
                path.display(),
                m.format
            );
        }
        for (i, e) in m.runs.iter().enumerate() {
            if e.index != i {
                bail!("{}: run {i} has index {}", path.display(), e.index);
            }
        }
        Ok(m)
    }

    /// The entry of array task `index`.
    pub fn entry(&self, index: usize) -> Result<&Entry> {
        self.runs.get(index).with_context(|| {
            format!(
                "index {index} is not in the sweep (it has runs 0..{})",
                self.runs.len()
            )
        })
    }

    /// Writes the planned runs into `dir`: a new manifest, or the existing one with the runs
    /// it lacks appended (under the sweep directory's lock). Returns the manifest and the
    /// indices of the planned runs.
    pub fn create_or_extend(
        dir: &SweepDir,
        name: &str,
        config: &Path,
        planned: &[Planned],
    ) -> Result<(Self, Vec<usize>)> {
        std::fs::create_dir_all(dir.root.join("configs"))
            .with_context(|| format!("cannot create the sweep directory {}", dir.root.display()))?;
        let _lock = crate::run::lock::RunLock::acquire(&dir.root)?;
        let mut m = if dir.manifest().is_file() {
            let m = Self::read(dir)?;
            if m.name != name {
                bail!(
                    "{} holds the sweep `{}`, not `{name}`: choose another --out",
                    dir.root.display(),
                    m.name
                );
            }
            m
        } else {
            Manifest {
                format: FORMAT.into(),
                name: name.into(),
                config: config.display().to_string(),
                runs: Vec::new(),
            }
        };
        let mut indices = Vec::new();
        for p in planned {
            let index = match m.runs.iter().find(|e| e.run_id == p.entry.run_id) {
                Some(e) => e.index,
                None => {
                    let index = m.runs.len();
                    m.runs.push(Entry {
                        index,
                        ..p.entry.clone()
                    });
                    index
                }
            };
            let path = dir.config(&p.entry.run_id);
            if !path.is_file() {
                crate::run::fsio::write_atomic(&path, p.config_text.as_bytes())?;
            }
            indices.push(index);
        }
        crate::run::fsio::write_atomic(
            &dir.manifest(),
            serde_json::to_string_pretty(&m)?.as_bytes(),
        )?;
        Ok((m, indices))
    }

    /// The resolved config of a run, read from its frozen file.
    pub fn run_config(dir: &SweepDir, entry: &Entry) -> Result<TrainConfig> {
        let path = dir.config(&entry.run_id);
        let raw = config::load(&path, &[])?;
        let id = run_id(&raw)?;
        if id != entry.run_id {
            bail!(
                "{} was changed after the sweep was made (its hash is {id}, not {})",
                path.display(),
                entry.run_id
            );
        }
        TrainConfig::resolve(raw).with_context(|| path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoke() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml")
    }

    #[test]
    fn run_ids_follow_the_resolved_config_and_seed_not_the_spelling() {
        let grid =
            Grid::from_args(&["ppo.learning_rate=1e-3,3e-4".into()], Some("0..2")).expect("grid");
        let (name, runs) = plan(&smoke(), grid).expect("plan");
        assert_eq!(name, "smoke");
        assert_eq!(runs.len(), 4);
        let ids: Vec<&str> = runs.iter().map(|p| p.entry.run_id.as_str()).collect();
        assert!(ids.iter().all(|id| id.len() == 12));
        assert_eq!(runs[0].entry.config_id, runs[1].entry.config_id);
        assert_ne!(runs[0].entry.config_id, runs[2].entry.config_id);
        // 0.001 is 1e-3: the same run.
        let again =
            Grid::from_args(&["ppo.learning_rate=0.001".into()], Some("1..=1")).expect("grid");
        let (_, one) = plan(&smoke(), again).expect("plan");
        assert_eq!(one[0].entry.run_id, runs[1].entry.run_id);
        let twins = Grid::from_args(&["ppo.learning_rate=1e-3,0.001".into()], None).expect("g");
        let err = plan(&smoke(), twins).expect_err("twins").to_string();
        assert!(err.contains("same run"), "{err}");
    }

    #[test]
    fn a_relaunch_keeps_indices_and_appends_new_runs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = SweepDir::new(tmp.path()).expect("dir");
        let g = |seeds: &str| Grid::from_args(&[], Some(seeds)).expect("grid");
        let (name, first) = plan(&smoke(), g("0..2")).expect("plan");
        let (m, idx) = Manifest::create_or_extend(&dir, &name, &smoke(), &first).expect("write");
        assert_eq!(idx, [0, 1]);
        assert_eq!(m.runs.len(), 2);
        let (_, second) = plan(&smoke(), g("1..4")).expect("plan");
        let (m, idx) = Manifest::create_or_extend(&dir, &name, &smoke(), &second).expect("extend");
        assert_eq!(idx, [1, 2, 3]);
        assert_eq!(m.runs.len(), 4);
        assert_eq!(Manifest::read(&dir).expect("read"), m);
        let cfg = Manifest::run_config(&dir, &m.runs[3]).expect("frozen config");
        assert_eq!(cfg.seed(), 3);
    }
}
