"""The Python side of marl's environment bridge: serves a shard of environments over stdin/stdout.

marl starts `python -c <this file> --factory module:function ...` (the file is built into the
marl binary, so nothing needs installing; `pip install ./python` also installs it as the
`marl_bridge` package). Standard library only; numpy is used when the environment needs it.

Frames, all little-endian: a request is `u32 length, u8 op, u32 env, payload`; a reply is
`u32 length, u8 status (0 ok, 1 error), payload`. An error's payload is UTF-8 text ending with
the Python traceback. Ops:

- 0 SPEC: payload none; reply: JSON (agents with names, obs_dim and action spaces, state_dim,
  max_steps, has_action_masks).
- 1 RESET: payload i64 seed (-1: none); reply: OBS_BLOCK.
- 2 STEP: payload f32 actions `[action_len]`; reply: f64 rewards `[n]`, u8 terminated `[n]`,
  u8 truncated `[n]`, OBS_BLOCK.
- 3 CLOSE.

The global state (`--state`): `auto` is the env's `state()` if it has one, else the
observations concatenated; `obs` always the observations; `none` no state (IPPO needs none,
and mpe2's `state()` costs as much as a quarter of a step).

OBS_BLOCK: f32 observations `[obs_len]`, f32 state `[state_dim]`, u8 masks `[mask_len]`.

Two interfaces (`--api`):
- `marl`: `reset() -> (obs list, info)`, `step(actions [n_agents, action_dim]) -> (obs,
  rewards, dones, truncated, info)`, with `action_space` (one per agent: an int n for
  Discrete(n), a gym-style space with `.n` or `.low/.high/.shape`) and optionally
  `observation_space`, `state()`, `max_steps`/`episode_limit`, and masks in
  `info["action_mask"]` (or `"avail_actions"`), one list per agent.
- `pettingzoo`: a ParallelEnv (`possible_agents`, `observation_space(a)`, `action_space(a)`,
  dicts keyed by agent name, `terminations`/`truncations`, `state()` when it has one).
"""

import argparse
import importlib
import inspect
import json
import random
import struct
import sys
import traceback

OP_SPEC, OP_RESET, OP_STEP, OP_CLOSE = 0, 1, 2, 3

try:
    import numpy as _np
except ImportError:  # the standard library is enough, only slower
    _np = None


class BridgeError(Exception):
    """A problem with the environment that marl should report as is."""


def _flat(x):
    """A flat list of floats from a number, list, tuple or numpy array."""
    if hasattr(x, "reshape") and hasattr(x, "tolist"):
        return [float(v) for v in x.reshape(-1).tolist()]
    if isinstance(x, (list, tuple)):
        out = []
        for v in x:
            out.extend(_flat(v))
        return out
    return [float(x)]


def _shape(x):
    if hasattr(x, "shape"):
        return tuple(int(d) for d in x.shape)
    if isinstance(x, (list, tuple)):
        return (len(x),) + (_shape(x[0])[1:] if x and isinstance(x[0], (list, tuple)) else ())
    return ()


def _space(s, who):
    """(kind, n or dim, low, high) of an action space."""
    if isinstance(s, int):
        return {"kind": "discrete", "n": s}
    if hasattr(s, "n"):
        return {"kind": "discrete", "n": int(s.n)}
    if hasattr(s, "low") and hasattr(s, "high") and hasattr(s, "shape"):
        dim = 1
        for d in s.shape:
            dim *= int(d)
        low, high = _flat(s.low), _flat(s.high)
        return {"kind": "box", "dim": dim, "low": min(low), "high": max(high)}
    raise BridgeError(f"{who}: cannot read the action space {s!r} (expected an int, a Discrete or a Box)")


