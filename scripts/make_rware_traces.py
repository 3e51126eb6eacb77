#!/usr/bin/env python3
"""Records episodes of rware 2.0.0 in marl's parity format `marl-parity-rware-v1`
(envs/tests/parity/FORMAT_RWARE.md).

    scripts/setup-reference.sh
    .venv/bin/python scripts/make_rware_traces.py --out /tmp/rware --seeds 0 1 2
    cargo run --release -- envs check-parity /tmp/rware/*.json

Each file is one episode (or its first --steps steps) of a fresh `rware.warehouse.Warehouse`
with the task's keyword arguments, after `reset(seed=seed)`: every step's joint action,
observations, rewards and `done`, and the full state after it (robots' positions, directions,
carried shelves and two-stage flags, shelves away from home, the request queue and numpy's
generator state, recorded where it changed). Policies (their own generator, seeded from the trace's seed):

- `uniform`: each robot uniform over the 5 actions (how rware's speed is quoted);
- `crowd`: mostly FORWARD (60%), so that contested cells, swaps, cycles and ties in crowded
  layouts are frequent;
- `deliver`: scripted: each robot fetches a requested shelf nobody else is after, carries it to a
  goal along cells it can pass, then puts it back on a free shelf place; 10% of actions uniform.
  Random play almost never delivers; this policy delivers often, so the request queue's
  replacement draws are exercised.

With --warmup K, the env is stepped K random steps after reset(seed) and then reset() without a
seed, and the second episode is recorded (it checks that reset continues numpy's stream).
"""
import argparse
import json
import os
import platform
import sys
from collections import deque

import gymnasium
import networkx
import numpy as np
import rware
from rware.warehouse import Action, Direction, RewardType, Warehouse

REWARDS = {"individual": RewardType.INDIVIDUAL, "global": RewardType.GLOBAL,
           "two_stage": RewardType.TWO_STAGE}
SIZES = {"tiny": (1, 3), "small": (2, 3), "medium": (2, 5), "large": (3, 5)}
DIFFICULTY = {"": 1, "-easy": 2, "-hard": 0.5}

CUSTOM_LAYOUT = """
x.xx.xx.x
x.xx.xx.x
.........
x.xx.xx.x
....g....
"""


def task(size, agents, diff="", **extra):
    """rware's registered kwargs for rware-{size}-{agents}ag{diff}-v2, in marl's names."""
    rows, cols = SIZES[size]
    kw = dict(shelf_columns=cols, column_height=8, shelf_rows=rows, n_agents=agents, msg_bits=0,
              sensor_range=1, request_queue_size=int(agents * DIFFICULTY[diff]),
              max_inactivity_steps=None, max_steps=500, reward_type="individual")
    kw.update(extra)
    return kw


# name -> (registered id or None, kwargs)
TASKS = {
    "tiny-2ag": ("rware-tiny-2ag-v2", task("tiny", 2)),
    "tiny-4ag": ("rware-tiny-4ag-v2", task("tiny", 4)),
    "tiny-4ag-easy": ("rware-tiny-4ag-easy-v2", task("tiny", 4, "-easy")),
    "tiny-4ag-hard": ("rware-tiny-4ag-hard-v2", task("tiny", 4, "-hard")),
    "tiny-6ag": ("rware-tiny-6ag-v2", task("tiny", 6)),
    "tiny-8ag": ("rware-tiny-8ag-v2", task("tiny", 8)),
    "tiny-8ag-hard": ("rware-tiny-8ag-hard-v2", task("tiny", 8, "-hard")),
    "tiny-12ag": ("rware-tiny-12ag-v2", task("tiny", 12)),
    "small-4ag": ("rware-small-4ag-v2", task("small", 4)),
    "small-6ag-hard": ("rware-small-6ag-hard-v2", task("small", 6, "-hard")),
    "medium-6ag": ("rware-medium-6ag-v2", task("medium", 6)),
    "large-8ag-easy": ("rware-large-8ag-easy-v2", task("large", 8, "-easy")),
    "tiny-4ag-global": (None, task("tiny", 4, reward_type="global")),
    "tiny-4ag-twostage": (None, task("tiny", 4, reward_type="two_stage")),
    "tiny-3ag-2s": ("rware-2s-tiny-8h-3ag-v2", task("tiny", 3, sensor_range=2)),
    "tiny-2ag-3s": ("rware-3s-tiny-8h-2ag-v2", task("tiny", 2, sensor_range=3)),
    "small-4ag-3s-hard": (None, task("small", 4, "-hard", sensor_range=3)),
    "tiny-2ag-0s": (None, task("tiny", 2, sensor_range=0)),
    "medium-3ag-5s": ("rware-5s-medium-8h-3ag-v2", task("medium", 3, sensor_range=5)),
    "tiny-2ag-norm": (None, task("tiny", 2, normalised_coordinates=True)),
    "tiny-3ag-inactive": (None, task("tiny", 3, max_inactivity_steps=40)),
    "1x5-4h-5ag-3req-twostage": ("rware-1x5-4h-5ag-3req-twostage-v2",
                                 task("tiny", 5, shelf_columns=5, column_height=4,
                                      request_queue_size=3, reward_type="two_stage")),
    "custom-3ag": (None, dict(task("tiny", 3), layout=CUSTOM_LAYOUT, request_queue_size=2)),
}


