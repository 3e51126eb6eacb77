//! Against a real Slurm (slurmctld, slurmd, munge from Debian's packages) started by
//! `scripts/slurm-cluster.sh up --max-array-size 4`: a sweep as a job array collecting the
//! table of the same runs trained locally; a task requeued twice mid-run (`scontrol requeue`,
//! then the time-limit signal, after which the batch script requeues itself) ending with the
//! numbers of an uninterrupted run; `resubmit` rerunning only a failed task; an array larger
//! than MaxArraySize split in two.

use super::*;

use marl::tools::sweep::manifest::{Manifest, SweepDir};

/// MaxArraySize of the test cluster: small, so that splitting costs five runs.
const MAX_ARRAY: usize = 4;

/// `SLURM_CONF` of the running test cluster, or None (printed) where it cannot run here.
fn cluster() -> Option<String> {
    static CONF: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CONF.get_or_init(|| {
        let out = Command::new(repo("scripts/slurm-cluster.sh"))
            .args(["up", "--max-array-size", &MAX_ARRAY.to_string()])
            .output()
            .expect("run scripts/slurm-cluster.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Some(
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("export SLURM_CONF="))
                    .expect("the script prints SLURM_CONF")
                    .to_string(),
            ),
            Some(3) => {
                println!("SKIPPED the Slurm tests: {}", stderr.trim());
                None
            }
            _ => panic!("scripts/slurm-cluster.sh up failed:\n{stdout}{stderr}"),
        }
    })
    .clone()
}

/// A command with the test cluster's SLURM_CONF.
fn with_conf(mut cmd: Command, conf: &str) -> Command {
    cmd.env("SLURM_CONF", conf);
    cmd
}

