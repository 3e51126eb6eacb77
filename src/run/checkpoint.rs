//! Checkpoints: the networks in safetensors with the frozen layout (README), the optimizer
//! moments, and a JSON file with everything else needed to resume exactly (update, step,
//! generator, value-normalization statistics, environment snapshots).
//!
//! A checkpoint is written into a temporary directory and renamed into place, then the
//! `latest` pointer is replaced atomically, so a crash never leaves a half-written checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::run::fsio;

/// Writes `bytes` to `path` through a temporary file and a rename; an error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fsio::failed("writing", path, e));
    }
    Ok(())
}

/// Everything besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Updates completed.
    pub update: u64,
    /// Environment steps completed.
    pub global_step: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// The sampling generator: seed (hex), stream, word position.
    pub rng: (String, u64, String),
    /// Value-normalization state per group.
    pub value_norm: Vec<[f64; 3]>,
    /// Adam step counts per group: (actor, critic).
    pub adam_steps: Vec<(u64, u64)>,
    /// Environment ids for a compatibility check.
    pub env_id: String,
}

/// What a checkpoint holds.
pub struct Checkpoint {
    /// Network tensors, frozen layout.
    pub model: Vec<(String, Tensor)>,
    /// Optimizer moments.
    pub optimizer: Vec<(String, Tensor)>,
    /// The rest.
    pub state: TrainerState,
    /// Environment snapshots per shard (empty for a policy-only checkpoint).
    pub envs: Vec<Vec<u8>>,
}

fn to_cpu(ts: &[(String, Tensor)]) -> Result<HashMap<String, Tensor>> {
    ts.iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?)))
        .collect()
}

/// Writes `ck` as `dir/checkpoints/{update:06}` and points `latest` at it; keeps the newest
/// `keep` checkpoints. An error says `writing checkpoint <dir>: <reason>` and leaves the
/// previous checkpoints and `latest` as they were (see [`latest_good`]).
pub fn save(run_dir: &Path, ck: &Checkpoint, keep: usize) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    let name = format!("{:06}", ck.state.update);
    let dest = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}"));
    let written = write_into(&root, &tmp, ck).and_then(|()| {
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&tmp, &dest)?;
        write_atomic(&root.join("latest"), name.as_bytes())
    });
    if let Err(e) = written {
        // Give the space of the half-written one back (a full disk is the usual cause).
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(fsio::failed("writing checkpoint", &dest, e));
    }
    // Keep the newest `keep`.
    let mut all: Vec<String> = std::fs::read_dir(&root)
        .map_err(|e| fsio::failed("listing", &root, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.len() == 6 && n.chars().all(|c| c.is_ascii_digit()))
        .collect();
    all.sort();
    let excess = all.len().saturating_sub(keep.max(1));
    for old in &all[..excess] {
        let _ = std::fs::remove_dir_all(root.join(old));
    }
    Ok(dest)
}

/// The files of a checkpoint, into the fresh directory `tmp` under `root`.
fn write_into(root: &Path, tmp: &Path, ck: &Checkpoint) -> Result<()> {
    std::fs::create_dir_all(root)?;
    let _ = std::fs::remove_dir_all(tmp);
    std::fs::create_dir_all(tmp)?;
    candle_core::safetensors::save(&to_cpu(&ck.model)?, tmp.join("model.safetensors"))?;
    candle_core::safetensors::save(&to_cpu(&ck.optimizer)?, tmp.join("optimizer.safetensors"))?;
    std::fs::write(
        tmp.join("state.json"),
        serde_json::to_string_pretty(&ck.state)?,
    )?;
    let mut envs = Vec::new();
    for s in &ck.envs {
        envs.extend_from_slice(&(s.len() as u64).to_le_bytes());
        envs.extend_from_slice(s);
    }
    std::fs::write(tmp.join("envs.bin"), envs)?;
    Ok(())
}

/// `err`, a failure while training into `run_dir`, with what the user needs next: the latest
/// good checkpoint (or that there is none), on the same line.
pub fn with_latest_good(err: anyhow::Error, run_dir: &Path) -> anyhow::Error {
    match latest_good(run_dir) {
        Some(ck) => anyhow::anyhow!(
            "{err:#}; the latest good checkpoint is {} (marl eval and marl train --resume use it)",
            ck.display()
        ),
        None => anyhow::anyhow!("{err:#}; no checkpoint of this run was written"),
    }
}

/// The checkpoint `latest` of a run points at, if it holds a model.
pub fn latest_good(run_dir: &Path) -> Option<PathBuf> {
    resolve(run_dir).ok()
}

/// Finds the checkpoint directory for a run directory, a `checkpoints` directory, a
/// checkpoint directory, or its `latest` file.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let candidates = [
        path.join("checkpoints").join("latest"),
        path.join("latest"),
        path.to_path_buf(),
    ];
    for c in candidates {
        if c.is_file() && c.file_name().is_some_and(|n| n == "latest") {
            let name = std::fs::read_to_string(&c)
                .with_context(|| format!("cannot read {}", c.display()))?;
            let dir = c.parent().unwrap_or(Path::new(".")).join(name.trim());
            if dir.join("model.safetensors").is_file() {
                return Ok(dir);
            }
            bail!(
                "{} points at {}, which holds no model.safetensors",
                c.display(),
                dir.display()
            );
        }
        if c.is_dir() && c.join("model.safetensors").is_file() {
            return Ok(c);
        }
    }
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    bail!(
        "{}: not a run directory or checkpoint (expected checkpoints/latest or model.safetensors)",
        path.display()
    )
}

/// Reads a checkpoint directory.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let read = |name: &str| -> Result<Vec<(String, Tensor)>> {
        let p = dir.join(name);
        let map = candle_core::safetensors::load(&p, &Device::Cpu)
            .with_context(|| format!("{}: cannot read (missing or corrupted)", p.display()))?;
        let mut v: Vec<(String, Tensor)> = map.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    };
    let model = read("model.safetensors")?;
    let optimizer = read("optimizer.safetensors")?;
    let sp = dir.join("state.json");
    let state: TrainerState = serde_json::from_str(
        &std::fs::read_to_string(&sp).with_context(|| format!("cannot read {}", sp.display()))?,
    )
    .with_context(|| format!("{}: corrupted", sp.display()))?;
    let ep = dir.join("envs.bin");
    let bytes = std::fs::read(&ep).with_context(|| format!("cannot read {}", ep.display()))?;
    let mut envs = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        anyhow::ensure!(at + 8 <= bytes.len(), "{}: truncated", ep.display());
        let n = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        at += 8;
        anyhow::ensure!(at + n <= bytes.len(), "{}: truncated", ep.display());
        envs.push(bytes[at..at + n].to_vec());
        at += n;
    }
    Ok(Checkpoint {
        model,
        optimizer,
        state,
        envs,
    })
}