# The traces in envs/tests/parity/ (replayed by `cargo test`): (task, policy, seed, steps,
# warmup). Chosen from hundreds of recordings for what they exercise, with each episode cut
# after its last interesting step to keep the repository small: ties decided by CPython's set
# order and by networkx's node order, a rotation (cycle of 3+ robots), steps with two
# deliveries, every reward type and difficulty, sensor ranges 1 to 3, normalised coordinates,
# the inactivity limit, a custom layout, a reset without a seed, and one full 500-step episode.
CI_SET = [
    ("tiny-2ag", "deliver", 1, 500, 0),
    ("tiny-2ag", "uniform", 0, 100, 0),
    ("tiny-2ag", "deliver", 6, 260, 37),
    ("tiny-4ag-hard", "deliver", 4, 220, 0),
    ("tiny-4ag-twostage", "deliver", 3, 260, 0),
    ("tiny-4ag-global", "deliver", 0, 80, 0),
    ("tiny-4ag-easy", "deliver", 1, 20, 0),
    ("tiny-4ag-easy", "deliver", 4, 115, 0),
    ("tiny-6ag", "crowd", 0, 130, 0),
    ("tiny-8ag-hard", "deliver", 0, 100, 0),
    ("tiny-12ag", "crowd", 2, 115, 0),
    ("small-4ag", "deliver", 0, 20, 0),
    ("small-6ag-hard", "deliver", 1, 100, 0),
    ("medium-6ag", "uniform", 0, 50, 0),
    ("large-8ag-easy", "deliver", 0, 110, 0),
    ("tiny-3ag-2s", "deliver", 3, 25, 0),
    ("tiny-2ag-3s", "deliver", 1, 40, 0),
    ("tiny-2ag-norm", "deliver", 1, 40, 0),
    ("tiny-3ag-inactive", "deliver", 3, 500, 0),
    ("1x5-4h-5ag-3req-twostage", "deliver", 0, 120, 0),
    ("custom-3ag", "deliver", 6, 155, 37),
]


def make(kw):
    args = dict(kw)
    args["reward_type"] = REWARDS[args["reward_type"]]
    return Warehouse(**args)


# ── scripted delivery ──

def bfs_from(env, goal, carrying):
    """Distances to `goal` over cells a robot can enter (carrying: no standing shelf)."""
    h, w = env.grid_size
    dist = np.full((h, w), -1, dtype=np.int64)
    gx, gy = goal
    dist[gy, gx] = 0
    q = deque([goal])
    while q:
        x, y = q.popleft()
        for nx_, ny_ in ((x, y - 1), (x, y + 1), (x - 1, y), (x + 1, y)):
            if 0 <= nx_ < w and 0 <= ny_ < h and dist[ny_, nx_] < 0:
                if carrying and env.grid[1, ny_, nx_] and not _carried_here(env, nx_, ny_):
                    continue
                dist[ny_, nx_] = dist[y, x] + 1
                q.append((nx_, ny_))
    return dist


