//! Environments written in Python, through the process bridge: training on the example env
//! beats random play, and every way a Python env can go wrong is a clear error (a missing
//! module, a factory that raises, observations that do not match their space, a worker that
//! dies, a worker that hangs); PettingZoo agents are grouped by role, and `marl eval` starts
//! only the environments it evaluates on. Needs `python3` on PATH (standard library only).

use crate::common::repo;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use marl::config::{self, TrainConfig};
use marl::tools::eval::{self, EvalOptions};
use marl::train::{self, Quiet, RunOptions};
use marl_envs::{registry, StepOut};

#[test]
fn training_on_the_python_example_beats_random_play() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sets: Vec<String> = vec![
        "total_timesteps=24000".into(),
        format!(
            "env.params.path=[\"{}\"]",
            repo("python/examples").display()
        ),
    ];
    let cfg = TrainConfig::resolve(
        config::load(&repo("configs/python_gather.toml"), &sets).expect("config"),
    )
    .expect("resolve");
    let opts = RunOptions {
        config_name: "python_gather".into(),
        resume: None,
        run_dir: Some(tmp.path().join("run")),
    };
    let s = train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false)))
        .expect("train through the bridge");
    let eval = |random: bool| {
        eval::evaluate(
            &s.run_dir,
            &EvalOptions {
                episodes: 64,
                greedy: true,
                seed: 1,
                random_groups: if random { vec!["agent".into()] } else { vec![] },
                ..EvalOptions::default()
            },
        )
        .expect("eval")
    };
    let (trained, random) = (eval(false), eval(true));
    // Random play wanders for the whole 20 steps (about -12.6 per agent); the trained agents
    // walk to the goal (optimal: about 0).
    assert!(
        trained.return_per_agent.mean > random.return_per_agent.mean + 6.0,
        "trained {:?} vs random {:?}",
        trained.return_per_agent,
        random.return_per_agent
    );
    assert!(
        trained.episode_length.mean < 10.0,
        "{:?}",
        trained.episode_length
    );
}

