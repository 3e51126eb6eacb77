#!/usr/bin/env python3
"""Records episodes of IC3Net's predator-prey in marl's parity format `marl-parity-predator-prey-v1`.

    scripts/setup-reference.sh   # IC3Net's sources in .venv/src/IC3Net, numpy 1.26.4 in .venv/ic3net
    .venv/ic3net/bin/python scripts/make_predator_prey_traces.py --out envs/tests/parity
    cargo test -p marl-envs --release --test integration parity

The reference is `ic3net-envs/ic3net_envs/predator_prey_env.py` of github.com/IC3Net/IC3Net
(commit 69b7e0ce51a79def593abfef1a976f43e5e13f75), loaded from its file. It imports the
long-gone `gym` only for `gym.Env` and `gym.spaces.{Box, MultiDiscrete}`; a stub stands in for
them (nothing of gym runs: the env is stepped directly, as IC3Net's trainer does).

Each trace is one episode: `np.random.seed(seed)` (the env draws its start cells from numpy's
legacy global generator), `reset()`, then steps until the reference's `episode_over` or until
`max_steps`, where IC3Net's trainer cuts the episode (`done = done or t == max_steps - 1`).
Actions come from `numpy.random.default_rng(10000 + seed)`: for each predator, with a probability
set per setting (`TRACES`) a move toward the prey (along the axis of the larger distance, rows on a tie), otherwise
uniform over the actions; so moves off the grid, shared cells, captures and frozen predators
all occur.
"""
import argparse
import importlib.util
import json
import os
import sys
import types
from argparse import Namespace

import numpy as np

COMMIT = "69b7e0ce51a79def593abfef1a976f43e5e13f75"
DEFAULT_SOURCE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".venv", "src", "IC3Net",
    "ic3net-envs", "ic3net_envs", "predator_prey_env.py")

# (file stem, dim, npredator, vision, max_steps, mode, greedy probability, seeds)
TRACES = [
    ("5x5-3p_mixed", 5, 3, 0, 20, "mixed", 0.3, [0, 1, 2]),
    ("10x10-5p_mixed", 10, 5, 1, 40, "mixed", 0.5, [0, 1, 2]),
    ("5x5-3p_cooperative", 5, 3, 0, 20, "cooperative", 0.6, [0]),
    ("10x10-5p_cooperative", 10, 5, 1, 40, "cooperative", 0.6, [1]),
    ("5x5-3p_competitive", 5, 3, 0, 20, "competitive", 0.6, [0]),
]


def install_gym_stub():
    """`gym.Env`, `gym.spaces.Box` and `gym.spaces.MultiDiscrete`, all the reference imports."""
    gym = types.ModuleType("gym")
    spaces = types.ModuleType("gym.spaces")

    class Space:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    spaces.Box = type("Box", (Space,), {})
    spaces.MultiDiscrete = type("MultiDiscrete", (Space,), {})
    gym.Env = object
    gym.spaces = spaces
    sys.modules["gym"] = gym
    sys.modules["gym.spaces"] = spaces


