"""marl's built-in environments from Python.

- :func:`make` gives one environment as a PettingZoo ``ParallelEnv`` (dicts keyed by agent
  name, gymnasium spaces, ``state()``, action masks in ``infos[agent]["action_mask"]``).
- :func:`make_vec` gives ``num_envs`` environments stepped together in Rust, with auto-reset,
  as numpy arrays ``[num_envs, n_agents, ...]``.
- Both release the GIL while the Rust environments step (and reset), so other Python threads
  run meanwhile; one object serves one thread at a time (a second caller gets
  ``RuntimeError``).
- :func:`ids` lists the built-in ids.

Both take the environment's parameters as keyword arguments, exactly the keys of the ``[env]
params`` table of a marl config (``make("mpe/simple_spread_v3", N=4, local_ratio=0.3)``); an
unknown id or key raises ``ValueError`` with marl's message (the valid keys, the closest id).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _marl

try:  # PettingZoo is a dependency of the package; the guard keeps `import marl` cheap to debug.
    from pettingzoo import ParallelEnv as _ParallelEnvBase
except ImportError:  # pragma: no cover - only without pettingzoo installed
    _ParallelEnvBase = object  # type: ignore[assignment,misc]

from gymnasium import spaces

__all__ = ["ids", "make", "make_vec", "derive_seed", "MarlParallelEnv", "VecEnv"]


def ids() -> List[str]:
    """Every built-in environment id (``mpe/simple_spread_v3``, ``lbf/...``, ``rware/...``).

    Besides these, every lbforaging task id (``Foraging-8x8-2p-2f-coop-v3``, ...) and every
    rware task id (``rware-tiny-2ag-v2``, ...) is understood, and the family prefix may be left
    out (``simple_spread_v3``).
    """
    return list(_marl.env_ids())


def derive_seed(seed: int, index: int) -> int:
    """The seed :func:`make_vec` gives environment ``index`` of a batch seeded with ``seed``."""
    return int(_marl.derive_seed(int(seed), int(index)))


def _to_json_value(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (tuple, set)):
        return list(x)
    raise TypeError(f"parameter value {x!r} of type {type(x).__name__} is not a number, string, list or dict")


def _params_json(params: Mapping[str, Any]) -> str:
    """Keyword parameters as the JSON text the Rust side reads (None: the default)."""
    return json.dumps(dict(params), default=_to_json_value, allow_nan=False)


def _box(dim: int, low: float = -np.inf, high: float = np.inf) -> spaces.Box:
    return spaces.Box(low=np.float32(low), high=np.float32(high), shape=(dim,), dtype=np.float32)


def _action_space(desc: Sequence[Any]) -> spaces.Space:
    if desc[0] == "discrete":
        return spaces.Discrete(int(desc[1]))
    _, dim, low, high = desc
    return _box(int(dim), low, high)


class _Layout:
    """Where each agent's numbers sit in the flat per-environment arrays of the Rust side."""

    def __init__(self, spec: Dict[str, Any]):
        agents = spec["agents"]
        self.names: List[str] = [a["name"] for a in agents]
        self.types: List[str] = [a["type"] for a in agents]
        self.obs_dims: List[int] = [int(a["obs_dim"]) for a in agents]
        self.actions: List[Tuple[Any, ...]] = [tuple(a["action"]) for a in agents]
        self.action_widths = [1 if a[0] == "discrete" else int(a[1]) for a in self.actions]
        self.mask_widths = [int(a[1]) if a[0] == "discrete" else 0 for a in self.actions]

        def offsets(widths: List[int]) -> List[slice]:
            out, acc = [], 0
            for w in widths:
                out.append(slice(acc, acc + w))
                acc += w
            return out

        self.obs = offsets(self.obs_dims)
        self.act = offsets(self.action_widths)
        self.mask = offsets(self.mask_widths)
        self.obs_len = sum(self.obs_dims)
        self.action_len = sum(self.action_widths)
        self.mask_len = sum(self.mask_widths)
        self.has_masks = bool(spec["has_action_masks"])
        #: Agent types in order of first appearance, each with the indices of its agents.
        self.groups: Dict[str, List[int]] = {}
        for i, t in enumerate(self.types):
            self.groups.setdefault(t, []).append(i)
        self.uniform_obs = len(set(self.obs_dims)) == 1
        self.uniform_mask = len(set(self.mask_widths)) == 1 and self.mask_widths[0] > 0
        self.uniform_action = len(set(self.actions)) == 1


