//! `marl eval`, `marl compare` and `marl plot` on tiny runs: reproducible evaluations whatever
//! the thread count, agreement with the return logged in training, tables that equal what
//! `marl eval` reports, figures that are real PNG/SVG/GIF files, and clear errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use marl::config::{self, TrainConfig};
use marl::run::dir::Metrics;
use marl::run::RunDir;
use marl::tools::compare::{self, CompareOptions};
use marl::tools::eval::{self, EvalOptions, RenderTarget};
use marl::train::{self, Quiet, RunOptions};

use crate::common::{marl_output, repo};

fn train(config: &str, sets: &[&str], dir: &Path) -> PathBuf {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg =
        TrainConfig::resolve(config::load(&repo(config), &sets).expect("config")).expect("resolve");
    let opts = RunOptions {
        config_name: "test".into(),
        resume: None,
        run_dir: Some(dir.to_path_buf()),
    };
    train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false)))
        .expect("train")
        .run_dir
}

fn opts(episodes: usize, greedy: bool, seed: u64) -> EvalOptions {
    EvalOptions {
        episodes,
        greedy,
        seed,
        ..EvalOptions::default()
    }
}

#[test]
fn evaluation_is_the_same_twice_and_for_any_number_of_workers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = train("configs/smoke.toml", &[], &tmp.path().join("run"));
    let json = |o: &EvalOptions| {
        let r = eval::evaluate(&dir, o).expect("eval");
        // The path is the same; everything else must be too.
        serde_json::to_string(&r).expect("json")
    };
    for greedy in [true, false] {
        let base = opts(21, greedy, 5);
        let a = json(&base);
        assert_eq!(a, json(&base), "same checkpoint and seed, same numbers");
        for w in [0, 1, 2] {
            let o = EvalOptions {
                num_workers: Some(w),
                ..base.clone()
            };
            assert_eq!(a, json(&o), "{w} workers, greedy {greedy}");
        }
        assert_ne!(
            a,
            json(&opts(21, greedy, 6)),
            "another seed, other episodes"
        );
    }
}

#[test]
fn evaluation_agrees_with_the_return_logged_at_the_end_of_training() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A non-default episode length: an evaluation that ignored the run's config would run
    // 25-step episodes and report a return far outside the interval.
    let dir = train(
        "configs/smoke.toml",
        &[
            "env.params.max_cycles=10",
            "total_timesteps=6000",
            "logging.eval_episodes=64",
        ],
        &tmp.path().join("run"),
    );
    let Metrics { header, rows } = RunDir::new(&dir).read_metrics().expect("metrics");
    let col = header.iter().position(|h| h == "eval/return").expect("col");
    let logged: f64 = rows.last().expect("rows")[col]
        .parse()
        .expect("logged eval");
    let r = eval::evaluate(&dir, &opts(400, true, 11)).expect("eval");
    assert_eq!(r.episode_length.mean, 10.0);
    assert_eq!(r.episode_length.std, 0.0);
    assert_eq!(r.global_step, 6000);
    // Two independent means of the same distribution (64 and 400 episodes).
    let sd = r.return_per_agent.std * (1.0 / 64.0 + 1.0 / 400.0_f64).sqrt();
    let diff = (r.return_per_agent.mean - logged).abs();
    assert!(
        diff <= 4.0 * sd + 1e-9,
        "eval {} vs logged {logged}: {diff} > 4 x {sd}",
        r.return_per_agent.mean
    );
    // spread's task figures are reported.
    let names: Vec<&str> = r.task.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["collisions", "occupied_landmarks"]);
}

