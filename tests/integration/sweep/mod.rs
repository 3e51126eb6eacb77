//! `marl sweep` and what it stands on: [`local`] on this machine, [`suite`] a directory of
//! configs and its results table, [`slurm`]
//! against a real single-node Slurm cluster started by `scripts/slurm-cluster.sh` (skipped with
//! a message only where that is impossible: not root, no apt-get). The dashboard files are
//! read back with TensorBoard's and marl-eval's own Python readers where
//! `scripts/setup-dashboards.sh` can install them (PyPI), and checked in Rust everywhere.

mod local;
mod slurm;
mod suite;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use marl::config::TrainConfig;
use marl::run::dir::Metrics;
use marl::run::RunDir;
use marl::train::{self, Quiet, RunOptions};

use crate::common::{numbers, repo, resume, smoke, StopAt};

fn marl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marl"))
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run marl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn train(cfg: TrainConfig, dir: &Path) {
    let opts = RunOptions {
        config_name: "smoke".into(),
        resume: None,
        run_dir: Some(dir.to_path_buf()),
    };
    train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false))).expect("train");
}

fn rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// The virtualenv with TensorBoard and marl-eval, or None (with the reason printed) where it
/// cannot be made (no python3, PyPI unreachable).
fn dashboards_python() -> Option<PathBuf> {
    static PY: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new(repo("scripts/setup-dashboards.sh"))
            .output()
            .expect("run scripts/setup-dashboards.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Some(PathBuf::from(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )),
            Some(3) => {
                println!("SKIPPED the Python readers: {}", stderr.trim());
                None
            }
            _ => panic!("scripts/setup-dashboards.sh failed:\n{stderr}"),
        }
    })
    .clone()
}

fn check_with_python(what: &str, paths: &[&Path]) {
    let Some(py) = dashboards_python() else {
        return;
    };
    let (code, out, err) = output(
        Command::new(repo(&py.display().to_string()))
            .arg(repo("scripts/check-dashboards.py"))
            .arg(what)
            .args(paths),
    );
    assert_eq!(code, 0, "check-dashboards.py {what}:\n{out}{err}");
    println!("{out}");
}
