#!/usr/bin/env python3
"""Environment steps per second from Python: marl's batched simple_spread (N=3, 1,024
environments, `marl.envs.make_vec`) against mpe2's PettingZoo `parallel_env` (the reference,
one environment stepped from Python, as a PettingZoo user does), and marl's PettingZoo
wrapper (`marl.envs.make`) for the same per-environment loop. Not a test.

    target/py-venv/bin/python scripts/bench-python.py [--envs 1024] [--seconds 3]
        [--reference-python .venv/bin/python]     # mpe2: scripts/setup-reference.sh

Actions are random discrete actions drawn beforehand (numpy), so the figures are the
environments' and the bindings' cost, not the action sampling's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ID = "mpe/simple_spread_v3"

REFERENCE = r"""
import json, sys, time
import numpy as np
from mpe2 import simple_spread_v3
seconds = float(sys.argv[1])
env = simple_spread_v3.parallel_env(N=3, local_ratio=0.5, max_cycles=25)
obs, _ = env.reset(seed=0)
rng = np.random.default_rng(0)
table = rng.integers(0, 5, size=(4096, 3))
steps, k = 0, 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < seconds:
    for _ in range(100):
        a = table[k % 4096]; k += 1
        obs, rew, term, trunc, info = env.step({ag: int(a[i]) for i, ag in enumerate(env.possible_agents)})
        steps += 1
        if not env.agents:
            env.reset()
print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t0)}))
"""


def bench_vec(n: int, threads: int, copy: bool, seconds: float) -> float:
    from marl import envs

    venv = envs.make_vec(ID, n, seed=0, num_threads=threads, copy=copy)
    venv.reset()
    rng = np.random.default_rng(0)
    table = [rng.integers(0, 5, size=(n, 3)) for _ in range(16)]
    for k in range(20):  # warm up
        venv.step(table[k % 16])
    steps, k = 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        venv.step(table[k % 16])
        k += 1
        steps += n
    return steps / (time.perf_counter() - t0)


def bench_parallel_env(seconds: float) -> float:
    from marl import envs

    env = envs.make(ID)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    table = rng.integers(0, 5, size=(4096, 3))
    steps, k = 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            a = table[k % 4096]
            k += 1
            env.step({ag: int(a[i]) for i, ag in enumerate(env.possible_agents)})
            steps += 1
            if not env.agents:
                env.reset()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--reference-python", default=".venv/bin/python")
    args = ap.parse_args()
    rows = []
    for threads in (1, 2):
        for copy in (True, False):
            sps = bench_vec(args.envs, threads, copy, args.seconds)
            rows.append((f"marl make_vec x{args.envs}, {threads} thread(s), copy={copy}", sps))
    rows.append(("marl make (PettingZoo ParallelEnv, 1 env)", bench_parallel_env(args.seconds)))
    ref = args.reference_python
    if os.path.exists(ref):
        out = subprocess.run([ref, "-c", REFERENCE, str(args.seconds)], check=True, capture_output=True, text=True)
        rows.append(("mpe2 1.1.1 parallel_env (PettingZoo, 1 env)", json.loads(out.stdout)["steps_per_s"]))
    else:
        print(f"(no {ref}: run scripts/setup-reference.sh for the mpe2 reference)", file=sys.stderr)
    base = rows[-1][1]
    print(f"simple_spread_v3 N=3, env-steps/s from Python ({os.cpu_count()} cores):")
    for name, sps in rows:
        print(f"  {name:<52} {sps:>14,.0f}   x{sps / base:,.1f}")


if __name__ == "__main__":
    main()
