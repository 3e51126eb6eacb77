#!/usr/bin/env python3
"""Records episodes of the reference MPE (mpe2) in marl's parity format `marl-parity-v1`.

    scripts/setup-reference.sh
    .venv/bin/python scripts/make_mpe_traces.py --out /tmp/traces --seeds 0 1 2
    cargo run --release -- envs check-parity /tmp/traces/*.json

Each file holds one episode: the world state right after reset(seed), then every joint action
and what the reference returned (float64 observations, rewards, flags, post-step state).
Actions are drawn by this script (uniform, or steering toward the other agents' centroid with
probability 0.8: "attract", which makes collisions frequent); continuous actions are multiples
of 2**-16 so that they are exact in float32.
"""
import argparse
import importlib
import json
import os

import numpy as np

SCENARIOS = {
    # name: list of kwargs variants
    "simple_spread_v3": [dict(N=2), dict(N=4), dict(N=5, local_ratio=0.3)],
    "simple_tag_v3": [dict(num_good=2, num_adversaries=2, num_obstacles=1), dict(num_good=1, num_adversaries=3, num_obstacles=2)],
    "simple_adversary_v3": [dict(N=3)],
    "simple_speaker_listener_v4": [dict()],
    "simple_reference_v3": [dict()],
}


def entity_state(e, with_c):
    s = {"p_pos": [float(x) for x in e.state.p_pos], "p_vel": [float(x) for x in e.state.p_vel]}
    if with_c:
        s["c"] = [float(x) for x in e.state.c]
    return s


def steer(world, i, target):
    d = target - world.agents[i].state.p_pos
    if abs(d[0]) > abs(d[1]):
        return 2 if d[0] > 0 else 1
    return 4 if d[1] > 0 else 3


def record(scenario, kwargs, seed, continuous, policy, max_cycles=25):
    module = importlib.import_module(f"mpe2.{scenario}")
    kw = dict(kwargs, max_cycles=max_cycles, continuous_actions=continuous)
    env = module.parallel_env(**kw)
    obs, _ = env.reset(seed=seed)
    raw = env.unwrapped
    world = raw.world
    agents = list(env.agents)
    rng = np.random.default_rng(10000 + seed)

    def actions():
        out = {}
        for i, name in enumerate(agents):
            space = env.action_space(name)
            if continuous:
                a = rng.integers(0, 65536, size=space.shape).astype(np.float32) / np.float32(65536)
                out[name] = a
            else:
                a = int(rng.integers(space.n))
                if policy == "attract" and world.agents[i].movable and rng.random() < 0.8:
                    others = [w.state.p_pos for j, w in enumerate(world.agents) if j != i]
                    a = steer(world, i, np.mean(others, axis=0)) + 5 * (a // 5)
                out[name] = a
        return out

    trace = {
        "format": "marl-parity-v1",
        "design_note": "Recorded by marl's scripts/make_mpe_traces.py; see FORMAT.md.",
        "generator": {"script": "make_mpe_traces.py", "api": "mpe2.<scenario>.parallel_env"},
        "scenario": scenario,
        "n_agents": len(agents),
        "n_landmarks": len(world.landmarks),
        "local_ratio": getattr(raw, "local_ratio", None),
        "max_cycles": max_cycles,
        "continuous": continuous,
        "env_kwargs": kw,
        "seed": seed,
        "action_policy": policy,
        "agents": agents,
        "landmarks": [l.name for l in world.landmarks],
        "scenario_extra": {},
        "obs_dims": [int(env.observation_space(a).shape[0]) for a in agents],
        "initial_state": {
            "agents": [entity_state(a, True) for a in world.agents],
            "landmarks": [entity_state(l, False) for l in world.landmarks],
        },
        "initial_obs": [[float(x) for x in raw.scenario.observation(a, world)] for a in world.agents],
        "steps": [],
    }
    goal = getattr(world.agents[0], "goal_b", None)
    if scenario == "simple_speaker_listener_v4":
        trace["scenario_extra"]["goal_landmark_index"] = world.landmarks.index(world.agents[0].goal_b)
    elif scenario == "simple_reference_v3":
        trace["scenario_extra"]["goal_landmark_index"] = [world.landmarks.index(a.goal_b) for a in world.agents]
    elif scenario == "simple_adversary_v3":
        trace["scenario_extra"]["goal_landmark_index"] = world.landmarks.index(world.agents[0].goal_a)
    del goal

    for t in range(1, max_cycles + 1):
        act = actions()
        obs, rew, term, trunc, _ = env.step(act)
        a_rec = [act[n].tolist() if continuous else act[n] for n in agents]
        trace["steps"].append({
            "t": t,
            "actions": a_rec,
            # float64 observations straight from the scenario, on the post-step state.
            "obs": [[float(x) for x in raw.scenario.observation(a, world)] for a in world.agents],
            "rewards": [float(rew[n]) for n in agents],
            "terminations": [bool(term[n]) for n in agents],
            "truncations": [bool(trunc[n]) for n in agents],
            "state": [entity_state(a, True) for a in world.agents],
        })
        # The public API returns float32: check that the recorded float64 casts to it.
        for n, a in zip(agents, world.agents):
            assert np.array_equal(obs[n], np.asarray(raw.scenario.observation(a, world), dtype=np.float32))
    trace["num_steps"] = max_cycles
    return trace


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), help="subset of: " + ", ".join(SCENARIOS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for scenario in args.scenarios:
        variants = SCENARIOS[scenario]
        for kwargs in variants:
            for continuous in (False, True):
                for policy in ("uniform", "attract") if not continuous else ("uniform",):
                    for seed in args.seeds:
                        tr = record(scenario, kwargs, seed, continuous, policy)
                        tag = "_".join(f"{k}{v}" for k, v in kwargs.items())
                        name = f"{scenario}_{tag}_{'continuous' if continuous else 'discrete'}_{policy}_seed{seed}.json".replace("__", "_")
                        with open(os.path.join(args.out, name), "w") as f:
                            json.dump(tr, f)
                        print(name)


if __name__ == "__main__":
    main()