def _accepts_seed(fn):
    try:
        return "seed" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class Adapter:
    """One environment behind the uniform view the protocol needs."""

    def __init__(self, env, api, name, max_steps, state="auto"):
        self.env, self.api, self.name = env, api, name
        self.max_steps = max_steps
        self.state_mode = state
        self.seedable = _accepts_seed(env.reset)
        if api == "pettingzoo":
            self.agents = list(env.possible_agents)
            self.spaces = [_space(env.action_space(a), f"{name} agent {a}") for a in self.agents]
            self.obs_spaces = [env.observation_space(a) for a in self.agents]
        else:
            spaces = getattr(env, "action_space", None)
            if spaces is None:
                spaces = getattr(env, "action_spaces", None)
            if spaces is None:
                raise BridgeError(f"{name}: has no `action_space` (one per agent) to read the actions from")
            if not isinstance(spaces, (list, tuple)):
                raise BridgeError(f"{name}: `action_space` must be a list with one space per agent")
            self.agents = [f"agent_{i}" for i in range(len(spaces))]
            self.spaces = [_space(s, f"{name} agent {i}") for i, s in enumerate(spaces)]
            obs_spaces = getattr(env, "observation_space", None)
            self.obs_spaces = list(obs_spaces) if isinstance(obs_spaces, (list, tuple)) else None
        self.has_state = callable(getattr(env, "state", None))
        self.obs_dims = None
        self.state_dim = None
        self.masked = False
        self.check_types = True
        self.last_obs = None

    def _obs_list(self, obs):
        if self.api == "pettingzoo":
            out = []
            for i, a in enumerate(self.agents):
                if a in obs:
                    out.append(obs[a])
                else:  # an agent already done: zeros
                    out.append([0.0] * (self.obs_dims[i] if self.obs_dims else 0))
            return out
        return list(obs)

    def _check_obs(self, obs):
        if len(obs) != len(self.agents):
            raise BridgeError(f"{self.name}: {len(obs)} observations for {len(self.agents)} agents")
        dims = [int(o.size) if hasattr(o, "size") else len(_flat(o)) for o in obs]
        if self.obs_dims is None:
            if self.obs_spaces is not None:
                for i, (o, s) in enumerate(zip(obs, self.obs_spaces)):
                    want = tuple(int(d) for d in getattr(s, "shape", ()) or ())
                    if want and _shape(o) != want:
                        raise BridgeError(
                            f"{self.name}: agent {i}'s observation has shape {_shape(o)}, "
                            f"its observation space says {want}"
                        )
            self.obs_dims = dims
            self.check_types = True
        elif dims != self.obs_dims:
            raise BridgeError(f"{self.name}: observation sizes changed from {self.obs_dims} to {dims}")
        if not self.check_types:
            return
        self.check_types = False  # types are checked on the first observations only
        for i, o in enumerate(obs):
            dt = str(getattr(o, "dtype", "float"))
            if not any(k in dt for k in ("float", "int", "bool")):
                raise BridgeError(f"{self.name}: agent {i}'s observation has dtype {dt}, expected numbers")

    def _masks(self, info):
        if self.api == "pettingzoo":
            per = [(info or {}).get(a, {}) for a in self.agents]
            masks = [p.get("action_mask") for p in per]
        else:
            info = info or {}
            masks = info.get("action_mask", info.get("avail_actions"))
            masks = list(masks) if masks is not None else [None] * len(self.agents)
        out = []
        for s, m in zip(self.spaces, masks):
            if s["kind"] != "discrete":
                continue
            if m is None:
                out.extend([1] * s["n"])
            else:
                self.masked = True
                vals = _flat(m)
                if len(vals) != s["n"]:
                    raise BridgeError(f"{self.name}: an action mask of {len(vals)} entries for {s['n']} actions")
                out.extend(1 if v else 0 for v in vals)
        return out

    def _state(self, obs):
        if self.state_mode == "none":
            return []
        if self.has_state and self.state_mode == "auto":
            return self.env.state()
        return obs

    def reset(self, seed):
        if seed is not None and not self.seedable:
            # The seed's reset() takes no seed: seed the worker's generators instead.
            random.seed(seed)
            try:
                import numpy

                numpy.random.seed(seed % (2**32))
            except ImportError:
                pass
        res = self.env.reset(seed=seed) if (seed is not None and self.seedable) else self.env.reset()
        obs, info = res if isinstance(res, tuple) and len(res) == 2 else (res, {})
        obs = self._obs_list(obs)
        self._check_obs(obs)
        self.last_obs = obs
        return obs, self._state(obs), self._masks(info)

    def actions_for_env(self, flat):
        out, at = [], 0
        for s in self.spaces:
            if s["kind"] == "discrete":
                out.append([int(flat[at])])
                at += 1
            else:
                out.append(list(flat[at : at + s["dim"]]))
                at += s["dim"]
        if self.api == "pettingzoo":
            return {a: (o[0] if s["kind"] == "discrete" else _np_array(o)) for a, o, s in zip(self.agents, out, self.spaces)}
        return _np_array(out, integer=all(s["kind"] == "discrete" for s in self.spaces))

    def step(self, flat):
        acts = self.actions_for_env(flat)
        n = len(self.agents)
        if self.api == "pettingzoo":
            live = set(getattr(self.env, "agents", self.agents))
            obs, rew, term, trunc, info = self.env.step({a: v for a, v in acts.items() if a in live})
            rewards = [float(rew.get(a, 0.0)) for a in self.agents]
            terminated = [bool(term.get(a, a not in live)) for a in self.agents]
            truncated = [bool(trunc.get(a, False)) for a in self.agents]
        else:
            obs, rew, dones, trunc, info = self.env.step(acts)
            rewards = [float(r) for r in _flat(rew)]
            terminated = [bool(d) for d in _flat(dones)]
            truncated = [bool(v) for v in (_flat(trunc) if isinstance(trunc, (list, tuple)) or hasattr(trunc, "shape") else [trunc] * n)]
            if len(truncated) == 1:
                truncated = truncated * n
        if len(rewards) != n or len(terminated) != n:
            raise BridgeError(f"{self.name}: step returned {len(rewards)} rewards and {len(terminated)} dones for {n} agents")
        obs = self._obs_list(obs)
        self._check_obs(obs)
        return rewards, terminated, truncated, obs, self._state(obs), self._masks(info)

    def spec(self):
        obs, state, masks = self.reset(None)
        ms = self.max_steps or getattr(self.env, "max_steps", None) or getattr(self.env, "episode_limit", None)
        if ms is None and self.api == "pettingzoo":
            ms = getattr(self.env, "max_cycles", None)
        return {
            "agents": [
                {"name": str(a), "obs_dim": d, "action_space": s}
                for a, d, s in zip(self.agents, self.obs_dims, self.spaces)
            ],
            "state_dim": len(_flat(state)),
            "max_steps": int(ms or 1000),
            "has_action_masks": self.masked,
        }


