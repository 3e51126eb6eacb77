//! Suites: `configs/benchmarks/` (every config resolves, suite.toml describes each one, MAPPO
//! and IPPO differ in the critic only) and a miniature suite end to end: `marl sweep DIR`
//! stopped by SIGTERM and relaunched (the stopped run resumes, finished runs are skipped), then
//! `marl sweep collect` with its table, figures and marl-eval file.

use super::*;

use marl::config;
use marl::tools::sweep::manifest;
use marl::tools::sweep::suite::SuiteFile;

#[test]
fn every_benchmark_config_resolves_and_suite_toml_describes_each_one() {
    let dir = repo("configs/benchmarks");
    let files = manifest::suite_configs(&dir).expect("configs");
    // 5 MPE tasks (simple_tag twice: against the co-trained and a fixed random prey), 7 LBF
    // tasks, 3 warehouses; MAPPO and IPPO each; and simple_spread with learned messages.
    assert_eq!(files.len(), 33, "{files:?}");
    let suite = SuiteFile::of_dir(&dir).expect("suite.toml");
    for f in &files {
        let stem = f.file_stem().and_then(|s| s.to_str()).expect("stem");
        let raw = config::load(f, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        let cfg =
            TrainConfig::resolve(raw.clone()).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        let spec = suite
            .configs
            .get(stem)
            .unwrap_or_else(|| panic!("suite.toml has no [{stem}]"));
        if let Some(g) = &spec.group {
            assert!(
                cfg.groups.iter().any(|x| &x.name == g),
                "{stem}: suite.toml names group `{g}`, which {} does not have",
                f.display()
            );
        }
        assert_eq!(
            raw.logging.eval_mode,
            config::EvalMode::Both,
            "{stem}: the table shows greedy and stochastic curves"
        );
        let text = std::fs::read_to_string(f).expect("read");
        assert!(
            text.contains("Settings from configs/")
                && ["Not swept yet", "Not swept on this task", "Swept ("]
                    .iter()
                    .any(|says| text.contains(says)),
            "{stem}: its header says where its settings come from and whether it was swept"
        );
        // IPPO is its MAPPO twin with local critics, nothing else.
        if let Some(task) = stem.strip_suffix("_ippo") {
            let twin = dir.join(format!("{task}_mappo.toml"));
            let mappo = config::load(&twin, &[]).expect("the MAPPO twin");
            let mut ippo = raw.clone();
            assert!(!ippo.algo.centralized_training, "{stem}");
            ippo.algo.centralized_training = true;
            assert_eq!(
                config::to_toml(&ippo).expect("toml"),
                config::to_toml(&mappo).expect("toml"),
                "{stem} and {} differ in more than the critic",
                twin.display()
            );
        } else if stem.ends_with("_mappo_comm") {
            assert!(
                raw.algo.centralized_training && raw.algo.enable_communication,
                "{stem}"
            );
        } else {
            assert!(
                stem.ends_with("_mappo"),
                "{stem}: _mappo, _mappo_comm or _ippo"
            );
            assert!(raw.algo.centralized_training, "{stem}");
        }
    }
    // The budgets issue 27's claims are stated at.
    for (stem, steps) in [
        ("mpe_simple_spread_mappo", 10_000_000),
        ("mpe_simple_spread_mappo_comm", 10_000_000),
        ("lbf_8x8-2p-2f-coop_mappo", 300_000),
        ("lbf_10x10-3p-3f_mappo", 1_500_000),
        ("rware_tiny-2ag_mappo", 20_000_000),
    ] {
        let raw = config::load(&dir.join(format!("{stem}.toml")), &[]).expect("config");
        assert_eq!(raw.total_timesteps, steps, "{stem}");
    }
    // The whole suite plans as one sweep.
    let grid = marl::tools::sweep::grid::Grid::from_args(&[], Some("1..=5")).expect("grid");
    let (name, planned) = manifest::plan(&dir, grid).expect("plan");
    assert_eq!(name, "benchmarks");
    assert_eq!(planned.len(), 165);
}

const SPREAD: &str = r#"
seed = 1
total_timesteps = 2_000
[env]
id = "mpe/simple_spread_v3"
n_envs = 8
rollout_length = 25
[algo]
enable_communication = true
[ppo]
ppo_epochs = 2
num_minibatches = 2
[logging]
eval_interval = 1_000
eval_episodes = 8
eval_mode = "both"
checkpoint_interval = 1_000
"#;

const LBF: &str = r#"
seed = 1
total_timesteps = 100_000
[env]
id = "lbf/Foraging-8x8-2p-2f-coop-v3"
n_envs = 8
rollout_length = 50
[algo]
centralized_training = false
[ppo]
ppo_epochs = 1
num_minibatches = 1
[network]
hidden = [16]
layer_norm = false
[logging]
eval_interval = 20_000
eval_episodes = 8
eval_mode = "both"
checkpoint_interval = 2_000
"#;

const SUITE: &str = r#"
[mpe_spread_mappo]
metric = "return"
peer = { figure = -1000.0, policy = "greedy", steps = 2_000, source = "a test's figure" }
[lbf_coop_ippo]
peer = { figure = 0.0, policy = "stochastic", source = "a test's figure" }
"#;

fn sweep_json(dir: &Path, what: &str) -> serde_json::Value {
    let (code, out, err) = output(marl().args(["sweep", what]).arg(dir).arg("--json"));
    assert_eq!(code, 0, "sweep {what}: {out}{err}");
    serde_json::from_str(&out).expect("json")
}

fn attempts(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("attempts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("attempt"))
        .collect()
}

#[test]
fn a_miniature_suite_resumes_a_stopped_run_skips_finished_ones_and_fills_every_cell() {
    let tmp = tempfile::tempdir().expect("tmp");
    let configs = tmp.path().join("configs");
    std::fs::create_dir_all(&configs).expect("mkdir");
    for (name, text) in [
        ("mpe_spread_mappo.toml", SPREAD),
        ("lbf_coop_ippo.toml", LBF),
        ("suite.toml", SUITE),
    ] {
        std::fs::write(configs.join(name), text).expect("write");
    }
    let out = tmp.path().join("suite");
    let launch = || {
        let mut cmd = marl();
        cmd.arg("sweep")
            .arg(&configs)
            .args(["--seeds", "1..=2", "--jobs", "1", "--out"])
            .arg(&out);
        cmd
    };

    // Stopped by SIGTERM while training its first run (lbf_coop_ippo seed 1, by file name).
    let mut first = launch()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start marl sweep");
    let t0 = Instant::now();
    let run0 = loop {
        let m = std::fs::read_to_string(out.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        if let Some(id) = m.as_ref().and_then(|m| m["runs"][0]["run_id"].as_str()) {
            let run = out.join("runs").join(id);
            if rows(&run) >= 3 {
                break run;
            }
        }
        assert!(
            first.try_wait().expect("wait").is_none(),
            "the sweep ended before it could be stopped"
        );
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGTERM) };
    let o = first.wait_with_output().expect("wait");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(3), "{log}");
    let stopped_at = rows(&run0);
    assert!(
        stopped_at < 250,
        "stopped before the end: {stopped_at} of 250 updates"
    );
    let status = sweep_json(&out, "status");
    assert_eq!(status[0]["state"], "pending", "{status}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("m"))
            .expect("json");
    let labels: Vec<(&str, u64, &str)> = manifest["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["label"].as_str().expect("label"),
                r["seed"].as_u64().expect("seed"),
                r["source"].as_str().expect("source"),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("lbf_coop_ippo", 1, "lbf_coop_ippo.toml"),
            ("lbf_coop_ippo", 2, "lbf_coop_ippo.toml"),
            ("mpe_spread_mappo", 1, "mpe_spread_mappo.toml"),
            ("mpe_spread_mappo", 2, "mpe_spread_mappo.toml"),
        ]
    );
    assert!(out.join("suite.toml").is_file(), "suite.toml frozen");

    // Relaunched: the stopped run resumes from its checkpoint, the others start.
    let (code, stdout, stderr) = output(&mut launch());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("4 runs, 0 finished already, 4 to run"),
        "{stderr}"
    );
    let id0 = manifest["runs"][0]["run_id"].as_str().expect("id");
    let tries = attempts(&out.join("attempts").join(format!("{id0}.jsonl")));
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0]["outcome"], "stopped");
    assert_eq!(tries[1]["outcome"], "finished");
    assert_eq!(tries[1]["resumed"], true, "{tries:?}");
    assert_eq!(tries[1]["global_step"], 100_000);
    assert_eq!(rows(&run0), 250, "resumed to the end, no update twice");

    // Relaunched once more: every run is finished, nothing trains.
    let run_dirs: Vec<PathBuf> = manifest["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| out.join("runs").join(r["run_id"].as_str().expect("id")))
        .collect();
    let before: Vec<_> = run_dirs.iter().map(|d| numbers(d)).collect();
    let (code, stdout, stderr) = output(&mut launch());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("4 runs, 4 finished already, 0 to run"),
        "{stderr}"
    );
    assert_eq!(
        before,
        run_dirs.iter().map(|d| numbers(d)).collect::<Vec<_>>()
    );

    // An evaluation seed some run trained with is refused.
    let (code, _, err) = output(
        marl()
            .args(["sweep", "collect"])
            .arg(&out)
            .args(["--eval-seed", "2"]),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("evaluation seed 2") && err.contains("--eval-seed"),
        "{err}"
    );

    // The table: every cell of both rows.
    let collect = || {
        output(
            marl()
                .args(["sweep", "collect"])
                .arg(&out)
                .args(["--episodes", "64", "--json"]),
        )
    };
    let (code, json, err) = collect();
    assert_eq!(code, 0, "{json}{err}");
    let c: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(c["eval_seed"], 0);
    let rows_ = c["rows"].as_array().expect("rows");
    assert_eq!(rows_.len(), 2);
    let units: Vec<&str> = rows_
        .iter()
        .map(|r| r["unit"].as_str().expect("u"))
        .collect();
    assert_eq!(
        units,
        ["team return (sum over agents)", "return per agent"],
        "LBF in team return, MPE per agent"
    );
    let methods: Vec<&str> = rows_
        .iter()
        .map(|r| r["method"].as_str().expect("m"))
        .collect();
    assert_eq!(methods, ["IPPO", "MAPPO + mean messages"]);
    for r in rows_ {
        for k in ["greedy", "stochastic"] {
            assert_eq!(r[k]["values"].as_array().expect(k).len(), 2, "{r}");
            assert!(r[k]["mean"].is_f64() && r[k]["iqm"].is_f64(), "{r}");
            assert!(r[k]["ci95"][0].as_f64() <= r[k]["ci95"][1].as_f64(), "{r}");
        }
        for k in ["max_greedy", "max_stochastic"] {
            assert!(r[k]["value"].is_f64() && r[k]["step"].is_f64(), "{k}: {r}");
        }
        assert_eq!(
            r["reached_peer"], 2,
            "every seed is above the test's peer: {r}"
        );
        assert!(r["steps_to_peer"].is_f64(), "{r}");
        assert!(r["wall_s"].as_f64().expect("wall") > 0.0, "{r}");
        assert!(r["sps"].as_f64().expect("sps") > 0.0, "{r}");
        assert_eq!(r["missing"], 0);
    }
    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    let table: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| Foraging") || l.starts_with("| simple_spread"))
        .collect();
    assert_eq!(table.len(), 2, "{md}");
    for line in table {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 12, "{line}");
        assert!(
            cells
                .iter()
                .all(|c| !c.is_empty() && *c != "-" && !c.contains("- /")),
            "an empty cell in {line}"
        );
    }
    for f in [
        "results.json",
        "plots/lbf.png",
        "plots/lbf_stochastic.png",
        "plots/mpe.png",
        "marl-eval.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let me: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("marl-eval.json")).expect("marl-eval.json"),
    )
    .expect("json");
    assert!(
        me["mpe"]["simple_spread_v3"]["MAPPO + mean messages"]["seed_2"]["absolute_metrics"]
            .is_object()
    );
    assert!(me["lbf"]["Foraging-8x8-2p-2f-coop-v3"]["IPPO"]["seed_1"].is_object());

    // Collected again: the final evaluations come from their cache, the same numbers.
    assert!(run_dirs[0]
        .join("eval/suite_stochastic_seed0_n64.json")
        .is_file());
    let (code, again, err) = collect();
    assert_eq!(code, 0, "{err}");
    let again: serde_json::Value = serde_json::from_str(&again).expect("json");
    assert_eq!(again["rows"], c["rows"]);
}
