"""The repository's recordings of the Python reference environments replay exactly through
``marl.envs``: started the way the Rust replay starts them (envs/src/parity/: the recorded
initial world state for MPE and LBF, the recorded seed and warm-up for the warehouse), every
recorded joint action gives the recorded observations (equal to the float32 cast of the
recorded values), rewards (equal as float64), flags and state. The formats are described in
envs/tests/parity/FORMAT*.md."""

import json

import numpy as np
import pytest

from conftest import PARITY
from marl import envs


def traces(prefix):
    files = sorted(PARITY.glob(prefix + "*.json")) + sorted((PARITY / "generated").glob(prefix + "*.json"))
    return files


MPE = traces("simple_")
LBF = traces("lbf_")
RWARE = traces("rware_")
PREDATOR_PREY = traces("predator_prey_")


def test_the_recordings_are_there():
    assert len(MPE) >= 19 and len(LBF) >= 10 and len(RWARE) >= 21 and len(PREDATOR_PREY) >= 9


def f32(values):
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def assert_obs(t, env, obs, recorded):
    assert len(recorded) == len(env.possible_agents)
    for agent, exp in zip(env.possible_agents, recorded):
        got = obs[agent]
        want = f32(exp)
        diff = np.flatnonzero(got != want)
        assert diff.size == 0, (
            f"step {t}, {agent}: obs[{diff[0]}] is {got[diff[0]]!r}, recorded {want[diff[0]]!r}"
        )


def assert_each(t, env, field, got, recorded):
    want = dict(zip(env.possible_agents, recorded))
    assert got == want, f"step {t}: {field} {got} != recorded {want}"


def kwargs(*maps, skip=()):
    out = {}
    for m in maps:
        out.update({k: v for k, v in m.items() if v is not None and k not in skip})
    return out


@pytest.mark.parametrize("path", MPE, ids=lambda p: p.name)
def test_mpe_trace(path):
    trace = json.loads(path.read_text())
    assert trace["format"] == "marl-parity-v1"
    env = envs.make("mpe/" + trace["scenario"], **kwargs(trace["env_kwargs"]))
    assert env.possible_agents == trace["agents"]
    env.reset(seed=0)
    init = trace["initial_state"]
    fields = {
        "agent_pos": [x for e in init["agents"] for x in e["p_pos"]],
        "agent_vel": [x for e in init["agents"] for x in e["p_vel"]],
        "agent_c": [x for e in init["agents"] for x in e.get("c", [])],
        "landmark_pos": [x for e in init["landmarks"] for x in e["p_pos"]],
        "landmark_vel": [x for e in init["landmarks"] for x in e["p_vel"]],
    }
    goal = trace.get("scenario_extra", {}).get("goal_landmark_index")
    if goal is not None:
        fields["goal_landmark"] = goal if isinstance(goal, list) else [goal]
    obs, _ = env.set_world_state(fields)
    assert_obs(0, env, obs, trace["initial_obs"])
    for k, step in enumerate(trace["steps"]):
        t = step["t"]
        assert t == k + 1
        actions = {
            a: (np.asarray(x, dtype=np.float32) if isinstance(x, list) else x)
            for a, x in zip(env.possible_agents, step["actions"])
        }
        obs, rew, term, trunc, _ = env.step(actions)
        assert_obs(t, env, obs, step["obs"])
        assert_each(t, env, "reward", rew, step["rewards"])
        assert_each(t, env, "terminated", term, step["terminations"])
        assert_each(t, env, "truncated", trunc, step["truncations"])
        ws = env.world_state()
        for i, e in enumerate(step["state"]):
            assert ws["agent_pos"][2 * i : 2 * i + 2].tolist() == e["p_pos"], f"step {t}: p_pos of agent {i}"
            assert ws["agent_vel"][2 * i : 2 * i + 2].tolist() == e["p_vel"], f"step {t}: p_vel of agent {i}"
    assert len(trace["steps"]) == 25
    assert env.agents == []  # truncated at max_cycles


def lbf_check_state(t, env, players, valid, infos):
    pos = env.world_state()["agent_pos"].reshape(-1, 2).astype(int).tolist()
    assert pos == [p["position"] for p in players], f"step {t}: positions"
    for agent, v in zip(env.possible_agents, valid):
        mask = infos[agent]["action_mask"]
        assert np.flatnonzero(mask).tolist() == v, f"step {t}: valid actions of {agent}"


@pytest.mark.parametrize("path", LBF, ids=lambda p: p.name)
def test_lbf_trace(path):
    trace = json.loads(path.read_text())
    assert trace["format"] == "marl-parity-lbf-v1"
    params = kwargs(trace.get("defaults_not_in_kwargs", {}), trace["env_kwargs"], skip=("render_mode",))
    env = envs.make("grid/foraging_v3", **params)
    env.reset(seed=0)
    init = trace["initial_state"]
    fields = {
        "agent_pos": [x for p in init["players"] for x in p["position"]],
        "agent_level": [p["level"] for p in init["players"]],
        "field": [x for row in init["field"] for x in row],
    }
    if init.get("food_spawned") is not None:
        fields["food_spawned"] = [init["food_spawned"]]
    obs, infos = env.set_world_state(fields)
    assert_obs(0, env, obs, trace["initial_obs"])
    lbf_check_state(0, env, init["players"], init["valid_actions"], infos)
    for k, step in enumerate(trace["steps"]):
        t = step["t"]
        assert t == k + 1
        obs, rew, term, trunc, infos = env.step(dict(zip(env.possible_agents, step["actions"])))
        assert_obs(t, env, obs, step["obs"])
        assert_each(t, env, "reward", rew, step["rewards"])
        ended = {a: term[a] or trunc[a] for a in term}
        assert_each(t, env, "terminated", ended, [step["terminated"]] * len(env.possible_agents))
        lbf_check_state(t, env, step["state"]["players"], step["state"]["valid_actions"], infos)
    assert env.agents == []


