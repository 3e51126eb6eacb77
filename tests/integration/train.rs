//! `marl train` end to end on the tiny smoke config: the files a run writes, identical numbers
//! for any number of worker threads, exact resume, NaN handling, evaluation of the run, and
//! clear errors. The training tests are written once per device (`common::per_device!`: the
//! CPU, and CUDA in the `cuda` build).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use candle_core::Device;
use marl::config::{self, TrainConfig};
use marl::run::dir::Metrics;
use marl::run::RunDir;
use marl::train::{self, Quiet, RunOptions};

use crate::common::{self, marl_output, numbers, repo, resume, smoke, StopAt};

fn run(cfg: TrainConfig, dir: &Path) -> PathBuf {
    let opts = RunOptions {
        config_name: "smoke".into(),
        resume: None,
        run_dir: Some(dir.to_path_buf()),
    };
    train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false)))
        .expect("train")
        .run_dir
}

/// The config override that trains on `dev`.
fn on(dev: &Device) -> &'static str {
    if dev.is_cpu() {
        "device=\"cpu\""
    } else {
        "device=\"cuda\""
    }
}

common::per_device! {
    a_run_writes_config_metrics_and_checkpoints => run_writes_files,
    same_numbers_with_0_1_and_2_worker_threads => same_numbers_for_any_workers,
    a_resumed_run_gives_the_numbers_of_an_uninterrupted_one => resume_is_exact,
    non_finite_losses_stop_training_and_keep_the_last_checkpoint => non_finite_losses_stop,
    eval_reads_the_run_config_and_is_reproducible => eval_of_the_run,
}

fn run_writes_files(dev: &Device) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = run(smoke(&[on(dev)]), &tmp.path().join("run"));
    for f in [
        "config.toml",
        "metrics.csv",
        "metrics.jsonl",
        "checkpoints/latest",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    let Metrics { header, rows } = RunDir::new(&dir).read_metrics().expect("metrics");
    for name in [
        "global_step",
        "episodes",
        "charts/episodic_return",
        "charts/team_return",
        "charts/sps",
        "losses/policy_loss",
        "losses/value_loss",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
        "charts/learning_rate",
        "time/rollout_s",
        "time/update_s",
        "eval/return",
        "agent/return",
    ] {
        assert!(
            header.iter().any(|h| h == name),
            "metrics.csv lacks `{name}`: {header:?}"
        );
    }
    assert_eq!(rows.len(), 10, "2000 steps / 200 per update");
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).expect("latest");
    let ck = dir.join("checkpoints").join(latest.trim());
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
        "envs.bin",
    ] {
        assert!(ck.join(f).exists(), "checkpoint lacks {f}");
    }
    // The frozen layout: plain weight [out, in] and bias [out] per layer.
    let model =
        candle_core::safetensors::load(ck.join("model.safetensors"), &candle_core::Device::Cpu)
            .expect("load");
    let w = &model["agent.actor.layers.0.weight"];
    assert_eq!(
        w.dims(),
        &[64, 18 + 3],
        "18 observations + 3-way agent one-hot"
    );
    assert_eq!(model["agent.actor.layers.0.bias"].dims(), &[64]);
    assert_eq!(model["agent.actor.head.weight"].dims(), &[5, 64]);
    assert_eq!(model["agent.critic.layers.0.weight"].dims(), &[64, 54 + 3]);
    // The resolved config in the run loads again as is.
    config::load(&dir.join("config.toml"), &[]).expect("config.toml of a run parses");
}

/// `path`'s overrides and then `extra`.
fn with<'a>(path: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    [path, extra].concat()
}