def _carried_here(env, x, y):
    a = env.grid[0, y, x]
    return a and env.agents[a - 1].carrying_shelf is not None


DIRS = {Direction.UP: (0, -1), Direction.DOWN: (0, 1), Direction.LEFT: (-1, 0),
        Direction.RIGHT: (1, 0)}
CLOCKWISE = [Direction.UP, Direction.RIGHT, Direction.DOWN, Direction.LEFT]


def steer(agent, dist, rng):
    """The action that moves `agent` one cell down the distance field (turning first)."""
    x, y = int(agent.x), int(agent.y)
    h, w = dist.shape
    best = []
    for d, (dx, dy) in DIRS.items():
        nx_, ny_ = x + dx, y + dy
        if 0 <= nx_ < w and 0 <= ny_ < h and dist[ny_, nx_] >= 0 and dist[ny_, nx_] < dist[y, x]:
            best.append(d)
    if not best:
        return int(rng.integers(0, 5))
    if agent.dir in best:
        return Action.FORWARD.value
    want = best[int(rng.integers(0, len(best)))]
    turn = (CLOCKWISE.index(want) - CLOCKWISE.index(agent.dir)) % 4
    return Action.RIGHT.value if turn in (1, 2) else Action.LEFT.value


def deliver_policy(env, rng, eps=0.1):
    actions = []
    claimed = set()
    requested = set(id(s) for s in env.request_queue)
    for agent in env.agents:
        if rng.random() < eps:
            actions.append(int(rng.integers(0, 5)))
            continue
        x, y = int(agent.x), int(agent.y)
        shelf = agent.carrying_shelf
        if shelf is not None:
            if id(shelf) in requested:
                goal = min(env.goals, key=lambda g: abs(g[0] - x) + abs(g[1] - y))
                actions.append(steer(agent, bfs_from(env, goal, True), rng))
            elif not env._is_highway(x, y):
                actions.append(Action.TOGGLE_LOAD.value)
            else:
                # Back to the nearest free shelf place.
                dist = bfs_from(env, (x, y), True)
                free = [(int(dist[cy, cx]), (cx, cy))
                        for cy in range(env.grid_size[0]) for cx in range(env.grid_size[1])
                        if not env._is_highway(cx, cy) and not env.grid[1, cy, cx] and dist[cy, cx] > 0]
                if not free:
                    actions.append(int(rng.integers(0, 5)))
                    continue
                target = min(free)[1]
                actions.append(steer(agent, bfs_from(env, target, True), rng))
            continue
        # Not carrying: go for the nearest requested shelf nobody carries or claimed.
        carried = set(id(a.carrying_shelf) for a in env.agents if a.carrying_shelf is not None)
        options = [s for s in env.request_queue if id(s) not in carried and id(s) not in claimed]
        if not options:
            actions.append(int(rng.integers(0, 5)))
            continue
        target = min(options, key=lambda s: abs(int(s.x) - x) + abs(int(s.y) - y))
        claimed.add(id(target))
        if (int(target.x), int(target.y)) == (x, y):
            actions.append(Action.TOGGLE_LOAD.value)
        else:
            actions.append(steer(agent, bfs_from(env, (int(target.x), int(target.y)), False), rng))
    return actions


def policy_actions(name, env, rng):
    n = len(env.agents)
    if name == "uniform":
        return [int(a) for a in rng.integers(0, 5, size=n)]
    if name == "crowd":
        return [int(a) for a in rng.choice(5, size=n, p=[0.05, 0.6, 0.15, 0.15, 0.05])]
    if name == "deliver":
        return deliver_policy(env, rng)
    raise ValueError(name)


# ── recording ──

def num(v):
    v = float(v)
    return int(v) if v.is_integer() else v


def rng_state(env, full=False):
    s = env.np_random.bit_generator.state
    out = {"state": format(s["state"]["state"], "032x"), "has_uint32": int(s["has_uint32"]),
           "uinteger": int(s["uinteger"])}
    if full:
        out["inc"] = format(s["state"]["inc"], "032x")
    return out