#[test]
fn task_figures_of_foraging_and_tag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lbf = train(
        "configs/smoke.toml",
        &["env.id=\"lbf/Foraging-5x5-2p-1f-coop-v3\""],
        &tmp.path().join("lbf"),
    );
    let r = eval::evaluate(&lbf, &opts(50, false, 0)).expect("eval lbf");
    let food = &r
        .task
        .iter()
        .find(|t| t.0 == "food_collected")
        .expect("food")
        .1;
    let frac = &r
        .task
        .iter()
        .find(|t| t.0 == "food_fraction")
        .expect("fraction")
        .1;
    // One food: the fraction is the count, and a team return comes only with food loaded.
    assert_eq!(food.mean, frac.mean);
    assert!((food.mean > 0.0) == (r.team_return.mean > 0.0), "{r:?}");
    let tag = train(
        "configs/smoke.toml",
        &["env.id=\"mpe/simple_tag_v3\""],
        &tmp.path().join("tag"),
    );
    let r = eval::evaluate(&tag, &opts(30, false, 0)).expect("eval tag");
    let catches = &r.task.iter().find(|t| t.0 == "catches").expect("catches").1;
    // Every catch pays each adversary 10, and nothing else does (no shaping).
    let adv = &r
        .agents
        .iter()
        .find(|a| a.0 == "adversary_0")
        .expect("adv")
        .1;
    assert!(
        (adv.mean - 10.0 * catches.mean).abs() < 1e-9,
        "{adv:?} {catches:?}"
    );
}

#[test]
fn bad_checkpoints_and_parameters_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = train("configs/smoke.toml", &[], &tmp.path().join("run"));
    let d = dir.display().to_string();
    let (code, msg) = marl_output(&["eval", &tmp.path().join("missing").display().to_string()]);
    assert_eq!(code, 2);
    assert!(
        msg.contains("missing") && msg.contains("no such file"),
        "{msg}"
    );

    // An environment with another observation size than the policy's.
    let (code, msg) = marl_output(&["eval", &d, "--env-set", "N=4"]);
    assert_eq!(code, 2);
    assert!(
        msg.contains("does not fit") && msg.contains("N = 4"),
        "{msg}"
    );
    let (code, msg) = marl_output(&["eval", &d, "--env-set", "speed=2"]);
    assert_eq!(code, 2);
    assert!(msg.contains("speed"), "{msg}");
    // A changed parameter that keeps the shapes is fine, and changes the numbers.
    let (code, msg) = marl_output(&["eval", &d, "--env-set", "max_cycles=5", "--episodes", "3"]);
    assert_eq!(code, 0, "{msg}");
    assert!(
        msg.contains("episode length") && msg.contains("  5.000 ± 0.000"),
        "{msg}"
    );

    // A corrupted checkpoint names the file: the previous checkpoint stands in for a damaged
    // latest, with a warning; with every checkpoint damaged, marl eval stops.
    let ck = std::fs::read_to_string(dir.join("checkpoints/latest")).expect("latest");
    let model = dir
        .join("checkpoints")
        .join(ck.trim())
        .join("model.safetensors");
    std::fs::write(&model, b"not a safetensors file").expect("corrupt");
    let (code, msg) = marl_output(&["eval", &d]);
    assert_eq!(code, 0, "{msg}");
    assert!(
        msg.contains(&model.display().to_string())
            && msg.contains("damaged")
            && msg.contains("using the previous checkpoint"),
        "{msg}"
    );
    for e in std::fs::read_dir(dir.join("checkpoints")).expect("checkpoints") {
        let p = e.expect("entry").path().join("model.safetensors");
        if p.is_file() {
            std::fs::write(&p, b"not a safetensors file").expect("corrupt");
        }
    }
    let (code, msg) = marl_output(&["eval", &d]);
    assert_eq!(code, 2);
    assert!(
        msg.contains(&model.display().to_string()) && msg.contains("damaged"),
        "{msg}"
    );

    let (code, msg) = marl_output(&["eval", &d, "--render", "out.bmp"]);
    assert_eq!(code, 2);
    assert!(msg.contains(".gif, .svg or .png"), "{msg}");

    let smoke = repo("configs/smoke.toml").display().to_string();
    let (code, msg) = marl_output(&["compare", &smoke, "--baseline", "qmix"]);
    assert_eq!(code, 2);
    assert!(msg.contains("`qmix`") && msg.contains("ippo"), "{msg}");
    let (code, msg) = marl_output(&["compare", &smoke, "--baseline", "mappo"]);
    assert_eq!(code, 2);
    assert!(msg.contains("already trains MAPPO"), "{msg}");
}