/// The two backends (candle's autograd, and the hand-written CPU backend), and a recurrent
/// policy (its states carried across steps, updates and checkpoints: 8-step episodes end in
/// the middle of 25-step rollouts and of the checkpoint at update 4) on each, and a recurrent
/// policy whose actors talk (attention). On CUDA the knob is moot (candle's autograd is the
/// GPU's backend): the paths that name candle.
const PATHS: [&[&str]; 5] = [
    &["network.cpu_fast_path=false"],
    &["network.cpu_fast_path=true"],
    &[
        "network.cpu_fast_path=false",
        "network.recurrent=\"gru\"",
        "network.recurrent_hidden=16",
        "network.data_chunk_length=5",
        "env.params.max_cycles=8",
    ],
    &[
        "network.cpu_fast_path=true",
        "network.recurrent=\"gru\"",
        "network.recurrent_hidden=16",
        "network.data_chunk_length=5",
        "env.params.max_cycles=8",
    ],
    &[
        "network.cpu_fast_path=true",
        "network.recurrent=\"gru\"",
        "network.recurrent_hidden=16",
        "network.data_chunk_length=5",
        "env.params.max_cycles=8",
        "algo.enable_communication=true",
        "algo.communication=\"attention\"",
    ],
];

/// [`PATHS`] on `dev`, with the override that trains there.
fn paths(dev: &Device) -> Vec<Vec<&'static str>> {
    PATHS
        .iter()
        .filter(|p| dev.is_cpu() || p.contains(&"network.cpu_fast_path=false"))
        .map(|p| with(p, &[on(dev)]))
        .collect()
}

