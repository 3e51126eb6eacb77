//! On this machine: `marl train` stopped by SIGTERM (its exit code, its checkpoint, an exact
//! resume), one writer per run directory, TensorBoard event files equal to metrics.csv, a local
//! sweep with its relaunch, status and collect (tables, marl-eval JSON), dry runs and errors.

use super::*;

#[test]
fn marl_train_stopped_by_sigterm_checkpoints_refuses_a_second_writer_and_resumes_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sets = ["total_timesteps=40000", "logging.checkpoint_interval=2000"];
    let whole = tmp.path().join("whole");
    train(smoke(&sets), &whole);
    let dir = tmp.path().join("run");
    let mut args = vec![
        "train".to_string(),
        repo("configs/smoke.toml").display().to_string(),
    ];
    for s in sets {
        args.extend(["--set".into(), s.into()]);
    }
    args.extend([
        "--no-progress".into(),
        "--run-dir".into(),
        dir.display().to_string(),
    ]);
    let mut first = marl()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start marl train");
    let t0 = Instant::now();
    while rows(&dir) < 3 {
        assert!(
            first.try_wait().expect("wait").is_none(),
            "the run ended before it could be stopped"
        );
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A second writer into the same directory is refused, naming the directory, pid and host.
    let pid = first.id().to_string();
    let host = marl::run::lock::hostname();
    assert_eq!(marl::run::lock::holder(&dir), Some(format!("{pid}@{host}")));
    let (code, _, err) = output(marl().args(&args));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&dir.display().to_string()) && err.contains(&pid) && err.contains(&host),
        "{err}"
    );

    // SIGTERM: checkpoint at the next update, exit 3.
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGTERM) };
    let out = first.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("stopped by SIGTERM"), "{stdout}");
    let done = rows(&dir);
    assert!(done < 200, "stopped before the end ({done} of 200 updates)");
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).expect("latest");
    assert_eq!(
        latest.trim().parse::<usize>().expect("update"),
        done,
        "checkpoint at the stop"
    );
    assert_eq!(
        marl::run::lock::holder(&dir),
        None,
        "the lock went with the process"
    );

    let (code, out, err) = output(marl().args([
        "train",
        "--resume",
        &dir.display().to_string(),
        "--no-progress",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        numbers(&dir),
        numbers(&whole),
        "resumed to the uninterrupted numbers"
    );
}

/// `(step, tag, value)` of every non-empty metrics.csv cell but the axis columns.
fn csv_scalars(run: &Path) -> Vec<(u64, String, f32)> {
    let Metrics { header, rows } = RunDir::new(run).read_metrics().expect("metrics");
    let step = header
        .iter()
        .position(|c| c == "global_step")
        .expect("step");
    let mut out = Vec::new();
    for r in &rows {
        for (c, v) in header.iter().zip(r) {
            if c != "update" && c != "global_step" && !v.is_empty() {
                let s: f64 = r[step].parse().expect("step");
                out.push((s as u64, c.clone(), v.parse::<f64>().expect("value") as f32));
            }
        }
    }
    out
}

fn event_file(run: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(run)
        .expect("run dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.display().to_string().contains("tfevents"))
        .collect();
    assert_eq!(files.len(), 1, "one event file per run: {files:?}");
    files[0].clone()
}

#[test]
fn tensorboard_event_files_equal_metrics_csv_also_after_a_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let whole = tmp.path().join("whole");
    train(smoke(&[]), &whole);
    // Stopped after update 7 (the last checkpoint at update 5: events 6 and 7 must go), then
    // resumed.
    let dir = tmp.path().join("resumed");
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        config_name: "smoke".into(),
        resume: None,
        run_dir: Some(dir.clone()),
    };
    let s = train::train(
        smoke(&["logging.checkpoint_interval=1000"]),
        &opts,
        &mut StopAt(7, stop.clone()),
        stop,
    )
    .expect("train");
    assert!(s.interrupted);
    // A crash after update 7 whose checkpoint never landed: back to update 5.
    std::fs::write(dir.join("checkpoints/latest"), "000005").expect("latest");
    resume(&dir);
    for run in [&whole, &dir] {
        let events = marl::run::tensorboard::read_scalars(&event_file(run)).expect("events");
        assert_eq!(events, csv_scalars(run), "{}", run.display());
    }
    check_with_python("tensorboard", &[&whole, &dir]);
}

fn sweep_json(dir: &Path, what: &str) -> serde_json::Value {
    let (code, out, err) = output(marl().args(["sweep", what]).arg(dir).arg("--json"));
    assert_eq!(code, 0, "sweep {what}: {out}{err}");
    serde_json::from_str(&out).expect("json")
}

