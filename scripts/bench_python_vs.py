#!/usr/bin/env python3
"""Side by side from Python: marl's environments (`marl.envs.make_vec`, batched, and
`marl.envs.make`, PettingZoo's `ParallelEnv`) against JaxMARL 0.2.0's MPE (`jax.jit(jax.vmap(
env.step))`) and the Python reference packages (mpe2 1.1.1, lbforaging 2.0.0, rware 2.0.0),
on simple_spread N=3, Foraging-8x8-2p-2f-coop-v3 and rware-tiny-2ag-v2. Not a test.

Run it through `scripts/bench-python-vs.sh`, which makes the three virtualenvs (marl's, JaxMARL's
with CPU jax, the references') and passes them here:

    python3 scripts/bench_python_vs.py --marl-python P --jaxmarl-python P --reference-python P
        [--envs 1024] [--seconds 3] [--rounds 3] [--only mpe,lbf,rware]

Every side runs in its own long-lived worker process (one per virtualenv, so JAX compiles once);
the driver asks the workers for one timed window of each case in turn, and repeats the whole
sequence `--rounds` times (in reverse order every other round), so that the load of a shared
machine falls on every side alike. Set-up, compilation and a warm-up are outside the windows.
Actions are random, drawn beforehand (numpy or jax), so the figures are the environments' and the
bindings' cost, not the sampling's; every side resets its environments when their episodes end
(marl's and JaxMARL's batched steps do it themselves). A JaxMARL window blocks on the state every
10 steps (`block_until_ready`), so its asynchronous dispatch counts, but not past the window.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

MPE = "mpe/simple_spread_v3"
LBF = "lbf/Foraging-8x8-2p-2f-coop-v3"
RWARE = "rware/rware-tiny-2ag-v2"
TABLE = 16  # batches of random actions cycled through

# ---------------------------------------------------------------- worker side (one per venv)


def _timed(
    step: Callable[[], int], seconds: float, block: Callable[[], None] = lambda: None
) -> Tuple[float, float]:
    """Calls `step` (which returns the env-steps it made) until `seconds` have passed; returns
    env-steps per second of wall time and per second of this process's CPU time (all its
    threads: what the side costs, whatever else the machine runs)."""
    steps = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        steps += step()
        block()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return steps / wall, steps / cpu


def _marl_vec(env_id: str, n: int, threads: int) -> Callable[[float], Tuple[float, float]]:
    import numpy as np
    from marl import envs

    venv = envs.make_vec(env_id, n, seed=0, num_threads=threads)
    venv.reset()
    n_agents = len(venv.possible_agents)
    n_actions = int(venv.action_space(venv.possible_agents[0]).n)
    rng = np.random.default_rng(0)
    table = [rng.integers(0, n_actions, size=(n, n_agents)) for _ in range(TABLE)]
    k = [0]

    def step() -> int:
        venv.step(table[k[0] % TABLE])
        k[0] += 1
        return n

    for _ in range(20):
        step()
    return lambda s: _timed(step, s)


def _pettingzoo_loop(env: Any) -> Callable[[float], Tuple[float, float]]:
    """A PettingZoo `ParallelEnv` stepped one joint action at a time, reset at episode end."""
    import numpy as np

    env.reset(seed=0)
    agents = list(env.possible_agents)
    n_actions = [int(env.action_space(a).n) for a in agents]
    rng = np.random.default_rng(0)
    table = [{a: int(rng.integers(0, n_actions[i])) for i, a in enumerate(agents)} for _ in range(4096)]
    k = [0]

    def step() -> int:
        for _ in range(100):
            env.step(table[k[0] % 4096])
            k[0] += 1
            if not env.agents:
                env.reset()
        return 100

    step()
    return lambda s: _timed(step, s)


def _gymnasium_loop(env: Any) -> Callable[[float], Tuple[float, float]]:
    """A multi-agent gymnasium env (lbforaging, rware: a tuple of actions, one `done`)."""
    import numpy as np

    env.reset(seed=0)
    spaces = env.action_space
    n_actions = [int(s.n) for s in spaces]
    rng = np.random.default_rng(0)
    table = [tuple(int(rng.integers(0, m)) for m in n_actions) for _ in range(4096)]
    k = [0]

    def step() -> int:
        for _ in range(100):
            _, _, done, truncated, _ = env.step(table[k[0] % 4096])
            k[0] += 1
            if done or truncated:
                env.reset()
        return 100

    step()
    return lambda s: _timed(step, s)


def _jaxmarl(n: int, scan: bool) -> Callable[[float], Tuple[float, float]]:
    import jax
    import jaxmarl

    env = jaxmarl.make("MPE_simple_spread_v3")  # N=3, local_ratio 0.5, 25 steps, discrete
    agents = env.agents
    key = jax.random.PRNGKey(0)
    key, k_reset = jax.random.split(key)
    _, state = jax.jit(jax.vmap(env.reset))(jax.random.split(k_reset, n))
    if not scan:
        step_fn = jax.jit(jax.vmap(env.step))
        keys, acts = [], []
        for _ in range(TABLE):
            key, k_step, k_act = jax.random.split(key, 3)
            keys.append(jax.random.split(k_step, n))
            ks = jax.random.split(k_act, len(agents))
            acts.append({a: jax.random.randint(ks[i], (n,), 0, 5) for i, a in enumerate(agents)})
        box = [state, 0]

        def step() -> int:
            st, k = box
            for _ in range(10):
                _, st, _, _, _ = step_fn(keys[k % TABLE], st, acts[k % TABLE])
                k += 1
            box[0], box[1] = st, k
            return 10 * n

        def block() -> None:
            jax.block_until_ready(box[0])

    else:
        length = 100

        def body(carry: Tuple[Any, Any], _: Any) -> Tuple[Tuple[Any, Any], None]:
            st, k = carry
            k, k_step, k_act = jax.random.split(k, 3)
            ks = jax.random.split(k_act, len(agents))
            actions = {a: jax.random.randint(ks[i], (n,), 0, 5) for i, a in enumerate(agents)}
            _, st, _, _, _ = jax.vmap(env.step)(jax.random.split(k_step, n), st, actions)
            return (st, k), None

        rollout = jax.jit(lambda st, k: jax.lax.scan(body, (st, k), None, length=length)[0])
        box = [(state, key)]

        def step() -> int:
            box[0] = rollout(*box[0])
            return length * n

        def block() -> None:
            jax.block_until_ready(box[0])

    for _ in range(3):  # compiles and warms up
        step()
        block()
    return lambda s: _timed(step, s, block)


def _make_case(name: str, n: int) -> Callable[[float], Tuple[float, float]]:
    """The benchmark `name` ("side:task[:threads]"), set up and warmed up."""
    side, task, *rest = name.split(":")
    ids = {"mpe": MPE, "lbf": LBF, "rware": RWARE}
    if side == "marl_vec":
        return _marl_vec(ids[task], n, int(rest[0]))
    if side == "marl_make":
        from marl import envs

        return _pettingzoo_loop(envs.make(ids[task]))
    if side == "jaxmarl_step":
        return _jaxmarl(n, scan=False)
    if side == "jaxmarl_scan":
        return _jaxmarl(n, scan=True)
    if side == "reference":
        if task == "mpe":
            from mpe2 import simple_spread_v3

            return _pettingzoo_loop(simple_spread_v3.parallel_env(N=3, local_ratio=0.5, max_cycles=25))
        import gymnasium

        if task == "lbf":
            import lbforaging  # noqa: F401  (registers the ids)

            return _gymnasium_loop(gymnasium.make("Foraging-8x8-2p-2f-coop-v3"))
        import rware  # noqa: F401

        return _gymnasium_loop(gymnasium.make("rware-tiny-2ag-v2"))
    raise ValueError(f"unknown case {name}")


def worker(n: int) -> None:
    """Answers `{"case", "seconds"}` lines on stdin with `RESULT {...}` lines on stdout."""
    cases: Dict[str, Callable[[float], Tuple[float, float]]] = {}
    for line in sys.stdin:
        req = json.loads(line)
        name = req["case"]
        if name not in cases:
            cases[name] = _make_case(name, n)
        wall, cpu = cases[name](float(req["seconds"]))
        print("RESULT " + json.dumps({"case": name, "steps_per_s": wall, "steps_per_cpu_s": cpu}), flush=True)


# ---------------------------------------------------------------- driver side

VERSIONS = {
    "marl": "import marl, numpy; print('marl', marl.__version__, 'numpy', numpy.__version__)",
    "jaxmarl": "import jax, jaxlib, jaxmarl; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'jaxmarl', jaxmarl.__version__)",
    "reference": "from importlib.metadata import version as v; print(*[f'{p} {v(p)}' for p in ('mpe2', 'pettingzoo', 'lbforaging', 'rware', 'gymnasium', 'numpy')])",
}


class Worker:
    """One side's worker process (its virtualenv's Python running this file with --worker)."""

    def __init__(self, python: str, n: int, pin: str) -> None:
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
        cmd = [python, os.path.abspath(__file__), "--worker", "--envs", str(n)]
        if pin:
            cmd = ["taskset", "-c", pin] + cmd
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )

    def run(self, case: str, seconds: float) -> Tuple[float, float]:
        """One timed window: (env-steps per wall second, per CPU second)."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"case": case, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                return float(r["steps_per_s"]), float(r["steps_per_cpu_s"])
        raise RuntimeError(f"worker for {case} ended (exit {self.proc.wait()})")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def median(xs: List[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--envs", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="mpe,lbf,rware", help="tasks, of mpe, lbf, rware")
    ap.add_argument("--pin", default="", help="taskset -c list for every worker (e.g. 1: one core)")
    ap.add_argument("--marl-python", default="target/py-venv/bin/python")
    ap.add_argument("--jaxmarl-python", default="target/jaxmarl-venv/bin/python")
    ap.add_argument("--reference-python", default="target/reference-venv/bin/python")
    ap.add_argument("--json", help="also write every window's figures here")
    args = ap.parse_args()
    if args.worker:
        worker(args.envs)
        return
    pythons = {"marl": args.marl_python, "jaxmarl": args.jaxmarl_python, "reference": args.reference_python}
    n = args.envs
    tasks = args.only.split(",")
    cases: List[Tuple[str, str, str]] = []  # (side, case, label)
    for task in tasks:
        cases.append(("marl", f"marl_vec:{task}:1", f"marl make_vec x{n}, 1 thread"))
        if not args.pin or "," in args.pin or "-" in args.pin:
            cases.append(("marl", f"marl_vec:{task}:2", f"marl make_vec x{n}, 2 threads"))
        if task == "mpe":
            cases.append(("jaxmarl", "jaxmarl_step:mpe", f"JaxMARL jit(vmap(step)) x{n}, a call a step"))
            cases.append(("jaxmarl", "jaxmarl_scan:mpe", f"JaxMARL jit(scan(vmap(step))) x{n}, 100 a call"))
        cases.append(("marl", f"marl_make:{task}", "marl make (PettingZoo ParallelEnv), 1 env"))
        cases.append(("reference", f"reference:{task}", "reference package, 1 env"))
    used = [side for side in pythons if any(c[0] == side for c in cases)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
          + (f", workers pinned to CPU {args.pin}" if args.pin else ""))
    for side in used:
        out = subprocess.run([pythons[side], "-c", VERSIONS[side]], capture_output=True, text=True, check=True)
        print(f"{side}: {out.stdout.strip().splitlines()[-1]}")
    workers = {side: Worker(pythons[side], n, args.pin) for side in used}
    wall: Dict[str, List[float]] = {c[1]: [] for c in cases}
    cpu: Dict[str, List[float]] = {c[1]: [] for c in cases}
    try:
        for r in range(args.rounds):
            for side, case, _ in cases if r % 2 == 0 else list(reversed(cases)):
                w, c = workers[side].run(case, args.seconds)
                wall[case].append(w)
                cpu[case].append(c)
                print(f"  round {r + 1}: {case:<22} {w:>14,.0f} /s  {c:>14,.0f} /CPU-s", file=sys.stderr, flush=True)
    finally:
        for wk in workers.values():
            wk.close()

    print(f"env-steps per second (wall; min-max) and per CPU-second of the side's process, medians of "
          f"{args.rounds} alternated {args.seconds:g} s windows; ratios are medians of the rounds' ratios:")
    for task in tasks:
        print(f"{task}:")
        ref = f"reference:{task}"
        for _, case, label in [c for c in cases if c[1].split(":")[1] == task]:
            ratios = [f"x{median([a / b for a, b in zip(wall[case], wall[ref])]):,.0f} reference"]
            if task == "mpe":
                js = "jaxmarl_step:mpe"
                ratios.append(f"x{median([a / b for a, b in zip(wall[case], wall[js])]):,.1f} JaxMARL step"
                              f" (CPU x{median([a / b for a, b in zip(cpu[case], cpu[js])]):,.1f})")
            lo, hi = min(wall[case]), max(wall[case])
            print(f"  {label:<48} {median(wall[case]):>11,.0f} ({lo:,.0f}-{hi:,.0f})"
                  f" {median(cpu[case]):>11,.0f}/CPU-s  {'  '.join(ratios)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"wall": wall, "cpu": cpu, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