fn same_numbers_for_any_workers(dev: &Device) {
    let tmp = tempfile::tempdir().expect("tmp");
    for (k, path) in paths(dev).iter().enumerate() {
        let runs: Vec<_> = [0, 1, 2]
            .iter()
            .map(|w| {
                numbers(&run(
                    smoke(&with(path, &[&format!("num_workers={w}")])),
                    &tmp.path().join(format!("p{k}w{w}")),
                ))
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{path:?}: num_workers 0 vs 1");
        assert_eq!(runs[0], runs[2], "{path:?}: num_workers 0 vs 2");
        let again = numbers(&run(
            smoke(&with(path, &["num_workers=0"])),
            &tmp.path().join(format!("p{k}again")),
        ));
        assert_eq!(runs[0], again, "{path:?}: same seed, same numbers");
        let other = numbers(&run(
            smoke(&with(path, &["num_workers=0", "seed=8"])),
            &tmp.path().join(format!("p{k}seed8")),
        ));
        assert_ne!(runs[0], other, "{path:?}: another seed gives other numbers");
    }
}

fn resume_is_exact(dev: &Device) {
    let tmp = tempfile::tempdir().expect("tmp");
    for (k, path) in paths(dev).iter().enumerate() {
        let whole = numbers(&run(smoke(path), &tmp.path().join(format!("whole{k}"))));
        let dir = tmp.path().join(format!("stopped{k}"));
        let stop = Arc::new(AtomicBool::new(false));
        let opts = RunOptions {
            config_name: "smoke".into(),
            resume: None,
            run_dir: Some(dir.clone()),
        };
        let s =
            train::train(smoke(path), &opts, &mut StopAt(4, stop.clone()), stop).expect("train");
        assert!(
            s.interrupted && s.updates == 4,
            "stopped after update 4, checkpointed"
        );
        resume(&dir);
        assert_eq!(
            numbers(&dir),
            whole,
            "{path:?}: resume must continue exactly"
        );
    }
}

fn non_finite_losses_stop(dev: &Device) {
    let tmp = tempfile::tempdir().expect("tmp");
    for (k, path) in paths(dev).iter().enumerate() {
        let dir = tmp.path().join(format!("nan{k}"));
        let cfg = smoke(&with(
            path,
            &[
                "ppo.learning_rate=1e30",
                "ppo.critic_learning_rate=1e30",
                "logging.checkpoint_interval=200",
                "ppo.max_grad_norm=0",
            ],
        ));
        let opts = RunOptions {
            config_name: "smoke".into(),
            resume: None,
            run_dir: Some(dir.clone()),
        };
        let err = train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false)))
            .expect_err("must stop");
        assert!(
            format!("{err:#}").contains("non-finite loss"),
            "{path:?}: {err:#}"
        );
        let latest = std::fs::read_to_string(dir.join("checkpoints/latest"))
            .expect("a good checkpoint is kept");
        let state = std::fs::read_to_string(
            dir.join("checkpoints")
                .join(latest.trim())
                .join("state.json"),
        )
        .expect("state");
        assert!(state.contains("\"update\""));
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let typo = write("typo.toml", "[ppo]\nlerning_rate = 1e-3\n");
    let (code, msg) = marl_output(&["train", &typo]);
    assert_eq!(code, 2);
    assert!(
        msg.contains("typo.toml")
            && msg.contains("lerning_rate")
            && msg.contains("did you mean `learning_rate`"),
        "{msg}"
    );

    let wrong = write("wrong.toml", "[env]\nn_envs = \"many\"\n");
    let (code, msg) = marl_output(&["train", &wrong]);
    assert_eq!(code, 2);
    assert!(
        msg.contains("wrong.toml") && msg.contains("n_envs") && msg.contains("line 2"),
        "{msg}"
    );

    let env = write("env.toml", "[env]\nid = \"mpe/simple_sprad_v3\"\n");
    let (_, msg) = marl_output(&["train", &env]);
    assert!(
        msg.contains("unknown environment") && msg.contains("simple_spread_v3"),
        "{msg}"
    );

    let smoke = repo("configs/smoke.toml").display().to_string();
    if marl::backend::device::parse("cuda").is_err() {
        // No GPU here (or no CUDA in this build): one line that names the device.
        let (code, msg) = marl_output(&["train", &smoke, "--device", "cuda", "--no-progress"]);
        assert_eq!(code, 2);
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert!(msg.starts_with("error: device `cuda`: "), "{msg}");
    }

    let (code, msg) = marl_output(&["train", &smoke, "--set", "ppo.use_mixed_precision=true"]);
    assert_eq!(code, 2);
    assert!(
        msg.contains("use_mixed_precision") && msg.contains("CUDA only"),
        "{msg}"
    );

    let file = write("not_a_dir", "x");
    let (code, msg) = marl_output(&["train", &smoke, "--out", &file, "--no-progress"]);
    assert_eq!(code, 2);
    assert!(msg.contains("cannot create output directory"), "{msg}");

    let (code, msg) = marl_output(&[
        "train",
        &smoke,
        "--set",
        "algo.enable_communication=true",
        "--set",
        "algo.communication_rounds=0",
    ]);
    assert_eq!(code, 2);
    assert!(msg.contains("communication_rounds = 0"), "{msg}");

    let (code, msg) = marl_output(&["eval", &tmp.path().join("nothing").display().to_string()]);
    assert_eq!(code, 2);
    assert!(msg.contains("no such file"), "{msg}");
}

/// Evaluation of a run trained on `dev` (`marl eval` acts on the CPU, whatever the run
/// trained on).
fn eval_of_the_run(dev: &Device) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = run(smoke(&[on(dev)]), &tmp.path().join("run"))
        .display()
        .to_string();
    let (code, a) = marl_output(&["eval", &dir, "--episodes", "12", "--seed", "3", "--json"]);
    assert_eq!(code, 0, "{a}");
    let (_, b) = marl_output(&["eval", &dir, "--episodes", "12", "--seed", "3", "--json"]);
    assert_eq!(a, b, "same checkpoint and seed, same numbers");
    let v: serde_json::Value = serde_json::from_str(&a).expect("json");
    assert_eq!(v["episodes"], 12);
    let (code, text) = marl_output(&[
        "eval",
        &dir,
        "--episodes",
        "4",
        "--greedy",
        "--policy",
        "agent=random",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("return per agent"), "{text}");
    let (code, text) = marl_output(&["eval", &dir, "--policy", "prey=random"]);
    assert_eq!(code, 2);
    assert!(text.contains("no group `prey`"), "{text}");
    let (code, text) = marl_output(&["eval", &dir, "--messages", "zero"]);
    assert_eq!(code, 2);
    assert!(text.contains("do not communicate"), "{text}");
    let (code, text) = marl_output(&["eval", &dir, "--messages", "loud"]);
    assert_eq!(code, 2);
    assert!(text.contains("expected sent, zero or shuffle"), "{text}");
}