/// Makes a Python env from a module written into `dir`.
fn make(dir: &Path, module: &str, source: &str, extra: &str) -> Result<(), String> {
    std::fs::write(dir.join(format!("{module}.py")), source).expect("write module");
    let params: toml::Table = toml::from_str(&format!(
        "factory = \"{module}:make\"\npath = [{:?}]\n{extra}",
        dir.display().to_string()
    ))
    .expect("params");
    let mut env = registry::make("python", &params).map_err(|e| e.to_string())?;
    let spec = env.spec().clone();
    let n = spec.num_agents();
    let mut obs = vec![0.0; spec.obs_len()];
    env.reset(Some(3), &mut obs);
    let (mut r, mut te, mut tr) = (vec![0.0; n], vec![false; n], vec![false; n]);
    let actions = vec![0.0; spec.action_len()];
    env.step(
        &actions,
        StepOut {
            obs: &mut obs,
            rewards: &mut r,
            terminated: &mut te,
            truncated: &mut tr,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

const GOOD: &str = r#"
class Env:
    action_space = [3, 3]
    def reset(self):
        return [[0.0, 1.0], [1.0, 0.0]], {}
    def step(self, actions):
        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0], [False, False], False, {}
"#;

#[test]
fn a_well_formed_env_steps() {
    let tmp = tempfile::tempdir().expect("tmp");
    make(
        tmp.path(),
        "good",
        &format!("{GOOD}\ndef make():\n    return Env()\n"),
        "",
    )
    .expect("a good env works");
}

#[test]
fn python_failures_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();

    let e = make(d, "present", GOOD, "").expect_err("no `make` in the module");
    assert!(e.contains("has no `make`"), "{e}");

    let params: toml::Table = toml::from_str("factory = \"no_such_module:make\"").expect("params");
    let e = registry::make("python", &params)
        .err()
        .expect("missing module")
        .to_string();
    assert!(e.contains("cannot import module `no_such_module`"), "{e}");

    let e = make(
        d,
        "raises",
        "def make():\n    raise ValueError('bad kwargs: size must be odd')\n",
        "",
    )
    .expect_err("the factory raises");
    assert!(
        e.contains("raises:make") && e.contains("ValueError: bad kwargs: size must be odd"),
        "{e}"
    );

    let shapes = format!(
        "{GOOD}\nclass Space:\n    shape = (3,)\ndef make():\n    e = Env()\n    e.observation_space = [Space(), Space()]\n    return e\n"
    );
    let e = make(d, "shapes", &shapes, "").expect_err("observation shape mismatch");
    assert!(e.contains("shape (2,)") && e.contains("(3,)"), "{e}");

    let step_raises = GOOD.replace(
        "        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0]",
        "        raise RuntimeError('physics exploded')\n        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0]",
    );
    let e = make(
        d,
        "step_raises",
        &format!("{step_raises}\ndef make():\n    return Env()\n"),
        "",
    )
    .expect_err("step raises");
    assert!(
        e.contains("step_raises:make") && e.contains("RuntimeError: physics exploded"),
        "{e}"
    );

    let dies = GOOD.replace(
        "        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0]",
        "        import os, sys\n        print('going down', file=sys.stderr)\n        os._exit(3)\n        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0]",
    );
    let e = make(
        d,
        "dies",
        &format!("{dies}\ndef make():\n    return Env()\n"),
        "",
    )
    .expect_err("the worker dies");
    assert!(e.contains("exited with") && e.contains("going down"), "{e}");

    let hangs = GOOD.replace(
        "        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0]",
        "        import time\n        time.sleep(30)\n        return [[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0]",
    );
    let e = make(
        d,
        "hangs",
        &format!("{hangs}\ndef make():\n    return Env()\n"),
        "timeout_s = 1.0",
    )
    .expect_err("the worker hangs");
    assert!(e.contains("did not answer within 1 s"), "{e}");

    let params: toml::Table = toml::from_str("factory = \"x:y\"\napi = \"gym\"").expect("p");
    let e = registry::make("python", &params)
        .err()
        .expect("bad api")
        .to_string();
    assert!(e.contains("api = `gym`"), "{e}");
}

/// A PettingZoo-style ParallelEnv (duck-typed, no pettingzoo needed): dicts keyed by agent
/// name, the seed passed through `reset(seed=...)`, an agent that leaves early, masks in infos.
const PARALLEL: &str = r#"
class Space:
    def __init__(self, n=None, shape=None):
        self.n, self.shape = n, shape

class Env:
    possible_agents = ["red", "blue"]
    def observation_space(self, a):
        return Space(shape=(2,))
    def action_space(self, a):
        return Space(n=3)
    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t, self.seed = 0, seed
        return {a: [float(seed or 0), 0.0] for a in self.agents}, {a: {"action_mask": [1, 1, 0]} for a in self.agents}
    def state(self):
        return [float(self.t)] * 3
    def step(self, actions):
        self.t += 1
        obs = {a: [float(self.seed or 0), float(actions[a])] for a in self.agents}
        rew = {a: float(actions[a]) for a in self.agents}
        term = {a: (a == "red" and self.t >= 2) or self.t >= 4 for a in self.agents}
        trunc = {a: False for a in self.agents}
        self.agents = [a for a in self.agents if not term[a]]
        return obs, rew, term, trunc, {a: {"action_mask": [1, 0, 1]} for a in obs}

def make():
    return Env()
"#;

#[test]
fn pettingzoo_parallel_envs_map_onto_the_interface() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("par.py"), PARALLEL).expect("write");
    let params: toml::Table = toml::from_str(&format!(
        "factory = \"par:make\"\napi = \"pettingzoo\"\npath = [{:?}]",
        tmp.path().display().to_string()
    ))
    .expect("params");
    let mut env = registry::make("python", &params).expect("make");
    let spec = env.spec().clone();
    let names: Vec<&str> = spec.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["red", "blue"]);
    assert_eq!((spec.state_dim, spec.has_action_masks), (3, true));
    let mut obs = vec![0.0; 4];
    env.reset(Some(42), &mut obs);
    assert_eq!(
        obs,
        [42.0, 0.0, 42.0, 0.0],
        "the seed reaches reset(seed=...)"
    );
    let mut masks = vec![true; 6];
    env.avail_actions(&mut masks);
    assert_eq!(masks, [true, true, false, true, true, false]);
    let (mut r, mut te, mut tr) = (vec![0.0; 2], vec![false; 2], vec![false; 2]);
    let mut step =
        |env: &mut Box<dyn marl_envs::MultiAgentEnv>, a: [f32; 2], obs: &mut Vec<f32>| {
            env.step(
                &a,
                StepOut {
                    obs,
                    rewards: &mut r,
                    terminated: &mut te,
                    truncated: &mut tr,
                },
            )
            .expect("step");
            (r.clone(), te.clone())
        };
    assert_eq!(
        step(&mut env, [1.0, 2.0], &mut obs),
        (vec![1.0, 2.0], vec![false, false])
    );
    assert_eq!(obs, [42.0, 1.0, 42.0, 2.0]);
    // red leaves after step 2; afterwards it gets zeros and no reward.
    assert_eq!(
        step(&mut env, [2.0, 0.0], &mut obs),
        (vec![2.0, 0.0], vec![true, false])
    );
    assert_eq!(
        step(&mut env, [1.0, 1.0], &mut obs),
        (vec![0.0, 1.0], vec![true, false])
    );
    assert_eq!(obs, [0.0, 0.0, 42.0, 1.0]);
    let mut state = vec![0.0; 3];
    env.state(&mut state);
    assert_eq!(state, [3.0, 3.0, 3.0]);
    env.avail_actions(&mut masks);
    assert_eq!(&masks[3..], [true, false, true]);
}

