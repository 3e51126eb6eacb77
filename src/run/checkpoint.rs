//! Checkpoints: the networks in safetensors with the frozen layout (README), the optimizer
//! moments, and a JSON file with everything else needed to resume exactly (update, step,
//! generator, value-normalization statistics, environment snapshots).
//!
//! A checkpoint is written into a temporary directory and renamed into place, then the
//! `latest` pointer is replaced atomically, so a crash never leaves a half-written checkpoint.
//! The temporary directory also gets `checksums.json`, the size and SHA-256 of every other
//! file, so the rename publishes files and checksums together; [`load`] verifies them and
//! names the first damaged file (a flipped bit on disk, a truncated copy), and
//! [`load_latest_good`] falls back from a damaged `latest` to the newest earlier checkpoint
//! that is intact. Checkpoints written before checksums existed load unverified.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::run::dir::{self, checkpoint_files as files, RunDir};
use crate::run::fsio;

/// Everything besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Updates completed.
    pub update: u64,
    /// Environment steps completed.
    pub global_step: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// The sampling generator.
    pub rng: GeneratorState,
    /// Value-normalization state per group.
    pub value_norm: Vec<[f64; 3]>,
    /// Adam step counts per group: (actor, critic).
    pub adam_steps: Vec<(u64, u64)>,
    /// Environment ids for a compatibility check.
    pub env_id: String,
}

/// The position of a ChaCha8 generator, as state.json stores it: written as an object;
/// checkpoints before it stored the array `[seed_hex, stream, word_pos]`, which still reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(from = "GeneratorStateForms")]
pub struct GeneratorState {
    /// The 32-byte seed, as 64 hex digits.
    pub seed_hex: String,
    /// The stream.
    pub stream: u64,
    /// The word position, in decimal (a u128: JSON numbers would lose digits).
    pub word_pos: String,
}

/// The forms state.json has held the generator in.
#[derive(Deserialize)]
#[serde(untagged)]
enum GeneratorStateForms {
    Named {
        seed_hex: String,
        stream: u64,
        word_pos: String,
    },
    /// Before the named form (the checkpoints of tests/fixtures/checkpoints-e4909e0).
    Array(String, u64, String),
}

impl From<GeneratorStateForms> for GeneratorState {
    fn from(f: GeneratorStateForms) -> Self {
        let (seed_hex, stream, word_pos) = match f {
            GeneratorStateForms::Named {
                seed_hex,
                stream,
                word_pos,
            } => (seed_hex, stream, word_pos),
            GeneratorStateForms::Array(seed_hex, stream, word_pos) => (seed_hex, stream, word_pos),
        };
        Self {
            seed_hex,
            stream,
            word_pos,
        }
    }
}

impl GeneratorState {
    /// Where `rng` stands.
    pub fn of(rng: &ChaCha8Rng) -> Self {
        Self {
            seed_hex: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// A generator at this position.
    pub fn to_rng(&self) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let bad_seed = || anyhow::anyhow!("{}: bad generator seed", files::STATE);
        let hex = &self.seed_hex;
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad_seed());
        }
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad_seed())?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| bad_seed())?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        let pos = self
            .word_pos
            .parse()
            .with_context(|| format!("{}: bad generator position", files::STATE))?;
        rng.set_word_pos(pos);
        Ok(rng)
    }
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

/// Writes `ck` as `RUN/checkpoints/{update:06}` and points `latest` at it; keeps the newest
/// `keep` checkpoints. An error says `writing checkpoint <dir>: <reason>` and leaves the
/// previous checkpoints and `latest` as they were (see [`latest_good`]).
pub fn save(run_dir: &RunDir, ck: &Checkpoint, keep: usize) -> Result<PathBuf> {
    let root = run_dir.checkpoints_path();
    let name = dir::checkpoint_name(ck.state.update);
    let dest = run_dir.checkpoint_path(ck.state.update);
    let tmp = root.join(format!(".tmp-{name}"));
    let written = write_into(&root, &tmp, ck).and_then(|()| {
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&tmp, &dest)?;
        fsio::write_atomic(&run_dir.latest_path(), name.as_bytes())
    });
    if let Err(e) = written {
        // Give the space of the half-written one back (a full disk is the usual cause).
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(fsio::failed("writing checkpoint", &dest, e));
    }
    // Keep the newest `keep`.
    let all = checkpoints_in(&root)?;
    let excess = all.len().saturating_sub(keep.max(1));
    for old in &all[..excess] {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(dest)
}

/// The checkpoint directories under `root` (a `checkpoints/` directory), oldest first.
fn checkpoints_in(root: &Path) -> Result<Vec<PathBuf>> {
    let mut all: Vec<(u64, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| fsio::failed("listing", root, e))?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().to_string();
            dir::is_checkpoint_name(&name).then(|| Some((name.parse().ok()?, e.path())))?
        })
        .collect();
    all.sort();
    Ok(all.into_iter().map(|(_, p)| p).collect())
}