def load_reference(path):
    install_gym_stub()
    spec = importlib.util.spec_from_file_location("predator_prey_env", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PredatorPreyEnv


def make_env(cls, dim, npredator, vision, mode):
    env = cls()
    args = Namespace(nenemies=1, dim=dim, vision=vision, moving_prey=False, no_stay=False,
                     mode=mode, enemy_comm=False, nfriendly=npredator)
    env.multi_agent_init(args)
    return env, args


def flat_obs(obs):
    # What IC3Net's GymWrapper feeds its models: obs.reshape(1, -1, observation_dim).
    return [[int(x) for x in agent.reshape(-1)] for agent in obs]


def cells(locs):
    return [[int(r), int(c)] for r, c in locs]


def policy(env, rng, greedy):
    actions = []
    pr, pc = (int(x) for x in env.prey_loc[0])
    for r, c in env.predator_loc:
        if rng.random() < greedy:
            dr, dc = pr - int(r), pc - int(c)
            if dr == 0 and dc == 0:
                actions.append(4)
            elif abs(dr) >= abs(dc):
                actions.append(0 if dr < 0 else 2)
            else:
                actions.append(3 if dc < 0 else 1)
        else:
            actions.append(int(rng.integers(0, env.naction)))
    return actions


def record(cls, dim, npredator, vision, max_steps, mode, greedy, seed):
    env, args = make_env(cls, dim, npredator, vision, mode)
    np.random.seed(seed)
    obs = env.reset()
    rng = np.random.default_rng(10000 + seed)
    trace = {
        "format": "marl-parity-predator-prey-v1",
        "generator": {
            "script": "scripts/make_predator_prey_traces.py",
            "reference": "github.com/IC3Net/IC3Net ic3net-envs/ic3net_envs/predator_prey_env.py",
            "commit": COMMIT,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "env_args": {k: v for k, v in vars(args).items()},
        "max_steps": max_steps,
        "seed": seed,
        "action_seed": 10000 + seed,
        "action_policy": f"greedy_prey_{greedy}",
        "naction": int(env.naction),
        "vocab_size": int(env.vocab_size),
        "obs_dim": int(obs[0].size),
        "initial_state": {"predator_loc": cells(env.predator_loc), "prey_loc": cells(env.prey_loc)},
        "initial_obs": flat_obs(obs),
        "steps": [],
    }
    off_grid = shared = frozen = 0
    for t in range(1, max_steps + 1):
        actions = policy(env, rng, greedy)
        before, was_reached = cells(env.predator_loc), [int(x) for x in env.reached_prey]
        obs, reward, episode_over, _ = env.step(actions)
        after, prey = cells(env.predator_loc), cells(env.prey_loc)[0]
        for i, a in enumerate(actions):
            if was_reached[i]:
                frozen += a != 4
            elif a != 4 and before[i] == after[i]:
                off_grid += 1
        shared += any(after.count(p) > 1 for p in after if p != prey)
        trace["steps"].append({
            "t": t,
            "actions": actions,
            "obs": flat_obs(obs),
            "rewards": [float(r) for r in reward],
            "rewards_hex": [float(r).hex() for r in reward],
            "episode_over": bool(episode_over),
            "time_limit": t == max_steps and not episode_over,
            "reached_prey": [int(x) for x in env.reached_prey],
            "success": env.stat.get("success"),
            "predator_loc": cells(env.predator_loc),
        })
        if episode_over:
            break
    steps = trace["steps"]
    trace["num_steps"] = len(steps)
    trace["stats"] = {
        "ends_by": "capture" if steps[-1]["episode_over"] else "time limit",
        "first_reach_step": next((s["t"] for s in steps if any(s["reached_prey"])), None),
        "predators_reached": sum(steps[-1]["reached_prey"]),
        "moves_off_grid": off_grid,
        "ignored_moves_of_reached": frozen,
        "steps_with_shared_cell": shared,
        "return_per_predator": [round(sum(s["rewards"][i] for s in steps), 4)
                                for i in range(npredator)],
    }
    return trace


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="envs/tests/parity")
    ap.add_argument("--source", default=DEFAULT_SOURCE,
                    help="path of IC3Net's predator_prey_env.py")
    a = ap.parse_args()
    cls = load_reference(a.source)
    os.makedirs(a.out, exist_ok=True)
    for stem, dim, npredator, vision, max_steps, mode, greedy, seeds in TRACES:
        for seed in seeds:
            trace = record(cls, dim, npredator, vision, max_steps, mode, greedy, seed)
            path = os.path.join(a.out, f"predator_prey_{stem}_seed{seed}.json")
            with open(path, "w") as f:
                json.dump(trace, f, separators=(",", ":"))
                f.write("\n")
            print(path, trace["num_steps"], "steps,", json.dumps(trace["stats"]))


if __name__ == "__main__":
    main()
