//! What the integration tests share: tests written once as a function of the device and
//! expanded into a test per device ([`per_device!`]), the CUDA variants skipping, with a
//! message, where no GPU is usable.

// Each test crate uses what it needs of this module.
#![allow(dead_code, unused_macros, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::Device;
use marl::config::{self, TrainConfig};
use marl::run::dir::Metrics;
use marl::run::metrics::TIMING_COLUMNS;
use marl::run::RunDir;
use marl::train::{self, Progress, Quiet, Reporter, RunOptions, RunSummary};

/// The variable that turns a skipped CUDA test into a failure: set it on GPU machines, where
/// the CUDA variants must run.
pub const REQUIRE_CUDA: &str = "MARL_REQUIRE_CUDA";

/// The CUDA device where one is usable; elsewhere `None`, after saying on stderr why `test`
/// is skipped (it then passes), or a panic with [`REQUIRE_CUDA`] set.
pub fn cuda_or_skip(test: &str) -> Option<Device> {
    match marl::backend::device::parse("cuda") {
        Ok(dev) => Some(dev),
        Err(e) if std::env::var_os(REQUIRE_CUDA).is_some() => {
            panic!("{test}: {REQUIRE_CUDA} is set, but {e:#}")
        }
        Err(e) => {
            eprintln!("skipped {test}: {e:#}");
            None
        }
    }
}

/// `NAME => BODY` pairs, each `BODY` a function or closure of `&Device` (named unlike the
/// tests, which would shadow it), expanded into the test `cpu::NAME` and, in the `cuda` build,
/// `cuda::NAME` (skipped, saying why, without a GPU).
macro_rules! per_device {
    ($($name:ident => $body:expr),* $(,)?) => {
        mod cpu {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    ($body)(&candle_core::Device::Cpu)
                }
            )*
        }

        #[cfg(feature = "cuda")]
        mod cuda {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    if let Some(dev) = crate::common::cuda_or_skip(test) {
                        ($body)(&dev)
                    }
                }
            )*
        }
    };
}

/// [`per_device!`]'s form for what runs on the CPU only: `NAME => BODY` into the test `NAME`.
macro_rules! cpu_only {
    ($($name:ident => $body:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                ($body)(&candle_core::Device::Cpu)
            }
        )*
    };
}

pub(crate) use {cpu_only, per_device};

/// A path in the repository.
pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// configs/smoke.toml with `overrides` (`key=value`), resolved.
pub fn smoke(overrides: &[&str]) -> TrainConfig {
    let sets: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainConfig::resolve(config::load(&repo("configs/smoke.toml"), &sets).expect("smoke config"))
        .expect("resolve")
}

/// metrics.csv without the timing columns.
pub fn numbers(run: &Path) -> Vec<Vec<String>> {
    let Metrics { header, rows } = RunDir::new(run).read_metrics().expect("metrics");
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !TIMING_COLUMNS.contains(&header[i].as_str()))
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

/// Resumes the run in `dir` from its latest checkpoint, with the config it keeps, to the end.
pub fn resume(dir: &Path) -> RunSummary {
    let cfg = TrainConfig::resolve(config::load(&dir.join("config.toml"), &[]).expect("cfg"))
        .expect("resolve");
    let opts = RunOptions {
        config_name: String::new(),
        resume: Some(dir.to_path_buf()),
        run_dir: None,
    };
    train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false))).expect("resume")
}

/// The binary run with `args`: its exit code, and stdout followed by stderr.
pub fn marl_output(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_marl"))
        .args(args)
        .output()
        .expect("run marl");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Stops the run after update `.0`, as a signal (Ctrl-C, SIGTERM) does: sets the stop flag.
pub struct StopAt(pub u64, pub Arc<AtomicBool>);

impl Reporter for StopAt {
    fn update(&mut self, p: &Progress) {
        if p.update == self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
    fn note(&mut self, _: &str) {}
}