/// The files of a checkpoint and their checksums, into the fresh directory `tmp` under `root`.
fn write_into(root: &Path, tmp: &Path, ck: &Checkpoint) -> Result<()> {
    std::fs::create_dir_all(root)?;
    let _ = std::fs::remove_dir_all(tmp);
    std::fs::create_dir_all(tmp)?;
    candle_core::safetensors::save(&to_cpu(&ck.model)?, tmp.join(files::MODEL))?;
    candle_core::safetensors::save(&to_cpu(&ck.optimizer)?, tmp.join(files::OPTIMIZER))?;
    std::fs::write(
        tmp.join(files::STATE),
        serde_json::to_string_pretty(&ck.state)?,
    )?;
    let mut envs = Vec::new();
    for s in &ck.envs {
        envs.extend_from_slice(&(s.len() as u64).to_le_bytes());
        envs.extend_from_slice(s);
    }
    std::fs::write(tmp.join(files::ENVS), envs)?;
    // Summed from the files as written, so the checksums vouch for what is on disk.
    let mut sums = Checksums::default();
    for name in files::COVERED {
        sums.files.insert(
            name.to_string(),
            FileSum::of(&std::fs::read(tmp.join(name))?),
        );
    }
    std::fs::write(
        tmp.join(files::CHECKSUMS),
        serde_json::to_string_pretty(&sums)?,
    )?;
    Ok(())
}

/// `checksums.json`: the size and SHA-256 of each file of a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checksums {
    /// By file name.
    pub files: BTreeMap<String, FileSum>,
}

/// One file's size and digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSum {
    /// Its length in bytes.
    pub bytes: u64,
    /// Its SHA-256, as 64 lowercase hex digits.
    pub sha256: String,
}

impl FileSum {
    /// The size and digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.len() as u64,
            sha256: Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

impl Checksums {
    /// The checksums of checkpoint directory `dir`: None for a checkpoint written before they
    /// existed; an error (naming the file) when the file is there but unreadable.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(files::CHECKSUMS);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fsio::failed("reading", &path, e)),
        };
        let sums = serde_json::from_str(&text)
            .with_context(|| format!("{}: damaged (not a checksum list)", path.display()))?;
        Ok(Some(sums))
    }

    /// Whether `bytes`, read from `path` (file `name` of the checkpoint), is what was written.
    fn verify(&self, name: &str, path: &Path, bytes: &[u8]) -> Result<()> {
        let Some(want) = self.files.get(name) else {
            bail!(
                "{}: damaged: {} does not list it",
                path.display(),
                files::CHECKSUMS
            );
        };
        if bytes.len() as u64 != want.bytes {
            bail!(
                "{}: damaged: {} bytes where {} says {} (truncated or overwritten)",
                path.display(),
                bytes.len(),
                files::CHECKSUMS,
                want.bytes
            );
        }
        if FileSum::of(bytes).sha256 != want.sha256 {
            bail!(
                "{}: damaged: its SHA-256 differs from the one in {}",
                path.display(),
                files::CHECKSUMS
            );
        }
        Ok(())
    }
}

/// `err`, a failure while training into `run_dir`, with what the user needs next: the latest
/// good checkpoint (or that there is none), on the same line.
pub fn with_latest_good(err: anyhow::Error, run_dir: &RunDir) -> anyhow::Error {
    match latest_good(run_dir) {
        Some(ck) => anyhow::anyhow!(
            "{err:#}; the latest good checkpoint is {} (marl eval and marl train --resume use it)",
            ck.display()
        ),
        None => anyhow::anyhow!("{err:#}; no checkpoint of this run was written"),
    }
}

/// The checkpoint `marl eval` and `marl train --resume` would use: the one `latest` points
/// at, or the newest earlier one whose files match their checksums when it is damaged.
pub fn latest_good(run_dir: &RunDir) -> Option<PathBuf> {
    let (first, via_latest) = resolve_pointer(run_dir.path()).ok()?;
    if verify(&first).is_ok() {
        return Some(first);
    }
    if !via_latest {
        return None;
    }
    earlier(&first).into_iter().find(|c| verify(c).is_ok())
}

/// Finds the checkpoint directory for a run directory, a `checkpoints` directory, a
/// checkpoint directory, or its `latest` file (without reading its files).
pub fn resolve(path: &Path) -> Result<PathBuf> {
    resolve_pointer(path).map(|(dir, _)| dir)
}