#[test]
fn renders_gif_png_svg_and_ascii() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = train("configs/smoke.toml", &[], &tmp.path().join("run"));
    let gif = tmp.path().join("episode.gif");
    let greedy = opts(1, true, 4);
    let returns = eval::render(&dir, &greedy, &RenderTarget::Gif(gif.clone())).expect("gif");
    let bytes = std::fs::read(&gif).expect("gif file");
    assert_eq!(&bytes[..6], b"GIF89a");
    // The rendered episode is the evaluation's first (greedy: the same actions).
    let first = eval::evaluate(&dir, &greedy).expect("eval");
    let per_agent = returns.iter().sum::<f64>() / returns.len() as f64;
    assert!((per_agent - first.return_per_agent.mean).abs() < 1e-9);
    let png = tmp.path().join("last.png");
    eval::render(&dir, &greedy, &RenderTarget::Picture(png.clone())).expect("png");
    assert_eq!(&std::fs::read(&png).expect("png")[..4], b"\x89PNG");
    let svg = tmp.path().join("last.svg");
    eval::render(&dir, &greedy, &RenderTarget::Picture(svg.clone())).expect("svg");
    assert!(std::fs::read_to_string(&svg)
        .expect("svg")
        .starts_with("<svg"));

    let lbf = train(
        "configs/smoke.toml",
        &["env.id=\"lbf/Foraging-5x5-2p-1f-coop-v3\""],
        &tmp.path().join("lbf"),
    );
    let (code, text) = marl_output(&["eval", &lbf.display().to_string(), "--render", "ascii"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("frame 0/") && text.contains("episode return"),
        "{text}"
    );
}

