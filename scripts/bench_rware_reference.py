#!/usr/bin/env python3
"""Times rware 2.0.0 itself: env-steps/s of the unwrapped Warehouse with uniform random actions
(drawn up front), resets included, as marl's `rware` benchmark measures the built-in port.

    taskset -c 0 .venv/bin/python scripts/bench_rware_reference.py [--steps 20000] [ids...]

Prints one line per task and the median of --rounds rounds.
"""
import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import rware  # noqa: F401  (registers the ids)


def rate(env_id, steps):
    env = gym.make(env_id).unwrapped
    n = env.n_agents
    actions = np.random.default_rng(4).integers(0, 5, size=(steps, n)).tolist()
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, done, _, _ = env.step(a)
        if done:
            env.reset()
    return steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ids", nargs="*", default=["rware-tiny-2ag-v2", "rware-small-4ag-v2", "rware-tiny-8ag-v2"])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    for env_id in args.ids:
        rates = [rate(env_id, args.steps) for _ in range(args.rounds)]
        print(f"rware 2.0.0 {env_id}: {statistics.median(rates):,.0f} env-steps/s "
              f"(median of {args.rounds}: {', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