/// [`resolve`], and whether the directory was found through a `latest` pointer (so that
/// earlier checkpoints beside it may stand in for it).
fn resolve_pointer(path: &Path) -> Result<(PathBuf, bool)> {
    let run = RunDir::new(path);
    let candidates = [
        run.latest_path(),
        path.join(dir::LATEST),
        path.to_path_buf(),
    ];
    for c in candidates {
        if c.is_file() && c.file_name().is_some_and(|n| n == dir::LATEST) {
            let name = std::fs::read_to_string(&c)
                .with_context(|| format!("cannot read {}", c.display()))?;
            // Whether it is intact (or there at all) is for `load` to tell, so that a damaged
            // one can be named and an earlier one stand in for it.
            let dir = c.parent().unwrap_or(Path::new(".")).join(name.trim());
            return Ok((dir, true));
        }
        if c.is_dir() && c.join(files::MODEL).is_file() {
            return Ok((c, false));
        }
    }
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    bail!(
        "{}: not a run directory or checkpoint (expected checkpoints/latest or {})",
        path.display(),
        files::MODEL
    )
}

/// The checkpoints older than `ck_dir` beside it, newest first.
fn earlier(ck_dir: &Path) -> Vec<PathBuf> {
    let Some(root) = ck_dir.parent() else {
        return Vec::new();
    };
    let update = ck_dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<u64>().ok());
    let mut all = checkpoints_in(root).unwrap_or_default();
    all.retain(|c| {
        let u = c
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u64>().ok());
        c != ck_dir && matches!((u, update), (Some(u), Some(at)) if u < at)
    });
    all.reverse();
    all
}

/// A checkpoint found and loaded by [`load_latest_good`].
pub struct Found {
    /// Its directory.
    pub dir: PathBuf,
    /// What it holds.
    pub checkpoint: Checkpoint,
}

/// Loads the checkpoint `path` names (see [`resolve`]). When that is the one `latest` points
/// at and it is damaged, loads the newest earlier checkpoint that is intact instead, with a
/// one-line warning naming the damaged file and the checkpoint used; with none, the error
/// names the damaged file. A checkpoint directory named directly is loaded or refused, never
/// replaced.
pub fn load_latest_good(path: &Path) -> Result<Found> {
    let (dir, via_latest) = resolve_pointer(path)?;
    let damaged = match load(&dir) {
        Ok(checkpoint) => return Ok(Found { dir, checkpoint }),
        Err(e) if !via_latest => return Err(e),
        Err(e) => e,
    };
    for candidate in earlier(&dir) {
        if let Ok(checkpoint) = load(&candidate) {
            tracing::warn!(
                "{damaged:#}; using the previous checkpoint {} instead",
                candidate.display()
            );
            return Ok(Found {
                dir: candidate,
                checkpoint,
            });
        }
    }
    Err(damaged.context(format!(
        "checkpoint {} (no earlier intact checkpoint to use instead)",
        dir.display()
    )))
}

/// Checks the files of checkpoint `dir` against its checksums without parsing them (a
/// checkpoint without checksums passes when its model is there).
pub fn verify(dir: &Path) -> Result<()> {
    let sums = Checksums::read(dir)?;
    for name in files::COVERED {
        let path = dir.join(name);
        match &sums {
            Some(sums) => {
                let bytes = std::fs::read(&path).map_err(|e| fsio::failed("reading", &path, e))?;
                sums.verify(name, &path, &bytes)?;
            }
            None if name == files::MODEL && !path.is_file() => {
                bail!("{}: missing", path.display())
            }
            None => {}
        }
    }
    Ok(())
}

/// Reads a checkpoint directory, checking each file against `checksums.json` (when the
/// checkpoint has one) before parsing it; an error names the file.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let sums = Checksums::read(dir)?;
    let read = |name: &str| -> Result<(PathBuf, Vec<u8>)> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| fsio::failed("reading", &path, e))?;
        if let Some(sums) = &sums {
            sums.verify(name, &path, &bytes)?;
        }
        Ok((path, bytes))
    };
    let tensors = |name: &str| -> Result<Vec<(String, Tensor)>> {
        let (path, bytes) = read(name)?;
        let map = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .with_context(|| format!("{}: cannot read (corrupted)", path.display()))?;
        let mut v: Vec<(String, Tensor)> = map.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    };
    let model = tensors(files::MODEL)?;
    let optimizer = tensors(files::OPTIMIZER)?;
    let (sp, text) = read(files::STATE)?;
    let state: TrainerState =
        serde_json::from_slice(&text).with_context(|| format!("{}: corrupted", sp.display()))?;
    let (ep, bytes) = read(files::ENVS)?;
    let mut envs = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        anyhow::ensure!(at + 8 <= bytes.len(), "{}: truncated", ep.display());
        let n = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        at += 8;
        anyhow::ensure!(n <= bytes.len() - at, "{}: truncated", ep.display());
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

#[cfg(test)]
mod tests {
    use rand::{RngCore, SeedableRng};

    use super::*;