#[test]
fn compare_reports_what_eval_reports_and_reuses_finished_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("cmp");
    let o = CompareOptions {
        config: repo("configs/smoke.toml"),
        baseline: "ippo".into(),
        seeds: 2,
        set: vec![],
        out: Some(out.clone()),
        threshold: None,
        episodes: 16,
        eval_mode: None,
        jobs: 2,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let c = compare::compare(&o, stop.clone(), &|_| {}).expect("compare");
    assert_eq!(c.runs.len(), 4);
    let table = &c.tables[0];
    assert_eq!(table.group, "agent");
    assert_eq!(table.rows[0].method, "smoke");
    assert_eq!(table.rows[1].method, "ippo");
    for (row, method) in table.rows.iter().zip(["smoke", "ippo"]) {
        let finals: Vec<f64> = [7, 8]
            .iter()
            .map(|s| {
                let run = out.join(method).join(format!("s{s}"));
                eval::evaluate(&run, &opts(16, true, 0))
                    .expect("eval")
                    .return_per_agent
                    .mean
            })
            .collect();
        assert_eq!(
            row.finals, finals,
            "{method}: the table is marl eval's numbers"
        );
        assert_eq!(row.mean, (finals[0] + finals[1]) / 2.0);
    }
    // The baseline is the same config without centralized critics.
    let ippo = std::fs::read_to_string(out.join("ippo/s7/config.toml")).expect("config");
    assert!(ippo.contains("centralized_training = false"), "{ippo}");
    for f in ["compare.md", "compare.json", "plots/eval_return.csv"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert_eq!(
        &std::fs::read(out.join("plots/eval_return.png")).expect("png")[..4],
        b"\x89PNG"
    );
    let svg = std::fs::read_to_string(out.join("plots/eval_return.svg")).expect("svg");
    assert!(
        svg.contains("environment steps")
            && svg.contains("IPPO (2 seeds)")
            && svg.contains("smoke: MAPPO (2 seeds)")
    );

    // Again: every run is reused (same numbers), none retrained.
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let before = mtime(&out.join("smoke/s7/metrics.csv"));
    let again = compare::compare(&o, stop.clone(), &|_| {}).expect("compare again");
    assert_eq!(again.tables[0].rows[0].finals, table.rows[0].finals);
    assert_eq!(before, mtime(&out.join("smoke/s7/metrics.csv")));

    // A directory holding runs of another config is refused, not overwritten.
    let other = CompareOptions {
        set: vec!["ppo.learning_rate=1e-4".into()],
        ..o.clone()
    };
    let err = compare::compare(&other, stop, &|_| {}).expect_err("stale runs");
    assert!(format!("{err:#}").contains("another config"), "{err:#}");

    // marl plot draws the same runs.
    let figs = tmp.path().join("figs");
    let (code, text) = marl_output(&[
        "plot",
        &out.join("smoke/s7").display().to_string(),
        &out.join("smoke/s8").display().to_string(),
        &out.join("ippo/s7").display().to_string(),
        "--out",
        &figs.display().to_string(),
    ]);
    assert_eq!(code, 0, "{text}");
    let csv = std::fs::read_to_string(figs.join("curves.csv")).expect("csv");
    assert!(
        csv.contains("smoke (2 runs),") && csv.contains("ippo (1 run),"),
        "{csv}"
    );
}

/// Checkpoints written by marl before the learner had backends (commit e4909e0, kept in
/// tests/fixtures) load and evaluate to what that marl reported: exactly where the policy ran
/// the same arithmetic then (the hand-written path: discrete, shared networks), and to float
/// rounding where it ran on candle then (Gaussian and per-agent actors, embeddings).
#[test]
fn checkpoints_of_earlier_versions_evaluate_to_the_numbers_they_gave() {
    let root = repo("tests/fixtures/checkpoints-e4909e0");
    for (name, exact) in [
        ("discrete_shared", true),
        ("continuous_unshared", false),
        ("embedding_layernorm", false),
    ] {
        let run = root.join(name);
        for (file, greedy) in [("eval_greedy.json", true), ("eval_stochastic.json", false)] {
            if !exact && !greedy {
                // A sampled action can flip on a rounding difference: compare greedy only.
                continue;
            }
            let then: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.join(file)).expect("recorded"))
                    .expect("json");
            let now =
                serde_json::to_value(eval::evaluate(&run, &opts(20, greedy, 0)).expect("eval"))
                    .expect("json");
            for key in [
                "return_per_agent",
                "team_return",
                "episode_length",
                "groups",
                "task",
            ] {
                let close = |a: &serde_json::Value, b: &serde_json::Value| {
                    if exact {
                        a == b
                    } else {
                        let (a, b) = (a.to_string(), b.to_string());
                        let nums = |s: &str| -> Vec<f64> {
                            s.split(|c: char| {
                                !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e')
                            })
                            .filter_map(|t| t.parse().ok())
                            .collect()
                        };
                        let (x, y) = (nums(&a), nums(&b));
                        x.len() == y.len()
                            && x.iter()
                                .zip(&y)
                                .all(|(x, y)| (x - y).abs() <= 1e-3 * (1.0 + y.abs()))
                    }
                };
                assert!(
                    close(&now[key], &then[key]),
                    "{name} {file} {key}: now {} then {}",
                    now[key],
                    then[key]
                );
            }
        }
    }
}

