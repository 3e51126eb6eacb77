"""marl.train, marl.evaluate and marl.Policy against the binary and the Rust evaluation loop
on short runs of configs/smoke.toml."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import marl
from marl import _marl, envs
from conftest import REPO

SMOKE = REPO / "configs" / "smoke.toml"
BINARY = REPO / "target" / "release" / "marl"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    return marl.train(SMOKE, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    return marl.train(
        SMOKE,
        {"network.recurrent": "gru", "network.recurrent_hidden": 16, "network.data_chunk_length": 5, "ppo.ppo_epochs": 1},
        out=tmp_path_factory.mktemp("runs"),
    )


@pytest.fixture(scope="module")
def lbf_run(tmp_path_factory):
    return marl.train(
        SMOKE,
        ["env.id=\"lbf/Foraging-8x8-2p-2f-coop-v3\"", "env.rollout_length=50"],
        out=tmp_path_factory.mktemp("runs"),
    )


@pytest.fixture(scope="module")
def continuous_run(tmp_path_factory):
    # A Gaussian actor: box actions, greedy = the mean.
    return marl.train(SMOKE, {"env.params.continuous_actions": True}, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def unshared_run(tmp_path_factory):
    # One actor per agent (no agent id appended).
    return marl.train(SMOKE, {"algo.share_actor_params": False}, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def talking_run(tmp_path_factory):
    # Learned communication: each agent's action depends on the messages of the others.
    return marl.train(
        SMOKE,
        {"algo.enable_communication": True, "algo.communication": "attention", "algo.communication_rounds": 2},
        out=tmp_path_factory.mktemp("runs"),
    )


@pytest.fixture(scope="module")
def speaker_listener_run(tmp_path_factory):
    # Agents of different observation and action sizes: make_vec's per-group layout.
    return marl.train(SMOKE, {"env.id": "mpe/simple_speaker_listener_v4"}, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def joined_run(tmp_path_factory):
    # One channel joining the speaker and the listener: padded observations, masked choices.
    return marl.train(
        SMOKE,
        {
            "env.id": "mpe/simple_speaker_listener_v4",
            "algo.enable_communication": True,
            "algo.communication_channels": [["speaker", "listener"]],
        },
        out=tmp_path_factory.mktemp("runs"),
    )


def test_train_returns_the_run(smoke_run):
    r = smoke_run.result
    assert r["updates"] == 10 and r["global_step"] == 2000 and not r["interrupted"]
    assert smoke_run.summary["finished"] is True
    assert smoke_run.config["env"]["id"] == "mpe/simple_spread_v3"
    m = smoke_run.metrics
    assert m["global_step"][-1] == 2000 and len(m["update"]) == 10
    assert np.isfinite(m["charts/episodic_return"]).all()


def test_train_from_a_dict_with_progress(tmp_path):
    seen = []
    cfg = {
        "seed": 3,
        "total_timesteps": 1000,
        "num_workers": 1,
        "env": {"id": "mpe/simple_spread_v3", "n_envs": 4, "rollout_length": 25, "params": {"N": 2}},
        "ppo": {"ppo_epochs": 1, "num_minibatches": 1},
        "logging": {"eval_interval": 500, "eval_episodes": 4, "checkpoint_interval": 500},
    }
    run = marl.train(cfg, out=tmp_path, progress=seen.append)
    assert [p["update"] for p in seen] == list(range(1, 11))
    assert seen[-1]["global_step"] == 1000
    assert run.path.parent == tmp_path
    assert marl.Policy.load(run).possible_agents == ["agent_0", "agent_1"]


def test_a_callback_returning_false_stops_with_a_checkpoint(tmp_path):
    run = marl.train(SMOKE, out=tmp_path, progress=lambda p: p["update"] < 3)
    assert run.result["interrupted"] and run.result["updates"] == 3
    resumed = marl.train(resume=run)
    assert resumed.result["updates"] == 10 and resumed.summary["finished"]


def test_an_exception_in_the_callback_is_raised_after_the_checkpoint(tmp_path):
    def boom(p):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        marl.train(SMOKE, out=tmp_path, progress=boom)
    (run_dir,) = list(tmp_path.iterdir())
    assert (run_dir / "checkpoints").is_dir()


def test_config_errors_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="learning_rat"):
        marl.train(SMOKE, {"ppo.learning_rat": 1e-3}, out=tmp_path)
    with pytest.raises(ValueError, match="simple_sprad"):
        marl.train(SMOKE, {"env.id": "mpe/simple_sprad_v3"}, out=tmp_path)
    with pytest.raises(FileNotFoundError):
        marl.train(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="config"):
        marl.train()


def test_ctrl_c_stops_at_the_next_update_with_a_checkpoint(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, marl
        def progress(p):
            if p["update"] == 1:
                print("started", flush=True)
        try:
            marl.train({str(SMOKE)!r}, {{"total_timesteps": 50_000_000}}, out={str(tmp_path)!r}, progress=progress)
        except KeyboardInterrupt as e:
            print("interrupted:", e, flush=True)
            sys.exit(3)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert child.stdout.readline().strip() == "started"
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 3, out
    assert "resume" in out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["updates"] >= 1
    assert (run_dir / "checkpoints").is_dir()


@pytest.mark.skipif(not BINARY.exists(), reason="needs target/release/marl (cargo build --release)")
@pytest.mark.parametrize("greedy", [True, False])
def test_evaluate_is_marl_eval(smoke_run, greedy):
    args = [str(BINARY), "eval", str(smoke_run.path), "--episodes", "12", "--seed", "5", "--json"]
    if greedy:
        args.append("--greedy")
    cli = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    py = marl.evaluate(smoke_run, episodes=12, greedy=greedy, seed=5)
    assert py == cli


def play(policy, env_id, params, n, seed, greedy, masked=False):
    """Evaluation episodes played from Python the way marl eval plays one round: n
    environments reset with the round's seed, the policy acting on every row each step
    (episode_start = the rows that just reset), until each has finished one episode."""
    venv = envs.make_vec(env_id, n, seed=envs.derive_seed(seed, 0), **params)
    obs = venv.reset()
    state = None
    done = np.ones(n, bool)
    dead = np.zeros((n, len(policy.possible_agents)), bool)  # agents done before their env
    returns = [None] * n
    first_call = True
    while any(r is None for r in returns):
        mask = venv.action_mask() if masked else None
        actions, state = policy.act(
            obs, state, greedy=greedy, seed=seed if first_call else None,
            action_mask=mask, episode_start=done, agent_done=dead,
        )
        first_call = False
        obs, rew, term, trunc, info = venv.step(actions)
        done = info["done"]
        dead = ~done[:, None] & (dead | term)
        for e in np.flatnonzero(done):
            if returns[e] is None:
                returns[e] = info["episode_return"][e].copy()
    return np.stack(returns)


@pytest.mark.parametrize("greedy", [True, False])
@pytest.mark.parametrize(
    "which", ["smoke_run", "gru_run", "lbf_run", "speaker_listener_run", "continuous_run", "unshared_run", "talking_run",
     "joined_run"]
)
def test_policy_acts_as_marl_eval(which, greedy, request):
    run = request.getfixturevalue(which)
    cfg = run.config
    policy = marl.Policy.load(run)
    assert policy.recurrent == (which == "gru_run")
    n, seed = 6, 9
    want, _ = _marl.eval_episodes(str(run.path), episodes=n, greedy=greedy, seed=seed)
    got = play(policy, cfg["env"]["id"], cfg["env"].get("params", {}), n, seed, greedy, masked=which == "lbf_run")
    np.testing.assert_array_equal(got, want)


def test_policy_state_and_layouts(gru_run):
    policy = marl.Policy.load(gru_run)
    env = envs.make("mpe/simple_spread_v3")
    obs, _ = env.reset(seed=1)
    a, s1 = policy.act(obs)
    assert set(a) == set(env.agents) and all(isinstance(x, int) for x in a.values())
    _, s2 = policy.act(obs, s1)
    with pytest.raises(ValueError, match="stale"):
        policy.act(obs, s1)
    # The same observations from a fresh start give the same greedy actions.
    again, _ = policy.act(obs, None)
    assert again == a
    batch = np.stack([np.stack([obs[ag] for ag in env.possible_agents])] * 3)
    acts, _ = policy.act(batch)
    assert acts.shape == (3, 3) and acts.dtype == np.int64
    assert acts[0].tolist() == [a[ag] for ag in env.possible_agents]
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros((2, 5), np.float32))
    with pytest.raises(FileNotFoundError, match="nope"):
        marl.Policy.load(gru_run.path / "nope")
    with pytest.raises(RuntimeError, match="checkpoint"):
        marl.Policy.load(REPO / "configs")