#[test]
fn every_shipped_config_resolves() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo("configs")).expect("configs/") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "toml") {
            let raw = config::load(&p, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
            TrainConfig::resolve(raw).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 6, "expected the shipped configs, found {n}");
}

#[test]
fn every_algorithm_variant_trains() {
    // Each variant runs a few updates and produces finite losses (a NaN stops training with
    // an error, which fails here).
    let variants: &[&[&str]] = &[
        &["algo.centralized_training=false"],
        &[
            "algo.share_actor_params=false",
            "algo.share_critic_params=false",
        ],
        &["algo.agent_id=\"embedding\""],
        &["algo.critic_other_actions=true"],
        &[
            "algo.critic_state=\"agent_specific\"",
            "algo.agent_id=\"none\"",
        ],
        &["algo.reward_sharing=\"shared\"", "algo.agent_id=\"none\""],
        &["algo.reward_sharing=\"mixed\""],
        &[
            "ppo.optimizer=\"joint\"",
            "ppo.value_loss=\"mse\"",
            "ppo.advantage_norm=\"minibatch\"",
            "ppo.value_norm=false",
        ],
        &[
            "ppo.grad_accum_steps=2",
            "ppo.lr_schedule=\"cosine\"",
            "ppo.entropy_schedule=\"linear\"",
            "ppo.target_kl=0.001",
        ],
        &[
            "network.layer_norm=true",
            "network.activation=\"relu\"",
            "logging.log_agent_metrics=true",
        ],
        &["env.params.continuous_actions=true"],
        &["env.id=\"mpe/simple_tag_v3\""],
        // The prey fixed to random actions: only the adversaries train.
        &[
            "env.id=\"mpe/simple_tag_v3\"",
            "algo.random_groups=[\"agent\"]",
        ],
        &[
            "env.id=\"mpe/simple_speaker_listener_v4\"",
            "env.params.continuous_actions=true",
        ],
        &[
            "env.id=\"lbf/Foraging-8x8-2p-2f-coop-v3\"",
            "env.rollout_length=50",
        ],
        &[
            "env.id=\"grid/team_foraging_v1\"",
            "env.rollout_length=50",
            "algo.reward_sharing=\"mixed\"",
        ],
        // Predators that reach the prey are done early: they stop talking.
        &[
            "env.id=\"ic3net/predator_prey-5x5-3p-v0\"",
            "env.rollout_length=20",
            "algo.enable_communication=true",
        ],
        &[
            "env.id=\"mpe/simple_reference_v3\"",
            "env.params.env_channel=false",
            "algo.enable_communication=true",
            "algo.communication=\"attention\"",
            "algo.share_actor_params=false",
        ],
        // One channel joining two groups of different sizes, recurrent, one actor per agent.
        &[
            "env.id=\"mpe/simple_speaker_listener_v4\"",
            "algo.enable_communication=true",
            "algo.communication_channels=[[\"speaker\", \"listener\"]]",
            "algo.share_actor_params=false",
            "network.recurrent=\"gru\"",
            "network.recurrent_hidden=16",
            "network.data_chunk_length=5",
        ],
    ];
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, v) in variants.iter().enumerate() {
        let mut sets = v.to_vec();
        sets.push("total_timesteps=800");
        let cfg = smoke(&sets);
        let opts = RunOptions {
            config_name: format!("v{i}"),
            resume: None,
            run_dir: Some(tmp.path().join(format!("v{i}"))),
        };
        let s = train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false)))
            .unwrap_or_else(|e| panic!("variant {v:?}: {e:#}"));
        assert!(s.eval_return.is_finite(), "variant {v:?}: no evaluation");
    }
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// `marl ARGS`: exit status, stdout, stderr.
fn marl_split(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_marl"))
        .args(args)
        .output()
        .expect("run marl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Flips four bytes in the middle of `path`, or cuts it to half its length.
fn damage(path: &Path, truncate: bool) {
    let mut bytes = std::fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    if truncate {
        bytes.truncate(mid);
    } else {
        let end = (mid + 4).min(bytes.len());
        for b in &mut bytes[mid..end] {
            *b ^= 0x5a;
        }
    }
    std::fs::write(path, bytes).expect("write");
}

/// For each file of the newest checkpoint, bytes flipped in the middle and, separately, the
/// file truncated: `marl eval` and `marl train --resume` fall back to the previous checkpoint
/// with one warning naming the damaged file and the checkpoint used; with no earlier
/// checkpoint they stop with one line naming the damaged file. Damaged weights never load.
#[test]
fn damaged_checkpoint_files_are_named_and_never_loaded() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Checkpoints at updates 0, 5 and 10 (every 1000 of 2000 steps).
    let good = run(smoke(&[]), &tmp.path().join("good"));
    let only = run(
        smoke(&["logging.keep_checkpoints=1"]),
        &tmp.path().join("only"),
    );
    for file in [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
        "envs.bin",
    ] {
        for truncate in [false, true] {
            let case = format!("{file} {}", if truncate { "truncated" } else { "flipped" });
            let dir = tmp.path().join(case.replace(' ', "-"));
            copy_dir(&good, &dir);
            let damaged = dir.join("checkpoints/000010").join(file);
            damage(&damaged, truncate);
            let run = dir.display().to_string();
            let warned = |stderr: &str| {
                let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("damaged")).collect();
                assert_eq!(lines.len(), 1, "{case}: {stderr}");
                assert!(
                    lines[0].contains(&damaged.display().to_string())
                        && lines[0].contains("checkpoints/000005"),
                    "{case}: {stderr}"
                );
            };

            let (code, out, err) = marl_split(&["eval", &run, "--episodes", "2", "--json"]);
            assert_eq!(code, 0, "{case}: {err}");
            warned(&err);
            let v: serde_json::Value = serde_json::from_str(&out).expect("json");
            assert!(
                v["checkpoint"]
                    .as_str()
                    .is_some_and(|c| c.ends_with("checkpoints/000005")),
                "{case}: {out}"
            );

            let (code, _, err) = marl_split(&["train", "--resume", &run, "--no-progress"]);
            assert_eq!(code, 0, "{case}: {err}");
            warned(&err);
            // Resumed at update 5: the run is whole again, with the numbers of the undamaged
            // run (resume is exact), and its newest checkpoint rewritten.
            assert_eq!(numbers(&dir), numbers(&good), "{case}");
            marl::run::checkpoint::load(&dir.join("checkpoints/000010")).expect("rewritten");

            // No earlier checkpoint: one line naming the file.
            let dir = tmp.path().join(format!("only-{}", case.replace(' ', "-")));
            copy_dir(&only, &dir);
            let damaged = dir.join("checkpoints/000010").join(file);
            damage(&damaged, truncate);
            let run = dir.display().to_string();
            for args in [
                vec!["eval", run.as_str(), "--episodes", "2"],
                vec!["train", "--resume", run.as_str(), "--no-progress"],
            ] {
                let (code, out, err) = marl_split(&args);
                assert_eq!(code, 2, "{case} {args:?}: {out}{err}");
                assert_eq!(err.lines().count(), 1, "{case} {args:?}: {err}");
                assert!(
                    err.starts_with("error: ") && err.contains(&damaged.display().to_string()),
                    "{case} {args:?}: {err}"
                );
            }
        }
    }
}
