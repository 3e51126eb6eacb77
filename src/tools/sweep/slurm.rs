//! The Slurm scheduler: a batch script for the sweep, job arrays submitted with `sbatch` (split
//! when larger than the cluster's MaxArraySize), and what `squeue` and `sacct` say about them.
//!
//! Array task `t` of an array submitted with offset `o` runs manifest index `o + t`: the
//! offset is the script's first argument, and an array never holds an index at or above
//! MaxArraySize (read from `scontrol show config`). `--parallel K` becomes `%K` on every
//! array. Each submission is appended to `slurm/submissions.jsonl` (job id, offset, array
//! spec, indices), which is how `status` maps Slurm's jobs back to runs.
//!
//! Preemption and time limits, in the script: `--requeue`, `--open-mode=append`, and
//! `--signal=B:USR1@90`: Slurm signals the batch shell 90 s before the time limit; the trap
//! forwards the signal to `marl sweep task`, which checkpoints after its current update and
//! exits 3 ([`crate::util::signals::EXIT_STOPPED`]); the script then requeues its own job (`scontrol
//! requeue $SLURM_JOB_ID`) while `SLURM_RESTART_COUNT` is below `--max-restarts`. SIGTERM
//! (preemption, `scancel`, `scontrol requeue`) reaches `marl` from Slurm itself, which checkpoints
//! the same way; a requeue there is Slurm's own (preemption with PreemptMode=REQUEUE), never
//! the script's, so `scancel` stays a cancel.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::manifest::SweepDir;

/// Slurm's MaxArraySize when `scontrol` cannot say (its compiled-in default).
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// What goes into the batch script.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// The `marl` binary the tasks run (absolute; on a shared file system).
    pub exe: PathBuf,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (the job's time limit).
    pub time: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// More sbatch options, passed as written (`--mem=4G`, `--qos=low`).
    pub extra: Vec<String>,
    /// Requeues the script makes itself after a time-limit warning.
    pub max_restarts: u32,
}

/// One `sbatch` call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Submission {
    /// The array job id.
    pub job_id: String,
    /// Added to the array task id to give the manifest index.
    pub offset: usize,
    /// The `--array` value.
    pub array: String,
    /// The manifest indices submitted.
    pub indices: Vec<usize>,
    /// Unix time of the submission.
    pub time: f64,
}

/// The batch script of a sweep.
pub fn script(dir: &SweepDir, name: &str, opts: &SlurmOptions) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let given = |flag: &str| {
        opts.extra
            .iter()
            .any(|o| o == flag || o.starts_with(&format!("{flag}=")))
    };
    let mut directive = |line: String| {
        let _ = writeln!(s, "#SBATCH {line}");
    };
    directive(format!("--job-name=marl-{name}"));
    directive(format!("--output={}/slurm-%A_%a.out", dir.logs().display()));
    directive("--open-mode=append".into());
    directive("--requeue".into());
    directive("--signal=B:USR1@90".into());
    if !given("--ntasks") && !given("-n") {
        directive("--ntasks=1".into());
    }
    if !given("--cpus-per-task") && !given("-c") {
        directive("--cpus-per-task=1".into());
    }
    for (flag, v) in [
        ("--partition", &opts.partition),
        ("--time", &opts.time),
        ("--account", &opts.account),
    ] {
        if let Some(v) = v {
            directive(format!("{flag}={v}"));
        }
    }
    for o in &opts.extra {
        directive(o.clone());
    }
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let _ = write!(
        s,
        r#"#
# Written by `marl sweep`: array task T runs index OFFSET + T of {manifest}
# (OFFSET: the first argument). `marl sweep task` reads the run directory: a finished run exits
# 0 at once, one with a checkpoint resumes. Its exit codes: 0 finished, 2 error, 3 stopped by a
# signal after a checkpoint, 4 run directory in use by another process.
set -u
offset=${{1:-0}}
index=$((SLURM_ARRAY_TASK_ID + offset))
max_restarts={max_restarts}
echo "[marl sweep] index $index: job ${{SLURM_ARRAY_JOB_ID:-?}}_${{SLURM_ARRAY_TASK_ID}} (id $SLURM_JOB_ID, restart ${{SLURM_RESTART_COUNT:-0}}) on $(hostname) at $(date '+%F %T')"
{exe} sweep task {sweep} "$index" &
child=$!
warned=0
# Slurm signals this shell (B:USR1) before the time limit; bash runs traps between commands,
# so the task runs in the background and `wait` is interrupted.
trap 'warned=1; kill -USR1 "$child" 2>/dev/null' USR1
trap 'kill -TERM "$child" 2>/dev/null' TERM
while :; do
    wait "$child"
    rc=$?
    if [ "$rc" -gt 128 ] && kill -0 "$child" 2>/dev/null; then continue; fi
    break
done
if [ "$rc" -gt 128 ]; then
    wait "$child" 2>/dev/null
    r=$?
    [ "$r" -ne 127 ] && rc=$r
fi
if [ "$rc" -eq 3 ] && [ "$warned" -eq 1 ]; then
    if [ "${{SLURM_RESTART_COUNT:-0}}" -lt "$max_restarts" ]; then
        echo "[marl sweep] index $index: checkpointed before the time limit; requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID"
    else
        echo "[marl sweep] index $index: checkpointed; $max_restarts restarts used, not requeueing (marl sweep resubmit continues it)"
    fi
fi
exit "$rc"
"#,
        manifest = dir.manifest().display(),
        max_restarts = opts.max_restarts,
        exe = q(&opts.exe),
        sweep = q(&dir.root),
    );
    s
}