    fn checkpoint(update: u64) -> Checkpoint {
        let mut rng = ChaCha8Rng::seed_from_u64(update);
        rng.next_u64();
        let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).expect("tensor");
        Checkpoint {
            model: vec![
                (
                    "agent.actor.head.bias".into(),
                    t(&[1.0, -2.0, update as f32]),
                ),
                ("agent.critic.head.bias".into(), t(&[0.5])),
            ],
            optimizer: vec![("agent.actor.head.bias.m".into(), t(&[0.0, 0.25, 3.0]))],
            state: TrainerState {
                update,
                global_step: 200 * update,
                episodes: 8 * update,
                rng: GeneratorState::of(&rng),
                value_norm: vec![[0.1, 0.2, 3.0]],
                adam_steps: vec![(4, 4)],
                env_id: "mpe/simple_spread_v3".into(),
            },
            envs: vec![vec![1, 2, 3], Vec::new(), vec![9; 20]],
        }
    }

    fn values(ts: &[(String, Tensor)]) -> Vec<(String, Vec<f32>)> {
        ts.iter()
            .map(|(k, t)| (k.clone(), t.to_vec1::<f32>().expect("values")))
            .collect()
    }

    #[test]
    fn a_saved_checkpoint_loads_back_and_its_checksums_verify() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = RunDir::new(tmp.path());
        let ck = checkpoint(5);
        let dir = save(&run, &ck, 3).expect("save");
        assert_eq!(dir, run.checkpoint_path(5));
        assert!(run.has_checkpoint());
        let sums = Checksums::read(&dir)
            .expect("read")
            .expect("checksums.json");
        assert_eq!(sums.files.len(), files::COVERED.len());
        verify(&dir).expect("intact");
        let found = load_latest_good(tmp.path()).expect("load");
        assert_eq!(found.dir, dir);
        let back = found.checkpoint;
        assert_eq!(back.state, ck.state);
        assert_eq!(values(&back.model), values(&ck.model));
        assert_eq!(values(&back.optimizer), values(&ck.optimizer));
        assert_eq!(back.envs, ck.envs);
        // The generator goes on where it stood.
        let (mut a, mut b) = (
            ck.state.rng.to_rng().expect("rng"),
            back.state.rng.to_rng().expect("rng"),
        );
        assert_eq!(a.next_u64(), b.next_u64());
        assert!(
            !dir.join(".tmp-000005").exists()
                && !run.checkpoints_path().join(".tmp-000005").exists()
        );
    }

    #[test]
    fn a_damaged_latest_is_named_and_the_previous_checkpoint_stands_in() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = RunDir::new(tmp.path());
        save(&run, &checkpoint(5), 3).expect("save 5");
        let newest = save(&run, &checkpoint(10), 3).expect("save 10");
        let envs = newest.join(files::ENVS);
        let mut bytes = std::fs::read(&envs).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&envs, &bytes).expect("write");
        let err = format!("{:#}", load(&newest).err().expect("damaged"));
        assert!(
            err.contains(&envs.display().to_string()) && err.contains("damaged"),
            "{err}"
        );
        let found = load_latest_good(run.path()).expect("the previous one");
        assert_eq!(found.dir, run.checkpoint_path(5));
        assert_eq!(found.checkpoint.state.update, 5);
        assert_eq!(latest_good(&run), Some(run.checkpoint_path(5)));
        // Named directly, the damaged one is refused, not replaced.
        assert!(load_latest_good(&newest).is_err());
        // Truncated: the size tells.
        std::fs::write(&envs, &bytes[..mid]).expect("write");
        let err = format!("{:#}", load(&newest).err().expect("truncated"));
        assert!(err.contains("truncated or overwritten"), "{err}");
        // With no intact one left, one line naming the damaged file.
        std::fs::remove_file(run.checkpoint_path(5).join(files::MODEL)).expect("rm");
        let err = format!("{:#}", load_latest_good(run.path()).err().expect("none"));
        assert!(err.contains(&envs.display().to_string()), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(latest_good(&run), None);
    }

    #[test]
    fn the_generator_reads_from_the_array_form_of_older_checkpoints() {
        let seed = "c5ab926c528dd73819df99eed2d8d157247a212711ef88ded2195a7ad6327b9a";
        let old: GeneratorState =
            serde_json::from_str(&format!("[\"{seed}\", 0, \"9805\"]")).expect("array form");
        let named = GeneratorState {
            seed_hex: seed.into(),
            stream: 0,
            word_pos: "9805".into(),
        };
        assert_eq!(old, named);
        let text = serde_json::to_string(&named).expect("json");
        assert!(text.contains("\"word_pos\":\"9805\""), "{text}");
        assert_eq!(
            serde_json::from_str::<GeneratorState>(&text).expect("named form"),
            named
        );
        assert_eq!(old.to_rng().expect("rng").get_word_pos(), 9805);
    }
}