class MarlParallelEnv(_ParallelEnvBase):  # type: ignore[misc,valid-type]
    """One marl environment as a PettingZoo ``ParallelEnv``. Make it with :func:`make`.

    Observations are ``float32`` arrays, rewards Python floats (the environment's ``f64``),
    discrete actions integers and box actions ``float32`` arrays of the box's width (clipped to
    the box by the environment). Where the environment has action masks (Level-Based
    Foraging's valid actions), every ``infos[agent]`` holds ``"action_mask"``, an ``int8`` array
    with 1 for the actions available at the next step.

    Beyond PettingZoo: ``state()`` (the centralized critic's global state), ``world_state()`` /
    ``set_world_state(fields)`` (the documented physical state, as used for parity checks),
    ``metrics()`` (the task's episode figures), ``marl_spec`` (the Rust spec as a dict).
    """

    metadata = {"name": "marl", "render_modes": ["ansi", "svg"], "is_parallelizable": True}

    def __init__(self, env_id: str, render_mode: Optional[str] = None, **params: Any):
        if render_mode not in (None, "ansi", "svg"):
            raise ValueError(f"render_mode {render_mode!r} is not one of None, 'ansi', 'svg'")
        self._env = _marl.Env(env_id, _params_json(params))
        self.marl_spec: Dict[str, Any] = self._env.spec
        self._layout = _Layout(self.marl_spec)
        self.metadata = dict(self.metadata, name=self.marl_spec["id"])
        self.render_mode = render_mode
        self.possible_agents: List[str] = list(self._layout.names)
        self.agents: List[str] = []
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        self.observation_spaces = {
            n: _box(d) for n, d in zip(self.possible_agents, self._layout.obs_dims)
        }
        self.action_spaces = {
            n: _action_space(a) for n, a in zip(self.possible_agents, self._layout.actions)
        }
        self.state_space = _box(int(self.marl_spec["state_dim"]))
        #: Steps after which every agent is truncated.
        self.max_steps: int = int(self.marl_spec["max_steps"])
        self._actions = np.zeros(self._layout.action_len, dtype=np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _split(self, flat: np.ndarray, agents: Sequence[str]) -> Dict[str, np.ndarray]:
        return {a: flat[self._layout.obs[self._index[a]]] for a in agents}

    def _infos(self, agents: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        if not self._layout.has_masks:
            return {a: {} for a in agents}
        mask = self._env.action_mask().astype(np.int8)
        return {a: {"action_mask": mask[self._layout.mask[self._index[a]]]} for a in agents}

    def reset(
        self, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
    ) -> Tuple[Dict[str, np.ndarray], Dict[str, Dict[str, Any]]]:
        """Starts an episode. ``seed`` reseeds the environment's generator; ``None`` continues
        it (so a second ``reset()`` gives a new episode). ``options`` is accepted and ignored."""
        if seed is not None:
            seed = int(seed)
            if seed < 0:
                raise ValueError(f"seed must be a non-negative integer, got {seed}")
        obs = self._env.reset(seed)
        self.agents = list(self.possible_agents)
        return self._split(obs, self.agents), self._infos(self.agents)

    def step(self, actions: Mapping[str, Any]) -> Tuple[
        Dict[str, np.ndarray],
        Dict[str, float],
        Dict[str, bool],
        Dict[str, bool],
        Dict[str, Dict[str, Any]],
    ]:
        """Applies one action per live agent (``self.agents``); returns PettingZoo's
        ``(observations, rewards, terminations, truncations, infos)`` for those agents. Agents
        whose episode ended leave ``self.agents``; when it is empty, call ``reset()``."""
        if not self.agents:
            raise ValueError("step() with no live agents: the episode is over, call reset()")
        unknown = [a for a in actions if a not in self._index]
        if unknown:
            raise ValueError(f"actions for unknown agents {unknown}; the agents are {self.possible_agents}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"no action for live agents {missing} (every agent in env.agents needs one)")
        flat = self._actions
        flat[:] = 0.0
        for name, a in actions.items():
            i = self._index[name]
            if name not in self.agents:
                continue  # a finished agent's action is ignored, as PettingZoo allows
            value = np.asarray(a)
            width = self._layout.action_widths[i]
            if value.size != width:
                raise ValueError(
                    f"action of {name} has {value.size} numbers (shape {value.shape}), expected "
                    f"{width} for {self.action_spaces[name]}"
                )
            flat[self._layout.act[i]] = value.reshape(width)
        obs, rewards, terminated, truncated = self._env.step(flat)
        live = self.agents
        obs_d = self._split(obs, live)
        rew_d = {a: float(rewards[self._index[a]]) for a in live}
        term_d = {a: bool(terminated[self._index[a]]) for a in live}
        trunc_d = {a: bool(truncated[self._index[a]]) for a in live}
        infos = self._infos(live)
        self.agents = [a for a in live if not (term_d[a] or trunc_d[a])]
        return obs_d, rew_d, term_d, trunc_d, infos

    def state(self) -> np.ndarray:
        """The global state for a centralized critic, ``float32 [state_dim]``."""
        return self._env.state()

    def observe(self, agent: str) -> np.ndarray:
        """The current observation of ``agent``."""
        return self._env.observe()[self._layout.obs[self._index[agent]]]

    def world_state(self) -> Dict[str, np.ndarray]:
        """The environment's documented physical state: field name to ``float64`` array."""
        return self._env.world_state()

    def set_world_state(self, fields: Mapping[str, Any]) -> Tuple[Dict[str, np.ndarray], Dict[str, Dict[str, Any]]]:
        """Loads a world state (field name to numbers; see :meth:`world_state`) as the start of
        an episode and returns its observations and infos, as ``reset`` does."""
        self._env.set_world_state(
            {str(k): np.asarray(v, dtype=np.float64).ravel().tolist() for k, v in fields.items()}
        )
        self.agents = list(self.possible_agents)
        return self._split(self._env.observe(), self.agents), self._infos(self.agents)

    def metrics(self) -> Dict[str, float]:
        """The task's episode figures so far (``catches``, ``food_collected``, ...)."""
        return self._env.metrics()

    def render(self) -> Optional[str]:
        """``render_mode="ansi"``: the environment as text; ``"svg"``: an SVG document (None
        where the environment has no picture); no render mode: None."""
        if self.render_mode == "ansi":
            return self._env.render_ascii()
        if self.render_mode == "svg":
            return self._env.render_svg()
        return None

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<marl env {self.marl_spec['id']} agents={self.possible_agents}>"


def make(env_id: str, *, render_mode: Optional[str] = None, **params: Any) -> MarlParallelEnv:
    """One environment as a PettingZoo ``ParallelEnv``.

    >>> env = make("mpe/simple_spread_v3", N=3)
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step({a: 0 for a in env.agents})

    ``params`` are the environment's parameters (the keys of a config's ``[env] params``); an
    unknown id, an unknown key or a value of the wrong type raises ``ValueError``.
    """
    return MarlParallelEnv(env_id, render_mode=render_mode, **params)


Obs = Union[np.ndarray, Dict[str, np.ndarray]]


class VecEnv:
    """``num_envs`` environments of one id stepped together in Rust, with auto-reset. Make it
    with :func:`make_vec`.

    **Layout.** Where every agent has the same observation size, observations are one array
    ``float32 [num_envs, n_agents, obs_dim]`` in agent order (``possible_agents``). Where sizes
    differ (``mpe/simple_speaker_listener_v4``, ``simple_tag``, ``simple_adversary``), they are
    a dict ``{group: float32 [num_envs, n_in_group, obs_dim_of_group]}``, the groups being the
    agent types in order of first appearance (``groups`` maps each to its agents' indices).
    Rewards are ``float64 [num_envs, n_agents]`` (the environment's exact values),
    terminations and truncations ``bool [num_envs, n_agents]``.

    **Actions.** An array ``[num_envs, n_agents]`` of action indices where every agent is
    discrete, ``[num_envs, n_agents, dim]`` where every agent has the same box, or always
    ``[num_envs, action_len]`` (each agent's action numbers concatenated in agent order); or a
    dict ``{group: [num_envs, n_in_group(, dim)]}`` in the observations' group layout. Any
    integer or float dtype; a discrete action must be an integer in range and a box action
    finite, else ``ValueError`` (nothing is stepped).

    **Buffers: valid until the next step; copy to keep.** The Rust side steps into buffers this
    object owns, and ``reset``/``step`` return numpy *views* of them, not copies (the
    EnvPool and gymnasium ``copy=False`` convention): ``obs``, ``rewards``, ``terminated``,
    ``truncated`` and every array of ``infos`` are overwritten in place by the next
    ``reset``/``step``, ``state()`` by the next ``state()``, ``action_mask()`` by the next
    ``reset``/``step``. ``step`` returns the same array objects, and the same ``infos`` dict,
    every time: nothing is allocated per step (don't add keys to ``infos``). ``.copy()`` what
    you keep (a replay buffer, a list of observations), or make the env with ``copy=True`` to
    get fresh arrays (and a fresh ``infos``) from every call, at the cost of the copies. The
    views are writeable (so ``torch.from_numpy`` takes them as they are); writing into them
    changes nothing in the environments. Don't read them from another thread while a ``step``
    runs.

    **Auto-reset.** An environment whose episode ends (every agent terminated or truncated) is
    reset in place: ``obs`` holds the new episode's first observation, and ``infos`` holds, for
    the rows where ``infos["done"]`` is True (= ``(terminated | truncated).all(axis=1)``), the
    last observation ``final_obs`` (in ``obs``'s layout), the last global state
    ``final_state [num_envs, state_dim]``, ``episode_return [num_envs, n_agents]``,
    ``episode_length [num_envs]`` (uint64) and the task figures ``episode_metrics {name:
    [num_envs]}``. Only those rows are written at a step: the other rows of these arrays still
    hold an earlier episode's values (or zeros) and mean nothing. Where the environment has
    action masks, ``infos["action_mask"]`` is ``action_mask()``, the masks for the next step.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        seed: int = 0,
        num_threads: int = 1,
        copy: bool = False,
        **params: Any,
    ):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self._env = _marl.VecEnv(env_id, int(num_envs), int(seed), int(num_threads), _params_json(params))
        self.marl_spec: Dict[str, Any] = self._env.spec
        self._layout = _Layout(self.marl_spec)
        self.num_envs = int(num_envs)
        #: Whether every call returns fresh arrays (``copy=True``) or views of the env's buffers.
        self.copy = bool(copy)
        self.possible_agents: List[str] = list(self._layout.names)
        #: Agent type -> indices of its agents (the keys of per-group dicts).
        self.groups: Dict[str, List[int]] = dict(self._layout.groups)
        #: Whether observations come as one array (True) or a dict per group (False).
        self.uniform = self._layout.uniform_obs
        self.observation_spaces = {
            n: _box(d) for n, d in zip(self.possible_agents, self._layout.obs_dims)
        }
        self.action_spaces = {
            n: _action_space(a) for n, a in zip(self.possible_agents, self._layout.actions)
        }
        self.state_space = _box(int(self.marl_spec["state_dim"]))
        self.max_steps: int = int(self.marl_spec["max_steps"])
        self.metric_names: List[str] = list(self.marl_spec["metric_names"])

        def cols(slices: List[slice], idx: List[int]) -> Union[slice, np.ndarray]:
            """A group's columns: a slice where its agents are consecutive (a view), else an
            index array (numpy copies)."""
            if idx == list(range(idx[0], idx[-1] + 1)):
                return slice(slices[idx[0]].start, slices[idx[-1]].stop)
            return np.concatenate([np.arange(slices[i].start, slices[i].stop) for i in idx]).astype(np.int64)

        self._group_cols = {g: cols(self._layout.obs, idx) for g, idx in self.groups.items()}
        self._group_act_cols = {g: cols(self._layout.act, idx) for g, idx in self.groups.items()}
        self._group_mask_cols = {g: cols(self._layout.mask, idx) for g, idx in self.groups.items()}
        #: Whether every group's columns are a slice, so that per-group dicts are views made once.
        self._views_fixed = all(isinstance(c, slice) for c in self._group_cols.values()) and all(
            isinstance(c, slice) for c in self._group_mask_cols.values()
        )
        self._actions_buf = np.zeros((self.num_envs, self._layout.action_len), dtype=np.float32)

        # The env's buffers, seen once: every array handed out is one of these views.
        b = self._env.buffers()
        n = self.num_envs
        if not self._layout.has_masks:
            b["action_mask"].flags.writeable = False  # a constant: all True
        self._b = b
        self._obs_view = self._obs(b["obs"])
        self._mask_view = self._masks(b["action_mask"])
        self._state_view: np.ndarray = b["state"]
        metrics = b["episode_metrics"]
        self._infos: Dict[str, Any] = {
            "done": b["done"].reshape(n),
            "final_obs": self._obs(b["final_obs"]),
            "final_state": b["final_state"],
            "episode_return": b["episode_return"],
            "episode_length": b["episode_length"].reshape(n),
            "episode_metrics": {name: metrics[:, j] for j, name in enumerate(self.metric_names)},
        }
        if self._layout.has_masks:
            self._infos["action_mask"] = self._mask_view
        self._result = (self._obs_view, b["rewards"], b["terminated"], b["truncated"], self._infos)

    def observation_space(self, agent: str) -> spaces.Space:
        """One agent's observation space (of one environment)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        """One agent's action space (of one environment)."""
        return self.action_spaces[agent]

    def _obs(self, flat: np.ndarray) -> Obs:
        n = flat.shape[0]
        if self.uniform:
            return flat.reshape(n, len(self.possible_agents), self._layout.obs_dims[0])
        return {
            g: flat[:, self._group_cols[g]].reshape(n, len(idx), self._layout.obs_dims[idx[0]])
            for g, idx in self.groups.items()
        }

    def _masks(self, flat: np.ndarray) -> Union[np.ndarray, Dict[str, np.ndarray]]:
        n = flat.shape[0]
        if self._layout.uniform_mask:
            return flat.reshape(n, len(self.possible_agents), self._layout.mask_widths[0])
        return {
            g: flat[:, self._group_mask_cols[g]].reshape(n, len(idx), self._layout.mask_widths[idx[0]])
            for g, idx in self.groups.items()
            if self._layout.mask_widths[idx[0]] > 0
        }

    def _fresh(self, x: Any) -> Any:
        """``x`` (an array, a dict of them, or of dicts) copied, for ``copy=True``."""
        if isinstance(x, dict):
            return {k: self._fresh(v) for k, v in x.items()}
        return x.copy()

    def _outputs(self) -> Tuple[Obs, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        if self._views_fixed:
            result = self._result
        else:  # a group whose agents are not consecutive: numpy gathers its columns anew
            b = self._b
            infos = dict(self._infos, final_obs=self._obs(b["final_obs"]))
            if self._layout.has_masks:
                infos["action_mask"] = self._masks(b["action_mask"])
            result = (self._obs(b["obs"]), b["rewards"], b["terminated"], b["truncated"], infos)
        if self.copy:
            obs, rewards, terminated, truncated, infos = result
            return (
                self._fresh(obs), rewards.copy(), terminated.copy(), truncated.copy(),
                self._fresh(infos),
            )
        return result

    def reset(self, seed: Optional[int] = None) -> Obs:
        """Resets every environment; environment ``i`` gets ``derive_seed(seed, i)``.
        ``seed=None`` uses the seed given to :func:`make_vec` at the first reset and one more
        at each later one. Returns the observations: a view of the env's buffer, valid until
        the next ``reset``/``step`` (a fresh array with ``copy=True``)."""
        if seed is not None and int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self._env.reset(None if seed is None else int(seed))
        return self._outputs()[0]

    def _flat_actions(self, actions: Any) -> np.ndarray:
        if type(actions) is np.ndarray:
            return actions
        if isinstance(actions, Mapping):
            unknown = set(actions) - set(self.groups)
            missing = set(self.groups) - set(actions)
            if unknown or missing:
                raise ValueError(
                    f"action groups {sorted(actions)} differ from the env's groups {list(self.groups)}"
                )
            flat = self._actions_buf
            for g, idx in self.groups.items():
                a = np.asarray(actions[g])
                cols = self._group_act_cols[g]
                k = len(range(self._layout.action_len)[cols]) if isinstance(cols, slice) else len(cols)
                if a.ndim == 0 or a.shape[0] != self.num_envs or a.size != self.num_envs * k:
                    w = self._layout.action_widths[idx[0]]
                    want = (self.num_envs, len(idx)) if w == 1 else (self.num_envs, len(idx), w)
                    raise ValueError(f"actions of group {g!r} have shape {a.shape}, expected {want}")
                if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
                    raise TypeError(f"actions of group {g!r} have dtype {a.dtype}, expected integers or floats")
                flat[:, cols] = a.reshape(self.num_envs, k)
            return flat
        return np.asarray(actions)

    def step(self, actions: Any) -> Tuple[Obs, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """Steps every environment (see the class docs for the action layouts); returns
        ``(obs, rewards, terminated, truncated, infos)``: views of the env's buffers, the same
        objects at every step, valid until the next ``reset``/``step`` (copy to keep; fresh
        arrays with ``copy=True``)."""
        self._env.step(self._flat_actions(actions))
        return self._outputs()

    def state(self) -> np.ndarray:
        """The global states, ``float32 [num_envs, state_dim]``: a view of a buffer that the
        next ``state()`` overwrites (a fresh array with ``copy=True``)."""
        self._env.write_state()
        return self._state_view.copy() if self.copy else self._state_view

    def action_mask(self) -> Union[np.ndarray, Dict[str, np.ndarray]]:
        """The available actions for the next step, ``bool [num_envs, n_agents, n_actions]``
        (a dict per group where agents' action counts differ; all True, and read-only, where
        the environment has no masks): a view of the env's buffer, valid until the next
        ``reset``/``step`` (a fresh array with ``copy=True``)."""
        masks = self._mask_view if self._views_fixed else self._masks(self._b["action_mask"])
        return self._fresh(masks) if self.copy else masks

    def render(self, index: int = 0, mode: str = "ansi") -> Optional[str]:
        """Environment ``index`` drawn as text (``mode="ansi"``) or SVG (``"svg"``)."""
        if mode == "ansi":
            return self._env.render_ascii(int(index))
        if mode == "svg":
            return self._env.render_svg(int(index))
        raise ValueError(f"mode {mode!r} is not 'ansi' or 'svg'")

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<marl VecEnv {self.marl_spec['id']} x{self.num_envs}>"


def make_vec(
    env_id: str,
    num_envs: int,
    *,
    seed: int = 0,
    num_threads: int = 1,
    copy: bool = False,
    **params: Any,
) -> VecEnv:
    """``num_envs`` environments stepped together in Rust (see :class:`VecEnv`).

    >>> venv = make_vec("mpe/simple_spread_v3", 1024, seed=0, num_threads=2)
    >>> obs = venv.reset()                      # float32 [1024, 3, 18]
    >>> obs, rew, term, trunc, infos = venv.step(np.zeros((1024, 3), dtype=np.int64))

    Environment ``i`` is seeded with ``derive_seed(seed, i)`` whatever ``num_threads``, so a
    batch steps exactly as ``num_envs`` separate :func:`make` environments reset with those
    seeds (and with ``reset(seed=None)`` at the end of each episode).

    What ``reset`` and ``step`` return are views of buffers the env owns and overwrites at
    the next call: valid until the next step; copy to keep (or ``copy=True``: fresh arrays
    every call).
    """
    return VecEnv(env_id, num_envs, seed=seed, num_threads=num_threads, copy=copy, **params)