/// A duck-typed PettingZoo ParallelEnv shaped like mpe2's simple_world_comm: a leader with
/// its own action space, adversaries and good agents with their own observation size. The
/// factory appends its process id to `log` when given one (to count worker processes).
const ROLES: &str = r#"
import os

class Space:
    def __init__(self, n=None, shape=None):
        self.n, self.shape = n, shape

SPACES = {"leadadversary": (6, 20), "adversary": (6, 5), "agent": (4, 5)}

class Env:
    possible_agents = ["leadadversary_0", "adversary_0", "adversary_1", "agent_0", "agent_1"]
    max_cycles = 10
    def _spaces(self, a):
        return SPACES[a.rsplit("_", 1)[0]]
    def observation_space(self, a):
        return Space(shape=(self._spaces(a)[0],))
    def action_space(self, a):
        return Space(n=self._spaces(a)[1])
    def _obs(self):
        return {a: [float(self.t)] * self._spaces(a)[0] for a in self.agents}
    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._obs(), {a: {} for a in self.agents}
    def step(self, actions):
        self.t += 1
        obs = self._obs()
        rew = {a: -abs(float(actions[a]) - 1.0) for a in self.agents}
        term = {a: False for a in self.agents}
        trunc = {a: self.t >= self.max_cycles for a in self.agents}
        if self.t >= self.max_cycles:
            self.agents = []
        return obs, rew, term, trunc, {a: {} for a in obs}

def make(log=None):
    if log:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
    return Env()
"#;