#[test]
fn lbf_logs_greedy_and_stochastic_curves_and_plot_draws_both() {
    let tmp = tempfile::tempdir().expect("tmp");
    // configs/lbf.toml evaluates both ways (EPyMARL reports LBF's stochastic policy).
    let run = train(
        "configs/lbf.toml",
        &[
            "total_timesteps=6400",
            "logging.eval_interval=3200",
            "logging.eval_episodes=16",
        ],
        &tmp.path().join("lbf"),
    );
    let Metrics { header, rows } = RunDir::new(&run).read_metrics().expect("metrics");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no `{name}` in {header:?}"))
    };
    let greedy = col("eval/return");
    let stochastic = col("eval/return_stochastic");
    for name in [
        "eval/team_return_stochastic",
        "agent/eval_return",
        "agent/eval_return_stochastic",
    ] {
        col(name);
    }
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert!(r[greedy].parse::<f64>().is_ok() && r[stochastic].parse::<f64>().is_ok());
    }

    let run_arg = run.display().to_string();
    let plots = tmp.path().join("plots").display().to_string();
    let (code, text) = marl_output(&["plot", &run_arg, "--out", &plots, "--name", "both"]);
    assert_eq!(code, 0, "{text}");
    let csv = std::fs::read_to_string(tmp.path().join("plots/both.csv")).expect("csv");
    assert!(
        csv.contains("lbf, greedy (1 run),") && csv.contains("lbf, stochastic (1 run),"),
        "{csv}"
    );
    let svg = std::fs::read_to_string(tmp.path().join("plots/both.svg")).expect("svg");
    assert!(svg.contains("greedy and stochastic return per agent"));
    let (code, text) = marl_output(&[
        "plot",
        &run_arg,
        "--out",
        &plots,
        "--name",
        "stochastic",
        "--eval-mode",
        "stochastic",
    ]);
    assert_eq!(code, 0, "{text}");
    let svg = std::fs::read_to_string(tmp.path().join("plots/stochastic.svg")).expect("svg");
    assert!(svg.contains("stochastic return per agent") && !svg.contains("greedy"));

    // marl eval says which policy it ran.
    let (code, text) = marl_output(&["eval", &run_arg, "--episodes", "4"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("stochastic policy (sampled actions"),
        "{text}"
    );
    let (_, text) = marl_output(&["eval", &run_arg, "--episodes", "4", "--greedy"]);
    assert!(
        text.contains("greedy policy (the most likely actions)"),
        "{text}"
    );
}

#[test]
fn compare_shows_the_evaluation_asked_for_and_refuses_one_not_logged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = CompareOptions {
        config: repo("configs/smoke.toml"),
        baseline: "ippo".into(),
        seeds: 1,
        set: vec![],
        out: Some(tmp.path().join("cmp")),
        threshold: None,
        episodes: 4,
        eval_mode: Some(marl::train::evaluation::EvalPolicy::Stochastic),
        jobs: 1,
    };
    let err = compare::compare(&o, Arc::new(AtomicBool::new(false)), &|_| {})
        .expect_err("smoke.toml evaluates greedy only");
    let err = format!("{err:#}");
    assert!(
        err.contains("--eval-mode stochastic") && err.contains("logging.eval_mode = \"both\""),
        "{err}"
    );
    assert!(!tmp.path().join("cmp/smoke").exists(), "nothing trained");

    // Runs that log both: the stochastic figures throughout, and saying so.
    let o = CompareOptions {
        set: vec!["logging.eval_mode=\"both\"".into()],
        ..o
    };
    let c = compare::compare(&o, Arc::new(AtomicBool::new(false)), &|_| {}).expect("compare");
    let run = tmp.path().join("cmp/smoke/s7");
    let stochastic = eval::evaluate(&run, &opts(4, false, 0)).expect("eval");
    assert_eq!(
        c.tables[0].rows[0].finals,
        [stochastic.return_per_agent.mean]
    );
    assert!(run.join("eval/final_stochastic.json").is_file());
    let md = compare::markdown(&c, &o);
    assert!(
        md.contains("stochastic evaluation") && md.contains("| final stochastic return |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(tmp.path().join("cmp/plots/eval_return_stochastic.svg"))
        .expect("figure");
    assert!(svg.contains("stochastic return per agent"));
}