#[test]
fn a_local_sweep_trains_the_grid_reuses_it_on_relaunch_and_collects_tables_and_marl_eval() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("sweep");
    let launch = |extra: &[&str]| {
        let mut cmd = marl();
        cmd.args(["sweep"])
            .arg(repo("configs/smoke.toml"))
            .args(["--set", "ppo.learning_rate=1e-3,3e-4", "--seeds", "0..2"])
            .args(["--set", "total_timesteps=1000", "--jobs", "2", "--out"])
            .arg(&out)
            .args(extra);
        output(&mut cmd)
    };
    let (code, stdout, stderr) = launch(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("4 runs, 0 finished already, 4 to run"),
        "{stderr}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let runs = manifest["runs"].as_array().expect("runs");
    let labels: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["label"].as_str().expect("label"),
                r["seed"].as_u64().expect("seed"),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("ppo.learning_rate=1e-3", 0),
            ("ppo.learning_rate=1e-3", 1),
            ("ppo.learning_rate=3e-4", 0),
            ("ppo.learning_rate=3e-4", 1)
        ]
    );
    let run_dirs: Vec<PathBuf> = runs
        .iter()
        .map(|r| out.join("runs").join(r["run_id"].as_str().expect("id")))
        .collect();
    let before: Vec<_> = run_dirs.iter().map(|d| numbers(d)).collect();

    // Launching again reuses every finished run.
    let (code, stdout, stderr) = launch(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("4 runs, 4 finished already, 0 to run"),
        "{stderr}"
    );
    let after: Vec<_> = run_dirs.iter().map(|d| numbers(d)).collect();
    assert_eq!(before, after);

    let status = sweep_json(&out, "status");
    let states: Vec<&str> = status
        .as_array()
        .expect("status")
        .iter()
        .map(|r| r["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["finished"; 4]);

    let c = sweep_json(&out, "collect");
    let tables = c["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 1, "spread has one group");
    let rows = tables[0]["rows"].as_array().expect("rows");
    let methods: Vec<&str> = rows
        .iter()
        .map(|r| r["method"].as_str().expect("m"))
        .collect();
    assert_eq!(
        methods,
        ["ppo.learning_rate=1e-3", "ppo.learning_rate=3e-4"]
    );
    for r in rows {
        assert_eq!(
            r["finals"].as_array().expect("finals").len(),
            2,
            "two seeds per row"
        );
    }
    assert!(tables[0]["versus"][1]["welch"].is_object());
    assert_eq!(c["missing"].as_array().expect("missing").len(), 0);
    for f in [
        "collect.md",
        "collect.json",
        "plots/eval_return.png",
        "marl-eval.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // marl-eval's documented layout: env / task / algorithm / run / step_k | absolute_metrics.
    let me: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("marl-eval.json")).expect("marl-eval.json"),
    )
    .expect("json");
    let algos = me["mpe"]["simple_spread_v3"].as_object().expect("env/task");
    assert_eq!(algos.len(), 2);
    for (algo, seeds) in algos {
        assert!(!algo.contains(','), "marl-eval refuses commas: {algo}");
        let seeds = seeds.as_object().expect("runs");
        assert_eq!(seeds.keys().collect::<Vec<_>>(), ["seed_0", "seed_1"]);
        for run in seeds.values() {
            let run = run.as_object().expect("run");
            // Evaluations at steps 1000 (eval_interval) and at the end (1000): one.
            let steps: Vec<&String> = run.keys().filter(|k| k.starts_with("step_")).collect();
            assert!(!steps.is_empty());
            for k in &steps {
                assert!(run[*k]["step_count"].is_u64(), "{k}");
                assert_eq!(run[*k]["return"].as_array().expect("list").len(), 1);
            }
            assert_eq!(
                run["absolute_metrics"]["return"]
                    .as_array()
                    .expect("abs")
                    .len(),
                1
            );
        }
    }
    check_with_python("marl-eval", &[&out.join("marl-eval.json")]);
    check_with_python("tensorboard", &[&run_dirs[0]]);
}

#[test]
fn a_dry_run_prints_the_runs_script_and_sbatch_commands_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("sweep");
    let (code, stdout, stderr) = output(
        marl()
            .arg("sweep")
            .arg(repo("configs/smoke.toml"))
            .args(["--set", "seed=1,2,3", "--backend", "slurm", "--dry-run"])
            .args([
                "--parallel",
                "2",
                "--partition",
                "short",
                "--time",
                "0:30:00",
            ])
            .args(["--sbatch=--mem=1G", "--out"])
            .arg(&out),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    for want in [
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@90",
        "#SBATCH --partition=short",
        "#SBATCH --time=0:30:00",
        "#SBATCH --mem=1G",
        "sbatch --parsable --array=0-2%2",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in\n{stdout}");
    }
    assert!(!out.exists(), "a dry run writes nothing");
}

#[test]
fn sweep_errors_name_the_key_and_the_expected_value() {
    let (code, _, err) = output(marl().arg("sweep").arg(repo("configs/smoke.toml")).args([
        "--seeds",
        "5",
        "--dry-run",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--seeds `5`") && err.contains("0..5"), "{err}");
    let (code, _, err) = output(marl().arg("sweep").arg(repo("configs/smoke.toml")).args([
        "--set",
        "ppo.lerning_rate=1e-3,3e-4",
        "--dry-run",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `learning_rate`"), "{err}");
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, _, err) = output(marl().args(["sweep", "status"]).arg(tmp.path()));
    assert_eq!(code, 2);
    assert!(err.contains("manifest.json"), "{err}");
}