def _np_array(rows, integer=False):
    try:
        import numpy

        return numpy.asarray(rows, dtype=numpy.int64 if integer else numpy.float32)
    except ImportError:
        return rows


def _read_exact(f, n):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _send(out, status, payload):
    out.write(struct.pack("<IB", len(payload) + 1, status) + payload)
    out.flush()


def _f32_bytes(parts):
    """Little-endian f32 bytes of a list of arrays or lists (numpy's fast path when it can)."""
    if _np is not None:
        if hasattr(parts, "dtype"):
            return _np.asarray(parts, dtype="<f4").tobytes()
        return b"".join(_np.asarray(p, dtype="<f4").tobytes() for p in parts)
    flat = []
    for p in parts if isinstance(parts, (list, tuple)) else [parts]:
        flat.extend(_flat(p))
    return struct.pack(f"<{len(flat)}f", *flat)


def _obs_block(obs, state, masks):
    return _f32_bytes(obs) + _f32_bytes(state) + bytes(masks)


def serve(envs, inp, out):
    adapters = envs
    while True:
        head = _read_exact(inp, 4)
        if head is None:
            return
        (length,) = struct.unpack("<I", head)
        body = _read_exact(inp, length)
        if body is None:
            return
        op, idx = struct.unpack("<BI", body[:5])
        payload = body[5:]
        try:
            if op == OP_CLOSE:
                _send(out, 0, b"")
                return
            env = adapters[idx]
            if op == OP_SPEC:
                _send(out, 0, json.dumps(env.spec()).encode())
            elif op == OP_RESET:
                (seed,) = struct.unpack("<q", payload)
                _send(out, 0, _obs_block(*env.reset(None if seed < 0 else seed)))
            elif op == OP_STEP:
                acts = struct.unpack(f"<{len(payload) // 4}f", payload)
                rew, term, trunc, obs, state, masks = env.step(acts)
                head = struct.pack(f"<{len(rew)}d", *rew) + bytes(map(int, term)) + bytes(map(int, trunc))
                _send(out, 0, head + _obs_block(obs, state, masks))
            else:
                raise BridgeError(f"unknown op {op}")
        except BaseException as e:  # report everything, the env's own bugs included
            if isinstance(e, BridgeError):
                text = str(e)
            else:
                text = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc())
            _send(out, 1, text.encode("utf-8", "replace"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factory", required=True, help="module:function returning an environment")
    ap.add_argument("--kwargs", default="{}", help="JSON keyword arguments of the factory")
    ap.add_argument("--api", default="marl", choices=["marl", "pettingzoo"])
    ap.add_argument("--n", type=int, default=1, help="environments in this process")
    ap.add_argument("--path", action="append", default=[], help="prepended to sys.path")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--state", default="auto", choices=["auto", "obs", "none"])
    args = ap.parse_args(argv)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    # The env's own prints must not corrupt the protocol: send them to stderr.
    sys.stdout = sys.stderr
    for p in reversed(args.path):
        sys.path.insert(0, p)
    try:
        mod_name, _, fn_name = args.factory.partition(":")
        if not fn_name:
            raise BridgeError(f"--factory `{args.factory}`: expected module:function")
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            raise BridgeError(f"cannot import module `{mod_name}` ({e}); sys.path: {sys.path[:4]}") from e
        factory = getattr(module, fn_name, None)
        if factory is None:
            raise BridgeError(f"module `{mod_name}` has no `{fn_name}`")
        kwargs = json.loads(args.kwargs)
        envs = [Adapter(factory(**kwargs), args.api, args.factory, args.max_steps, args.state) for _ in range(args.n)]
    except BaseException as e:
        # Answer the first request with the error, so marl reports it with context.
        text = str(e) if isinstance(e, BridgeError) else f"{type(e).__name__}: {e}\n" + traceback.format_exc()
        head = _read_exact(inp, 4)
        if head is not None:
            _read_exact(inp, struct.unpack("<I", head)[0])
            _send(out, 1, text.encode("utf-8", "replace"))
        return 1
    serve(envs, inp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