/// Trains briefly on `factory` through the bridge (PettingZoo API) and returns the run.
fn train_briefly(dir: &Path, factory: &str, path: &Path, python: &str, steps: u64) -> PathBuf {
    let text = format!(
        "seed = 1\ntotal_timesteps = {steps}\n[env]\nid = \"python\"\nn_envs = 4\n\
         rollout_length = 25\nparams = {{ factory = \"{factory}\", api = \"pettingzoo\", \
         python = {python:?}, path = [{:?}] }}\n[ppo]\nppo_epochs = 1\n\
         [logging]\neval_interval = {steps}\neval_episodes = 4\n",
        path.display().to_string()
    );
    let cfg = TrainConfig::resolve(config::parse(&text, "test config", &[]).expect("config"))
        .expect("resolve");
    let opts = RunOptions {
        config_name: "roles".into(),
        resume: None,
        run_dir: Some(dir.join("run")),
    };
    train::train(cfg, &opts, &mut Quiet, Arc::new(AtomicBool::new(false)))
        .expect("train through the bridge")
        .run_dir
}

/// The metrics.csv columns of a run.
fn columns(run: &Path) -> Vec<String> {
    marl::run::RunDir::new(run)
        .read_metrics()
        .expect("metrics.csv")
        .header
}

fn assert_world_comm_groups(run: &Path) {
    let header = columns(run);
    for group in ["leadadversary", "adversary", "agent"] {
        for column in ["return", "eval_return", "policy_loss"] {
            let name = format!("{group}/{column}");
            assert!(header.contains(&name), "no `{name}` in {header:?}");
        }
    }
    assert!(
        !header.iter().any(|h| h.contains("discrete")),
        "groups named after spaces: {header:?}"
    );
}

#[test]
fn pettingzoo_groups_are_named_by_role() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("roles.py"), ROLES).expect("write");
    let run = train_briefly(tmp.path(), "roles:make", tmp.path(), "python3", 200);
    assert_world_comm_groups(&run);
}

#[test]
fn eval_starts_only_the_environments_it_evaluates_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("roles.py"), ROLES).expect("write");
    let run = train_briefly(tmp.path(), "roles:make", tmp.path(), "python3", 100);
    let log = tmp.path().join("starts.log");
    let report = eval::evaluate(
        &run,
        &EvalOptions {
            episodes: 3,
            seed: 0,
            env_set: toml::from_str(&format!(
                "kwargs = {{ log = {:?} }}",
                log.display().to_string()
            ))
            .expect("env-set"),
            num_workers: Some(0),
            ..EvalOptions::default()
        },
    )
    .expect("eval");
    assert_eq!(report.episodes, 3);
    // Processes that made one environment only read the spec; a process serving the three
    // evaluation environments is a pool. Only the evaluation's own pool may exist.
    let text = std::fs::read_to_string(&log).expect("start log");
    let mut per_process: std::collections::BTreeMap<&str, usize> = Default::default();
    for pid in text.lines() {
        *per_process.entry(pid).or_default() += 1;
    }
    let pools = per_process.values().filter(|&&n| n > 1).count();
    assert_eq!(pools, 1, "environment pools started: {per_process:?}");
}

/// mpe2's simple_world_comm itself, where the reference is installed (`.venv` of
/// scripts/setup-reference.sh, or the interpreter in MARL_REFERENCE_PYTHON); skipped with a
/// message elsewhere. scripts/setup-reference.sh runs it after installing mpe2.
#[test]
fn mpe2_world_comm_groups_are_named_by_role() {
    let python = std::env::var("MARL_REFERENCE_PYTHON")
        .unwrap_or_else(|_| repo(".venv/bin/python").display().to_string());
    let has_mpe2 = Command::new(&python)
        .args(["-c", "import mpe2.simple_world_comm_v3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_mpe2 {
        eprintln!(
            "skipped: mpe2 is not installed for {python} (scripts/setup-reference.sh installs it \
             and runs this test)"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let run = train_briefly(
        tmp.path(),
        "mpe2.simple_world_comm_v3:parallel_env",
        tmp.path(),
        &python,
        200,
    );
    assert_world_comm_groups(&run);
}
