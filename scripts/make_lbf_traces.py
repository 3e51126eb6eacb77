#!/usr/bin/env python3
"""Records episodes of lbforaging 2.0.0 in marl's parity format `marl-parity-lbf-v1`.

    scripts/setup-reference.sh
    .venv/bin/python scripts/make_lbf_traces.py --out /tmp/lbf --seeds 0 1 2
    cargo run --release -- envs check-parity /tmp/lbf/*.json

Each file is one episode of a fresh `gymnasium.make(env_id)` after `reset(seed)`, until
`terminated`. Actions: with probability 0.75 greedy toward the nearest food (LOAD when
adjacent), otherwise uniform over the 6 actions, so invalid actions, conflicts, overlaps and
failed and joint loads all occur.
"""
import argparse
import json
import os

import gymnasium
import lbforaging  # noqa: F401  (registers the ids)
import numpy as np

TASKS = [
    "Foraging-8x8-2p-2f-coop-v3", "Foraging-2s-8x8-2p-2f-coop-v3", "Foraging-10x10-3p-3f-v3",
    "Foraging-2s-10x10-3p-3f-v3", "Foraging-15x15-3p-5f-v3", "Foraging-15x15-4p-3f-v3",
    "Foraging-15x15-4p-5f-v3", "Foraging-6x6-4p-2f-v3", "Foraging-2s-12x12-5p-4f-coop-v3",
    "Foraging-5x5-3p-1f-v3",
]


def ensure_registered(env_id):
    if env_id in gymnasium.registry:
        return True
    # Foraging-15x15-4p-5f-v3: foods only run to 4 in the package; register with its template.
    s, p, f = 15, 4, 5
    gymnasium.register(id=env_id, entry_point="lbforaging.foraging:ForagingEnv", kwargs=dict(
        players=p, min_player_level=1, max_player_level=2, field_size=(s, s), min_food_level=1,
        max_food_level=None, max_num_food=f, sight=s, max_episode_steps=50, force_coop=False,
        grid_observation=False, penalty=0.0))
    return False


def snapshot(env, full=False):
    u = env.unwrapped
    s = {
        "current_step": int(u.current_step),
        "players": [{"position": [int(x) for x in p.position], "level": int(p.level)} for p in u.players],
        "foods": [[int(r), int(c), int(u.field[r, c])] for r, c in zip(*np.nonzero(u.field))],
        "food_sum": int(u.field.sum()),
        "game_over": bool(u.game_over),
        "valid_actions": [[a.value for a in u._valid_actions[p]] for p in u.players],
    }
    if full:
        s["field"] = u.field.tolist()
        s["food_spawned"] = int(u._food_spawned)
    return s


def greedy(u, i, rng):
    if rng.random() >= 0.75:
        return int(rng.integers(0, 6))
    r, c = u.players[i].position
    foods = list(zip(*np.nonzero(u.field)))
    if not foods:
        return 0
    fr, fc = min(foods, key=lambda f: abs(f[0] - r) + abs(f[1] - c))
    if abs(fr - r) + abs(fc - c) == 1:
        return 5
    dr, dc = fr - r, fc - c
    if abs(dr) >= abs(dc):
        return 2 if dr > 0 else 1
    return 4 if dc > 0 else 3


def record(env_id, seed):
    by_package = ensure_registered(env_id)
    env = gymnasium.make(env_id)
    obs, _ = env.reset(seed=seed)
    u = env.unwrapped
    rng = np.random.default_rng(10000 + seed)
    kwargs = dict(env.spec.kwargs)
    kwargs["field_size"] = list(kwargs["field_size"])
    trace = {
        "format": "marl-parity-lbf-v1",
        "design_note": "Recorded by marl's scripts/make_lbf_traces.py; see FORMAT_LBF.md.",
        "env_id": env_id, "registered_by_package": by_package, "env_kwargs": kwargs,
        "defaults_not_in_kwargs": {"normalize_reward": True, "observe_agent_levels": True},
        "seed": seed, "action_policy": "greedy_food_0.75",
        "initial_state": snapshot(env, full=True),
        "initial_obs": [o.astype(float).tolist() for o in obs],
        "steps": [],
    }
    t = 0
    while True:
        t += 1
        actions = [greedy(u, i, rng) for i in range(len(u.players))]
        obs, rew, term, trunc, _ = env.step(actions)
        trace["steps"].append({
            "t": t, "actions": actions,
            "obs": [o.astype(float).tolist() for o in obs],
            "rewards": [float(r) for r in rew],
            "rewards_hex": [float(r).hex() for r in rew],
            "terminated": bool(term), "truncated": bool(trunc),
            "state": snapshot(env),
        })
        if term or trunc:
            break
    trace["num_steps"] = t
    return trace


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for env_id in args.tasks:
        for seed in args.seeds:
            tr = record(env_id, seed)
            name = "lbf_%s_seed%d.json" % (env_id.removeprefix("Foraging-").removesuffix("-v3"), seed)
            with open(os.path.join(args.out, name), "w") as f:
                json.dump(tr, f)
            print(name)


if __name__ == "__main__":
    main()