/// Quotes a word for bash.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// MaxArraySize from `scontrol show config`.
pub fn max_array_size() -> Result<usize> {
    let out = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .context("cannot run `scontrol show config` (is Slurm installed here?)")?;
    if !out.status.success() {
        bail!(
            "`scontrol show config` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_max_array_size(&String::from_utf8_lossy(&out.stdout))
        .context("`scontrol show config` does not give MaxArraySize")
}

fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// Splits manifest indices into arrays whose task ids stay below `max` (MaxArraySize):
/// `(offset, task ids)`, offsets multiples of `max`.
pub fn chunks(indices: &[usize], max: usize) -> Vec<(usize, Vec<usize>)> {
    let max = max.max(1);
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in sorted {
        let offset = i / max * max;
        match out.last_mut() {
            Some((o, ids)) if *o == offset => ids.push(i - offset),
            _ => out.push((offset, vec![i - offset])),
        }
    }
    out
}

/// The `--array` value: ranges and single ids (`0-3,7,9-10`), then `%K`.
pub fn array_spec(ids: &[usize], parallel: Option<usize>) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    let mut s = parts.join(",");
    if let Some(k) = parallel {
        let _ = write!(s, "%{}", k.max(1));
    }
    s
}

/// The sweep's batch script as written by the last submission, if any.
pub fn existing_script(dir: &SweepDir) -> Option<String> {
    std::fs::read_to_string(dir.slurm().join("sweep.sbatch")).ok()
}

/// The `%K` of the sweep's last submission.
pub fn last_parallel(dir: &SweepDir) -> Option<usize> {
    let last = submissions(dir).pop()?;
    last.array.split_once('%')?.1.parse().ok()
}

/// Writes the batch script `text` and submits `indices` (split by MaxArraySize), at most
/// `parallel` tasks of each array at once. With `dry_run`, prints the script and the
/// commands and submits nothing.
pub fn submit(
    dir: &SweepDir,
    text: &str,
    indices: &[usize],
    parallel: Option<usize>,
    dry_run: bool,
) -> Result<Vec<Submission>> {
    if indices.is_empty() {
        return Ok(Vec::new());
    }
    let path = dir.slurm().join("sweep.sbatch");
    let max = match max_array_size() {
        Ok(m) => m,
        Err(e) if dry_run => {
            println!("# {e:#}; assuming MaxArraySize = {DEFAULT_MAX_ARRAY_SIZE}");
            DEFAULT_MAX_ARRAY_SIZE
        }
        Err(e) => return Err(e),
    };
    let plan = chunks(indices, max);
    if dry_run {
        println!("# {} (not written: dry run)\n{text}", path.display());
        for (offset, ids) in &plan {
            println!(
                "sbatch --parsable --array={} {} {offset}",
                array_spec(ids, parallel),
                path.display()
            );
        }
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir.slurm())
        .with_context(|| format!("cannot create {}", dir.slurm().display()))?;
    std::fs::create_dir_all(dir.logs())
        .with_context(|| format!("cannot create {}", dir.logs().display()))?;
    crate::run::fsio::write_atomic(&path, text.as_bytes())?;
    let mut done = Vec::new();
    for (offset, ids) in plan {
        let spec = array_spec(&ids, parallel);
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(format!("--array={spec}"))
            .arg(&path)
            .arg(offset.to_string())
            .output()
            .context("cannot run sbatch (is Slurm installed here?)")?;
        if !out.status.success() {
            bail!(
                "sbatch --array={spec} {} {offset} failed: {}{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                if done.is_empty() {
                    String::new()
                } else {
                    format!(" (submitted before it: {done:?})")
                }
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let job_id = stdout
            .trim()
            .split(';')
            .next()
            .filter(|s| !s.is_empty())
            .with_context(|| format!("sbatch printed no job id: `{}`", stdout.trim()))?
            .to_string();
        let sub = Submission {
            job_id,
            offset,
            array: spec,
            indices: ids.iter().map(|t| t + offset).collect(),
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        record(dir, &sub)?;
        done.push(sub);
    }
    Ok(done)
}

fn record(dir: &SweepDir, sub: &Submission) -> Result<()> {
    use std::io::Write;
    let path = dir.slurm().join("submissions.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(sub)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The submissions of a sweep, oldest first (none for a local sweep).
pub fn submissions(dir: &SweepDir) -> Vec<Submission> {
    std::fs::read_to_string(dir.slurm().join("submissions.jsonl"))
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What Slurm says about one index: the task of its latest submission.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskState {
    /// `<array job>_<task>`.
    pub job: String,
    /// Slurm's state (PENDING, RUNNING, REQUEUED, COMPLETED, FAILED, ...).
    pub state: String,
    /// Why it waits (squeue's reason), or sacct's exit code.
    pub reason: String,
    /// Whether the job is still in the queue (pending or running).
    pub queued: bool,
    /// The task's output file.
    pub log: PathBuf,
}

/// Slurm's view of each index of the sweep's latest submissions: squeue for queued tasks,
/// sacct (when accounting is on) for ended ones. Empty when Slurm is not reachable.
pub fn task_states(dir: &SweepDir) -> std::collections::BTreeMap<usize, TaskState> {
    let mut latest: std::collections::BTreeMap<usize, (String, usize)> = Default::default();
    for sub in submissions(dir) {
        for &i in &sub.indices {
            latest.insert(i, (sub.job_id.clone(), i - sub.offset));
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if latest.is_empty() {
        return out;
    }
    let mut jobs: Vec<&str> = latest.values().map(|(j, _)| j.as_str()).collect();
    jobs.sort_unstable();
    jobs.dedup();
    let list = jobs.join(",");
    let by_task: std::collections::BTreeMap<(String, usize), usize> = latest
        .iter()
        .map(|(&i, (j, t))| ((j.clone(), *t), i))
        .collect();
    let log = |j: &str, t: usize| dir.logs().join(format!("slurm-{j}_{t}.out"));
    // sacct first, squeue over it: the queue is the fresher word on live tasks.
    if let Some(text) = run_quiet(
        "sacct",
        &["-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", &list],
    ) {
        for line in text.lines() {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() < 3 {
                continue;
            }
            let Some((j, t)) = f[0].split_once('_') else {
                continue;
            };
            let Ok(t) = t.parse::<usize>() else { continue };
            if let Some(&i) = by_task.get(&(j.to_string(), t)) {
                let state = f[1].split_whitespace().next().unwrap_or("").to_string();
                out.insert(
                    i,
                    TaskState {
                        job: format!("{j}_{t}"),
                        queued: matches!(
                            state.as_str(),
                            "PENDING"
                                | "RUNNING"
                                | "REQUEUED"
                                | "SUSPENDED"
                                | "REQUEUE_HOLD"
                                | "REQUEUE_FED"
                                | "CONFIGURING"
                                | "COMPLETING"
                        ),
                        state,
                        reason: format!("exit {}", f[2]),
                        log: log(j, t),
                    },
                );
            }
        }
    }
    if let Some(text) = run_quiet("squeue", &["-h", "-r", "-o", "%F|%K|%T|%r", "-j", &list]) {
        for line in text.lines() {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() < 4 {
                continue;
            }
            let Ok(t) = f[1].parse::<usize>() else {
                continue;
            };
            if let Some(&i) = by_task.get(&(f[0].to_string(), t)) {
                out.insert(
                    i,
                    TaskState {
                        job: format!("{}_{t}", f[0]),
                        state: f[2].to_string(),
                        reason: f[3].to_string(),
                        queued: true,
                        log: log(f[0], t),
                    },
                );
            }
        }
    }
    out
}

/// A command's stdout when it succeeds; None when it cannot run or fails (Slurm absent,
/// accounting off, jobs long gone).
fn run_quiet(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_below_max_array_size_with_offsets() {
        let all: Vec<usize> = (0..10).collect();
        assert_eq!(
            chunks(&all, 4),
            vec![
                (0, vec![0, 1, 2, 3]),
                (4, vec![0, 1, 2, 3]),
                (8, vec![0, 1])
            ]
        );
        assert_eq!(
            chunks(&[9, 2, 5], 4),
            vec![(0, vec![2]), (4, vec![1]), (8, vec![1])]
        );
        assert_eq!(
            chunks(&[1000, 1001], 1001),
            vec![(0, vec![1000]), (1001, vec![0])]
        );
    }

    #[test]
    fn array_specs_compress_runs_and_carry_the_parallel_limit() {
        assert_eq!(array_spec(&[0, 1, 2, 3], Some(2)), "0-3%2");
        assert_eq!(array_spec(&[0, 2, 3, 4, 7], None), "0,2-4,7");
        assert_eq!(array_spec(&[5], None), "5");
    }

    #[test]
    fn max_array_size_is_read_from_scontrol_output() {
        let text = "MaxArraySize            = 4\nMaxJobCount             = 10000\n";
        assert_eq!(parse_max_array_size(text), Some(4));
        assert_eq!(parse_max_array_size("KillWait = 30 sec\n"), None);
    }

    #[test]
    fn the_script_requeues_itself_only_after_the_time_limit_warning() {
        let dir = SweepDir {
            root: PathBuf::from("/scratch/my sweep"),
        };
        let s = script(
            &dir,
            "smoke",
            &SlurmOptions {
                exe: PathBuf::from("/opt/marl/bin/marl"),
                partition: Some("short".into()),
                extra: vec!["--cpus-per-task=2".into(), "--mem=2G".into()],
                max_restarts: 3,
                ..SlurmOptions::default()
            },
        );
        for line in [
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@90",
            "#SBATCH --partition=short",
            "#SBATCH --mem=2G",
            "#SBATCH --cpus-per-task=2",
            "/opt/marl/bin/marl sweep task '/scratch/my sweep' \"$index\" &",
            "max_restarts=3",
            "scontrol requeue \"$SLURM_JOB_ID\"",
        ] {
            assert!(
                s.lines().any(|l| l.trim() == line),
                "missing `{line}` in\n{s}"
            );
        }
        assert!(
            !s.contains("--cpus-per-task=1"),
            "the user's value wins:\n{s}"
        );
    }
}