def rware_check_state(t, env, state):
    ws = env.world_state()
    agents = np.asarray(state["agents"], dtype=np.float64)
    assert ws["agent_pos"].reshape(-1, 2).tolist() == agents[:, :2].tolist(), f"step {t}: positions"
    assert ws["agent_dir"].tolist() == agents[:, 2].tolist(), f"step {t}: directions"
    assert ws["agent_carrying"].tolist() == agents[:, 3].tolist(), f"step {t}: carried shelves"
    assert ws["request_queue"].tolist() == [float(q) for q in state["request_queue"]], f"step {t}: requests"


@pytest.mark.parametrize("path", RWARE, ids=lambda p: p.name)
def test_rware_trace(path):
    trace = json.loads(path.read_text())
    assert trace["format"] == "marl-parity-rware-v1"
    assert trace.get("seed") is not None, "every recorded warehouse episode starts from a seed"
    env = envs.make("grid/rware_v2", **kwargs(trace["env_kwargs"]))
    if trace.get("env_id"):
        # marl's reading of the registered id is the same warehouse.
        assert envs.make(trace["env_id"]).marl_spec["agents"] == env.marl_spec["agents"]
    obs, _ = env.reset(seed=trace["seed"])
    for k, a in enumerate(trace.get("warmup_actions", [])):
        env.step(dict(zip(env.possible_agents, a)))
    if trace.get("warmup_actions"):
        obs, _ = env.reset()
    assert_obs(0, env, obs, trace["initial_obs"])
    rware_check_state(0, env, trace["initial_state"])
    for k, step in enumerate(trace["steps"]):
        t = step["t"]
        assert t == k + 1
        obs, rew, term, trunc, _ = env.step(dict(zip(env.possible_agents, step["actions"])))
        assert_obs(t, env, obs, step["obs"])
        assert_each(t, env, "reward", rew, step["rewards"])
        ended = {a: term[a] or trunc[a] for a in term}
        assert_each(t, env, "done", ended, [step["done"]] * len(env.possible_agents))
        rware_check_state(t, env, step["state"])


@pytest.mark.parametrize("path", PREDATOR_PREY, ids=lambda p: p.name)
def test_predator_prey_trace(path):
    trace = json.loads(path.read_text())
    assert trace["format"] == "marl-parity-predator-prey-v1"
    args = dict(trace["env_args"])
    # Arguments marl fixes must hold their only value; `nfriendly` is marl's `npredator`.
    for key, only in (("nenemies", 1), ("moving_prey", False), ("enemy_comm", False)):
        assert args.pop(key, only) == only
    args["npredator"] = args.pop("nfriendly")
    args["max_steps"] = trace["max_steps"]
    env = envs.make("ic3net/predator_prey_v0", **args)
    env.reset(seed=0)
    start = trace["initial_state"]
    obs, _ = env.set_world_state(
        {
            "predator_pos": [x for c in start["predator_loc"] for x in c],
            "prey_pos": [x for c in start["prey_loc"] for x in c],
        }
    )
    assert_obs(0, env, obs, trace["initial_obs"])
    mixed = args.get("mode") == "mixed"
    agents = env.possible_agents
    for k, step in enumerate(trace["steps"]):
        t = step["t"]
        assert t == k + 1
        live = list(env.agents)
        # PettingZoo: actions of the live agents only (a predator at the prey in mixed mode
        # has left the episode).
        obs, rew, term, trunc, _ = env.step({a: x for a, x in zip(agents, step["actions"]) if a in live})
        assert_obs(t, env, {a: env.observe(a) for a in agents}, step["obs"])
        want_term = {a: bool(mixed and r == 1) for a, r in zip(agents, step["reached_prey"])}
        want_trunc = {a: bool(step["time_limit"] and not want_term[a]) for a in agents}
        for a in live:
            i = agents.index(a)
            assert rew[a] == step["rewards"][i], f"step {t}: reward of {a}"
            assert term[a] == want_term[a], f"step {t}: terminated of {a}"
            assert trunc[a] == want_trunc[a], f"step {t}: truncated of {a}"
        cells = env.world_state()["predator_pos"].reshape(-1, 2).astype(int).tolist()
        assert cells == step["predator_loc"], f"step {t}: predator cells"
        if step["success"] is not None:
            assert env.metrics()["success"] == step["success"], f"step {t}: success"
        if step["episode_over"] or step["time_limit"]:
            assert env.agents == [], f"step {t}: the episode is over"
