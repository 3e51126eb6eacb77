//! The local scheduler: the sweep's tasks on this machine, `jobs` at a time, each its own
//! `marl sweep task SWEEP INDEX` process (exactly what a Slurm array task runs), its output in
//! `logs/local-<index>.out`. A stop signal is passed on to the running tasks, which checkpoint
//! and exit; no new task starts after it.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::manifest::SweepDir;
use crate::util::signals::{StopSignal, EXIT_STOPPED};

/// What the tasks did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalReport {
    /// Indices whose task exited 0 (run finished).
    pub finished: Vec<usize>,
    /// Indices stopped by a signal (checkpoint kept).
    pub stopped: Vec<usize>,
    /// Indices that failed, with the exit status.
    pub failed: Vec<(usize, i32)>,
    /// Indices never started (a stop came first).
    pub not_started: Vec<usize>,
}

/// Runs `indices` of the sweep with `exe` (the marl binary), `jobs` at a time.
pub fn run(
    dir: &SweepDir,
    exe: &std::path::Path,
    indices: &[usize],
    jobs: usize,
    stop: &StopSignal,
    log: &dyn Fn(&str),
) -> Result<LocalReport> {
    std::fs::create_dir_all(dir.logs())
        .with_context(|| format!("cannot create {}", dir.logs().display()))?;
    let mut report = LocalReport::default();
    let mut queue: std::collections::VecDeque<usize> = indices.iter().copied().collect();
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut forwarded = false;
    let start = Instant::now();
    let total = indices.len();
    loop {
        let stopping = stop.flag.load(Ordering::SeqCst);
        if stopping && !forwarded {
            // Ctrl-C reaches the children through the terminal; SIGTERM to this process does
            // not: pass it on.
            for (_, c) in &running {
                // SAFETY: kill has no memory preconditions; the pid is our live child.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            }
            forwarded = true;
        }
        while !stopping && running.len() < jobs.max(1) {
            let Some(index) = queue.pop_front() else {
                break;
            };
            let path = dir.logs().join(format!("local-{index}.out"));
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let err = out.try_clone()?;
            let child = Command::new(exe)
                .args(["-q", "sweep", "task"])
                .arg(&dir.root)
                .arg(index.to_string())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            log(&format!(
                "index {index}: started (output {})",
                path.display()
            ));
            running.push((index, child));
        }
        if running.is_empty() {
            break;
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait()? {
                None => i += 1,
                Some(status) => {
                    let (index, _) = running.swap_remove(i);
                    let code = status.code().unwrap_or(-1);
                    let what = match code {
                        0 => {
                            report.finished.push(index);
                            "finished".to_string()
                        }
                        c if c == i32::from(EXIT_STOPPED) => {
                            report.stopped.push(index);
                            "stopped (checkpoint kept)".to_string()
                        }
                        c => {
                            report.failed.push((index, c));
                            format!(
                                "failed (exit {c}; see {})",
                                dir.logs().join(format!("local-{index}.out")).display()
                            )
                        }
                    };
                    let done = report.finished.len() + report.stopped.len() + report.failed.len();
                    log(&format!(
                        "[{:7.1} s] {done}/{total}: index {index} {what}",
                        start.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    report.not_started = queue.into_iter().collect();
    Ok(report)
}