fn status(dir: &Path, conf: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = output(
        with_conf(marl(), conf)
            .args(["sweep", "status"])
            .arg(dir)
            .arg("--json"),
    );
    assert_eq!(code, 0, "status: {out}{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

fn states(runs: &[serde_json::Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["state"].as_str().expect("state").to_string())
        .collect()
}

/// Polls `marl sweep status` until every run is finished, or failed and no longer queued.
fn wait_done(dir: &Path, conf: &str, timeout: Duration) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let runs = status(dir, conf);
        let done = runs
            .iter()
            .all(|r| r["state"] == "finished" || (r["state"] == "failed" && r["queued"] == false));
        if done {
            return runs;
        }
        assert!(
            t0.elapsed() < timeout,
            "not done after {timeout:?}: {:?}\n{}",
            states(&runs),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The sweep's task output, for failure messages.
fn logs(dir: &Path) -> String {
    let mut s = String::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("logs")) {
        for e in entries.flatten() {
            s.push_str(&format!(
                "--- {}\n{}\n",
                e.path().display(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            ));
        }
    }
    s
}

fn launch(conf: &str, out: &Path, args: &[&str]) -> (i32, String, String) {
    output(
        with_conf(marl(), conf)
            .arg("sweep")
            .arg(repo("configs/smoke.toml"))
            .args(args)
            .arg("--out")
            .arg(out),
    )
}

fn submissions(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("slurm/submissions.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("submission"))
        .collect()
}

/// collect.json without what depends on the machine or the directory: wall times, speeds,
/// paths.
fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in [
                    "wall_s",
                    "sps",
                    "run_dir",
                    "out",
                    "figures",
                    "marl_eval",
                    "checkpoint",
                ] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn a_sweep_runs_as_a_job_array_and_collects_the_table_of_the_same_runs_trained_locally() {
    let Some(conf) = cluster() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let grid = [
        "--set",
        "ppo.learning_rate=1e-3,3e-4",
        "--seeds",
        "0..2",
        "--set",
        "total_timesteps=1000",
    ];
    let on_slurm = tmp.path().join("slurm");
    let t0 = Instant::now();
    let mut args = grid.to_vec();
    args.extend(["--backend", "slurm", "--parallel", "2"]);
    let (code, out, err) = launch(&conf, &on_slurm, &args);
    let submit_s = t0.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("submitted 4 runs as job array"), "{out}");
    assert!(
        submit_s < 10.0,
        "submitting took {submit_s:.1} s: it must not wait for the jobs"
    );
    let subs = submissions(&on_slurm);
    assert_eq!(
        subs.len(),
        1,
        "4 tasks fit one array under MaxArraySize {MAX_ARRAY}"
    );
    assert_eq!(subs[0]["array"], "0-3%2");
    let runs = wait_done(&on_slurm, &conf, Duration::from_secs(300));
    assert_eq!(states(&runs), ["finished"; 4], "{}", logs(&on_slurm));

    let local = tmp.path().join("local");
    let mut args = grid.to_vec();
    args.extend(["--backend", "local", "--jobs", "2"]);
    let (code, out, err) = launch(&conf, &local, &args);
    assert_eq!(code, 0, "{out}{err}");

    let collect = |dir: &Path| {
        let (code, out, err) = output(
            with_conf(marl(), &conf)
                .args(["sweep", "collect"])
                .arg(dir)
                .arg("--json"),
        );
        assert_eq!(code, 0, "{out}{err}");
        comparable(serde_json::from_str(&out).expect("json"))
    };
    let (a, b) = (collect(&on_slurm), collect(&local));
    assert_eq!(
        a["tables"], b["tables"],
        "the same table from Slurm and from local runs"
    );
    assert_eq!(a, b);
    println!(
        "submitted in {submit_s:.2} s; 4 runs on Slurm done after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The job id (`<array>_<task>`) of index 0 of a one-run sweep.
fn job_of_index0(dir: &Path) -> String {
    let subs = submissions(dir);
    format!("{}_0", subs[0]["job_id"].as_str().expect("job id"))
}

/// Waits for a requeued job to be pending, then lets it start in 3 s instead of after Slurm's
/// requeue delay (BeginTime about two minutes ahead). Not at once: a job started within a
/// second of its kill can reach slurmd before slurmd forgets the killed job, which then
/// refuses it ("Job credential revoked") and the job ends without another attempt.
fn start_now(job: &str, conf: &str) {
    let t0 = Instant::now();
    loop {
        let (_, out, _) = output(
            with_conf(Command::new("squeue"), conf).args(["-h", "-r", "-o", "%T", "-j", job]),
        );
        if out.trim() == "PENDING" {
            let (code, o, e) = output(with_conf(Command::new("scontrol"), conf).args([
                "update",
                &format!("JobId={job}"),
                "StartTime=now+3",
            ]));
            assert_eq!(code, 0, "scontrol update: {o}{e}");
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "job {job} not pending: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_rows(run: &Path, at_least: usize, dir: &Path) {
    let t0 = Instant::now();
    while rows(run) < at_least {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "{} rows, waiting for {at_least}\n{}",
            rows(run),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_task_requeued_mid_run_finishes_with_the_metrics_of_an_uninterrupted_run() {
    let Some(conf) = cluster() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("sweep");
    let sets = [
        "--set",
        "total_timesteps=100000",
        "--set",
        "logging.checkpoint_interval=2000",
    ];
    let mut args = sets.to_vec();
    args.extend(["--backend", "slurm"]);
    let (code, out, err) = launch(&conf, &dir, &args);
    assert_eq!(code, 0, "{out}{err}");
    let sweep = SweepDir::new(&dir).expect("dir");
    let manifest = Manifest::read(&sweep).expect("manifest");
    let entry = &manifest.runs[0];
    let run = sweep.run_dir(&entry.run_id).path().to_path_buf();
    let job = job_of_index0(&dir);

    // Preemption: Slurm's requeue sends SIGTERM; marl checkpoints and exits 3.
    wait_rows(&run, 20, &dir);
    let (code, o, e) = output(with_conf(Command::new("scontrol"), &conf).args(["requeue", &job]));
    assert_eq!(code, 0, "scontrol requeue: {o}{e}");
    start_now(&job, &conf);

    // The time limit's warning (USR1 to the batch shell): the script passes it on, marl
    // checkpoints, and the script requeues its own job. Sent once the resumed task has gone
    // 60 updates past the first stop.
    let t0 = Instant::now();
    loop {
        let first = marl::tools::sweep::task::attempts(&sweep, &entry.run_id);
        if let Some(a) = first.first() {
            let stopped_at = a.global_step.expect("step of the stop") as usize / 200;
            assert!(
                stopped_at < 400,
                "the first stop came too late: update {stopped_at}"
            );
            if rows(&run) >= stopped_at + 60 {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "no second attempt\n{}",
            logs(&dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, o, e) =
        output(with_conf(Command::new("scancel"), &conf).args(["--signal=USR1", "--batch", &job]));
    assert_eq!(code, 0, "scancel --signal=USR1: {o}{e}");
    start_now(&job, &conf);
    let runs = wait_done(&dir, &conf, Duration::from_secs(300));
    assert_eq!(states(&runs), ["finished"], "{}", logs(&dir));

    let attempts = marl::tools::sweep::task::attempts(&sweep, &entry.run_id);
    let seen: Vec<(String, bool, Option<u32>)> = attempts
        .iter()
        .map(|a| {
            (
                serde_json::to_value(a.outcome)
                    .expect("outcome")
                    .as_str()
                    .expect("s")
                    .to_string(),
                a.resumed,
                a.restart,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("stopped".to_string(), false, None),
            ("stopped".to_string(), true, Some(1)),
            ("finished".to_string(), true, Some(2)),
        ],
        "{}",
        logs(&dir)
    );
    let log = logs(&dir);
    assert!(
        log.contains("stopped by SIGTERM") && log.contains("stopped by SIGUSR1"),
        "{log}"
    );
    assert!(log.contains("requeueing job"), "{log}");

    let whole = tmp.path().join("whole");
    train(Manifest::run_config(&sweep, entry).expect("config"), &whole);
    assert_eq!(
        numbers(&run),
        numbers(&whole),
        "requeued twice, same numbers"
    );
}

#[test]
fn resubmit_after_a_failed_task_reruns_only_that_task() {
    let Some(conf) = cluster() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("sweep");
    let args = [
        "--seeds",
        "0..3",
        "--set",
        "total_timesteps=400",
        "--backend",
        "slurm",
    ];
    // Index 1 fails: a file stands where its run directory goes.
    let (code, out, err) = launch(&conf, &dir, &[&args[..], &["--dry-run"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    let id1 = out
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"1")).then(|| f[1].to_string())
        })
        .expect("index 1 in the dry run");
    std::fs::create_dir_all(dir.join("runs")).expect("runs");
    std::fs::write(dir.join("runs").join(&id1), "in the way").expect("blocker");

    let (code, out, err) = launch(&conf, &dir, &args);
    assert_eq!(code, 0, "{out}{err}");
    let runs = wait_done(&dir, &conf, Duration::from_secs(300));
    assert_eq!(states(&runs), ["finished", "failed", "finished"]);
    let note = runs[1]["note"].as_str().expect("note");
    assert!(note.contains("cannot create output directory"), "{note}");
    let (_, table, _) = output(with_conf(marl(), &conf).args(["sweep", "status"]).arg(&dir));
    // collect tabulates the finished runs and lists the failed one.
    let (code, md, err) = output(
        with_conf(marl(), &conf)
            .args(["sweep", "collect"])
            .arg(&dir),
    );
    assert_eq!(code, 0, "{md}{err}");
    assert!(
        md.contains("2 of 3 runs finished") && md.contains("Missing runs (1"),
        "{md}"
    );
    assert!(md.contains(&format!("| 1 | {id1} |")), "{md}");
    assert!(
        table.contains("failed") && table.contains("cannot create output directory"),
        "{table}"
    );

    std::fs::remove_file(dir.join("runs").join(&id1)).expect("unblock");
    let (code, out, err) = output(
        with_conf(marl(), &conf)
            .args(["sweep", "resubmit"])
            .arg(&dir),
    );
    assert_eq!(code, 0, "{out}{err}");
    let subs = submissions(&dir);
    assert_eq!(subs.len(), 2);
    assert_eq!(
        subs[1]["indices"],
        serde_json::json!([1]),
        "only the failed task"
    );
    assert_eq!(subs[1]["array"], "1");
    let runs = wait_done(&dir, &conf, Duration::from_secs(300));
    assert_eq!(states(&runs), ["finished"; 3], "{}", logs(&dir));
    let (code, out, _) = output(
        with_conf(marl(), &conf)
            .args(["sweep", "resubmit"])
            .arg(&dir),
    );
    assert_eq!(code, 0);
    assert!(out.contains("nothing submitted"), "{out}");
}

#[test]
fn an_array_larger_than_max_array_size_is_split_and_completes() {
    let Some(conf) = cluster() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("sweep");
    let seeds = format!("0..{}", MAX_ARRAY + 1);
    let (code, out, err) = launch(
        &conf,
        &dir,
        &[
            "--seeds",
            &seeds,
            "--set",
            "total_timesteps=200",
            "--backend",
            "slurm",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let subs = submissions(&dir);
    let arrays: Vec<(u64, &str)> = subs
        .iter()
        .map(|s| {
            (
                s["offset"].as_u64().expect("offset"),
                s["array"].as_str().expect("a"),
            )
        })
        .collect();
    assert_eq!(
        arrays,
        [(0, "0-3"), (4, "0")],
        "index 4 = offset 4 + task 0"
    );
    let runs = wait_done(&dir, &conf, Duration::from_secs(300));
    assert_eq!(states(&runs), ["finished"; MAX_ARRAY + 1], "{}", logs(&dir));
}
