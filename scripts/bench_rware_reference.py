#!/usr/bin/env python3
"""Times rware 2.0.0 itself: env-steps/s of the unwrapped Warehouse with uniform random actions
(drawn up front), resets included, as marl's `rware` benchmark measures the built-in port.

    taskset -c 0 .venv/bin/python scripts/bench_rware_reference.py [--steps 20000] [ids...]

Prints one line per task: the median of --rounds rounds by wall clock, and by the process's
CPU time (the fairer figure on a machine others are using).
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
    start, cpu = time.perf_counter(), time.process_time()
    for a in actions:
        _, _, done, _, _ = env.step(a)
        if done:
            env.reset()
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ids", nargs="*", default=["rware-tiny-2ag-v2", "rware-small-4ag-v2", "rware-tiny-8ag-v2"])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    for env_id in args.ids:
        rounds = [rate(env_id, args.steps) for _ in range(args.rounds)]
        wall = [w for w, _ in rounds]
        cpu = [c for _, c in rounds]
        print(f"rware 2.0.0 {env_id}: {statistics.median(wall):,.0f} env-steps/s "
              f"(median of {args.rounds}: {', '.join(f'{r:,.0f}' for r in wall)}); "
              f"by CPU time {statistics.median(cpu):,.0f}")


if __name__ == "__main__":
    main()