def snapshot(env, full=False):
    home = {}
    h, w = env.grid_size
    k = 0
    for y in range(h):
        for x in range(w):
            if not env._is_highway(x, y):
                home[k] = (x, y)
                k += 1
    return {
        "agents": [[int(a.x), int(a.y), a.dir.value,
                    0 if a.carrying_shelf is None else int(a.carrying_shelf.id),
                    int(bool(a.has_delivered))] for a in env.agents],
        "displaced_shelves": [[int(s.id), int(s.x), int(s.y)] for s in env.shelfs
                              if (int(s.x), int(s.y)) != home[s.id - 1]],
        "request_queue": [int(s.id) for s in env.request_queue],
        "rng": rng_state(env, full),
    }


def record(name, seed, policy, steps_limit, warmup):
    env_id, kw = TASKS[name]
    env = make(kw)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(10_000 + seed)
    warm = []
    if warmup:
        for _ in range(warmup):
            a = [int(x) for x in rng.integers(0, 5, size=len(env.agents))]
            warm.append(a)
            env.step(a)
        obs, _ = env.reset()
    trace = {
        "format": "marl-parity-rware-v1",
        "design_note": (
            "One episode of rware 2.0.0's Warehouse(**kwargs) after reset(seed) (and, with "
            "warmup_actions, after those steps and a reset() without a seed). Robot i is "
            "env.agents[i]; x is the column, y the row (0 at the top); directions 0 up, 1 down, "
            "2 left, 3 right; shelf ids from 1 in row-major order of the shelf places. Per step: "
            "actions, every robot's observation, rewards, rware's done (its step and inactivity "
            "limits, truncations in marl), and the state after it."),
        "versions": {"rware": "2.0.0", "numpy": np.__version__, "networkx": networkx.__version__,
                     "gymnasium": gymnasium.__version__, "python": platform.python_version()},
        "env_id": env_id,
        "env_kwargs": {k: v for k, v in kw.items() if v is not None},
        "seed": seed,
        "policy": policy,
        "warmup_actions": warm,
        "initial_state": snapshot(env, full=True),
        "initial_obs": [[num(v) for v in o] for o in obs],
        "steps": [],
    }
    limit = min(steps_limit or kw["max_steps"], kw["max_steps"])
    last_rng = trace["initial_state"]["rng"]["state"]
    for t in range(1, limit + 1):
        actions = policy_actions(policy, env, rng)
        obs, rewards, done, truncated, _ = env.step(actions)
        state = snapshot(env)
        # The generator moves only on deliveries: record its state where it changed.
        if state["rng"]["state"] == last_rng:
            del state["rng"]
        else:
            last_rng = state["rng"]["state"]
        trace["steps"].append({
            "t": t, "actions": actions, "obs": [[num(v) for v in o] for o in obs],
            "rewards": [float(r) for r in rewards], "done": bool(done), "state": state,
        })
        if done:
            break
    return trace


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--policies", nargs="+", default=["uniform", "crowd", "deliver"])
    p.add_argument("--steps", type=int, default=0, help="record at most this many steps (0: the episode)")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--ci", action="store_true", help="record the set in envs/tests/parity/ (CI_SET)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.ci:
        runs = CI_SET
    else:
        runs = [(name, policy, seed, args.steps, args.warmup)
                for name in args.tasks for policy in args.policies for seed in args.seeds]
    for name, policy, seed, steps, warmup in runs:
        trace = record(name, seed, policy, steps, warmup)
        tag = f"_warm{warmup}" if warmup else ""
        fname = os.path.join(args.out, f"rware_{name}_{policy}_seed{seed}{tag}.json")
        with open(fname, "w") as f:
            json.dump(trace, f, separators=(",", ":"))
        got = sum(sum(s["rewards"]) for s in trace["steps"])
        print(f"{fname}: {len(trace['steps'])} steps, total reward {got:g}", file=sys.stderr)


if __name__ == "__main__":
    main()
